/* myapp pets the systemd watchdog: with WATCHDOG_USEC set, WATCHDOG=1
 * arrives on NOTIFY_SOCKET more often than the watchdog period — while
 * serving and while draining (an idle keep-alive connection holds the
 * drain in its linger) — and never when the watchdog is off or meant for
 * another process (WATCHDOG_PID).
 *   usage: test_watchdog PATH/TO/myapp */
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "fake_systemd.h"
#include "http_client.h"
#include "../../lib/tap.h"

/* Half a second: the app pets every 250 ms, so a pet late by a loaded
 * machine's scheduling (100 ms was seen on 2 cores under ASan) is not
 * taken for a missed one. */
#define WATCHDOG_MS 500
#define WATCH_MS 2000

static const char *myapp;
static struct scratch scratch;

struct pings {
	int count;
	int64_t longest_gap_ms; /* also from the start, and to the end while
				 * the process runs */
};

/* Collects WATCHDOG=1 until duration_ms passed or the child exited. */
static void
watch(struct child *c, int duration_ms, struct pings *p)
{
	int64_t begin = monotonic_ms(), deadline = begin + duration_ms,
		last = begin;
	char buf[4096];

	bool exited = false;

	memset(p, 0, sizeof(*p));
	while (monotonic_ms() < deadline && !exited) {
		struct pollfd pfd = { .fd = c->notify_fd, .events = POLLIN };
		ssize_t n;
		char *save = NULL;

		if (poll(&pfd, 1, 20) <= 0) {
			exited = c->pid > 0 && fake_sd_exited(c);
			continue;
		}
		n = recv(c->notify_fd, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		for (char *line = strtok_r(buf, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			if (strcmp(line, "WATCHDOG=1") != 0)
				continue;
			p->count++;
			if (monotonic_ms() - last > p->longest_gap_ms)
				p->longest_gap_ms = monotonic_ms() - last;
			last = monotonic_ms();
		}
	}
	/* to the end, unless the process ended: a watchdog only counts while
	 * it runs (the last pet to its exit is not a gap systemd sees) */
	if (!exited && monotonic_ms() - last > p->longest_gap_ms)
		p->longest_gap_ms = monotonic_ms() - last;
}

static int
start(struct child *c, const char *tag, char *const env[])
{
	char *argv[] = { (char *)myapp, "--state-dir", scratch.dir, "--threads",
		"2", "--drain-idle-ms", "2000", NULL };

	if (fake_sd_start(c, scratch.dir, tag, &scratch.public_fd, 1,
		"myapp.socket", env, argv) < 0)
		return -1;
	return fake_sd_wait_notify(c, "READY=1", 20000);
}

static void
test_pings(void)
{
	static const char req[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
	char usec[] = "WATCHDOG_USEC=500000";
	char *env[] = { usec, NULL };
	struct http_result res;
	struct child c;
	struct pings p;
	int conn, status;

	ok(start(&c, "on", env) == 0, "WATCHDOG_USEC=%d000: READY=1",
	    WATCHDOG_MS);
	watch(&c, WATCH_MS, &p);
	ok(p.count >= WATCH_MS / WATCHDOG_MS * 2 - 2 &&
		p.longest_gap_ms < WATCHDOG_MS,
	    "serving: %d WATCHDOG=1 in %d ms, longest gap %lld ms (< %d)",
	    p.count, WATCH_MS, (long long)p.longest_gap_ms, WATCHDOG_MS);

	/* An idle keep-alive connection keeps the drain in its 2 s linger. */
	conn = http_connect_unix(scratch.public_path);
	ok(conn >= 0 && http_write_all(conn, req, strlen(req)) == 0 &&
		http_read_response(conn, &res) == 0 && res.status == 200 &&
		!res.connection_close,
	    "idle keep-alive connection open");
	kill(c.pid, SIGTERM);
	watch(&c, 5000, &p);
	status = fake_sd_reap(&c, 10000);
	ok(p.count >= 4 && p.longest_gap_ms < WATCHDOG_MS,
	    "draining: %d WATCHDOG=1, longest gap %lld ms (< %d)", p.count,
	    (long long)p.longest_gap_ms, WATCHDOG_MS);
	ok(status == 0, "exit %d after the drain", status);
	if (conn >= 0)
		close(conn);
	fake_sd_forget(&c);
}

static void
test_no_pings(const char *tag, char *const env[], const char *what)
{
	struct child c;
	struct pings p;

	ok(start(&c, tag, env) == 0, "%s: READY=1", what);
	watch(&c, WATCH_MS, &p);
	ok(p.count == 0, "%s: %d WATCHDOG=1 in %d ms", what, p.count, WATCH_MS);
	kill(c.pid, SIGTERM);
	ok(fake_sd_reap(&c, 10000) == 0, "%s: exit 0", what);
	fake_sd_forget(&c);
}

int
main(int argc, char **argv)
{
	char usec[] = "WATCHDOG_USEC=200000", other_pid[] = "WATCHDOG_PID=1";
	char *for_other[] = { usec, other_pid, NULL };

	if (argc != 2) {
		fprintf(stderr, "usage: test_watchdog PATH/TO/myapp\n");
		return 2;
	}
	myapp = argv[1];
	signal(SIGPIPE, SIG_IGN);
	if (fake_sd_scratch(&scratch, "watchdog") < 0) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	ok(scratch.public_fd >= 0, "public socket bound");

	test_pings();
	test_no_pings("off", NULL, "no WATCHDOG_USEC");
	test_no_pings("other", for_other, "WATCHDOG_PID of another process");

	fake_sd_scratch_done(&scratch, tap_failed);
	return tap_done();
}
