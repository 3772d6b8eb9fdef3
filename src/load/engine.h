/* The load engine: an epoll loop that sends requests on a schedule over a
 * pool of connections and records one outcome per request. */
#ifndef ZDD_LOAD_ENGINE_H
#define ZDD_LOAD_ENGINE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_response.h"
#include "target.h"

enum outcome {
	OUTCOME_NONE = 0,       /* never scheduled (the run was interrupted) */
	OUTCOME_HTTP,           /* a complete response: see status */
	OUTCOME_REFUSED,        /* connect: ECONNREFUSED or ENOENT */
	OUTCOME_CONNECT_EAGAIN, /* connect: UNIX socket backlog full */
	OUTCOME_CONNECT_ERROR,  /* connect: anything else */
	OUTCOME_RESET,          /* ECONNRESET/EPIPE once bytes were sent */
	OUTCOME_EOF,            /* closed before the response was complete */
	OUTCOME_TIMEOUT,
	OUTCOME_MALFORMED, /* the response did not parse */
	OUTCOME_OVERLOAD,  /* client side: more than max_pending waiting */
	OUTCOME_COUNT
};

const char *outcome_name(enum outcome o);

struct request_record {
	uint32_t latency_us; /* from the scheduled send time to the outcome */
	uint16_t status;     /* HTTP status for OUTCOME_HTTP */
	uint8_t outcome;
	uint8_t attempts; /* sends that never wrote a byte and were redone */
	uint32_t
	    queued_us; /* from the scheduled time to handing it to a connection */
	uint8_t fresh; /* 1: went out on a connection opened for it */
};

#define ENGINE_REQUEST_MAX 1024 /* one request, head and body */
#define ENGINE_BODY_KEEP \
	4096 /* bytes of each response body kept for the callback */

struct engine_config {
	const struct target *target;
	uint64_t count; /* requests in the run */
	uint64_t
	    interval_ns; /* between scheduled sends; 0 = closed loop, all due at once */
	unsigned
	    connections; /* pool size (or concurrent connections without keep-alive) */
	uint64_t
	    max_pending; /* requests waiting for a connection before overload */
	bool keepalive;
	bool retry_reused; /* resend once what a reused connection dropped unanswered */
	uint64_t timeout_ns;
	/* writes request `seq` into buf; returns its length or a negative errno */
	int (*build)(
	    void *ctx, uint64_t seq, bool keepalive, char *buf, size_t cap);
	/* a complete response to request `seq` */
	void (*on_response)(
	    void *ctx, uint64_t seq, const struct http_response *resp);
	void *ctx;
	struct request_record *records; /* `count` zeroed entries */
	volatile sig_atomic_t *stop;    /* set (by a signal): stop scheduling */
};

struct engine_stats {
	uint64_t scheduled;
	uint64_t connects;
	uint64_t
	    idle_closed; /* pooled connections the server closed while idle */
	uint64_t resent; /* requests resent because not one byte had gone out */
	uint64_t
	    resent_reused; /* resent: sent on a reused connection closed before any answer */
	uint64_t
	    max_lag_ns; /* worst delay between a scheduled time and the loop seeing it */
	uint64_t start_mono_ns;
	int64_t start_epoch_ns;
	uint64_t end_mono_ns;
};

int engine_run(const struct engine_config *cfg, struct engine_stats *stats);
uint64_t mono_ns(void);

#endif
