/* Unit tests: routes, validation, limits, drain state, storage failure,
 * identity. No sockets: route_request() is called directly. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "identity.h"
#include "json_body.h"
#include "notes.h"
#include "routes.h"
#include "../../lib/tap.h"

static struct app_state app;
static struct identity id;

static int
route(const char *method, const char *path, const char *limit,
    const char *ctype, const char *body, enum body_state state,
    struct http_reply *r)
{
	struct http_request req = {
		.method = method,
		.path = path,
		.limit_arg = limit,
		.content_type = ctype,
		.body = body,
		.body_len = body ? strlen(body) : 0,
		.body_state = state,
	};
	return route_request(&app, &req, r);
}

static struct json_object *
parse(const struct http_reply *r)
{
	return r->body ? json_tokener_parse(r->body) : NULL;
}

/* An error answer: the status, application/json, {"error": "..."}. */
static int
is_error(const struct http_reply *r, unsigned status)
{
	struct json_object *obj = parse(r), *err = NULL;
	int good = r->kind == REPLY_DONE && r->status == status &&
	    r->content_type &&
	    strcmp(r->content_type, "application/json") == 0 && obj &&
	    json_object_object_get_ex(obj, "error", &err) &&
	    json_object_is_type(err, json_type_string);

	json_object_put(obj);
	return good;
}

static int64_t
json_int(const struct http_reply *r, const char *key)
{
	struct json_object *obj = parse(r), *v = NULL;
	int64_t out = -1;

	if (obj && json_object_object_get_ex(obj, key, &v))
		out = json_object_get_int64(v);
	json_object_put(obj);
	return out;
}

static int
json_has_string(const struct http_reply *r, const char *key, const char *want)
{
	struct json_object *obj = parse(r), *v = NULL;
	int good = obj && json_object_object_get_ex(obj, key, &v) &&
	    json_object_is_type(v, json_type_string) &&
	    (!want || strcmp(json_object_get_string(v), want) == 0);

	json_object_put(obj);
	return good;
}

static int
count_notes(void)
{
	struct json_object *list = NULL;
	int n;

	int64_t next = 0;

	if (notes_list(app.notes, NOTES_LIST_MAX, 0, SIZE_MAX, &list, &next) <
	    0)
		return -1;
	n = (int)json_object_array_length(list);
	json_object_put(list);
	return n;
}

static void
test_pages(void)
{
	struct http_reply r;
	uint64_t before;

	route("GET", "/", NULL, NULL, NULL, BODY_NOT_READ, &r);
	ok(r.status == 200 && strncmp(r.content_type, "text/html", 9) == 0,
	    "GET / is HTML");
	ok(r.body && strstr(r.body, "rel-&lt;1&gt;") &&
		strstr(r.body, "rev-abc"),
	    "GET / shows release (escaped) and revision");
	reply_free(&r);

	route("HEAD", "/", NULL, NULL, NULL, BODY_NOT_READ, &r);
	ok(r.status == 200, "HEAD / is 200");
	reply_free(&r);

	before = atomic_load(&app.requests);
	route("GET", "/api/status", NULL, NULL, NULL, BODY_NOT_READ, &r);
	ok(r.status == 200 && strcmp(r.content_type, "application/json") == 0,
	    "GET /api/status is JSON");
	ok(json_has_string(&r, "status", "ok") &&
		json_int(&r, "pid") == getpid() &&
		json_has_string(&r, "release", "rel-<1>") &&
		json_has_string(&r, "revision", "rev-abc") &&
		json_has_string(&r, "started_at", NULL) &&
		json_has_string(&r, "now", NULL) && json_int(&r, "uptime") >= 0,
	    "status has status, pid, release, revision, started_at, uptime, now");
	ok(json_int(&r, "requests") == (int64_t)before + 1,
	    "status counts requests (%lld)",
	    (long long)json_int(&r, "requests"));
	reply_free(&r);

	route("GET", "/healthz", NULL, NULL, NULL, BODY_NOT_READ, &r);
	ok(r.status == 200 && json_has_string(&r, "status", "ok") &&
		json_int(&r, "pid") == getpid() &&
		json_has_string(&r, "release", "rel-<1>"),
	    "healthz 200 with pid and release while serving");
	reply_free(&r);

	route("GET", "/nope", NULL, NULL, NULL, BODY_NOT_READ, &r);
	ok(is_error(&r, 404), "unknown path: 404 JSON error");
	reply_free(&r);
	route("GET", "/api/notesX", NULL, NULL, NULL, BODY_NOT_READ, &r);
	ok(is_error(&r, 404), "/api/notesX: 404");
	reply_free(&r);
}

static void
test_methods(void)
{
	static const struct {
		const char *method, *path, *allow;
	} cases[] = {
		{ "POST", "/", "GET, HEAD" },
		{ "DELETE", "/api/status", "GET, HEAD" },
		{ "PUT", "/healthz", "GET, HEAD" },
		{ "DELETE", "/api/notes", "GET, HEAD, POST" },
		{ "PUT", "/api/notes/1", "GET, HEAD" },
		{ "POST", "/api/notes/1", "GET, HEAD" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_reply r;

		route(cases[i].method, cases[i].path, NULL, NULL, NULL,
		    BODY_NOT_READ, &r);
		ok(is_error(&r, 405) && r.allow &&
			strcmp(r.allow, cases[i].allow) == 0,
		    "%s %s: 405 with Allow: %s", cases[i].method, cases[i].path,
		    cases[i].allow);
		reply_free(&r);
	}
}

static void
test_post_headers(void)
{
	struct http_reply r;

	route("POST", "/api/notes", NULL, "application/json", NULL,
	    BODY_NOT_READ, &r);
	ok(r.kind == REPLY_READ_BODY, "POST json: read the body");
	reply_free(&r);
	route("POST", "/api/notes", NULL, "Application/JSON; charset=utf-8",
	    NULL, BODY_NOT_READ, &r);
	ok(r.kind == REPLY_READ_BODY,
	    "content type with parameters and any case accepted");
	reply_free(&r);
	route(
	    "POST", "/api/notes", NULL, "text/plain", NULL, BODY_NOT_READ, &r);
	ok(is_error(&r, 415), "text/plain: 415");
	reply_free(&r);
	route("POST", "/api/notes", NULL, NULL, NULL, BODY_NOT_READ, &r);
	ok(is_error(&r, 415), "no content type: 415");
	reply_free(&r);
	route("POST", "/api/notes", NULL, "application/jsonp", NULL,
	    BODY_NOT_READ, &r);
	ok(is_error(&r, 415), "application/jsonp: 415");
	reply_free(&r);

	{
		struct http_request req = { .method = "POST",
			.path = "/api/notes",
			.content_type = "application/json",
			.content_length = "65537",
			.body_state = BODY_NOT_READ };
		route_request(&app, &req, &r);
		ok(is_error(&r, 413),
		    "Content-Length over the limit: 413 before reading");
		reply_free(&r);
		req.content_length = "65536";
		route_request(&app, &req, &r);
		ok(r.kind == REPLY_READ_BODY,
		    "Content-Length at the limit: read");
		reply_free(&r);
		req.content_length = "12x";
		route_request(&app, &req, &r);
		ok(is_error(&r, 400), "bad Content-Length: 400");
		reply_free(&r);
	}
	route("POST", "/api/notes", NULL, "application/json", NULL,
	    BODY_TOO_LARGE, &r);
	ok(is_error(&r, 413), "body grew over the limit: 413");
	reply_free(&r);
}

static void
test_post_bodies(void)
{
	static const char *bad[] = {
		"",
		"{",
		"{\"text\":\"a\"",
		"[1,2]",
		"\"text\"",
		"{\"txt\":\"a\"}",
		"{\"text\":1}",
		"{\"text\":null}",
		"{\"text\":\"\"}",
		"{\"text\":\"a\"} x",
		"{\"text\":\"a\"}{}",
		"{'text':'a'}",
		"{\"text\":\"\\u0000\"}",
		"{\"text\":\"\xff\xfe\"}",
		"{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{}}}}}}}},\"text\":\"x\"}",
	};
	struct http_reply r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		route("POST", "/api/notes", NULL, "application/json", bad[i],
		    BODY_COMPLETE, &r);
		ok(is_error(&r, 400), "bad body #%zu: 400", i);
		reply_free(&r);
	}
	route("POST", "/api/notes", NULL, "application/json",
	    " {\"text\":\"caf\xc3\xa9 \\\"q\\\"\",\"x\":1}\n", BODY_COMPLETE,
	    &r);
	ok(r.kind == REPLY_STORE_NOTE && r.note_text &&
		strcmp(r.note_text, "caf\xc3\xa9 \"q\"") == 0,
	    "good body: store the decoded text");
	reply_free(&r);
}

static void
test_notes_roundtrip(void)
{
	struct http_reply r;
	char path[64];
	int64_t ids[3];

	for (int i = 0; i < 3; i++) {
		char text[32];

		snprintf(text, sizeof(text), "note %d", i);
		route("POST", "/api/notes", NULL, "application/json",
		    "{\"text\":\"x\"}", BODY_COMPLETE, &r);
		ids[i] = notes_insert_wait(app.notes, text, strlen(text));
		reply_note_stored(&r, ids[i], ids[i] < 0 ? (int)ids[i] : 0);
		ok(r.status == 201 && json_int(&r, "id") == ids[i] &&
			ids[i] > 0,
		    "note %d stored: 201 {\"id\":%lld}", i, (long long)ids[i]);
		reply_free(&r);
	}
	snprintf(path, sizeof(path), "/api/notes/%lld", (long long)ids[1]);
	route("GET", path, NULL, NULL, NULL, BODY_NOT_READ, &r);
	ok(r.status == 200 && json_has_string(&r, "text", "note 1") &&
		json_int(&r, "id") == ids[1] &&
		json_has_string(&r, "created_at", NULL),
	    "GET %s returns it", path);
	reply_free(&r);

	route("GET", "/api/notes", "2", NULL, NULL, BODY_NOT_READ, &r);
	{
		struct json_object *obj = parse(&r), *list = NULL;
		int good = r.status == 200 && obj &&
		    json_object_object_get_ex(obj, "notes", &list) &&
		    json_object_array_length(list) == 2 &&
		    json_object_get_int64(json_object_object_get(
			json_object_array_get_idx(list, 0), "id")) == ids[2];
		ok(good, "GET /api/notes?limit=2: two notes, newest first");
		json_object_put(obj);
	}
	reply_free(&r);

	static const char *bad_limits[] = { "0", "-1", "abc", "1001", "1e3", "",
		"99999999999999999999" };
	for (size_t i = 0; i < sizeof(bad_limits) / sizeof(bad_limits[0]);
	     i++) {
		route("GET", "/api/notes", bad_limits[i], NULL, NULL,
		    BODY_NOT_READ, &r);
		ok(is_error(&r, 400), "limit=%s: 400", bad_limits[i]);
		reply_free(&r);
	}
	static const char *missing[] = { "/api/notes/999999", "/api/notes/abc",
		"/api/notes/0", "/api/notes/", "/api/notes/1x", "/api/notes/-1",
		"/api/notes/99999999999999999999" };
	for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
		route("GET", missing[i], NULL, NULL, NULL, BODY_NOT_READ, &r);
		ok(is_error(&r, 404), "GET %s: 404", missing[i]);
		reply_free(&r);
	}
}

static void
test_storage_failure(void)
{
	struct http_reply r;
	int before = count_notes();
	int64_t id;

	notes_fail_commits(app.notes, 1);
	id = notes_insert_wait(app.notes, "lost", 4);
	notes_fail_commits(app.notes, 0);
	ok(id < 0, "failing commit reports an error (%lld)", (long long)id);
	route("POST", "/api/notes", NULL, "application/json",
	    "{\"text\":\"lost\"}", BODY_COMPLETE, &r);
	reply_note_stored(&r, 0, (int)id);
	ok(is_error(&r, 500), "storage failure: 500 JSON error");
	reply_free(&r);
	ok(count_notes() == before,
	    "nothing half-written (%d notes before and after)", before);
	id = notes_insert_wait(app.notes, "after", 5);
	ok(id > 0, "storage works again after the failure");
}

/* GET /api/notes with ?limit= and ?before= (NULL: absent). */
static int
route_list(const char *limit, const char *before, struct http_reply *r)
{
	struct http_request req = {
		.method = "GET",
		.path = "/api/notes",
		.limit_arg = limit,
		.before_arg = before,
		.body_state = BODY_NOT_READ,
	};
	return route_request(&app, &req, r);
}

struct page {
	int status;
	size_t body_len;
	size_t count;
	int64_t first_id, last_id;
	int truncated;  /* -1: field missing or not a boolean */
	char next[128]; /* "" when absent */
};

static void
read_page(const struct http_reply *r, struct page *p)
{
	struct json_object *obj = parse(r), *list = NULL, *v = NULL;

	memset(p, 0, sizeof(*p));
	p->status = (int)r->status;
	p->body_len = r->body_len;
	p->truncated = -1;
	if (obj && json_object_object_get_ex(obj, "notes", &list) &&
	    json_object_is_type(list, json_type_array)) {
		p->count = json_object_array_length(list);
		if (p->count) {
			p->first_id =
			    json_object_get_int64(json_object_object_get(
				json_object_array_get_idx(list, 0), "id"));
			p->last_id =
			    json_object_get_int64(json_object_object_get(
				json_object_array_get_idx(list, p->count - 1),
				"id"));
		}
	}
	if (obj && json_object_object_get_ex(obj, "truncated", &v) &&
	    json_object_is_type(v, json_type_boolean))
		p->truncated = json_object_get_boolean(v);
	if (obj && json_object_object_get_ex(obj, "next", &v) &&
	    json_object_is_type(v, json_type_string))
		snprintf(
		    p->next, sizeof(p->next), "%s", json_object_get_string(v));
	json_object_put(obj);
}

/* Stores count notes of size bytes of byte c; their ids in ids[]. */
static int
store_big(int count, size_t size, char c, int64_t *ids)
{
	char *text = malloc(size);
	int stored = 0;

	if (!text)
		return 0;
	memset(text, c, size);
	for (int i = 0; i < count; i++) {
		ids[i] = notes_insert_wait(app.notes, text, size);
		stored += ids[i] > 0;
	}
	free(text);
	return stored;
}

/* Pages through ?limit=1000 from before (0: the newest) down to (and
 * including) stop_id: every page within the budget, truncated until the last,
 * next naming the rest; returns the notes seen, or -1. */
static int
page_down(int64_t before, int64_t stop_id, const char *what, int *pages)
{
	int seen = 0, good = 1;

	*pages = 0;
	for (;;) {
		struct http_reply r;
		struct page p;
		char before_arg[32], want_next[128];

		snprintf(
		    before_arg, sizeof(before_arg), "%lld", (long long)before);
		route_list("1000", before ? before_arg : NULL, &r);
		read_page(&r, &p);
		reply_free(&r);
		(*pages)++;
		snprintf(want_next, sizeof(want_next),
		    "/api/notes?limit=1000&before=%lld", (long long)p.last_id);
		if (p.status != 200 || p.count == 0 ||
		    p.body_len > NOTES_LIST_BYTES ||
		    (before && p.first_id >= before) || p.truncated < 0 ||
		    (p.truncated && strcmp(p.next, want_next) != 0) ||
		    (!p.truncated && p.next[0])) {
			printf(
			    "# %s page %d: status %d, %zu notes (%lld..%lld), %zu bytes, truncated %d, next \"%s\"\n",
			    what, *pages, p.status, p.count,
			    (long long)p.first_id, (long long)p.last_id,
			    p.body_len, p.truncated, p.next);
			good = 0;
			break;
		}
		if (p.last_id <= stop_id) {
			seen += (int)(p.first_id - stop_id +
			    1); /* stored in a row: ids in a row */
			break;
		}
		seen += (int)p.count;
		if (!p.truncated) {
			good = 0; /* stop_id not reached */
			break;
		}
		before = p.last_id;
	}
	return good ? seen : -1;
}

/* The list's body is bounded by bytes, whatever limit= and the notes' size:
 * 64 KiB notes of letters, then of control bytes (escaped to 6 bytes each),
 * then one note larger than the budget (listed alone). */
static void
test_list_budget(void)
{
	enum { BIG = 40, ODD = 8 };
	static int64_t ids[BIG], odd[ODD], huge[1];
	struct http_reply r;
	struct page p;
	int pages, seen;
	char before_arg[32];

	ok(store_big(BIG, 65536, 'n', ids) == BIG, "%d notes of 64 KiB stored",
	    BIG);
	route_list("1000", NULL, &r);
	read_page(&r, &p);
	reply_free(&r);
	ok(p.status == 200 && p.body_len <= NOTES_LIST_BYTES &&
		p.body_len > NOTES_LIST_BYTES - 2 * 65600,
	    "limit=1000 of 64 KiB notes: %zu bytes, within the %lu budget and close to it",
	    p.body_len, NOTES_LIST_BYTES);
	ok(p.count == 15 && p.first_id == ids[BIG - 1],
	    "it holds the newest %zu notes (the budget's 15)", p.count);
	ok(p.truncated == 1 && p.next[0], "truncated: true, next \"%s\"",
	    p.next);
	seen = page_down(0, ids[0], "64 KiB", &pages);
	ok(seen == BIG && pages == 3,
	    "paging by next: %d notes in %d pages, each within the budget",
	    seen, pages);

	route_list("3", NULL, &r);
	read_page(&r, &p);
	reply_free(&r);
	ok(p.status == 200 && p.count == 3 && p.truncated == 0 && !p.next[0],
	    "limit=3 within the budget: 3 notes, truncated: false, no next");

	ok(store_big(ODD, 65536, '\001', odd) == ODD,
	    "%d notes of 64 KiB of control bytes stored", ODD);
	seen = page_down(0, odd[0], "control bytes", &pages);
	ok(seen == ODD && pages == ODD / 2,
	    "escaped 6-fold (384 KiB each): %d notes, 2 a page, %d pages", seen,
	    pages);

	ok(store_big(1, NOTES_LIST_BYTES + 1, 'h', huge) == 1,
	    "one note larger than the budget stored");
	route_list(NULL, NULL, &r);
	read_page(&r, &p);
	reply_free(&r);
	ok(p.status == 200 && p.count == 1 && p.first_id == huge[0] &&
		p.truncated == 1 && p.body_len > NOTES_LIST_BYTES &&
		p.body_len < NOTES_LIST_BYTES + 256,
	    "a note over the budget is listed alone (%zu bytes), truncated: true",
	    p.body_len);
	snprintf(before_arg, sizeof(before_arg), "%lld", (long long)huge[0]);
	route_list("1", before_arg, &r);
	read_page(&r, &p);
	reply_free(&r);
	ok(p.status == 200 && p.count == 1 && p.first_id == odd[ODD - 1] &&
		p.truncated == 0,
	    "before=%s: the next older note, limit=1 honoured", before_arg);

	static const char *bad_before[] = { "0", "-1", "abc", "", "1x",
		"99999999999999999999" };
	for (size_t i = 0; i < sizeof(bad_before) / sizeof(bad_before[0]);
	     i++) {
		route_list(NULL, bad_before[i], &r);
		ok(is_error(&r, 400), "before=%s: 400", bad_before[i]);
		reply_free(&r);
	}
	route_list(NULL, "1", &r);
	read_page(&r, &p);
	reply_free(&r);
	ok(p.status == 200 && p.count == 0 && p.truncated == 0,
	    "before=1: no notes, truncated: false");
}

static void
test_drain_state(void)
{
	struct http_reply r;

	atomic_store(&app.draining, 1);
	route("GET", "/healthz", NULL, NULL, NULL, BODY_NOT_READ, &r);
	ok(r.status == 503 && json_has_string(&r, "status", "draining"),
	    "healthz 503 while draining");
	reply_free(&r);
	route("GET", "/api/status", NULL, NULL, NULL, BODY_NOT_READ, &r);
	ok(r.status == 200 && json_has_string(&r, "status", "draining"),
	    "status says draining");
	reply_free(&r);
	atomic_store(&app.draining, 0);
}

static void
test_identity(void)
{
	char dir[] = "/tmp/myapp-identity-XXXXXX";
	struct identity got;
	char path[256], buf[IDENTITY_MAX];
	FILE *f;

	ok(mkdtemp(dir) != NULL, "temp dir");
	unsetenv("ZDD_RELEASE");
	unsetenv("ZDD_REVISION");
	identity_load(&got, dir);
	ok(strcmp(got.release, "unknown") == 0 &&
		strcmp(got.revision, "unknown") == 0,
	    "no source: unknown");
	snprintf(path, sizeof(path), "%s/RELEASE", dir);
	f = fopen(path, "w");
	fputs("20261125101530-abc1234\nignored\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/REVISION", dir);
	f = fopen(path, "w");
	fputs("abc1234def\n", f);
	fclose(f);
	identity_load(&got, dir);
	ok(strcmp(got.release, "20261125101530-abc1234") == 0 &&
		strcmp(got.revision, "abc1234def") == 0,
	    "files: first line");
	setenv("ZDD_RELEASE", "side-1", 1);
	identity_load(&got, dir);
	ok(strcmp(got.release, "side-1") == 0 &&
		strcmp(got.revision, "abc1234def") == 0,
	    "ZDD_RELEASE wins over the file");
	unsetenv("ZDD_RELEASE");
	identity_clean(buf, sizeof(buf),
	    "a\x01\x7f"
	    "b\tc  ",
	    8);
	ok(strcmp(buf, "abc") == 0, "control characters dropped (%s)", buf);
	unlink(path);
	snprintf(path, sizeof(path), "%s/RELEASE", dir);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	char dir[] = "/tmp/myapp-routes-XXXXXX";
	char cmd[128];
	struct notes *notes = NULL;

	if (!mkdtemp(dir) || notes_open(&notes, dir) < 0) {
		printf("Bail out! cannot open a notes store\n");
		return 1;
	}
	snprintf(id.release, sizeof(id.release), "rel-<1>");
	snprintf(id.revision, sizeof(id.revision), "rev-abc");
	app_state_init(&app, &id, notes, BODY_MAX_DEFAULT);

	test_pages();
	test_methods();
	test_post_headers();
	test_post_bodies();
	test_notes_roundtrip();
	test_storage_failure();
	test_list_budget();
	test_drain_state();
	test_identity();

	notes_close(notes);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# cannot remove %s\n", dir);
	return tap_done();
}
