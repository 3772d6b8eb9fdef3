/* zdd-load: an open-model HTTP/1.1 load generator that counts every outcome
 * and reads acknowledged writes back. See README.md. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "engine.h"
#include "report.h"
#include "requests.h"
#include "slice.h"
#include "summary.h"
#include "target.h"
#include "windows.h"

#define MAX_DURATION_S 600.0
#define MAX_REQUESTS 10000000ULL
#define MAX_CONNECTIONS 4096

struct options {
	const char *unix_path, *tcp, *host, *get_path, *post_path;
	const char *timeline, *json, *windows, *requests;
	double rate, duration_s, post_ratio;
	unsigned connections, verify_concurrency;
	uint64_t max_pending, timeout_ms, cpu_slice_us;
	bool keepalive, verify, fail_on_error, allow_nonloopback, retry_reused;
};

static volatile sig_atomic_t stop_requested;

static void
on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: zdd-load (--unix PATH | --tcp HOST:PORT) --rate N --duration S [options]\n"
	    "  --host NAME             Host header (default localhost)\n"
	    "  --rate N                requests per second, constant arrival (open model)\n"
	    "  --duration S            seconds of load (<= 600; rate*duration <= 10^7)\n"
	    "  --connections N         keep-alive pool size / concurrent connections (default 64)\n"
	    "  --no-keepalive          a new connection per request\n"
	    "  --max-pending N         requests waiting for a connection before 'overload' (default 10000)\n"
	    "  --timeout MS            per request, from its scheduled time (default 5000)\n"
	    "  --post-ratio R          share of POSTs, 0..1 (default 0)\n"
	    "  --get-path P            default /api/status\n"
	    "  --post-path P           default /api/notes (read back as P/<id>)\n"
	    "  --verify                read every acknowledged write back after the run\n"
	    "  --verify-concurrency N  default 8\n"
	    "  --windows FILE          'START_EPOCH_MS END_EPOCH_MS [label]' lines, read after the run\n"
	    "  --timeline FILE.csv     per 100 ms: sent, ok, errors, p50, p99, max, throughput\n"
	    "  --json FILE             the summary as JSON\n"
	    "  --cpu-slice-us N        ask for an N us CPU slice (Linux 6.12+), so that the client's\n"
	    "                          own wake-ups wait less behind other work on the machine\n"
	    "  --requests FILE.csv     every request: scheduled time, latency, queueing, new connection, outcome\n"
	    "  --fail-on-error         exit 1 if any request failed, any acknowledged write was lost or\n"
	    "                          unverified, a 2xx POST had no id, or --verify found nothing acknowledged\n"
	    "  --allow-nonloopback     permit a TCP target outside 127.0.0.0/8 and ::1 (test namespaces)\n"
	    "  --retry-reused          resend once, on a new connection, a request whose reused keep-alive\n"
	    "                          connection closed before one byte of answer (as browsers and curl\n"
	    "                          do: an nginx reload closes idle client connections); counted apart\n");
}

static int
parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(v) || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

static int
parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	errno = 0;
	if (*s == '-')
		return -EINVAL;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || *end || errno || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

static int
parse_options(int argc, char **argv, struct options *o)
{
	enum {
		O_UNIX = 256,
		O_TCP,
		O_HOST,
		O_RATE,
		O_DURATION,
		O_CONNS,
		O_NOKA,
		O_PENDING,
		O_TIMEOUT,
		O_POST,
		O_GET_PATH,
		O_POST_PATH,
		O_VERIFY,
		O_VCONC,
		O_WINDOWS,
		O_TIMELINE,
		O_JSON,
		O_REQUESTS,
		O_FAIL,
		O_NONLO,
		O_SLICE,
		O_RETRY_REUSED,
		O_HELP
	};
	static const struct option longopts[] = {
		{ "unix", required_argument, NULL, O_UNIX },
		{ "tcp", required_argument, NULL, O_TCP },
		{ "host", required_argument, NULL, O_HOST },
		{ "rate", required_argument, NULL, O_RATE },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "connections", required_argument, NULL, O_CONNS },
		{ "no-keepalive", no_argument, NULL, O_NOKA },
		{ "max-pending", required_argument, NULL, O_PENDING },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "post-ratio", required_argument, NULL, O_POST },
		{ "get-path", required_argument, NULL, O_GET_PATH },
		{ "post-path", required_argument, NULL, O_POST_PATH },
		{ "verify", no_argument, NULL, O_VERIFY },
		{ "verify-concurrency", required_argument, NULL, O_VCONC },
		{ "windows", required_argument, NULL, O_WINDOWS },
		{ "timeline", required_argument, NULL, O_TIMELINE },
		{ "json", required_argument, NULL, O_JSON },
		{ "requests", required_argument, NULL, O_REQUESTS },
		{ "fail-on-error", no_argument, NULL, O_FAIL },
		{ "allow-nonloopback", no_argument, NULL, O_NONLO },
		{ "cpu-slice-us", required_argument, NULL, O_SLICE },
		{ "retry-reused", no_argument, NULL, O_RETRY_REUSED },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t u = 0;
	int c, rc = 0;

	*o = (struct options){ .host = "localhost",
		.get_path = "/api/status",
		.post_path = "/api/notes",
		.connections = 64,
		.verify_concurrency = 8,
		.max_pending = 10000,
		.timeout_ms = 5000,
		.keepalive = true };
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_UNIX:
			o->unix_path = optarg;
			break;
		case O_TCP:
			o->tcp = optarg;
			break;
		case O_HOST:
			o->host = optarg;
			break;
		case O_RATE:
			rc = parse_double(optarg, 0.001, 1e6, &o->rate);
			break;
		case O_DURATION:
			rc = parse_double(
			    optarg, 0.001, MAX_DURATION_S, &o->duration_s);
			break;
		case O_CONNS:
			rc = parse_u64(optarg, 1, MAX_CONNECTIONS, &u);
			o->connections = (unsigned)u;
			break;
		case O_NOKA:
			o->keepalive = false;
			break;
		case O_PENDING:
			rc =
			    parse_u64(optarg, 1, MAX_REQUESTS, &o->max_pending);
			break;
		case O_TIMEOUT:
			rc = parse_u64(optarg, 1, 600000, &o->timeout_ms);
			break;
		case O_POST:
			rc = parse_double(optarg, 0, 1, &o->post_ratio);
			break;
		case O_GET_PATH:
			o->get_path = optarg;
			break;
		case O_POST_PATH:
			o->post_path = optarg;
			break;
		case O_VERIFY:
			o->verify = true;
			break;
		case O_VCONC:
			rc = parse_u64(optarg, 1, MAX_CONNECTIONS, &u);
			o->verify_concurrency = (unsigned)u;
			break;
		case O_WINDOWS:
			o->windows = optarg;
			break;
		case O_TIMELINE:
			o->timeline = optarg;
			break;
		case O_REQUESTS:
			o->requests = optarg;
			break;
		case O_JSON:
			o->json = optarg;
			break;
		case O_FAIL:
			o->fail_on_error = true;
			break;
		case O_NONLO:
			o->allow_nonloopback = true;
			break;
		case O_SLICE:
			rc = parse_u64(optarg, SLICE_US_MIN, SLICE_US_MAX,
			    &o->cpu_slice_us);
			break;
		case O_RETRY_REUSED:
			o->retry_reused = true;
			break;
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
		if (rc < 0) {
			fprintf(stderr, "zdd-load: bad value for --%s: %s\n",
			    longopts[c - O_UNIX].name, optarg);
			return rc;
		}
	}
	if (optind != argc || !o->rate || !o->duration_s ||
	    !o->unix_path == !o->tcp) {
		fprintf(stderr,
		    "zdd-load: need exactly one of --unix/--tcp, and --rate and --duration\n");
		usage(stderr);
		return -EINVAL;
	}
	if (o->rate * o->duration_s > (double)MAX_REQUESTS ||
	    llround(o->rate * o->duration_s) < 1) {
		fprintf(stderr,
		    "zdd-load: rate x duration must be between 1 and %llu requests\n",
		    MAX_REQUESTS);
		return -EINVAL;
	}
	if (!valid_path(o->get_path) || !valid_path(o->post_path) ||
	    !valid_host(o->host)) {
		fprintf(stderr,
		    "zdd-load: paths must start with '/', hosts be plain; both short and printable\n");
		return -EINVAL;
	}
	return 0;
}

static void
install_signals(void)
{
	struct sigaction sa = {
		.sa_handler = on_signal
	}; /* no SA_RESTART: wake epoll_wait */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static double
cpu_seconds(const struct timeval *tv)
{
	return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

static int
run_verify(const struct options *o, const struct target *t, struct mix *m,
    struct verify *v, uint64_t *unanswered)
{
	struct engine_stats st;
	struct request_record *rec;
	uint64_t n = m->acks_len;
	int rc;

	*v = (struct verify){ .mix = m };
	*unanswered = 0;
	/* Nothing acknowledged, nothing to read back: not a pass. The report
	 * says "NOTHING ACKNOWLEDGED", the JSON has writes.nothing_acknowledged
	 * true, and --fail-on-error exits 1 (report_has_failures). */
	if (n == 0)
		return 0;
	rec = calloc(n, sizeof(*rec));
	if (!rec) {
		fprintf(stderr, "zdd-load: cannot allocate %llu read-backs\n",
		    (unsigned long long)n);
		return -ENOMEM;
	}
	struct engine_config cfg = {
		.target = t,
		.count = n,
		.interval_ns = 0,
		.connections = o->verify_concurrency,
		.max_pending = n,
		.keepalive = true,
		.retry_reused = o->retry_reused,
		.timeout_ns = o->timeout_ms * 1000000,
		.build = verify_build,
		.on_response = verify_on_response,
		.ctx = v,
		.records = rec,
		.stop = &stop_requested,
	};
	rc = engine_run(&cfg, &st);
	for (uint64_t i = 0; i < n; i++)
		if (rec[i].outcome != OUTCOME_HTTP)
			(*unanswered)++;
	free(rec);
	return rc;
}

static void
read_windows(const char *path, struct window **w, size_t *n)
{
	unsigned bad_line = 0;
	FILE *f;

	*w = NULL;
	*n = 0;
	if (!path)
		return;
	f = fopen(path, "re");
	if (!f) {
		fprintf(stderr, "zdd-load: no windows: cannot read %s: %s\n",
		    path, strerror(errno));
		return;
	}
	int rc = windows_read(f, w, n, &bad_line);
	if (rc < 0)
		fprintf(stderr,
		    "zdd-load: ignoring windows in %s: line %u: %s\n", path,
		    bad_line, strerror(-rc));
	fclose(f);
}

int
main(int argc, char **argv)
{
	struct options o;
	struct target t;
	struct mix m = { 0 };
	struct verify v = { 0 };
	struct engine_stats st;
	struct run_view view = { 0 };
	struct request_record *rec = NULL;
	struct window *wins = NULL;
	size_t nwins = 0;
	struct rusage ru0, ru1;
	uint64_t unanswered = 0;
	int rc, status = 2;

	if (parse_options(argc, argv, &o) < 0)
		return 2;
	rc = o.unix_path ? target_unix(&t, o.unix_path)
			 : target_tcp(&t, o.tcp, o.allow_nonloopback);
	if (rc < 0)
		return 2;
	if (o.cpu_slice_us) {
		rc = slice_request((unsigned)o.cpu_slice_us);
		if (rc < 0) {
			fprintf(stderr,
			    "zdd-load: cannot get a %llu us CPU slice: %s\n",
			    (unsigned long long)o.cpu_slice_us,
			    rc == -EOPNOTSUPP
				? "the kernel ignores slices (Linux 6.12+)"
				: strerror(-rc));
			return 2;
		}
	}
	uint64_t count = (uint64_t)llround(o.rate * o.duration_s);
	rec = calloc(count, sizeof(*rec));
	if (!rec) {
		fprintf(stderr,
		    "zdd-load: cannot allocate %llu request records\n",
		    (unsigned long long)count);
		return 2;
	}
	m = (struct mix){ .host = o.host,
		.get_path = o.get_path,
		.post_path = o.post_path,
		.post_ratio = o.post_ratio };
	install_signals();
	struct engine_config cfg = {
		.target = &t,
		.count = count,
		.interval_ns = (uint64_t)llround(1e9 / o.rate),
		.connections = o.connections,
		.max_pending = o.max_pending,
		.keepalive = o.keepalive,
		.retry_reused = o.retry_reused,
		.timeout_ns = o.timeout_ms * 1000000,
		.build = mix_build,
		.on_response = mix_on_response,
		.ctx = &m,
		.records = rec,
		.stop = &stop_requested,
	};
	getrusage(RUSAGE_SELF, &ru0);
	rc = engine_run(&cfg, &st);
	getrusage(RUSAGE_SELF, &ru1);
	if (rc < 0)
		goto out;
	/* SIGINT/SIGTERM end the schedule, not the read-back: a driver stops
	 * the load when its scenario is over and still wants the verdict on
	 * every acknowledged write. A second signal stops the read-back too. */
	stop_requested = 0;
	if (o.verify && (rc = run_verify(&o, &t, &m, &v, &unanswered)) < 0)
		goto out;
	read_windows(o.windows, &wins, &nwins);
	if ((rc = run_view_init(&view, rec, st.scheduled, cfg.interval_ns,
		 st.start_epoch_ns)) < 0)
		goto out;
	struct run_result r = {
		.target = t.name,
		.rate = o.rate,
		.duration_s = o.duration_s,
		.post_ratio = o.post_ratio,
		.connections = o.connections,
		.keepalive = o.keepalive,
		.view = &view,
		.stats = &st,
		.mix = &m,
		.verify = o.verify ? &v : NULL,
		.verify_unanswered = unanswered,
		.windows = wins,
		.nwindows = nwins,
		.cpu_user_s =
		    cpu_seconds(&ru1.ru_utime) - cpu_seconds(&ru0.ru_utime),
		.cpu_sys_s =
		    cpu_seconds(&ru1.ru_stime) - cpu_seconds(&ru0.ru_stime),
	};
	report_tally(&r);
	if ((rc = report_text(&r, stdout)) < 0)
		goto out;
	if (o.timeline && (rc = report_timeline(&r, o.timeline)) < 0)
		goto out;
	if (o.json && (rc = report_json(&r, o.json)) < 0)
		goto out;
	if (o.requests && (rc = report_requests(&r, o.requests)) < 0)
		goto out;
	status = (o.fail_on_error && report_has_failures(&r)) ? 1 : 0;
	if (m.alloc_error)
		fprintf(stderr,
		    "zdd-load: out of memory recording acknowledged writes\n");
out:
	if (rc < 0)
		fprintf(stderr, "zdd-load: run failed: %s\n", strerror(-rc));
	run_view_free(&view);
	free(wins);
	free(m.acks);
	free(rec);
	return status;
}
