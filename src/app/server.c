/* libmicrohttpd glue and the drain.
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
 * Idle keep-alive connections and the drain (HTTP/1.1 has no way to tell a
 * client "do not send on this connection" except closing it, and a client
 * may be writing a request at that very moment):
 *   1. linger: for drain_idle_ms nothing is closed; a request arriving on
 *      an idle connection is served and answered with Connection: close, so
 *      the client itself retires the connection — no race. Busy pools (nginx
 *      picks its most recently used upstream connection) retire most
 *      connections this way;
 *   2. cut: the ones still idle are cut from outside libmicrohttpd, which
 *      cannot close a single connection on request. On a UNIX socket,
 *      shutdown(SHUT_RD) is atomic against the client's writes (the kernel
 *      checks the receiver's RCV_SHUTDOWN under the same lock that queues
 *      the data): a request queued before it is still read and answered
 *      (Connection: close), one written after it fails with EPIPE having
 *      written nothing — a clean, retryable outcome. libmicrohttpd then
 *      reads EOF and closes the connection itself. TCP has no such
 *      guarantee: a connection with bytes pending (FIONREAD) is left to be
 *      answered; one without gets a FIN (SHUT_WR), which well-behaved
 *      clients see before reusing it; the window is the FIN's travel time;
 *   3. the drain ends when no connection is left (or, for a TCP client that
 *      ignores the FIN, CUT_GRACE_MS after the last cut; MHD_stop_daemon()
 *      closes what remains).
 * The fds are libmicrohttpd's: they are used only under conns_lock, which
 * MHD_CONNECTION_NOTIFY_CLOSED (called before libmicrohttpd closes the fd)
 * also takes, and only if fstat() still shows the same socket. */
#include "server.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <microhttpd.h>

#include "clock.h"
#include "notes.h"

#if MHD_VERSION < 0x00097002
#define MHD_RESULT int	/* before enum MHD_Result existed */
#else
#define MHD_RESULT enum MHD_Result
#endif

#define CUT_GRACE_MS 1000	/* for a TCP client to close after our FIN */
#define CONNECTION_LIMIT 8192

/* CONN_CUT is set by the drain (from NEW or IDLE) just before it cuts the
 * connection; a request that finds it there is answered without
 * suspending (see body_complete()). */
enum conn_state { CONN_NEW, CONN_BUSY, CONN_IDLE, CONN_CUT };

/* One per connection (libmicrohttpd's socket context), in the server's list. */
struct conn_info {
	atomic_int state;	/* enum conn_state; moved by the drain too */
	int fd;			/* libmicrohttpd's, never closed here */
	dev_t dev;		/* which socket fd is: guards against fd reuse */
	ino_t ino;
	int family;
	int cut;		/* shut down by the drain */
	struct conn_info *prev, *next;
};

struct server {
	struct app_state *app;
	struct MHD_Daemon *daemons[SERVER_FDS_MAX];
	size_t ndaemons;
	unsigned drain_idle_ms;
	atomic_uint requests_in_flight;
	atomic_uint connections;
	pthread_mutex_t conns_lock;	/* the list, and the fds' lifetime */
	struct conn_info *conns;
	int64_t drain_started_ms;
	int64_t last_cut_ms;		/* the last cut, or the first pass; 0: none yet */
	unsigned cut_total;
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
	int on_cut_connection;	/* the drain cut it: never suspend */
};

static MHD_RESULT send_reply(struct server *s, struct MHD_Connection *conn, const struct http_reply *reply)
{
	struct MHD_Response *resp;
	MHD_RESULT ret;

	resp = MHD_create_response_from_buffer(reply->body_len, reply->body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, reply->content_type) != MHD_YES ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
	    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") != MHD_YES ||
	    (reply->allow && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, reply->allow) != MHD_YES) ||
	    /* Draining: this is the connection's last answer. */
	    (atomic_load(&s->app->draining) &&
	     MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES)) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, reply->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void request_ctx_free(struct request_ctx *ctx)
{
	reply_free(&ctx->reply);
	free(ctx->body);
	free(ctx);
}

/* On the writer thread: the note is committed (or failed). */
static void note_stored(struct note_write *w)
{
	struct request_ctx *ctx = w->arg;

	MHD_resume_connection(ctx->conn);
}

/* Sets the connection's state; returns the previous one. */
static enum conn_state mark_connection(struct MHD_Connection *conn, enum conn_state state)
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct conn_info *ci = info ? info->socket_context : NULL;

	if (!ci)
		return CONN_NEW;
	if (state == CONN_IDLE) {
		int busy = CONN_BUSY;

		/* A cut connection stays cut. */
		atomic_compare_exchange_strong(&ci->state, &busy, CONN_IDLE);
		return CONN_BUSY;
	}
	return (enum conn_state)atomic_exchange(&ci->state, (int)state);
}

static void fill_request(struct MHD_Connection *conn, const char *url, const char *method, struct http_request *req)
{
	memset(req, 0, sizeof(*req));
	req->method = method;
	req->path = url;
	req->limit_arg = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
	req->before_arg = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "before");
	req->content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	req->content_length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
}

/* Whether the client announced a body we would have to read. */
static int has_body(struct MHD_Connection *conn)
{
	const char *len = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

	if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
		return 1;
	return len && strcmp(len, "0") != 0;
}

static MHD_RESULT first_call(struct server *s, struct MHD_Connection *conn, const char *url, const char *method,
			     void **req_cls)
{
	struct http_request req;
	struct request_ctx *ctx;
	MHD_RESULT ret;

	enum conn_state was;

	atomic_fetch_add(&s->requests_in_flight, 1);	/* until on_completed() */
	was = mark_connection(conn, CONN_BUSY);
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return MHD_NO;
	ctx->on_cut_connection = was == CONN_CUT;
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

static int append_body(struct request_ctx *ctx, const char *data, size_t size)
{
	size_t max = ctx->srv->app->max_body;
	char *grown;

	if (ctx->body_state == BODY_TOO_LARGE)
		return 0;	/* keep reading, then answer 413 */
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

static MHD_RESULT body_complete(struct request_ctx *ctx, const char *url, const char *method)
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
		int64_t id = notes_insert_wait(s->app->notes, ctx->reply.note_text, ctx->reply.note_len);

		ctx->phase = PHASE_SENT;
		if (reply_note_stored(&ctx->reply, id > 0 ? id : 0, id > 0 ? 0 : (int)id) < 0)
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

static MHD_RESULT on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			     const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls)
{
	struct server *s = cls;
	struct request_ctx *ctx = *req_cls;

	(void)version;
	if (!ctx)
		return first_call(s, conn, url, method, req_cls);
	switch (ctx->phase) {
	case PHASE_SENT:
		*upload_data_size = 0;	/* a body nobody asked for */
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
			if (append_body(ctx, upload_data, *upload_data_size) < 0)
				return MHD_NO;
			*upload_data_size = 0;
			return MHD_YES;
		}
		return body_complete(ctx, url, method);
	case PHASE_STORING:
		break;	/* resumed by note_stored() */
	}
	ctx->phase = PHASE_SENT;
	if (reply_note_stored(&ctx->reply, ctx->write.id, ctx->write.result) < 0)
		return MHD_NO;
	return send_reply(s, conn, &ctx->reply);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls, enum MHD_RequestTerminationCode toe)
{
	struct server *s = cls;
	struct request_ctx *ctx = *req_cls;

	(void)toe;
	if (ctx)
		request_ctx_free(ctx);
	*req_cls = NULL;
	mark_connection(conn, CONN_IDLE);
	atomic_fetch_sub(&s->requests_in_flight, 1);
}

/* Records what the drain needs to cut the connection later; NULL when it
 * cannot (the connection is then served, just never cut). */
static struct conn_info *conn_info_new(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct conn_info *ci;
	struct stat st;
	socklen_t len = sizeof(int);

	if (!info)
		return NULL;
	ci = calloc(1, sizeof(*ci));
	if (!ci)
		return NULL;
	atomic_init(&ci->state, CONN_NEW);
	ci->fd = (int)info->connect_fd;
	if (fstat(ci->fd, &st) < 0 || getsockopt(ci->fd, SOL_SOCKET, SO_DOMAIN, &ci->family, &len) < 0) {
		free(ci);
		return NULL;
	}
	ci->dev = st.st_dev;
	ci->ino = st.st_ino;
	return ci;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct server *s = cls;
	struct conn_info *ci = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = conn_info_new(conn);
		if (ci) {
			pthread_mutex_lock(&s->conns_lock);
			ci->next = s->conns;
			if (s->conns)
				s->conns->prev = ci;
			s->conns = ci;
			pthread_mutex_unlock(&s->conns_lock);
		}
		*socket_context = ci;
		atomic_fetch_add(&s->connections, 1);
		return;
	}
	/* MHD_CONNECTION_NOTIFY_CLOSED: libmicrohttpd closes the fd after this. */
	if (ci) {
		pthread_mutex_lock(&s->conns_lock);
		if (ci->prev)
			ci->prev->next = ci->next;
		else
			s->conns = ci->next;
		if (ci->next)
			ci->next->prev = ci->prev;
		pthread_mutex_unlock(&s->conns_lock);
		free(ci);
	}
	*socket_context = NULL;
	atomic_fetch_sub(&s->connections, 1);
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	fputs("myapp: libmicrohttpd: ", stderr);
	vfprintf(stderr, fmt, ap);
}

int server_start(struct server **out, struct app_state *app, const int *fds, size_t nfds, unsigned threads,
		 unsigned drain_idle_ms)
{
	const unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	struct server *s;

	if (nfds == 0 || nfds > SERVER_FDS_MAX || threads == 0 || threads > SERVER_THREADS_MAX)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->app = app;
	s->drain_idle_ms = drain_idle_ms;
	if (pthread_mutex_init(&s->conns_lock, NULL) != 0) {
		free(s);
		return -ENOMEM;
	}
	atomic_init(&s->requests_in_flight, 0);
	atomic_init(&s->connections, 0);
	for (size_t i = 0; i < nfds; i++) {
		s->daemons[i] = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
			MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,	/* first, to catch every message */
			MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fds[i],
			MHD_OPTION_THREAD_POOL_SIZE, threads,
			MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SERVER_CONNECTION_TIMEOUT,
			MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
			MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
			MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
			MHD_OPTION_END);
		if (!s->daemons[i]) {
			fprintf(stderr, "myapp: cannot start the HTTP server on fd %d\n", fds[i]);
			s->ndaemons = i;
			server_begin_drain(s);	/* quiesce the started ones: keeps their fds open */
			server_stop(s);
			return -EIO;
		}
	}
	s->ndaemons = nfds;
	*out = s;
	return 0;
}

void server_begin_drain(struct server *s)
{
	atomic_store(&s->app->draining, 1);
	s->drain_started_ms = monotonic_ms();
	for (size_t i = 0; i < s->ndaemons; i++)
		/* Returns the listening fd, which stays open: it is not ours. */
		(void)MHD_quiesce_daemon(s->daemons[i]);
}

unsigned server_requests_in_flight(struct server *s)
{
	return atomic_load(&s->requests_in_flight);
}

/* Cuts one idle connection (see the top of this file); 1 when cut. */
static int cut_connection(struct conn_info *ci)
{
	struct stat st;
	int pending = 0;

	if (fstat(ci->fd, &st) < 0 || st.st_dev != ci->dev || st.st_ino != ci->ino)
		return 0;	/* not that socket any more: leave it alone */
	if (ci->family == AF_UNIX)
		return shutdown(ci->fd, SHUT_RD) == 0;
	if (ioctl(ci->fd, FIONREAD, &pending) < 0 || pending > 0)
		return 0;	/* a request is arriving: it gets its answer */
	return shutdown(ci->fd, SHUT_WR) == 0;
}

/* Claims an idle (or new) connection for the cut: a request starting on
 * it from now on knows (first_call()); one that started before keeps it
 * BUSY and is left alone. */
static int claim_for_cut(struct conn_info *ci)
{
	int expected = CONN_IDLE;

	if (atomic_compare_exchange_strong(&ci->state, &expected, CONN_CUT))
		return 1;
	expected = CONN_NEW;
	return atomic_compare_exchange_strong(&ci->state, &expected, CONN_CUT);
}

/* After the linger: cut every connection that has no request in hand. */
static void cut_idle_connections(struct server *s)
{
	unsigned cut = 0;

	pthread_mutex_lock(&s->conns_lock);
	for (struct conn_info *ci = s->conns; ci; ci = ci->next) {
		if (ci->cut || !claim_for_cut(ci))
			continue;
		ci->cut = 1;	/* one attempt: a failed cut is left to the stop */
		cut += cut_connection(ci);
	}
	pthread_mutex_unlock(&s->conns_lock);
	if (cut || !s->last_cut_ms)
		s->last_cut_ms = monotonic_ms();
	s->cut_total += cut;
}

static int drained(struct server *s)
{
	int64_t now = monotonic_ms();

	if (atomic_load(&s->connections) == 0 && atomic_load(&s->requests_in_flight) == 0)
		return 1;
	if (now - s->drain_started_ms < (int64_t)s->drain_idle_ms)
		return 0;	/* linger: idle connections may still carry a request */
	cut_idle_connections(s);
	if (atomic_load(&s->requests_in_flight) != 0)
		return 0;
	/* Cut connections close as soon as libmicrohttpd reads their EOF;
	 * bound the wait for TCP clients that ignore our FIN (and for a
	 * connection that could not be recorded). */
	return now - s->last_cut_ms >= CUT_GRACE_MS;
}

int server_wait_drained(struct server *s, int64_t deadline_ms)
{
	const struct timespec tick = { .tv_sec = 0, .tv_nsec = 5 * 1000000L };

	while (!drained(s)) {
		if (monotonic_ms() >= deadline_ms)
			return -ETIMEDOUT;
		nanosleep(&tick, NULL);
	}
	return 0;
}

unsigned server_connections_cut(struct server *s)
{
	return s->cut_total;
}

void server_stop(struct server *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->ndaemons; i++)
		MHD_stop_daemon(s->daemons[i]);	/* quiesced: the listening fd is untouched */
	pthread_mutex_destroy(&s->conns_lock);
	free(s);
}
