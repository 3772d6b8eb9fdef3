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
#include "tap.h"

static struct app_state app;
static struct identity id;

static int route(const char *method, const char *path, const char *limit, const char *ctype,
		 const char *body, enum body_state state, struct http_reply *r)
{
	struct http_request req = {
		.method = method, .path = path, .limit_arg = limit, .content_type = ctype,
		.body = body, .body_len = body ? strlen(body) : 0, .body_state = state,
	};
	return route_request(&app, &req, r);
}

static struct json_object *parse(const struct http_reply *r)
{
	return r->body ? json_tokener_parse(r->body) : NULL;
}

/* An error answer: the status, application/json, {"error": "..."}. */
static int is_error(const struct http_reply *r, unsigned status)
{
	struct json_object *obj = parse(r), *err = NULL;
	int good = r->kind == REPLY_DONE && r->status == status && r->content_type &&
		   strcmp(r->content_type, "application/json") == 0 && obj &&
		   json_object_object_get_ex(obj, "error", &err) && json_object_is_type(err, json_type_string);

	json_object_put(obj);
	return good;
}

static int64_t json_int(const struct http_reply *r, const char *key)
{
	struct json_object *obj = parse(r), *v = NULL;
	int64_t out = -1;

	if (obj && json_object_object_get_ex(obj, key, &v))
		out = json_object_get_int64(v);
	json_object_put(obj);
	return out;
}

static int json_has_string(const struct http_reply *r, const char *key, const char *want)
{
	struct json_object *obj = parse(r), *v = NULL;
	int good = obj && json_object_object_get_ex(obj, key, &v) && json_object_is_type(v, json_type_string) &&
		   (!want || strcmp(json_object_get_string(v), want) == 0);

	json_object_put(obj);
	return good;
}

static int count_notes(void)
{
	struct json_object *list = NULL;
	int n;

	if (notes_list(app.notes, NOTES_LIST_MAX, &list) < 0)
		return -1;
	n = (int)json_object_array_length(list);
	json_object_put(list);
	return n;
}

static void test_pages(void)
{
	struct http_reply r;
	uint64_t before;

	route("GET", "/", NULL, NULL, NULL, BODY_NOT_READ, &r);
	ok(r.status == 200 && strncmp(r.content_type, "text/html", 9) == 0, "GET / is HTML");
	ok(r.body && strstr(r.body, "rel-&lt;1&gt;") && strstr(r.body, "rev-abc"), "GET / shows release (escaped) and revision");
	reply_free(&r);

	route("HEAD", "/", NULL, NULL, NULL, BODY_NOT_READ, &r);
	ok(r.status == 200, "HEAD / is 200");
	reply_free(&r);

	before = atomic_load(&app.requests);
	route("GET", "/api/status", NULL, NULL, NULL, BODY_NOT_READ, &r);
	ok(r.status == 200 && strcmp(r.content_type, "application/json") == 0, "GET /api/status is JSON");
	ok(json_has_string(&r, "status", "ok") && json_int(&r, "pid") == getpid() &&
	   json_has_string(&r, "release", "rel-<1>") && json_has_string(&r, "revision", "rev-abc") &&
	   json_has_string(&r, "started_at", NULL) && json_has_string(&r, "now", NULL) &&
	   json_int(&r, "uptime") >= 0, "status has status, pid, release, revision, started_at, uptime, now");
	ok(json_int(&r, "requests") == (int64_t)before + 1, "status counts requests (%lld)", (long long)json_int(&r, "requests"));
	reply_free(&r);

	route("GET", "/healthz", NULL, NULL, NULL, BODY_NOT_READ, &r);
	ok(r.status == 200 && json_has_string(&r, "status", "ok") && json_int(&r, "pid") == getpid() &&
	   json_has_string(&r, "release", "rel-<1>"), "healthz 200 with pid and release while serving");
	reply_free(&r);

	route("GET", "/nope", NULL, NULL, NULL, BODY_NOT_READ, &r);
	ok(is_error(&r, 404), "unknown path: 404 JSON error");
	reply_free(&r);
	route("GET", "/api/notesX", NULL, NULL, NULL, BODY_NOT_READ, &r);
	ok(is_error(&r, 404), "/api/notesX: 404");
	reply_free(&r);
}

static void test_methods(void)
{
	static const struct { const char *method, *path, *allow; } cases[] = {
		{ "POST", "/", "GET, HEAD" },
		{ "DELETE", "/api/status", "GET, HEAD" },
		{ "PUT", "/healthz", "GET, HEAD" },
		{ "DELETE", "/api/notes", "GET, HEAD, POST" },
		{ "PUT", "/api/notes/1", "GET, HEAD" },
		{ "POST", "/api/notes/1", "GET, HEAD" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_reply r;

		route(cases[i].method, cases[i].path, NULL, NULL, NULL, BODY_NOT_READ, &r);
		ok(is_error(&r, 405) && r.allow && strcmp(r.allow, cases[i].allow) == 0,
		   "%s %s: 405 with Allow: %s", cases[i].method, cases[i].path, cases[i].allow);
		reply_free(&r);
	}
}

static void test_post_headers(void)
{
	struct http_reply r;

	route("POST", "/api/notes", NULL, "application/json", NULL, BODY_NOT_READ, &r);
	ok(r.kind == REPLY_READ_BODY, "POST json: read the body");
	reply_free(&r);
	route("POST", "/api/notes", NULL, "Application/JSON; charset=utf-8", NULL, BODY_NOT_READ, &r);
	ok(r.kind == REPLY_READ_BODY, "content type with parameters and any case accepted");
	reply_free(&r);
	route("POST", "/api/notes", NULL, "text/plain", NULL, BODY_NOT_READ, &r);
	ok(is_error(&r, 415), "text/plain: 415");
	reply_free(&r);
	route("POST", "/api/notes", NULL, NULL, NULL, BODY_NOT_READ, &r);
	ok(is_error(&r, 415), "no content type: 415");
	reply_free(&r);
	route("POST", "/api/notes", NULL, "application/jsonp", NULL, BODY_NOT_READ, &r);
	ok(is_error(&r, 415), "application/jsonp: 415");
	reply_free(&r);

	{
		struct http_request req = { .method = "POST", .path = "/api/notes", .content_type = "application/json",
					    .content_length = "65537", .body_state = BODY_NOT_READ };
		route_request(&app, &req, &r);
		ok(is_error(&r, 413), "Content-Length over the limit: 413 before reading");
		reply_free(&r);
		req.content_length = "65536";
		route_request(&app, &req, &r);
		ok(r.kind == REPLY_READ_BODY, "Content-Length at the limit: read");
		reply_free(&r);
		req.content_length = "12x";
		route_request(&app, &req, &r);
		ok(is_error(&r, 400), "bad Content-Length: 400");
		reply_free(&r);
	}
	route("POST", "/api/notes", NULL, "application/json", NULL, BODY_TOO_LARGE, &r);
	ok(is_error(&r, 413), "body grew over the limit: 413");
	reply_free(&r);
}

static void test_post_bodies(void)
{
	static const char *bad[] = {
		"", "{", "{\"text\":\"a\"", "[1,2]", "\"text\"", "{\"txt\":\"a\"}", "{\"text\":1}",
		"{\"text\":null}", "{\"text\":\"\"}", "{\"text\":\"a\"} x", "{\"text\":\"a\"}{}",
		"{'text':'a'}", "{\"text\":\"\\u0000\"}", "{\"text\":\"\xff\xfe\"}",
		"{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{}}}}}}}},\"text\":\"x\"}",
	};
	struct http_reply r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		route("POST", "/api/notes", NULL, "application/json", bad[i], BODY_COMPLETE, &r);
		ok(is_error(&r, 400), "bad body #%zu: 400", i);
		reply_free(&r);
	}
	route("POST", "/api/notes", NULL, "application/json", " {\"text\":\"caf\xc3\xa9 \\\"q\\\"\",\"x\":1}\n",
	      BODY_COMPLETE, &r);
	ok(r.kind == REPLY_STORE_NOTE && r.note_text && strcmp(r.note_text, "caf\xc3\xa9 \"q\"") == 0,
	   "good body: store the decoded text");
	reply_free(&r);
}

static void test_notes_roundtrip(void)
{
	struct http_reply r;
	char path[64];
	int64_t ids[3];

	for (int i = 0; i < 3; i++) {
		char text[32];

		snprintf(text, sizeof(text), "note %d", i);
		route("POST", "/api/notes", NULL, "application/json", "{\"text\":\"x\"}", BODY_COMPLETE, &r);
		ids[i] = notes_insert_wait(app.notes, text, strlen(text));
		reply_note_stored(&r, ids[i], ids[i] < 0 ? (int)ids[i] : 0);
		ok(r.status == 201 && json_int(&r, "id") == ids[i] && ids[i] > 0, "note %d stored: 201 {\"id\":%lld}",
		   i, (long long)ids[i]);
		reply_free(&r);
	}
	snprintf(path, sizeof(path), "/api/notes/%lld", (long long)ids[1]);
	route("GET", path, NULL, NULL, NULL, BODY_NOT_READ, &r);
	ok(r.status == 200 && json_has_string(&r, "text", "note 1") && json_int(&r, "id") == ids[1] &&
	   json_has_string(&r, "created_at", NULL), "GET %s returns it", path);
	reply_free(&r);

	route("GET", "/api/notes", "2", NULL, NULL, BODY_NOT_READ, &r);
	{
		struct json_object *obj = parse(&r), *list = NULL;
		int good = r.status == 200 && obj && json_object_object_get_ex(obj, "notes", &list) &&
			   json_object_array_length(list) == 2 &&
			   json_object_get_int64(json_object_object_get(json_object_array_get_idx(list, 0), "id")) == ids[2];
		ok(good, "GET /api/notes?limit=2: two notes, newest first");
		json_object_put(obj);
	}
	reply_free(&r);

	static const char *bad_limits[] = { "0", "-1", "abc", "1001", "1e3", "", "99999999999999999999" };
	for (size_t i = 0; i < sizeof(bad_limits) / sizeof(bad_limits[0]); i++) {
		route("GET", "/api/notes", bad_limits[i], NULL, NULL, BODY_NOT_READ, &r);
		ok(is_error(&r, 400), "limit=%s: 400", bad_limits[i]);
		reply_free(&r);
	}
	static const char *missing[] = { "/api/notes/999999", "/api/notes/abc", "/api/notes/0", "/api/notes/",
					 "/api/notes/1x", "/api/notes/-1", "/api/notes/99999999999999999999" };
	for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
		route("GET", missing[i], NULL, NULL, NULL, BODY_NOT_READ, &r);
		ok(is_error(&r, 404), "GET %s: 404", missing[i]);
		reply_free(&r);
	}
}

static void test_storage_failure(void)
{
	struct http_reply r;
	int before = count_notes();
	int64_t id;

	notes_fail_commits(app.notes, 1);
	id = notes_insert_wait(app.notes, "lost", 4);
	notes_fail_commits(app.notes, 0);
	ok(id < 0, "failing commit reports an error (%lld)", (long long)id);
	route("POST", "/api/notes", NULL, "application/json", "{\"text\":\"lost\"}", BODY_COMPLETE, &r);
	reply_note_stored(&r, 0, (int)id);
	ok(is_error(&r, 500), "storage failure: 500 JSON error");
	reply_free(&r);
	ok(count_notes() == before, "nothing half-written (%d notes before and after)", before);
	id = notes_insert_wait(app.notes, "after", 5);
	ok(id > 0, "storage works again after the failure");
}

static void test_drain_state(void)
{
	struct http_reply r;

	atomic_store(&app.draining, 1);
	route("GET", "/healthz", NULL, NULL, NULL, BODY_NOT_READ, &r);
	ok(r.status == 503 && json_has_string(&r, "status", "draining"), "healthz 503 while draining");
	reply_free(&r);
	route("GET", "/api/status", NULL, NULL, NULL, BODY_NOT_READ, &r);
	ok(r.status == 200 && json_has_string(&r, "status", "draining"), "status says draining");
	reply_free(&r);
	atomic_store(&app.draining, 0);
}

static void test_identity(void)
{
	char dir[] = "/tmp/myapp-identity-XXXXXX";
	struct identity got;
	char path[256], buf[IDENTITY_MAX];
	FILE *f;

	ok(mkdtemp(dir) != NULL, "temp dir");
	unsetenv("ZDD_RELEASE");
	unsetenv("ZDD_REVISION");
	identity_load(&got, dir);
	ok(strcmp(got.release, "unknown") == 0 && strcmp(got.revision, "unknown") == 0, "no source: unknown");
	snprintf(path, sizeof(path), "%s/RELEASE", dir);
	f = fopen(path, "w");
	fputs("20261125101530-abc1234\nignored\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/REVISION", dir);
	f = fopen(path, "w");
	fputs("abc1234def\n", f);
	fclose(f);
	identity_load(&got, dir);
	ok(strcmp(got.release, "20261125101530-abc1234") == 0 && strcmp(got.revision, "abc1234def") == 0,
	   "files: first line");
	setenv("ZDD_RELEASE", "side-1", 1);
	identity_load(&got, dir);
	ok(strcmp(got.release, "side-1") == 0 && strcmp(got.revision, "abc1234def") == 0, "ZDD_RELEASE wins over the file");
	unsetenv("ZDD_RELEASE");
	identity_clean(buf, sizeof(buf), "a\x01\x7f" "b\tc  ", 8);
	ok(strcmp(buf, "abc") == 0, "control characters dropped (%s)", buf);
	unlink(path);
	snprintf(path, sizeof(path), "%s/RELEASE", dir);
	unlink(path);
	rmdir(dir);
}

int main(void)
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
	test_drain_state();
	test_identity();

	notes_close(notes);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# cannot remove %s\n", dir);
	return tap_done();
}
