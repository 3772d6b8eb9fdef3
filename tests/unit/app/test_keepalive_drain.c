/* Integration test: keep-alive clients across handovers (issue 3).
 * A client pool of POOL_SIZE keep-alive connections on the shared public
 * socket sends requests at a steady rate, picking connections with a
 * skewed (geometric) distribution so that some are reused within
 * milliseconds and others sit idle for seconds — the way nginx's upstream
 * keep-alive cache behaves. Meanwhile the old instance is SIGTERMed each
 * round while its successor serves the same socket.
 *
 * The outcome of every request is classified the way an HTTP/1.1 client
 * can recover from it:
 *   - answered (a Connection: close answer retires the connection): fine;
 *   - the connection was closed before the request went out (EOF seen when
 *     checking the idle connection, or EPIPE with zero bytes written): a
 *     clean, retryable outcome — the request is retried on a new connection;
 *   - the request was written and then EOF/reset came instead of an answer:
 *     a FAILURE (the client cannot know whether it was processed).
 * No failure is allowed.
 *   usage: test_keepalive_drain PATH/TO/myapp
 *   KEEPALIVE_ROUNDS (default 30), KEEPALIVE_RATE (req/s, default 1000),
 *   KEEPALIVE_DRAIN_IDLE_MS (passed as --drain-idle-ms when set) */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fake_systemd.h"
#include "http_client.h"
#include "../../lib/tap.h"

#define POOL_SIZE 64
#define LOAD_THREADS 4
#define SETTLE_MS 300 /* both instances serve before the old one is stopped */

struct slot {
	pthread_mutex_t lock;
	int fd;
	int64_t last_used_ms;
};

static const char *myapp;
static struct scratch scratch;
static const char *drain_idle_ms;
static int rate = 1000;

static struct slot pool[POOL_SIZE];
static atomic_int load_stop;
static atomic_int n_requests, n_answered, n_close_answers, n_stale, n_epipe,
    n_new_conns, n_failures;
static pthread_mutex_t failure_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_failure[256];

__attribute__((format(printf, 1, 2))) static void
failed(const char *fmt, ...)
{
	atomic_fetch_add(&n_failures, 1);
	pthread_mutex_lock(&failure_lock);
	if (!first_failure[0]) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(first_failure, sizeof(first_failure), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&failure_lock);
}

/* Slot i with probability ~ 0.9^i: low slots busy, high slots idle long. */
static int
pick_slot(unsigned *seed)
{
	double u = (rand_r(seed) + 1.0) / ((double)RAND_MAX + 2.0);

	return (int)(log(u) / log(0.9)) % POOL_SIZE;
}

/* An idle pooled connection the server has closed shows EOF (or an error)
 * before use: checking it is what clients (nginx, curl) do. */
static int
closed_by_server(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) != 0; /* EOF, reset or stray bytes: unusable */
}

static void
drop(struct slot *s)
{
	close(s->fd);
	s->fd = -1;
}

/* One request on slot s; retries on a fresh connection when the pooled one
 * turns out closed before the request was written. */
static void
one_request(struct slot *s, int post, int seq)
{
	char req[256];
	int len, attempts = 0;

	if (post)
		len = snprintf(req, sizeof(req),
		    "POST /api/notes HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
		    "Content-Length: %d\r\n\r\n{\"text\":\"ka %08d\"}",
		    22, seq % 100000000);
	else
		len = snprintf(req, sizeof(req),
		    "GET /api/status HTTP/1.1\r\nHost: t\r\n\r\n");
	atomic_fetch_add(&n_requests, 1);
	for (;;) {
		struct http_result res;
		int64_t idle_ms =
		    s->fd >= 0 ? monotonic_ms() - s->last_used_ms : -1;
		ssize_t n;

		if (s->fd >= 0 && closed_by_server(s->fd)) {
			atomic_fetch_add(&n_stale, 1);
			drop(s);
		}
		if (s->fd < 0) {
			s->fd = http_connect_unix(scratch.public_path);
			if (s->fd < 0) {
				failed("connect: errno %d", -s->fd);
				s->fd = -1;
				return;
			}
			atomic_fetch_add(&n_new_conns, 1);
			idle_ms = -1;
		}
		n = send(s->fd, req, (size_t)len, MSG_NOSIGNAL);
		/* Nothing written: retry on a new connection. Also on a new
		 * one: the old instance may have accepted it an instant before
		 * its cut (with no linger, the cut comes at SIGTERM), and a cut
		 * connection refuses every byte (drain.c). */
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET) &&
		    attempts++ < 3) {
			atomic_fetch_add(&n_epipe, 1);
			drop(s);
			continue;
		}
		if (n != len) {
			failed("send: %d of %d bytes written (idle %lld ms)",
			    (int)n, len, (long long)idle_ms);
			drop(s);
			return;
		}
		s->last_used_ms = monotonic_ms();
		errno = 0;
		if (http_read_response(s->fd, &res) < 0) {
			failed(
			    "request written, then EOF/reset instead of an answer (errno %d, idle %lld ms)",
			    errno, (long long)idle_ms);
			drop(s);
			return;
		}
		if (res.status != (post ? 201 : 200)) {
			failed("status %d (post %d, idle %lld ms)", res.status,
			    post, (long long)idle_ms);
			drop(s);
			return;
		}
		atomic_fetch_add(&n_answered, 1);
		if (res.connection_close) {
			atomic_fetch_add(&n_close_answers, 1);
			drop(s);
		}
		s->last_used_ms = monotonic_ms();
		return;
	}
}

static void *
load(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 7919u + (unsigned)getpid();
	int64_t period_us = (int64_t)LOAD_THREADS * 1000000 / rate,
		next = monotonic_ms() * 1000;
	int seq = (int)(uintptr_t)arg * 10000000;

	while (!atomic_load(&load_stop)) {
		struct timespec now;
		int64_t now_us;
		int i = pick_slot(&seed);

		/* Another thread holds it: the next free one, like a pool would. */
		for (int k = 0;
		     k < POOL_SIZE && pthread_mutex_trylock(&pool[i].lock) != 0;
		     k++)
			i = (i + 1) % POOL_SIZE;
		one_request(&pool[i], rand_r(&seed) % 10 == 0, seq++);
		pthread_mutex_unlock(&pool[i].lock);

		next += period_us;
		clock_gettime(CLOCK_MONOTONIC, &now);
		now_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
		if (next > now_us)
			usleep((useconds_t)(next - now_us));
		else if (now_us - next > 100000)
			next =
			    now_us; /* fell behind (a slow answer): do not burst */
	}
	return NULL;
}

static int
start(struct child *c, int k)
{
	char tag[32], release[48];
	char *env[] = { release, NULL };
	char *argv[] = { (char *)myapp, "--state-dir", scratch.dir, "--threads",
		"2", "--drain-timeout", "10",
		drain_idle_ms ? "--drain-idle-ms" : NULL, (char *)drain_idle_ms,
		NULL };

	snprintf(tag, sizeof(tag), "inst-%d", k);
	snprintf(release, sizeof(release), "ZDD_RELEASE=%s", tag);
	if (fake_sd_start(c, scratch.dir, tag, &scratch.public_fd, 1,
		"myapp.socket", env, argv) < 0)
		return -1;
	return fake_sd_wait_notify(c, "READY=1", 20000);
}

static int
still_listening(int fd)
{
	int val = 0;
	socklen_t len = sizeof(val);

	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &val, &len) == 0 &&
	    val == 1;
}

int
main(int argc, char **argv)
{
	const char *env_rounds = getenv("KEEPALIVE_ROUNDS"),
		   *env_rate = getenv("KEEPALIVE_RATE");
	int rounds = env_rounds ? atoi(env_rounds) : 30;
	struct child inst[2];
	pthread_t loaders[LOAD_THREADS];
	int cur = 0, good = 0, k = 0;
	int64_t t0, longest_drain = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: test_keepalive_drain PATH/TO/myapp\n");
		return 2;
	}
	myapp = argv[1];
	drain_idle_ms = getenv("KEEPALIVE_DRAIN_IDLE_MS");
	if (env_rate && atoi(env_rate) > 0 && atoi(env_rate) <= 20000)
		rate = atoi(env_rate);
	if (rounds < 1 || rounds > 10000)
		rounds = 30;
	signal(SIGPIPE, SIG_IGN);
	if (fake_sd_scratch(&scratch, "keepalive") < 0) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	ok(scratch.public_fd >= 0, "public socket bound");
	for (int i = 0; i < POOL_SIZE; i++) {
		pthread_mutex_init(&pool[i].lock, NULL);
		pool[i].fd = -1;
	}
	ok(start(&inst[cur], k++) == 0, "first instance reports READY=1");
	for (uintptr_t i = 0; i < LOAD_THREADS; i++)
		pthread_create(&loaders[i], NULL, load, (void *)i);

	t0 = monotonic_ms();
	for (int r = 0; r < rounds; r++) {
		struct child *a = &inst[cur], *b = &inst[1 - cur];
		int status, problems = 0;
		int64_t t;

		if (start(b, k++) < 0) {
			printf("# round %d: successor did not report READY=1\n",
			    r);
			fake_sd_show_log(b);
			break;
		}
		usleep(SETTLE_MS * 1000);
		t = monotonic_ms();
		kill(a->pid, SIGTERM);
		if (fake_sd_wait_notify(a, "STOPPING=1", 5000) < 0)
			problems |= 1;
		status = fake_sd_reap(a, 15000);
		if (status != 0)
			problems |= 2;
		if (!still_listening(scratch.public_fd))
			problems |= 4;
		t = monotonic_ms() - t;
		if (t > longest_drain)
			longest_drain = t;
		if (problems) {
			printf("# round %d: problems 0x%x (exit %d)\n", r,
			    problems, status);
			fake_sd_show_log(a);
		} else {
			good++;
		}
		fake_sd_forget(a);
		cur = 1 - cur;
	}
	ok(good == rounds,
	    "%d/%d handovers: STOPPING=1, exit 0, socket listening (%.1f s, longest stop %lld ms)",
	    good, rounds, (double)(monotonic_ms() - t0) / 1000,
	    (long long)longest_drain);

	atomic_store(&load_stop, 1);
	for (int i = 0; i < LOAD_THREADS; i++)
		pthread_join(loaders[i], NULL);
	printf(
	    "# %d requests (%d answered, %d of them with Connection: close), %d connections opened; "
	    "closed before use: %d seen at the check, %d EPIPE with nothing written (retried)\n",
	    atomic_load(&n_requests), atomic_load(&n_answered),
	    atomic_load(&n_close_answers), atomic_load(&n_new_conns),
	    atomic_load(&n_stale), atomic_load(&n_epipe));
	ok(atomic_load(&n_requests) >= rounds * 100,
	    "enough load: %d requests over %d rounds", atomic_load(&n_requests),
	    rounds);
	ok(atomic_load(&n_close_answers) > 0,
	    "draining instances answered with Connection: close");
	ok(atomic_load(&n_failures) == 0, "%d of %d requests failed%s%s",
	    atomic_load(&n_failures), atomic_load(&n_requests),
	    first_failure[0] ? ": first: " : "", first_failure);

	for (int i = 0; i < POOL_SIZE; i++)
		if (pool[i].fd >= 0)
			close(pool[i].fd);
	kill(inst[cur].pid, SIGTERM);
	ok(fake_sd_reap(&inst[cur], 15000) == 0,
	    "last instance exits 0 on SIGTERM");
	fake_sd_forget(&inst[cur]);
	fake_sd_scratch_done(&scratch, tap_failed);
	return tap_done();
}
