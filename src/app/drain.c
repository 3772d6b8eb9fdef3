/* Connection tracking and the drain.
 *
 * Idle keep-alive connections and the drain (HTTP/1.1 has no way to tell a
 * client "do not send on this connection" except closing it, and a client
 * may be writing a request at that very moment):
 *   1. linger: for idle_ms nothing is closed; a request arriving on an
 *      idle connection is served and answered with Connection: close, so
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
 * drain_conn_closed() (called from MHD_CONNECTION_NOTIFY_CLOSED, before
 * libmicrohttpd closes the fd) also takes, and only if fstat() still shows
 * the same socket. */
#include "drain.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "clock.h"

#define CUT_GRACE_MS 1000 /* for a TCP client to close after our FIN */

/* CONN_CUT is set by the drain (from NEW or IDLE) just before it cuts the
 * connection; a request that finds it there is answered without
 * suspending (see drain_request_begin()). */
enum conn_state { CONN_NEW, CONN_BUSY, CONN_IDLE, CONN_CUT };

/* One per connection, in the drain's list. */
struct drain_conn {
	atomic_int state; /* enum conn_state; moved by the drain too */
	int fd;           /* libmicrohttpd's, never closed here */
	dev_t dev;        /* which socket fd is: guards against fd reuse */
	ino_t ino;
	int family;
	int cut; /* shut down by the drain */
	struct drain_conn *prev, *next;
};

struct drain {
	unsigned idle_ms;
	atomic_uint requests_in_flight;
	atomic_uint connections;
	pthread_mutex_t conns_lock; /* the list, and the fds' lifetime */
	struct drain_conn *conns;
	int64_t started_ms;
	int64_t last_cut_ms; /* the last cut, or the first pass; 0: none yet */
	unsigned cut_total;
};

int
drain_new(struct drain **out, unsigned idle_ms)
{
	struct drain *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->idle_ms = idle_ms;
	if (pthread_mutex_init(&d->conns_lock, NULL) != 0) {
		free(d);
		return -ENOMEM;
	}
	atomic_init(&d->requests_in_flight, 0);
	atomic_init(&d->connections, 0);
	*out = d;
	return 0;
}

void
drain_free(struct drain *d)
{
	if (!d)
		return;
	pthread_mutex_destroy(&d->conns_lock);
	free(d);
}

/* Records what the drain needs to cut the connection later; NULL when it
 * cannot. */
static struct drain_conn *
conn_new(int fd)
{
	struct drain_conn *dc;
	struct stat st;
	socklen_t len = sizeof(int);

	if (fd < 0)
		return NULL;
	dc = calloc(1, sizeof(*dc));
	if (!dc)
		return NULL;
	atomic_init(&dc->state, CONN_NEW);
	dc->fd = fd;
	if (fstat(dc->fd, &st) < 0 ||
	    getsockopt(dc->fd, SOL_SOCKET, SO_DOMAIN, &dc->family, &len) < 0) {
		free(dc);
		return NULL;
	}
	dc->dev = st.st_dev;
	dc->ino = st.st_ino;
	return dc;
}

struct drain_conn *
drain_conn_opened(struct drain *d, int fd)
{
	struct drain_conn *dc = conn_new(fd);

	if (dc) {
		pthread_mutex_lock(&d->conns_lock);
		dc->next = d->conns;
		if (d->conns)
			d->conns->prev = dc;
		d->conns = dc;
		pthread_mutex_unlock(&d->conns_lock);
	}
	atomic_fetch_add(&d->connections, 1);
	return dc;
}

void
drain_conn_closed(struct drain *d, struct drain_conn *dc)
{
	if (dc) {
		pthread_mutex_lock(&d->conns_lock);
		if (dc->prev)
			dc->prev->next = dc->next;
		else
			d->conns = dc->next;
		if (dc->next)
			dc->next->prev = dc->prev;
		pthread_mutex_unlock(&d->conns_lock);
		free(dc);
	}
	atomic_fetch_sub(&d->connections, 1);
}

int
drain_request_begin(struct drain *d, struct drain_conn *dc)
{
	atomic_fetch_add(
	    &d->requests_in_flight, 1); /* until drain_request_end() */
	if (!dc)
		return 0;
	return atomic_exchange(&dc->state, CONN_BUSY) == CONN_CUT;
}

void
drain_request_end(struct drain *d, struct drain_conn *dc)
{
	if (dc) {
		int busy = CONN_BUSY;

		/* A cut connection stays cut. */
		atomic_compare_exchange_strong(&dc->state, &busy, CONN_IDLE);
	}
	atomic_fetch_sub(&d->requests_in_flight, 1);
}

unsigned
drain_requests_in_flight(struct drain *d)
{
	return atomic_load(&d->requests_in_flight);
}

void
drain_begin(struct drain *d)
{
	d->started_ms = monotonic_ms();
}

/* Cuts one idle connection (see the top of this file); 1 when cut. */
static int
cut_connection(struct drain_conn *dc)
{
	struct stat st;
	int pending = 0;

	if (fstat(dc->fd, &st) < 0 || st.st_dev != dc->dev ||
	    st.st_ino != dc->ino)
		return 0; /* not that socket any more: leave it alone */
	if (dc->family == AF_UNIX)
		return shutdown(dc->fd, SHUT_RD) == 0;
	if (ioctl(dc->fd, FIONREAD, &pending) < 0 || pending > 0)
		return 0; /* a request is arriving: it gets its answer */
	return shutdown(dc->fd, SHUT_WR) == 0;
}

/* Claims an idle (or new) connection for the cut: a request starting on
 * it from now on knows (drain_request_begin()); one that started before
 * keeps it BUSY and is left alone. */
static int
claim_for_cut(struct drain_conn *dc)
{
	int expected = CONN_IDLE;

	if (atomic_compare_exchange_strong(&dc->state, &expected, CONN_CUT))
		return 1;
	expected = CONN_NEW;
	return atomic_compare_exchange_strong(&dc->state, &expected, CONN_CUT);
}

/* After the linger: cut every connection that has no request in hand. */
static void
cut_idle_connections(struct drain *d)
{
	unsigned cut = 0;

	pthread_mutex_lock(&d->conns_lock);
	for (struct drain_conn *dc = d->conns; dc; dc = dc->next) {
		if (dc->cut || !claim_for_cut(dc))
			continue;
		dc->cut = 1; /* one attempt: a failed cut is left to the stop */
		cut += cut_connection(dc);
	}
	pthread_mutex_unlock(&d->conns_lock);
	if (cut || !d->last_cut_ms)
		d->last_cut_ms = monotonic_ms();
	d->cut_total += cut;
}

static int
drained(struct drain *d)
{
	int64_t now = monotonic_ms();

	if (atomic_load(&d->connections) == 0 &&
	    atomic_load(&d->requests_in_flight) == 0)
		return 1;
	if (now - d->started_ms < (int64_t)d->idle_ms)
		return 0; /* linger: idle connections may still carry a request */
	cut_idle_connections(d);
	if (atomic_load(&d->requests_in_flight) != 0)
		return 0;
	/* Cut connections close as soon as libmicrohttpd reads their EOF;
	 * bound the wait for TCP clients that ignore our FIN (and for a
	 * connection that could not be recorded). */
	return now - d->last_cut_ms >= CUT_GRACE_MS;
}

int
drain_wait(struct drain *d, int64_t deadline_ms)
{
	const struct timespec tick = { .tv_sec = 0, .tv_nsec = 5 * 1000000L };

	while (!drained(d)) {
		if (monotonic_ms() >= deadline_ms)
			return -ETIMEDOUT;
		nanosleep(&tick, NULL);
	}
	return 0;
}

unsigned
drain_connections_cut(const struct drain *d)
{
	return d->cut_total;
}
