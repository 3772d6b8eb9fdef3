/* Integration test: the handover, the way systemd runs it. This program plays
 * systemd: it owns the public listening socket and one probe socket per
 * instance, passes them as LISTEN_FDS (fd 3 public, fd 4 probe) and listens
 * on NOTIFY_SOCKET. Each round:
 *   start instance B beside A and wait for its READY=1;
 *   hold a slow POST in flight on A's probe socket; SIGTERM A (STOPPING=1);
 *   finish the POST: 201 with Connection: close; A exits 0;
 *   the public socket still listens and B serves it.
 * Meanwhile clients hammer the public socket with fresh connections
 * (GET /api/status, POST /api/notes): none may fail. At the end every
 * acknowledged note must read back, also after a SIGKILL'd instance.
 *   usage: test_handover PATH/TO/myapp   (HANDOVER_ROUNDS=N, default 200) */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include "clock.h"
#include "fake_systemd.h"
#include "http_client.h"
#include "notes.h"
#include "../../lib/tap.h"

#define ACKED_MAX 400000

/* An app instance and its own probe socket (fd 4). */
struct instance {
	struct child c;
	int probe_fd;
	char probe_path[108];
};

static const char *myapp;
static struct scratch scratch;
static int instance_seq;

/* What the load clients saw. */
static atomic_int load_stop;
static atomic_int load_failures, load_requests, load_failures_tolerated;
static atomic_int tolerate_failures; /* during the SIGKILL */
static pthread_mutex_t acked_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t acked_ids[ACKED_MAX];
static int acked_seq[ACKED_MAX];
static int acked_count;
static char last_failure[256];

static int
still_listening(int fd)
{
	int val = 0;
	socklen_t len = sizeof(val);

	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &val, &len) == 0 &&
	    val == 1;
}

static void
record_ack(const char *body, int seq)
{
	struct json_object *obj = json_tokener_parse(body), *id = NULL;

	if (obj && json_object_object_get_ex(obj, "id", &id)) {
		pthread_mutex_lock(&acked_lock);
		if (acked_count < ACKED_MAX) {
			acked_ids[acked_count] = json_object_get_int64(id);
			acked_seq[acked_count] = seq;
			acked_count++;
		}
		pthread_mutex_unlock(&acked_lock);
	}
	json_object_put(obj);
}

static void
load_failed(const char *what, const struct http_result *res)
{
	if (atomic_load(&tolerate_failures)) {
		atomic_fetch_add(&load_failures_tolerated, 1);
		return;
	}
	atomic_fetch_add(&load_failures, 1);
	snprintf(last_failure, sizeof(last_failure),
	    "%s: status %d, connect errno %d, body %.100s", what, res->status,
	    res->connect_errno, res->body);
}

static void *
load_posts(void *arg)
{
	static atomic_int seq;

	(void)arg;
	while (!atomic_load(&load_stop)) {
		struct http_result res;
		char body[64];
		int s = atomic_fetch_add(&seq, 1);

		snprintf(body, sizeof(body), "{\"text\":\"load note %d\"}", s);
		atomic_fetch_add(&load_requests, 1);
		if (http_do(scratch.public_path, "POST", "/api/notes",
			"application/json", body, &res) < 0 ||
		    res.status != 201)
			load_failed("POST /api/notes", &res);
		else
			record_ack(res.body, s);
		usleep(1000);
	}
	return NULL;
}

static void *
load_gets(void *arg)
{
	(void)arg;
	while (!atomic_load(&load_stop)) {
		struct http_result res;

		atomic_fetch_add(&load_requests, 1);
		if (http_do(scratch.public_path, "GET", "/api/status", NULL,
			NULL, &res) < 0 ||
		    res.status != 200)
			load_failed("GET /api/status", &res);
		usleep(1000);
	}
	return NULL;
}

static int
start_instance(struct instance *in)
{
	char tag[32], release[48];
	char *env[] = { release, NULL };
	char *argv[] = { (char *)myapp, "--state-dir", scratch.dir, "--threads",
		"2", "--drain-timeout", "10", NULL };
	int k = instance_seq++;
	int fds[2];

	snprintf(tag, sizeof(tag), "inst-%d", k);
	snprintf(release, sizeof(release), "ZDD_RELEASE=%s", tag);
	snprintf(in->probe_path, sizeof(in->probe_path), "%s/probe-%d.sock",
	    scratch.dir, k);
	in->probe_fd = fake_sd_bind(in->probe_path, SOCK_STREAM);
	if (in->probe_fd < 0)
		return -1;
	fds[0] = scratch.public_fd;
	fds[1] = in->probe_fd;
	if (fake_sd_start(&in->c, scratch.dir, tag, fds, 2,
		"myapp.socket:myapp-probe.socket", env, argv) < 0)
		return -1;
	return fake_sd_wait_notify(&in->c, "READY=1", 20000);
}

/* A failed start leaves pid -1: kill(-1, sig) would hit every process. */
static void
signal_instance(const struct instance *in, int sig)
{
	if (in->c.pid > 0)
		kill(in->c.pid, sig);
}

static void
forget(struct instance *in)
{
	close(in->probe_fd);
	unlink(in->probe_path);
	fake_sd_forget(&in->c);
}

/* Reads an interim "HTTP/1.1 1xx" answer byte by byte; its status or -1. */
static int
read_interim(int fd)
{
	char buf[256];
	size_t len = 0;
	int status = -1;

	while (len + 1 < sizeof(buf)) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (poll(&pfd, 1, 10000) <= 0 || read(fd, buf + len, 1) != 1)
			return -1;
		len++;
		buf[len] = '\0';
		if (len >= 4 && strcmp(buf + len - 4, "\r\n\r\n") == 0)
			break;
	}
	if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
		return -1;
	return status;
}

/* One handover; 0 when every check held. */
static int
handover(struct instance *a, struct instance *b, int verbose)
{
	static const char head[] =
	    "POST /api/notes HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
	    "Content-Length: 20\r\nExpect: 100-continue\r\n\r\n";
	static const char half[] = "{\"text\":\"";
	static const char tail[] = "slow note\"}";
	struct http_result res, slow_res = { .status = 0 };
	int slow, status, problems = 0;

	if (start_instance(b) < 0) {
		printf("# instance B did not report READY=1\n");
		fake_sd_show_log(&b->c);
		return -1;
	}
	/* "100 Continue" proves A is handling the request: it is in flight. */
	slow = http_connect_unix(a->probe_path);
	if (slow < 0 || http_write_all(slow, head, strlen(head)) < 0 ||
	    read_interim(slow) != 100 ||
	    http_write_all(slow, half, strlen(half)) < 0)
		problems |= 1;
	signal_instance(a, SIGTERM);
	if (fake_sd_wait_notify(&a->c, "STOPPING=1", 5000) < 0)
		problems |= 2;
	usleep(30 * 1000); /* A drains while the body trickles */
	if (http_write_all(slow, tail, strlen(tail)) < 0 ||
	    http_read_response(slow, &slow_res) < 0 || slow_res.status != 201)
		problems |= 4;
	else if (!slow_res.connection_close)
		problems |= 8;
	else
		record_ack(slow_res.body, -1);
	close(slow);
	status = fake_sd_reap(&a->c, 15000);
	if (status != 0)
		problems |= 16;
	if (!still_listening(scratch.public_fd))
		problems |= 32;
	if (http_do(scratch.public_path, "GET", "/healthz", NULL, NULL, &res) <
		0 ||
	    res.status != 200)
		problems |= 64;
	if (problems || verbose) {
		printf(
		    "# handover problems 0x%x (slow POST status %d, A exit %d)\n",
		    problems, slow_res.status, status);
		if (problems)
			fake_sd_show_log(&a->c);
	}
	forget(a);
	return problems ? -1 : 0;
}

/* Every acknowledged note, read back from the database. */
static int
verify_acked(int *checked)
{
	struct notes *notes = NULL;
	int bad = 0;

	if (notes_open(&notes, scratch.dir) < 0)
		return -1;
	pthread_mutex_lock(&acked_lock);
	for (int i = 0; i < acked_count; i++) {
		struct json_object *note = NULL, *text = NULL;
		char want[64];

		if (acked_seq[i] < 0)
			snprintf(want, sizeof(want), "slow note");
		else
			snprintf(
			    want, sizeof(want), "load note %d", acked_seq[i]);
		if (notes_get(notes, acked_ids[i], &note) < 0 ||
		    !json_object_object_get_ex(note, "text", &text) ||
		    strcmp(json_object_get_string(text), want) != 0) {
			if (bad++ < 5)
				printf(
				    "# acknowledged note %lld (%s) missing\n",
				    (long long)acked_ids[i], want);
		}
		json_object_put(note);
	}
	*checked = acked_count;
	pthread_mutex_unlock(&acked_lock);
	notes_close(notes);
	return bad;
}

int
main(int argc, char **argv)
{
	const char *env = getenv("HANDOVER_ROUNDS");
	int rounds = env ? atoi(env) : 200;
	struct instance inst[2];
	pthread_t loaders[2];
	int cur = 0, good_rounds = 0, checked = 0, bad;
	int64_t t0;

	if (argc != 2) {
		fprintf(stderr, "usage: test_handover PATH/TO/myapp\n");
		return 2;
	}
	myapp = argv[1];
	signal(SIGPIPE, SIG_IGN);
	if (fake_sd_scratch(&scratch, "handover") < 0) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	ok(scratch.public_fd >= 0, "public socket bound");

	ok(start_instance(&inst[cur]) == 0, "first instance reports READY=1");
	pthread_create(&loaders[0], NULL, load_posts, NULL);
	pthread_create(&loaders[1], NULL, load_gets, NULL);

	t0 = monotonic_ms();
	for (int r = 0; r < rounds; r++) {
		if (handover(&inst[cur], &inst[1 - cur], r == 0) == 0)
			good_rounds++;
		else
			printf("# round %d failed\n", r);
		cur = 1 - cur;
	}
	ok(good_rounds == rounds,
	    "%d/%d handovers: slow request 201 + Connection: close, STOPPING=1, exit 0, "
	    "socket listening, successor serving (%.1f s)",
	    good_rounds, rounds, (double)(monotonic_ms() - t0) / 1000);
	ok(atomic_load(&load_failures) == 0,
	    "%d requests on the public socket during the handovers, %d failed%s%s",
	    atomic_load(&load_requests), atomic_load(&load_failures),
	    load_failures ? ": " : "", last_failure);

	/* SIGKILL: acknowledged notes survive a crash. */
	{
		struct instance *a = &inst[cur], *b = &inst[1 - cur];
		int started = start_instance(b) == 0;

		ok(started, "instance for the SIGKILL test reports READY=1");
		usleep(200 * 1000);
		atomic_store(&tolerate_failures, 1);
		signal_instance(a, SIGKILL);
		ok(fake_sd_reap(&a->c, 5000) == 128 + SIGKILL,
		    "instance killed");
		forget(a);
		usleep(300 * 1000);
		atomic_store(&tolerate_failures, 0);
		usleep(200 * 1000);
		cur = 1 - cur;
	}
	atomic_store(&load_stop, 1);
	pthread_join(loaders[0], NULL);
	pthread_join(loaders[1], NULL);
	printf(
	    "# %d load requests failed while an instance was SIGKILLed (allowed, unacknowledged)\n",
	    atomic_load(&load_failures_tolerated));
	ok(atomic_load(&load_failures) == 0,
	    "no failure outside the SIGKILL window (%s)", last_failure);

	signal_instance(&inst[cur], SIGTERM);
	ok(fake_sd_reap(&inst[cur].c, 15000) == 0,
	    "last instance exits 0 on SIGTERM");
	forget(&inst[cur]);
	ok(still_listening(scratch.public_fd),
	    "public socket still listening at the end");

	bad = verify_acked(&checked);
	ok(checked > 0 && bad == 0, "%d acknowledged notes, %d missing",
	    checked, bad);

	fake_sd_scratch_done(&scratch, tap_failed);
	return tap_done();
}
