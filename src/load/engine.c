/* The load engine: open-model scheduling over an epoll loop.
 *
 * Each request has a scheduled time (start + seq * interval). The loop moves
 * due requests into a FIFO of pending requests, hands them to idle pooled
 * connections or new ones, and records exactly one outcome for each. Latency
 * is measured from the scheduled time, so time spent waiting for a free
 * connection counts (no coordinated omission). */
#include "engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define TIMER_TAG UINT64_MAX
#define MAX_ATTEMPTS 3 /* resends of a request that never left */
#define TICK_MS 10     /* timeout checks while anything is in flight */

enum conn_state {
	CONN_FREE,
	CONN_CONNECTING,
	CONN_SENDING,
	CONN_RECEIVING,
	CONN_IDLE
};

struct conn {
	int fd;
	enum conn_state state;
	struct conn *idle_prev,
	    *idle_next;         /* in the idle list while CONN_IDLE */
	struct conn *free_next; /* in the free stack while CONN_FREE */
	uint32_t events;
	uint64_t seq;
	uint64_t deadline_ns;
	uint8_t attempts;
	bool reused; /* the request went out on a pooled connection */
	size_t req_len, req_off;
	struct http_response resp;
	char req[ENGINE_REQUEST_MAX];
	char body[ENGINE_BODY_KEEP];
};

struct pending {
	uint64_t seq;
	uint8_t attempts;
};

struct engine {
	const struct engine_config *cfg;
	struct engine_stats *stats;
	int epfd, tfd;
	struct conn *conns;
	struct pending *ring;
	uint64_t ring_cap, ring_head, ring_len;
	uint64_t next_seq, limit, busy, timer_seq;
	uint64_t next_timeout_check;
	bool timer_armed;
	/* idle pooled connections (most recently used first) and free slots:
	 * so that handing out a request does not scan the whole pool */
	struct conn *idle_head;
	struct conn *free_head;
};

static const char *const outcome_names[OUTCOME_COUNT] = {
	[OUTCOME_NONE] = "not_sent",
	[OUTCOME_HTTP] = "http",
	[OUTCOME_REFUSED] = "refused",
	[OUTCOME_CONNECT_EAGAIN] = "connect_eagain",
	[OUTCOME_CONNECT_ERROR] = "connect_error",
	[OUTCOME_RESET] = "reset",
	[OUTCOME_EOF] = "eof",
	[OUTCOME_TIMEOUT] = "timeout",
	[OUTCOME_MALFORMED] = "malformed",
	[OUTCOME_OVERLOAD] = "overload",
};

const char *
outcome_name(enum outcome o)
{
	return o < OUTCOME_COUNT ? outcome_names[o] : "?";
}

uint64_t
mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
sched_ns(const struct engine *e, uint64_t seq)
{
	return e->stats->start_mono_ns + seq * e->cfg->interval_ns;
}

static void
finish(struct engine *e, uint64_t seq, enum outcome o, int status,
    uint8_t attempts, uint64_t now)
{
	struct request_record *r = &e->cfg->records[seq];
	uint64_t t0 = sched_ns(e, seq);
	uint64_t us = now > t0 ? (now - t0) / 1000 : 0;
	r->latency_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	r->status = (uint16_t)status;
	r->outcome = (uint8_t)o;
	r->attempts = attempts;
}

static int
set_events(struct engine *e, struct conn *c, uint32_t events)
{
	if (c->events == events)
		return 0;
	struct epoll_event ev = { .events = events,
		.data.u64 = (uint64_t)(c - e->conns) };
	if (epoll_ctl(e->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		return -errno;
	c->events = events;
	return 0;
}

static void
idle_push(struct engine *e, struct conn *c)
{
	c->idle_prev = NULL;
	c->idle_next = e->idle_head;
	if (e->idle_head)
		e->idle_head->idle_prev = c;
	e->idle_head = c;
}

static void
idle_remove(struct engine *e, struct conn *c)
{
	if (c->idle_prev)
		c->idle_prev->idle_next = c->idle_next;
	else
		e->idle_head = c->idle_next;
	if (c->idle_next)
		c->idle_next->idle_prev = c->idle_prev;
	c->idle_prev = c->idle_next = NULL;
}

static void
free_push(struct engine *e, struct conn *c)
{
	c->free_next = e->free_head;
	e->free_head = c;
}

static void
conn_close(struct engine *e, struct conn *c)
{
	if (c->state == CONN_FREE)
		return;
	if (c->state == CONN_IDLE)
		idle_remove(e, c);
	else
		e->busy--;
	close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	c->state = CONN_FREE;
	free_push(e, c);
}

static void
conn_fail(struct engine *e, struct conn *c, enum outcome o, uint64_t now)
{
	finish(e, c->seq, o, 0, c->attempts, now);
	conn_close(e, c);
}

/* The connection died before one byte of the request was written: the
 * server cannot have seen it, so it may be sent again on a new connection. */
static void
conn_retry(struct engine *e, struct conn *c, enum outcome o, uint64_t now)
{
	if (c->attempts + 1 >= MAX_ATTEMPTS || e->ring_len == e->ring_cap) {
		conn_fail(e, c, o, now);
		return;
	}
	e->ring_head = (e->ring_head + e->ring_cap - 1) % e->ring_cap;
	e->ring[e->ring_head] = (struct pending){ .seq = c->seq,
		.attempts = (uint8_t)(c->attempts + 1) };
	e->ring_len++;
	if (c->req_off == 0)
		e->stats->resent++;
	else
		e->stats->resent_reused++;
	conn_close(e, c);
}

/* The connection broke before one byte of answer: resend when nothing went
 * out, or (--retry-reused) when it was a reused keep-alive connection, the
 * one case HTTP clients resend automatically (RFC 9112, 9.3.1). */
static void
conn_broke(struct engine *e, struct conn *c, enum outcome o, uint64_t now)
{
	if (c->resp.bytes_seen == 0 &&
	    (c->req_off == 0 || (c->reused && e->cfg->retry_reused)))
		conn_retry(e, c, o, now);
	else
		conn_fail(e, c, o, now);
}

static enum outcome
connect_outcome(const struct engine *e, int err)
{
	if (err == ECONNREFUSED || err == ENOENT)
		return OUTCOME_REFUSED;
	if (err == EAGAIN && e->cfg->target->family == AF_UNIX)
		return OUTCOME_CONNECT_EAGAIN;
	return OUTCOME_CONNECT_ERROR;
}

static void
complete_response(
    struct engine *e, struct conn *c, bool must_close, uint64_t now)
{
	if (e->cfg->on_response)
		e->cfg->on_response(e->cfg->ctx, c->seq, &c->resp);
	finish(e, c->seq, OUTCOME_HTTP, c->resp.status, c->attempts, now);
	if (must_close || !e->cfg->keepalive || !c->resp.keep_alive ||
	    c->req_off < c->req_len) {
		conn_close(e, c);
		return;
	}
	c->state = CONN_IDLE;
	e->busy--;
	idle_push(e, c);
	if (set_events(e, c, EPOLLIN | EPOLLRDHUP) < 0)
		conn_close(e, c);
}

static void
conn_write(struct engine *e, struct conn *c, uint64_t now)
{
	while (c->req_off < c->req_len) {
		ssize_t n = send(c->fd, c->req + c->req_off,
		    c->req_len - c->req_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				if (set_events(e, c,
					EPOLLIN | EPOLLOUT | EPOLLRDHUP) < 0)
					conn_fail(e, c, OUTCOME_RESET, now);
				return;
			}
			conn_broke(e, c, OUTCOME_RESET, now);
			return;
		}
		c->req_off += (size_t)n;
	}
	c->state = CONN_RECEIVING;
	if (set_events(e, c, EPOLLIN | EPOLLRDHUP) < 0)
		conn_fail(e, c, OUTCOME_RESET, now);
}

static void
conn_read(struct engine *e, struct conn *c, uint64_t now)
{
	char buf[16384];

	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (c->state == CONN_IDLE) {
			/* closed (or spoke) while idle in the pool: no request lost */
			e->stats->idle_closed++;
			conn_close(e, c);
			return;
		}
		if (n < 0 || n == 0) {
			if (n == 0 &&
			    http_response_eof(&c->resp) ==
				HTTP_PARSE_COMPLETE) {
				complete_response(e, c, true, now);
				return;
			}
			conn_broke(
			    e, c, n == 0 ? OUTCOME_EOF : OUTCOME_RESET, now);
			return;
		}
		size_t used = 0;
		int rc = http_response_feed(&c->resp, buf, (size_t)n, &used);
		if (rc < 0) {
			conn_fail(e, c, OUTCOME_MALFORMED, now);
			return;
		}
		if (rc == HTTP_PARSE_COMPLETE) {
			/* bytes after the response were never asked for: do not reuse */
			complete_response(e, c, used < (size_t)n, now);
			return;
		}
	}
}

static void
conn_connected(struct engine *e, struct conn *c, uint64_t now)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		conn_fail(e, c, connect_outcome(e, err), now);
		return;
	}
	c->state = CONN_SENDING;
	conn_write(e, c, now);
}

static void
conn_event(struct engine *e, struct conn *c, uint32_t events, uint64_t now)
{
	if (c->state == CONN_FREE)
		return;
	if (c->state == CONN_CONNECTING) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			conn_connected(e, c, now);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
		conn_read(e, c, now);
	if (c->state == CONN_SENDING && (events & EPOLLOUT))
		conn_write(e, c, now);
}

static int
begin_request(struct engine *e, struct conn *c, const struct pending *p,
    bool fresh, uint64_t now)
{
	struct request_record *r = &e->cfg->records[p->seq];
	uint64_t t0 = e->cfg->interval_ns ? sched_ns(e, p->seq) : now;
	uint64_t queued_us = now > t0 ? (now - t0) / 1000 : 0;
	int len = e->cfg->build(
	    e->cfg->ctx, p->seq, e->cfg->keepalive, c->req, sizeof(c->req));
	if (len < 0)
		return len;
	/* where the time went: waiting for a connection vs. on the wire */
	r->queued_us =
	    queued_us > UINT32_MAX ? UINT32_MAX : (uint32_t)queued_us;
	r->fresh = fresh;
	c->reused = !fresh;
	c->seq = p->seq;
	c->attempts = p->attempts;
	c->req_len = (size_t)len;
	c->req_off = 0;
	/* open loop: the deadline runs from the scheduled time; closed loop
	 * (interval 0, e.g. read-back) from the moment it is handed out */
	c->deadline_ns = (e->cfg->interval_ns ? sched_ns(e, p->seq) : now) +
	    e->cfg->timeout_ns;
	http_response_init(&c->resp, c->body, sizeof(c->body));
	return 0;
}

/* Returns false when this request got its outcome (connect failed). */
static void
open_conn(
    struct engine *e, struct conn *c, const struct pending *p, uint64_t now)
{
	bool in_progress = false;
	int fd = target_connect(e->cfg->target, &in_progress);
	e->stats->connects++;
	if (fd < 0) {
		finish(e, p->seq, connect_outcome(e, -fd), 0, p->attempts, now);
		free_push(e, c);
		return;
	}
	c->fd = fd;
	c->events = EPOLLIN | EPOLLRDHUP | (in_progress ? EPOLLOUT : 0);
	struct epoll_event ev = { .events = c->events,
		.data.u64 = (uint64_t)(c - e->conns) };
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		perror("zdd-load: epoll_ctl");
		close(fd);
		c->fd = -1;
		finish(e, p->seq, OUTCOME_CONNECT_ERROR, 0, p->attempts, now);
		free_push(e, c);
		return;
	}
	c->state = CONN_CONNECTING;
	e->busy++;
	if (begin_request(e, c, p, true, now) < 0) {
		conn_fail(e, c, OUTCOME_MALFORMED, now);
		return;
	}
	if (!in_progress) {
		c->state = CONN_SENDING;
		conn_write(e, c, now);
	}
}

/* A pooled connection is usable if the server has not closed it meanwhile. */
static bool
idle_alive(struct conn *c)
{
	char b;
	ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return n < 0 && (errno == EAGAIN || errno == EINTR);
}

/* Takes a live idle connection off the idle list, or NULL. */
static struct conn *
take_idle(struct engine *e)
{
	while (e->idle_head) {
		struct conn *c = e->idle_head;
		if (idle_alive(c)) {
			idle_remove(e, c);
			return c;
		}
		e->stats->idle_closed++;
		conn_close(e, c);
	}
	return NULL;
}

static struct conn *
take_free(struct engine *e)
{
	struct conn *c = e->free_head;
	if (c)
		e->free_head = c->free_next;
	return c;
}

static void
dispatch(struct engine *e, uint64_t now)
{
	while (e->ring_len) {
		struct pending *head = &e->ring[e->ring_head];
		struct conn *c = NULL;
		bool fresh;
		/* a resend goes out on a new connection when there is room */
		if (!head->attempts || !e->free_head)
			c = take_idle(e);
		if (!c)
			c = take_free(e);
		if (!c)
			return;
		fresh = c->state == CONN_FREE;
		struct pending p = *head;
		e->ring_head = (e->ring_head + 1) % e->ring_cap;
		e->ring_len--;
		if (fresh) {
			open_conn(e, c, &p, now);
			continue;
		}
		c->state = CONN_SENDING;
		e->busy++;
		if (begin_request(e, c, &p, false, now) < 0) {
			conn_fail(e, c, OUTCOME_MALFORMED, now);
			continue;
		}
		conn_write(e, c, now);
	}
}

static void
schedule_due(struct engine *e, uint64_t now)
{
	if (e->cfg->stop && *e->cfg->stop)
		e->limit = e->next_seq;
	while (e->next_seq < e->limit) {
		uint64_t t = sched_ns(e, e->next_seq);
		if (t > now)
			break;
		if (now - t > e->stats->max_lag_ns)
			e->stats->max_lag_ns = now - t;
		if (e->ring_len >= e->cfg->max_pending) {
			finish(e, e->next_seq, OUTCOME_OVERLOAD, 0, 0, now);
		} else {
			uint64_t tail =
			    (e->ring_head + e->ring_len) % e->ring_cap;
			e->ring[tail] = (struct pending){ .seq = e->next_seq,
				.attempts = 0 };
			e->ring_len++;
		}
		e->next_seq++;
	}
}

static void
check_timeouts(struct engine *e, uint64_t now)
{
	/* a scan of the pool every tick is enough for millisecond timeouts */
	if (now < e->next_timeout_check)
		return;
	e->next_timeout_check = now + TICK_MS * UINT64_C(1000000);
	for (unsigned i = 0; i < e->cfg->connections; i++) {
		struct conn *c = &e->conns[i];
		if (c->state != CONN_FREE && c->state != CONN_IDLE &&
		    now >= c->deadline_ns)
			conn_fail(e, c, OUTCOME_TIMEOUT, now);
	}
	if (!e->cfg->interval_ns)
		return;
	while (e->ring_len) {
		struct pending *p = &e->ring[e->ring_head];
		if (now < sched_ns(e, p->seq) + e->cfg->timeout_ns)
			break;
		finish(e, p->seq, OUTCOME_TIMEOUT, 0, p->attempts, now);
		e->ring_head = (e->ring_head + 1) % e->ring_cap;
		e->ring_len--;
	}
}

static int
arm_timer(struct engine *e)
{
	if (e->next_seq >= e->limit ||
	    (e->timer_armed && e->timer_seq == e->next_seq))
		return 0;
	uint64_t t = sched_ns(e, e->next_seq);
	struct itimerspec its = { .it_value = {
				      .tv_sec = (time_t)(t / 1000000000u),
				      .tv_nsec = (long)(t % 1000000000u) } };
	if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
		its.it_value.tv_nsec = 1; /* zero would disarm */
	if (timerfd_settime(e->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		return -errno;
	e->timer_armed = true;
	e->timer_seq = e->next_seq;
	return 0;
}

static int
engine_loop(struct engine *e)
{
	struct epoll_event evs[256];
	for (;;) {
		uint64_t now = mono_ns();
		schedule_due(e, now);
		dispatch(e, now);
		check_timeouts(e, now);
		if (e->next_seq >= e->limit && e->ring_len == 0 && e->busy == 0)
			return 0;
		int rc = arm_timer(e);
		if (rc < 0) {
			fprintf(stderr, "zdd-load: cannot arm timer: %s\n",
			    strerror(-rc));
			return rc;
		}
		int wait_ms = (e->busy || e->ring_len) ? TICK_MS : 100;
		int n = epoll_wait(
		    e->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), wait_ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("zdd-load: epoll_wait");
			return -errno;
		}
		now = mono_ns();
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == TIMER_TAG) {
				uint64_t expirations;
				if (read(e->tfd, &expirations,
					sizeof(expirations)) < 0 &&
				    errno != EAGAIN)
					return -errno;
				e->timer_armed = false;
				continue;
			}
			conn_event(
			    e, &e->conns[evs[i].data.u64], evs[i].events, now);
		}
	}
}

int
engine_run(const struct engine_config *cfg, struct engine_stats *stats)
{
	struct engine e = { .cfg = cfg, .stats = stats, .epfd = -1, .tfd = -1 };
	struct timespec rt;
	int rc = 0;

	memset(stats, 0, sizeof(*stats));
	if (cfg->connections == 0 || cfg->max_pending == 0)
		return -EINVAL;
	e.conns = calloc(cfg->connections, sizeof(*e.conns));
	e.ring_cap = cfg->max_pending + cfg->connections;
	e.ring = calloc(e.ring_cap, sizeof(*e.ring));
	if (!e.conns || !e.ring) {
		rc = -ENOMEM;
		fprintf(stderr, "zdd-load: cannot allocate %u connections\n",
		    cfg->connections);
		goto out;
	}
	for (unsigned i = cfg->connections; i-- > 0;) {
		e.conns[i].fd = -1;
		free_push(&e, &e.conns[i]);
	}
	e.epfd = epoll_create1(EPOLL_CLOEXEC);
	e.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (e.epfd < 0 || e.tfd < 0) {
		rc = -errno;
		perror("zdd-load: epoll/timerfd");
		goto out;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TIMER_TAG };
	if (epoll_ctl(e.epfd, EPOLL_CTL_ADD, e.tfd, &ev) < 0) {
		rc = -errno;
		perror("zdd-load: epoll_ctl timerfd");
		goto out;
	}
	e.limit = cfg->count;
	clock_gettime(CLOCK_REALTIME, &rt);
	stats->start_mono_ns = mono_ns();
	stats->start_epoch_ns = (int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec;
	rc = engine_loop(&e);
	stats->end_mono_ns = mono_ns();
	stats->scheduled = e.next_seq;
out:
	if (e.conns)
		for (unsigned i = 0; i < cfg->connections; i++)
			if (e.conns[i].fd >= 0)
				close(e.conns[i].fd);
	if (e.tfd >= 0)
		close(e.tfd);
	if (e.epfd >= 0)
		close(e.epfd);
	free(e.conns);
	free(e.ring);
	return rc;
}
