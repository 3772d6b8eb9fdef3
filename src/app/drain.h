/* Connection tracking and the drain: which connections a server holds,
 * which of them have a request in hand, and how a draining server retires
 * the idle ones without racing a request a client writes meanwhile (see
 * drain.c). It knows nothing of libmicrohttpd: the server tells it when a
 * connection opens or closes and when a request begins or ends. */
#ifndef MYAPP_DRAIN_H
#define MYAPP_DRAIN_H

#include <stdint.h>

struct drain;
struct drain_conn;

/* idle_ms: how long a drain leaves idle keep-alive connections open for a
 * last request. 0 or -ENOMEM. */
int drain_new(struct drain **out, unsigned idle_ms);

/* Once no connection is left open (after the server stopped). */
void drain_free(struct drain *d);

/* A connection opened on fd (the server's: never closed here, -1 when
 * unknown). Its record, or NULL when it cannot be recorded: it is then
 * counted and served, just never cut. */
struct drain_conn *drain_conn_opened(struct drain *d, int fd);

/* The connection closes: called before its fd is closed. dc may be NULL. */
void drain_conn_closed(struct drain *d, struct drain_conn *dc);

/* A request begins on dc (may be NULL); 1 when the drain has cut that
 * connection (the request must then be answered without suspending), 0
 * otherwise. */
int drain_request_begin(struct drain *d, struct drain_conn *dc);

/* The request that began on dc (may be NULL) has completed. */
void drain_request_end(struct drain *d, struct drain_conn *dc);

/* Requests between drain_request_begin() and drain_request_end(). */
unsigned drain_requests_in_flight(struct drain *d);

/* The drain starts now: the linger counts from here. */
void drain_begin(struct drain *d);

/* Wait until no request is in flight and no connection is left, or until
 * deadline_ms (CLOCK_MONOTONIC); 0 or -ETIMEDOUT. */
int drain_wait(struct drain *d, int64_t deadline_ms);

/* Idle connections the drain has cut so far. */
unsigned drain_connections_cut(const struct drain *d);

#endif
