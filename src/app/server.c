/* libmicrohttpd glue.
 *
 * Mode: internal polling threads with poll() and a thread pool, plus an
 * inter-thread channel (MHD_USE_ITC). Why: without ITC, MHD_stop_daemon()
 * wakes its threads by shutdown() on the listening socket, which would shut
 * the socket systemd shares with the other instance; MHD_quiesce_daemon()
 * needs ITC; and with epoll + a thread pool quiescing can abort the process.
 * A quiesced daemon stops polling the listening socket and MHD_stop_daemon()
 * then leaves that fd alone (neither shutdown nor close).
 *
 * Notes are stored through the group-commit writer: the request is suspended
 * (MHD_suspend_connection) so a pool thread never blocks on fsync, and the
 * writer resumes it once its row is committed.
 *
 * Which connections are idle, and how the drain retires them, is drain.c's:
 * every connection's record there is its libmicrohttpd socket context, and
 * every request is reported to it from its first call to its completion. */
#include "server.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "drain.h"
#include "notes.h"

#if MHD_VERSION < 0x00097002
#define MHD_RESULT int /* before enum MHD_Result existed */
#else
#define MHD_RESULT enum MHD_Result
#endif

#define CONNECTION_LIMIT 8192

struct server {
	struct app_state *app;
	struct MHD_Daemon *daemons[SERVER_FDS_MAX];
	size_t ndaemons;
	struct drain *drain;
};

enum request_phase { PHASE_REPLY_READY, PHASE_BODY, PHASE_STORING, PHASE_SENT };

struct request_ctx {
	struct server *srv;
	struct MHD_Connection *conn;
	enum request_phase phase;
	char *body;
	size_t body_len;
	enum body_state body_state;
	struct http_reply reply;
	struct note_write write;
	int on_cut_connection; /* the drain cut it: never suspend */
};

static MHD_RESULT
send_reply(struct server *s, struct MHD_Connection *conn,
    const struct http_reply *reply)
{
	struct MHD_Response *resp;
	MHD_RESULT ret;

	resp = MHD_create_response_from_buffer(
	    reply->body_len, reply->body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		reply->content_type) != MHD_YES ||
	    MHD_add_response_header(
		resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
	    MHD_add_response_header(
		resp, "X-Content-Type-Options", "nosniff") != MHD_YES ||
	    (reply->allow &&
		MHD_add_response_header(
		    resp, MHD_HTTP_HEADER_ALLOW, reply->allow) != MHD_YES) ||
	    /* Draining: this is the connection's last answer. */
	    (atomic_load(&s->app->draining) &&
		MHD_add_response_header(
		    resp, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES)) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, reply->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void
request_ctx_free(struct request_ctx *ctx)
{
	reply_free(&ctx->reply);
	free(ctx->body);
	free(ctx);
}

/* On the writer thread: the note is committed (or failed). */
static void
note_stored(struct note_write *w)
{
	struct request_ctx *ctx = w->arg;

	MHD_resume_connection(ctx->conn);
}

/* The connection's record in the drain (its socket context), or NULL. */
static struct drain_conn *
conn_record(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return info ? info->socket_context : NULL;
}

static void
fill_request(struct MHD_Connection *conn, const char *url, const char *method,
    struct http_request *req)
{
	memset(req, 0, sizeof(*req));
	req->method = method;
	req->path = url;
	req->limit_arg =
	    MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
	req->before_arg =
	    MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "before");
	req->content_type = MHD_lookup_connection_value(
	    conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	req->content_length = MHD_lookup_connection_value(
	    conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
}

/* Whether the client announced a body we would have to read. */
static int
has_body(struct MHD_Connection *conn)
{
	const char *len = MHD_lookup_connection_value(
	    conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

	if (MHD_lookup_connection_value(
		conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
		return 1;
	return len && strcmp(len, "0") != 0;
}

static MHD_RESULT
first_call(struct server *s, struct MHD_Connection *conn, const char *url,
    const char *method, void **req_cls)
{
	struct http_request req;
	struct request_ctx *ctx;
	MHD_RESULT ret;
	int cut;

	cut = drain_request_begin(
	    s->drain, conn_record(conn)); /* until on_completed() */
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return MHD_NO;
	ctx->on_cut_connection = cut;
	ctx->srv = s;
	ctx->conn = conn;
	*req_cls = ctx;
	fill_request(conn, url, method, &req);
	req.body_state = BODY_NOT_READ;
	if (route_request(s->app, &req, &ctx->reply) < 0)
		return MHD_NO;
	if (ctx->reply.kind == REPLY_READ_BODY) {
		ctx->phase = PHASE_BODY;
		ctx->body_state = BODY_COMPLETE;
		return MHD_YES;
	}
	/* Answered from the headers. libmicrohttpd keeps the connection alive
	 * only for answers queued after the (empty) body was read, i.e. on the
	 * next call; an answer that refuses an announced body goes out now and
	 * closes the connection instead of reading the body. */
	if (!has_body(conn)) {
		ctx->phase = PHASE_REPLY_READY;
		return MHD_YES;
	}
	ret = send_reply(s, conn, &ctx->reply);
	ctx->phase = PHASE_SENT;
	return ret;
}

static int
append_body(struct request_ctx *ctx, const char *data, size_t size)
{
	size_t max = ctx->srv->app->max_body;
	char *grown;

	if (ctx->body_state == BODY_TOO_LARGE)
		return 0; /* keep reading, then answer 413 */
	if (size > max || ctx->body_len > max - size) {
		ctx->body_state = BODY_TOO_LARGE;
		free(ctx->body);
		ctx->body = NULL;
		ctx->body_len = 0;
		return 0;
	}
	grown = realloc(ctx->body, ctx->body_len + size + 1);
	if (!grown)
		return -ENOMEM;
	memcpy(grown + ctx->body_len, data, size);
	ctx->body = grown;
	ctx->body_len += size;
	ctx->body[ctx->body_len] = '\0';
	return 0;
}

static MHD_RESULT
body_complete(struct request_ctx *ctx, const char *url, const char *method)
{
	struct server *s = ctx->srv;
	struct http_request req;

	fill_request(ctx->conn, url, method, &req);
	req.body = ctx->body ? ctx->body : "";
	req.body_len = ctx->body_len;
	req.body_state = ctx->body_state;
	reply_free(&ctx->reply);
	if (route_request(s->app, &req, &ctx->reply) < 0)
		return MHD_NO;
	if (ctx->reply.kind != REPLY_STORE_NOTE) {
		ctx->phase = PHASE_SENT;
		return send_reply(s, ctx->conn, &ctx->reply);
	}

	if (ctx->on_cut_connection) {
		/* libmicrohttpd (0.9.75 at least) reads the socket when it resumes a
		 * connection, finds the EOF of our SHUT_RD and drops the request
		 * unanswered: store while the pool thread waits instead. Rare: a
		 * request that raced the cut. */
		int64_t id = notes_insert_wait(
		    s->app->notes, ctx->reply.note_text, ctx->reply.note_len);

		ctx->phase = PHASE_SENT;
		if (reply_note_stored(
			&ctx->reply, id > 0 ? id : 0, id > 0 ? 0 : (int)id) < 0)
			return MHD_NO;
		return send_reply(s, ctx->conn, &ctx->reply);
	}
	ctx->phase = PHASE_STORING;
	ctx->write.text = ctx->reply.note_text;
	ctx->write.text_len = ctx->reply.note_len;
	ctx->write.done = note_stored;
	ctx->write.arg = ctx;
	/* Suspend before submitting: the writer may resume at once. */
	MHD_suspend_connection(ctx->conn);
	if (notes_submit(s->app->notes, &ctx->write) < 0) {
		ctx->write.result = -ESHUTDOWN;
		MHD_resume_connection(ctx->conn);
	}
	return MHD_YES;
}

static MHD_RESULT
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **req_cls)
{
	struct server *s = cls;
	struct request_ctx *ctx = *req_cls;

	(void)version;
	if (!ctx)
		return first_call(s, conn, url, method, req_cls);
	switch (ctx->phase) {
	case PHASE_SENT:
		*upload_data_size = 0; /* a body nobody asked for */
		return MHD_YES;
	case PHASE_REPLY_READY:
		if (*upload_data_size > 0) {
			*upload_data_size = 0;
			return MHD_YES;
		}
		ctx->phase = PHASE_SENT;
		return send_reply(s, conn, &ctx->reply);
	case PHASE_BODY:
		if (*upload_data_size > 0) {
			if (append_body(ctx, upload_data, *upload_data_size) <
			    0)
				return MHD_NO;
			*upload_data_size = 0;
			return MHD_YES;
		}
		return body_complete(ctx, url, method);
	case PHASE_STORING:
		break; /* resumed by note_stored() */
	}
	ctx->phase = PHASE_SENT;
	if (reply_note_stored(&ctx->reply, ctx->write.id, ctx->write.result) <
	    0)
		return MHD_NO;
	return send_reply(s, conn, &ctx->reply);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct server *s = cls;
	struct request_ctx *ctx = *req_cls;

	(void)toe;
	if (ctx)
		request_ctx_free(ctx);
	*req_cls = NULL;
	drain_request_end(s->drain, conn_record(conn));
}

static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct server *s = cls;
	const union MHD_ConnectionInfo *info;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		info = MHD_get_connection_info(
		    conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		*socket_context = drain_conn_opened(
		    s->drain, info ? (int)info->connect_fd : -1);
		return;
	}
	/* MHD_CONNECTION_NOTIFY_CLOSED: libmicrohttpd closes the fd after this. */
	drain_conn_closed(s->drain, *socket_context);
	*socket_context = NULL;
}

static void
log_mhd(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	fputs("myapp: libmicrohttpd: ", stderr);
	vfprintf(stderr, fmt, ap);
}

int
server_start(struct server **out, struct app_state *app, const int *fds,
    size_t nfds, unsigned threads, unsigned drain_idle_ms)
{
	const unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC |
	    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	struct server *s;

	if (nfds == 0 || nfds > SERVER_FDS_MAX || threads == 0 ||
	    threads > SERVER_THREADS_MAX)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->app = app;
	if (drain_new(&s->drain, drain_idle_ms) < 0) {
		free(s);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nfds; i++) {
		s->daemons[i] = MHD_start_daemon(flags, 0, NULL, NULL,
		    on_request, s, MHD_OPTION_EXTERNAL_LOGGER, log_mhd,
		    NULL, /* first, to catch every message */
		    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fds[i],
		    MHD_OPTION_THREAD_POOL_SIZE, threads,
		    MHD_OPTION_CONNECTION_TIMEOUT,
		    (unsigned)SERVER_CONNECTION_TIMEOUT,
		    MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
		    MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
		    MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
		    MHD_OPTION_END);
		if (!s->daemons[i]) {
			fprintf(stderr,
			    "myapp: cannot start the HTTP server on fd %d\n",
			    fds[i]);
			s->ndaemons = i;
			server_begin_drain(
			    s); /* quiesce the started ones: keeps their fds open */
			server_stop(s);
			return -EIO;
		}
	}
	s->ndaemons = nfds;
	*out = s;
	return 0;
}

void
server_begin_drain(struct server *s)
{
	atomic_store(&s->app->draining, 1);
	drain_begin(s->drain);
	for (size_t i = 0; i < s->ndaemons; i++)
		/* Returns the listening fd, which stays open: it is not ours. */
		(void)MHD_quiesce_daemon(s->daemons[i]);
}

unsigned
server_requests_in_flight(struct server *s)
{
	return drain_requests_in_flight(s->drain);
}

int
server_wait_drained(struct server *s, int64_t deadline_ms)
{
	return drain_wait(s->drain, deadline_ms);
}

unsigned
server_connections_cut(struct server *s)
{
	return drain_connections_cut(s->drain);
}

void
server_stop(struct server *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->ndaemons; i++)
		MHD_stop_daemon(
		    s->daemons[i]); /* quiesced: the listening fd is untouched */
	drain_free(s->drain);
	free(s);
}
