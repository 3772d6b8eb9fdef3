/* Request routing without sockets: a request in, a reply (or an action for
 * the caller: read the body, store a note) out. server.c glues this to
 * libmicrohttpd; the unit tests and the fuzzer call it directly. */
#ifndef MYAPP_ROUTES_H
#define MYAPP_ROUTES_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "identity.h"

struct notes;

#define BODY_MAX_DEFAULT 65536
#define BODY_MAX_LIMIT (16UL * 1024 * 1024)
#define NOTES_LIST_DEFAULT 20
/* The most a GET /api/notes body holds (a note larger on its own is listed
 * alone): what limit=1000 may cost per request, whatever the notes' size. */
#define NOTES_LIST_BYTES (1024UL * 1024)

struct app_state {
	const struct identity *identity;
	struct notes *notes;
	size_t max_body;
	time_t started_at;            /* wall clock, for display */
	struct timespec started_mono; /* for uptime */
	atomic_uint_fast64_t requests;
	atomic_int draining;
};

enum body_state {
	BODY_NOT_READ, /* headers only: the first look at a request */
	BODY_COMPLETE,
	BODY_TOO_LARGE,
};

struct http_request {
	const char *method;
	const char *path;
	const char *limit_arg;      /* ?limit=, NULL if absent */
	const char *before_arg;     /* ?before=, NULL if absent */
	const char *content_type;   /* NULL if absent */
	const char *content_length; /* NULL if absent */
	const char *body;
	size_t body_len;
	enum body_state body_state;
};

enum reply_kind {
	REPLY_DONE,       /* send status/body now */
	REPLY_READ_BODY,  /* read the body (up to max_body), route again */
	REPLY_STORE_NOTE, /* store note_text, then reply_note_stored() */
};

struct http_reply {
	enum reply_kind kind;
	unsigned status;
	const char *content_type;
	const char *allow; /* for 405 */
	char *body;        /* malloc'd */
	size_t body_len;
	char *note_text; /* malloc'd, for REPLY_STORE_NOTE */
	size_t note_len;
};

void app_state_init(struct app_state *app, const struct identity *id,
    struct notes *notes, size_t max_body);

/* Fills reply; returns 0, or a negative errno when even an error reply could
 * not be built (out of memory): the caller then drops the connection. */
int route_request(struct app_state *app, const struct http_request *req,
    struct http_reply *reply);

/* After a REPLY_STORE_NOTE: result 0 and id -> 201 {"id":N}, else 500. */
int reply_note_stored(struct http_reply *reply, int64_t id, int result);

void reply_free(struct http_reply *reply);

#endif
