/* libFuzzer target: request routing and JSON body parsing, without sockets.
 * Input: byte 0 picks the method and body state, then "path\n",
 * "content-type\n", "limit\n", and the rest is the body. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "identity.h"
#include "json_body.h"
#include "notes.h"
#include "routes.h"

static struct app_state app;
static char state_dir[] = "/tmp/myapp-fuzz-XXXXXX";

/* libFuzzer exits through exit(): remove the scratch database then. */
static void
remove_state(void)
{
	char path[64];

	notes_close(app.notes);
	app.notes = NULL;
	for (int i = 0; i < 3; i++) {
		static const char *suffix[] = { "", "-wal", "-shm" };

		snprintf(path, sizeof(path), "%s/" NOTES_DB_NAME "%s",
		    state_dir, suffix[i]);
		unlink(path);
	}
	rmdir(state_dir);
}
static struct identity id = { "fuzz", "fuzzrev" };

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct notes *notes = NULL;

	(void)argc;
	(void)argv;
	if (!mkdtemp(state_dir) || notes_open(&notes, state_dir) < 0) {
		fprintf(stderr, "fuzz: cannot open a notes store\n");
		abort();
	}
	for (int i = 0; i < 5; i++)
		notes_insert_wait(notes, "seed note", 9);
	app_state_init(&app, &id, notes, 256); /* small limit: reach 413 */
	atexit(remove_state);
	return 0;
}

/* Next '\n'-terminated field as a NUL-terminated copy; NULL when empty. */
static char *
take_field(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t len = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
	char *s = NULL;

	if (len > 0) {
		s = malloc(len + 1);
		if (!s)
			abort();
		memcpy(s, *p, len);
		s[len] = '\0';
	}
	*p += len + (nl ? 1 : 0);
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *methods[] = { "GET", "HEAD", "POST", "PUT", "DELETE",
		"OPTIONS", "get", "" };
	const uint8_t *p = data, *end = data + size;
	struct http_request req = { 0 };
	struct http_reply reply;
	char *path, *ctype, *limit, *text = NULL;
	size_t text_len = 0;
	const char *why = NULL;
	uint8_t sel;

	if (size < 1)
		return 0;
	sel = *p++;
	path = take_field(&p, end);
	ctype = take_field(&p, end);
	limit = take_field(&p, end);

	req.method = methods[sel & 7];
	req.path = path ? path : "/";
	req.content_type = ctype;
	req.limit_arg = limit;
	req.body = (const char *)p;
	req.body_len = (size_t)(end - p);
	req.body_state = (sel >> 3) % 3;
	if ((sel >> 5) & 1)
		req.content_length = limit;
	if ((sel >> 6) & 1)
		req.before_arg = limit; /* ?before= of the note list */

	if (route_request(&app, &req, &reply) == 0) {
		if (reply.kind == REPLY_DONE &&
		    (!reply.body || !reply.content_type || reply.status < 200))
			abort(); /* every answer has a body and a type */
		if (reply.kind == REPLY_STORE_NOTE)
			reply_note_stored(&reply, 1, 0);
	}
	reply_free(&reply);

	/* The JSON body parser on the whole input too. */
	if (json_body_note_text(
		(const char *)data, size, &text, &text_len, &why) == 0 &&
	    strlen(text) != text_len)
		abort(); /* no NUL inside a stored text */
	free(text);

	free(path);
	free(ctype);
	free(limit);
	return 0;
}
