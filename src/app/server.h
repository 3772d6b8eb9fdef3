/* The HTTP server: one libmicrohttpd daemon per listening socket, each with
 * a thread pool, and the drain that ends them without losing a request (its
 * connection tracking is drain.c's). */
#ifndef MYAPP_SERVER_H
#define MYAPP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "routes.h"

#define SERVER_FDS_MAX 16
#define SERVER_THREADS_MAX 256
#define SERVER_CONNECTION_TIMEOUT 15 /* seconds an idle connection may stay */
#define SERVER_DRAIN_IDLE_MS \
	1000 /* default linger of idle connections in a drain */

struct server;

/* Serve every fd (listening sockets, never closed or shut down here).
 * drain_idle_ms: how long a draining server leaves idle keep-alive
 * connections open for a last request (answered with Connection: close). */
int server_start(struct server **out, struct app_state *app, const int *fds,
    size_t nfds, unsigned threads, unsigned drain_idle_ms);

/* Stop accepting at once (other processes on the same sockets take the new
 * connections); replies from now on carry Connection: close. */
void server_begin_drain(struct server *s);

/* Wait until no request is in flight and no connection is left, or until
 * deadline_ms (CLOCK_MONOTONIC); 0 or -ETIMEDOUT. Idle keep-alive
 * connections get drain_idle_ms for a last request, then are cut without
 * racing a request the client writes meanwhile (see drain.c). */
int server_wait_drained(struct server *s, int64_t deadline_ms);

/* Idle connections the drain has cut so far. */
unsigned server_connections_cut(struct server *s);

/* Requests between their first byte of handling and their completion. */
unsigned server_requests_in_flight(struct server *s);

/* Stop the daemons (closing any connection left) and free. Only after a
 * successful drain: libmicrohttpd must not hold suspended connections. */
void server_stop(struct server *s);

#endif
