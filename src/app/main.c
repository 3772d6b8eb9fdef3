/* myapp: the reference application of myapp-zdd. Options, sockets, signals,
 * systemd notification and the run loop; see myapp(8). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "clock.h"
#include "identity.h"
#include "listen.h"
#include "notes.h"
#include "routes.h"
#include "server.h"
#include "slice.h"

#define MYAPP_VERSION "1.0"
#define DRAIN_TIMEOUT_DEFAULT 10 /* seconds; the unit's TimeoutStopSec is 30 */
#define DRAIN_TIMEOUT_MAX 3600
#define DRAIN_IDLE_MAX_MS 60000
#define DRAIN_SLICE_MS 200

struct options {
	const char *listen;
	const char *state_dir;
	unsigned threads;
	unsigned drain_timeout;
	unsigned drain_idle_ms;
	unsigned slice_us;
	unsigned max_body; /* bytes, up to BODY_MAX_LIMIT */
};

/* Every option, once: getopt's long name and key; a number also where it
 * goes (an unsigned in struct options), its range and its unit. */
struct option_spec {
	const char *name;
	int key;
	int has_arg;
	size_t field; /* offsetof(struct options, …); numbers only */
	unsigned long min, max; /* max 0: not a number */
	int zero_too;           /* 0 (off) is allowed below min as well */
	const char *unit;       /* after the range in the message */
};

#define NUMBER(f, lo, hi) \
	.has_arg = required_argument, .field = offsetof(struct options, f), \
	.min = (lo), .max = (hi)

static const struct option_spec option_specs[] = {
	{ .name = "listen", .key = 'l', .has_arg = required_argument },
	{ .name = "threads",
	    .key = 't',
	    NUMBER(threads, 1, SERVER_THREADS_MAX) },
	{ .name = "state-dir", .key = 's', .has_arg = required_argument },
	{ .name = "drain-timeout",
	    .key = 'd',
	    NUMBER(drain_timeout, 1, DRAIN_TIMEOUT_MAX),
	    .unit = " seconds" },
	{ .name = "drain-idle-ms",
	    .key = 'i',
	    NUMBER(drain_idle_ms, 0, DRAIN_IDLE_MAX_MS),
	    .unit = " ms" },
	{ .name = "max-body",
	    .key = 'b',
	    NUMBER(max_body, 1, BODY_MAX_LIMIT),
	    .unit = " bytes" },
	{ .name = "cpu-slice-us",
	    .key = 'c',
	    NUMBER(slice_us, SLICE_US_MIN, SLICE_US_MAX),
	    .zero_too = 1 },
	{ .name = "help", .key = 'h', .has_arg = no_argument },
	{ .name = "version", .key = 'V', .has_arg = no_argument },
};

#define N_OPTIONS (sizeof(option_specs) / sizeof(option_specs[0]))

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: myapp [--listen HOST:PORT|/path] [--threads N] [--state-dir DIR]\n"
	    "             [--drain-timeout SEC] [--drain-idle-ms MS] [--max-body BYTES]\n"
	    "             [--cpu-slice-us 0|%d..%d] [--help] [--version]\n"
	    "Serves every socket passed by systemd (LISTEN_FDS); without any, binds --listen\n"
	    "(default 127.0.0.1:8080). State: $STATE_DIRECTORY or --state-dir (default .).\n",
	    SLICE_US_MIN, SLICE_US_MAX);
}

static int
parse_uint(
    const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static unsigned
default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > SERVER_THREADS_MAX ? SERVER_THREADS_MAX : (unsigned)n;
}

/* $STATE_DIRECTORY may list several directories separated by ':'. */
static const char *
state_dir_from_env(char *buf, size_t size)
{
	const char *env = getenv("STATE_DIRECTORY");
	size_t len;

	if (!env || !*env)
		return NULL;
	len = strcspn(env, ":");
	if (len >= size)
		return NULL;
	memcpy(buf, env, len);
	buf[len] = '\0';
	return buf;
}

static const struct option_spec *
option_spec_of(int key)
{
	for (size_t i = 0; i < N_OPTIONS; i++)
		if (option_specs[i].key == key)
			return &option_specs[i];
	return NULL;
}

/* The one range check: the message names the range. */
static int
set_number(struct options *o, const struct option_spec *spec, const char *arg)
{
	unsigned long v;

	if (parse_uint(arg, spec->zero_too ? 0 : spec->min, spec->max, &v) <
		0 ||
	    (v != 0 && v < spec->min)) {
		fprintf(stderr, "myapp: --%s wants %s%lu..%lu%s, not %s\n",
		    spec->name, spec->zero_too ? "0 or " : "", spec->min,
		    spec->max, spec->unit ? spec->unit : "", arg);
		return -EINVAL;
	}
	*(unsigned *)((char *)o + spec->field) = (unsigned)v;
	return 0;
}

static int
parse_options(int argc, char **argv, struct options *o)
{
	struct option longopts[N_OPTIONS + 1] = { { 0 } };
	char shortopts[2 * N_OPTIONS + 1];
	const struct option_spec *spec;
	size_t len = 0;
	int c;

	for (size_t i = 0; i < N_OPTIONS; i++) {
		spec = &option_specs[i];
		longopts[i] = (struct option){ spec->name, spec->has_arg, NULL,
			spec->key };
		shortopts[len++] = (char)spec->key;
		if (spec->has_arg == required_argument)
			shortopts[len++] = ':';
	}
	shortopts[len] = '\0';

	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			o->listen = optarg;
			break;
		case 's':
			o->state_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("myapp %s\n", MYAPP_VERSION);
			exit(0);
		default:
			spec = option_spec_of(c);
			if (!spec || !spec->max) {
				usage(stderr);
				return -EINVAL;
			}
			if (set_number(o, spec, optarg) < 0)
				return -EINVAL;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -EINVAL;
	}
	/* The linger must leave time to close the connections and exit. */
	if ((uint64_t)o->drain_idle_ms >=
	    (uint64_t)o->drain_timeout * 1000 / 2) {
		fprintf(stderr,
		    "myapp: --drain-idle-ms %u must be under half of --drain-timeout (%u s)\n",
		    o->drain_idle_ms, o->drain_timeout);
		return -EINVAL;
	}
	return 0;
}

/* More connections than the usual 1024 soft limit. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			fprintf(stderr,
			    "myapp: cannot raise the open files limit: %m\n");
	}
}

static int
open_sockets(const struct options *o, int *fds, size_t max, size_t *nfds)
{
	int n = listen_inherited(fds, max);

	if (n < 0)
		return n;
	if (n == 0) {
		int fd = listen_bind(o->listen);

		if (fd < 0)
			return fd;
		fds[0] = fd;
		n = 1;
		fprintf(stderr, "myapp: no socket passed, listening on %s\n",
		    o->listen);
	}
	*nfds = (size_t)n;
	return 0;
}

/* Before any thread starts: they inherit the slice. Not fatal: the app
 * serves as well with the kernel's default, only later under contention. */
static void
request_cpu_slice(unsigned usec)
{
	int ret;

	if (!usec)
		return;
	ret = slice_request(usec);
	if (ret == -EOPNOTSUPP)
		fprintf(stderr,
		    "myapp: this kernel keeps its default CPU slice (custom slices need Linux 6.12)\n");
	else if (ret < 0)
		fprintf(stderr, "myapp: cannot ask for a %u us CPU slice: %s\n",
		    usec, strerror(-ret));
}

/* Waits for SIGTERM/SIGINT, petting the watchdog meanwhile. */
static int
wait_for_stop_signal(const sigset_t *set, uint64_t watchdog_usec)
{
	for (;;) {
		uint64_t usec = watchdog_usec ? watchdog_usec / 2 : 1000000;
		struct timespec ts = { .tv_sec = (time_t)(usec / 1000000),
			.tv_nsec = (long)(usec % 1000000) * 1000 };
		int sig = sigtimedwait(set, NULL, &ts);

		if (sig > 0)
			return sig;
		if (watchdog_usec)
			sd_notify(0, "WATCHDOG=1");
	}
}

static int
drain(struct server *srv, const struct options *o, uint64_t watchdog_usec)
{
	int64_t deadline = monotonic_ms() + (int64_t)o->drain_timeout * 1000;
	int64_t slice_ms = DRAIN_SLICE_MS;
	int ret;

	server_begin_drain(srv);
	sd_notifyf(0, "STOPPING=1\nSTATUS=draining %u requests in flight",
	    server_requests_in_flight(srv));
	/* Wait in slices so the watchdog keeps being fed, at half its period:
	 * a pet every slice (a "pet when due" check at each wake-up skipped a
	 * pet whenever the wake-up came a hair early, and the gap grew to the
	 * whole period). */
	if (watchdog_usec && (int64_t)(watchdog_usec / 2000) < slice_ms)
		slice_ms = watchdog_usec / 2000 > 0
		    ? (int64_t)(watchdog_usec / 2000)
		    : 1;
	do {
		int64_t slice = monotonic_ms() + slice_ms;

		if (watchdog_usec)
			sd_notify(0, "WATCHDOG=1");
		ret = server_wait_drained(
		    srv, slice < deadline ? slice : deadline);
	} while (ret == -ETIMEDOUT && monotonic_ms() < deadline);
	return ret;
}

int
main(int argc, char **argv)
{
	struct options o = {
		.listen = "127.0.0.1:8080",
		.drain_timeout = DRAIN_TIMEOUT_DEFAULT,
		.drain_idle_ms = SERVER_DRAIN_IDLE_MS,
		.max_body = BODY_MAX_DEFAULT,
		.slice_us = SLICE_US_MIN,
	};
	static struct identity id;
	static struct app_state app;
	char state_buf[PATH_MAX];
	int fds[SERVER_FDS_MAX];
	size_t nfds = 0;
	struct notes *notes = NULL;
	struct server *srv = NULL;
	uint64_t watchdog_usec = 0;
	sigset_t stop_signals;
	int sig, ret;

	if (parse_options(argc, argv, &o) < 0)
		return 2;
	if (!o.threads)
		o.threads = default_threads();
	if (!o.state_dir)
		o.state_dir = state_dir_from_env(state_buf, sizeof(state_buf));
	if (!o.state_dir)
		o.state_dir = ".";

	/* Block the stop signals in every thread; main takes them synchronously. */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	if (pthread_sigmask(SIG_BLOCK, &stop_signals, NULL) != 0 ||
	    signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		fprintf(stderr, "myapp: cannot set up signals: %m\n");
		return 1;
	}
	raise_fd_limit();
	request_cpu_slice(o.slice_us);
	if (sd_watchdog_enabled(0, &watchdog_usec) <= 0)
		watchdog_usec = 0;

	identity_load(&id, ".");
	sd_notifyf(0, "STATUS=opening the database in %s", o.state_dir);
	ret = notes_open(&notes, o.state_dir);
	if (ret < 0) {
		fprintf(stderr,
		    "myapp: cannot open the notes database in %s: %s\n",
		    o.state_dir, strerror(-ret));
		sd_notifyf(0, "STATUS=cannot open the database: %s\nERRNO=%d",
		    strerror(-ret), -ret);
		return 1;
	}
	ret = open_sockets(&o, fds, SERVER_FDS_MAX, &nfds);
	if (ret < 0)
		goto fail;
	app_state_init(&app, &id, notes, o.max_body);
	ret = server_start(&srv, &app, fds, nfds, o.threads, o.drain_idle_ms);
	if (ret < 0)
		goto fail;

	fprintf(stderr,
	    "myapp: release %s revision %s serving %zu socket(s) with %u threads each\n",
	    id.release, id.revision, nfds, o.threads);
	sd_notifyf(0, "READY=1\nSTATUS=serving release %s on %zu socket(s)",
	    id.release, nfds);

	sig = wait_for_stop_signal(&stop_signals, watchdog_usec);
	fprintf(stderr, "myapp: %s: draining %u requests in flight\n",
	    strsignal(sig), server_requests_in_flight(srv));
	ret = drain(srv, &o, watchdog_usec);
	if (ret < 0) {
		/* Suspended requests cannot be stopped through libmicrohttpd;
		 * exit and let the kernel close our copies of the sockets. */
		fprintf(stderr,
		    "myapp: drain timeout (%u s): %u requests still in flight, exiting\n",
		    o.drain_timeout, server_requests_in_flight(srv));
		sd_notify(0, "STATUS=drain timeout, exiting");
		fflush(stderr);
		_exit(0);
	}
	if (server_connections_cut(srv))
		fprintf(stderr,
		    "myapp: drain: %u idle keep-alive connection(s) closed after %u ms\n",
		    server_connections_cut(srv), o.drain_idle_ms);
	server_stop(srv);
	notes_close(notes);
	fprintf(stderr, "myapp: drained, exiting\n");
	sd_notify(0, "STATUS=drained, exiting");
	return 0;
fail:
	sd_notifyf(
	    0, "STATUS=cannot start: %s\nERRNO=%d", strerror(-ret), -ret);
	notes_close(notes);
	return 1;
}
