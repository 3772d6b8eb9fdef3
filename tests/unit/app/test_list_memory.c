/* The app's memory under the note list requests of issue 11: with 1000 notes
 * of 64 KiB stored, two clients in parallel ask GET /api/notes?limit=1000
 * (before the byte budget each answer was 64 MiB of JSON, and two parallel
 * requests took the app from 10 to 394 MB). The app's peak RSS (VmHWM in
 * /proc/PID/status) must stay under LIST_RSS_MAX_MIB and every answer
 * within NOTES_LIST_BYTES.
 *   usage: test_list_memory PATH/TO/myapp
 * Run it against a build without sanitizers (the Makefile's myapp-plain):
 * ASan's shadow memory and quarantine would be what is measured. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "fake_systemd.h"
#include "http_client.h"
#include "notes.h"
#include "routes.h"
#include "../../lib/tap.h"

#define NOTES 1000
#define NOTE_BYTES 65000 /* a 64 KiB body holds {"text":"…"} of this */
#define CLIENTS 2
#define ROUNDS 3            /* requests per client */
#define LIST_RSS_MAX_MIB 64 /* the bound this test holds the app to */

static const char *myapp;
static struct scratch scratch;

static atomic_int stored, failed;

static void
note_done(struct note_write *w)
{
	if (w->result == 0)
		atomic_fetch_add(&stored, 1);
	else
		atomic_fetch_add(&failed, 1);
}

/* Stores the notes through the app's own storage, queued at once so that
 * the writer commits them in a few transactions (not 1000 fsyncs). */
static int
fill(void)
{
	static struct note_write writes[NOTES];
	struct notes *n = NULL;
	char *text = malloc(NOTE_BYTES);

	if (!text || notes_open(&n, scratch.dir) < 0) {
		free(text);
		return -1;
	}
	for (size_t i = 0; i < NOTE_BYTES; i++)
		text[i] = (char)('a' + i % 26);
	for (int i = 0; i < NOTES; i++) {
		writes[i] = (struct note_write){
			.text = text, .text_len = NOTE_BYTES, .done = note_done
		};
		if (notes_submit(n, &writes[i]) < 0)
			atomic_fetch_add(&failed, 1);
	}
	notes_close(n); /* after every queued insert */
	free(text);
	return atomic_load(&stored) == NOTES ? 0 : -1;
}

/* VmHWM or VmRSS of pid, in KiB; -1 when unreadable. */
static long
status_kib(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t flen = strlen(field);
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, flen) == 0 && line[flen] == ':')
			kib = strtol(line + flen + 1, NULL, 10);
	fclose(f);
	return kib;
}

struct client {
	pthread_t thread;
	int ok_answers;
	size_t largest_body;
	int status;
};

/* One GET with Connection: close; the answer read to EOF and thrown away.
 * Returns the body's size, or -1. */
static long
list_once(int *status)
{
	static const char req[] =
	    "GET /api/notes?limit=1000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
	char buf[65536];
	size_t total = 0, head = 0;
	int fd = http_connect_unix(scratch.public_path);
	char *end = NULL;

	*status = 0;
	if (fd < 0)
		return -1;
	if (http_write_all(fd, req, sizeof(req) - 1) < 0) {
		close(fd);
		return -1;
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);

		if (n <= 0)
			break;
		if (!end && total == 0) {
			buf[n] = '\0';
			if (sscanf(buf, "HTTP/1.%*d %d", status) != 1)
				break;
			end = strstr(
			    buf, "\r\n\r\n"); /* headers fit the first read */
			head = end ? (size_t)(end + 4 - buf) : 0;
		}
		total += (size_t)n;
	}
	close(fd);
	return end ? (long)(total - head) : -1;
}

static void *
client_main(void *arg)
{
	struct client *c = arg;

	for (int i = 0; i < ROUNDS; i++) {
		long body = list_once(&c->status);

		if (c->status != 200 || body < 0)
			break;
		c->ok_answers++;
		if ((size_t)body > c->largest_body)
			c->largest_body = (size_t)body;
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	static struct client clients[CLIENTS];
	char *args[] = { NULL, "--state-dir", scratch.dir, "--threads", "2",
		NULL };
	struct child c;
	struct http_result res;
	long before_kib, hwm_kib, rss_kib;
	int answers = 0, status;
	size_t largest = 0;
	int64_t t0;

	if (argc != 2) {
		fprintf(stderr, "usage: test_list_memory PATH/TO/myapp\n");
		return 2;
	}
	myapp = argv[1];
	args[0] = (char *)myapp;
	signal(SIGPIPE, SIG_IGN);
	if (fake_sd_scratch(&scratch, "listmem") < 0) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	ok(scratch.public_fd >= 0, "public socket bound");
	t0 = monotonic_ms();
	ok(fill() == 0, "%d notes of %d bytes stored (%d failed, %lld ms)",
	    NOTES, NOTE_BYTES, atomic_load(&failed),
	    (long long)(monotonic_ms() - t0));

	if (fake_sd_start(&c, scratch.dir, "app", &scratch.public_fd, 1,
		"myapp.socket", NULL, args) < 0 ||
	    fake_sd_wait_notify(&c, "READY=1", 20000) < 0) {
		ok(0, "myapp started");
		fake_sd_show_log(&c);
		fake_sd_scratch_done(&scratch, 1);
		return tap_done();
	}
	ok(http_do(scratch.public_path, "GET", "/healthz", NULL, NULL, &res) ==
		    0 &&
		res.status == 200,
	    "myapp answers GET /healthz");
	before_kib = status_kib(c.pid, "VmHWM");
	printf("# before: VmHWM %ld KiB\n", before_kib);

	t0 = monotonic_ms();
	for (int i = 0; i < CLIENTS; i++)
		pthread_create(
		    &clients[i].thread, NULL, client_main, &clients[i]);
	for (int i = 0; i < CLIENTS; i++) {
		pthread_join(clients[i].thread, NULL);
		answers += clients[i].ok_answers;
		if (clients[i].largest_body > largest)
			largest = clients[i].largest_body;
	}
	hwm_kib = status_kib(c.pid, "VmHWM");
	rss_kib = status_kib(c.pid, "VmRSS");
	printf(
	    "# %d clients x %d GET /api/notes?limit=1000 in %lld ms: largest body %zu bytes; "
	    "VmHWM %ld KiB (%ld before), VmRSS after %ld KiB\n",
	    CLIENTS, ROUNDS, (long long)(monotonic_ms() - t0), largest, hwm_kib,
	    before_kib, rss_kib);
	ok(answers == CLIENTS * ROUNDS, "%d of %d list requests answered 200",
	    answers, CLIENTS * ROUNDS);
	ok(largest > 0 && largest <= NOTES_LIST_BYTES,
	    "every list body within the budget (largest %zu <= %lu)", largest,
	    NOTES_LIST_BYTES);
	ok(hwm_kib > 0 && hwm_kib < LIST_RSS_MAX_MIB * 1024L,
	    "the app's peak RSS %ld KiB < %d MiB", hwm_kib, LIST_RSS_MAX_MIB);

	kill(c.pid, SIGTERM);
	status = fake_sd_reap(&c, 20000);
	ok(status == 0, "myapp exits 0 after the drain (%d)", status);
	if (tap_failed)
		fake_sd_show_log(&c);
	fake_sd_forget(&c);
	fake_sd_scratch_done(&scratch, tap_failed);
	return tap_done();
}
