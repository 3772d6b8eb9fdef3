/* Routes. Every reply has a Content-Type; every error body is
 * {"error":"..."}; JSON is built with json-c. */
#include "routes.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>

#include "json_body.h"
#include "notes.h"

#define CT_JSON "application/json"
#define CT_HTML "text/html; charset=utf-8"

void
app_state_init(struct app_state *app, const struct identity *id,
    struct notes *notes, size_t max_body)
{
	memset(app, 0, sizeof(*app));
	app->identity = id;
	app->notes = notes;
	app->max_body = max_body;
	app->started_at = time(NULL);
	clock_gettime(CLOCK_MONOTONIC, &app->started_mono);
	atomic_init(&app->requests, 0);
	atomic_init(&app->draining, 0);
}

static int
reply_set(struct http_reply *reply, unsigned status, const char *ctype,
    const char *body, size_t len)
{
	char *copy = malloc(len + 1);

	if (!copy)
		return -ENOMEM;
	memcpy(copy, body, len);
	copy[len] = '\0';
	free(reply->body);
	reply->kind = REPLY_DONE;
	reply->status = status;
	reply->content_type = ctype;
	reply->body = copy;
	reply->body_len = len;
	return 0;
}

/* Takes ownership of obj. */
static int
reply_json(struct http_reply *reply, unsigned status, struct json_object *obj)
{
	const char *s;
	size_t len;
	int ret;

	if (!obj)
		return -ENOMEM;
	s = json_object_to_json_string_length(
	    obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	ret = s ? reply_set(reply, status, CT_JSON, s, len) : -ENOMEM;
	json_object_put(obj);
	return ret;
}

static int
reply_error(struct http_reply *reply, unsigned status, const char *message)
{
	struct json_object *obj = json_object_new_object();

	if (obj &&
	    json_object_object_add(
		obj, "error", json_object_new_string(message)) < 0) {
		json_object_put(obj);
		obj = NULL;
	}
	return reply_json(reply, status, obj);
}

static int
reply_not_allowed(struct http_reply *reply, const char *allow)
{
	reply->allow = allow;
	return reply_error(reply, 405, "method not allowed");
}

static long long
uptime_seconds(const struct app_state *app)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(now.tv_sec - app->started_mono.tv_sec);
}

static void
format_utc(time_t t, char *buf, size_t size)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "unknown");
}

/* Adds to obj; returns 0 or -ENOMEM. */
static int
add(struct json_object *obj, const char *key, struct json_object *val)
{
	if (!val || json_object_object_add(obj, key, val) < 0) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

static int
route_healthz(struct app_state *app, struct http_reply *reply)
{
	int draining = atomic_load(&app->draining);
	struct json_object *obj = json_object_new_object();

	if (!obj ||
	    add(obj, "status",
		json_object_new_string(draining ? "draining" : "ok")) < 0 ||
	    add(obj, "pid", json_object_new_int64(getpid())) < 0 ||
	    add(obj, "release",
		json_object_new_string(app->identity->release)) < 0) {
		json_object_put(obj);
		return -ENOMEM;
	}
	return reply_json(reply, draining ? 503 : 200, obj);
}

static int
route_status(struct app_state *app, struct http_reply *reply)
{
	struct json_object *obj = json_object_new_object();
	char started[32], now[32];

	format_utc(app->started_at, started, sizeof(started));
	format_utc(time(NULL), now, sizeof(now));
	if (!obj ||
	    add(obj, "status",
		json_object_new_string(
		    atomic_load(&app->draining) ? "draining" : "ok")) < 0 ||
	    add(obj, "pid", json_object_new_int64(getpid())) < 0 ||
	    add(obj, "release",
		json_object_new_string(app->identity->release)) < 0 ||
	    add(obj, "revision",
		json_object_new_string(app->identity->revision)) < 0 ||
	    add(obj, "started_at", json_object_new_string(started)) < 0 ||
	    add(obj, "uptime", json_object_new_int64(uptime_seconds(app))) <
		0 ||
	    add(obj, "now", json_object_new_string(now)) < 0 ||
	    add(obj, "requests",
		json_object_new_int64((int64_t)atomic_load(&app->requests))) <
		0) {
		json_object_put(obj);
		return -ENOMEM;
	}
	return reply_json(reply, 200, obj);
}

/* Identity values are printable ASCII (identity_clean); escape the HTML
 * metacharacters anyway. */
static void
html_escape(char *dst, size_t size, const char *src)
{
	size_t n = 0;

	for (; *src && n + 7 < size; src++) {
		const char *rep = NULL;

		switch (*src) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&#39;";
			break;
		default:
			break;
		}
		if (rep) {
			memcpy(dst + n, rep, strlen(rep));
			n += strlen(rep);
		} else {
			dst[n++] = *src;
		}
	}
	dst[n] = '\0';
}

static int
route_index(struct app_state *app, struct http_reply *reply)
{
	char release[IDENTITY_MAX * 6], revision[IDENTITY_MAX * 6];
	char *page = NULL;
	int len, ret;

	html_escape(release, sizeof(release), app->identity->release);
	html_escape(revision, sizeof(revision), app->identity->revision);
	len = asprintf(&page,
	    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	    "<title>myapp %s</title>"
	    "<style>body{font-family:sans-serif;margin:2em}dt{font-weight:bold}</style>"
	    "</head><body><h1>myapp</h1><dl>"
	    "<dt>release</dt><dd>%s</dd><dt>revision</dt><dd>%s</dd>"
	    "<dt>pid</dt><dd>%ld</dd><dt>uptime</dt><dd>%lld s</dd>"
	    "</dl></body></html>\n",
	    release, release, revision, (long)getpid(), uptime_seconds(app));
	if (len < 0)
		return -ENOMEM;
	ret = reply_set(reply, 200, CT_HTML, page, (size_t)len);
	free(page);
	return ret;
}

/* Decimal 1..INT64_MAX, nothing else. */
static int
parse_positive(const char *s, int64_t max, int64_t *out)
{
	int64_t v = 0;

	if (!s || !*s || *s == '0')
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > (max - (*s - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return 0;
}

static int
route_note_get(
    struct app_state *app, const char *id_text, struct http_reply *reply)
{
	struct json_object *note = NULL;
	int64_t id;
	int ret;

	if (parse_positive(id_text, INT64_MAX, &id) < 0)
		return reply_error(reply, 404, "no such note");
	ret = notes_get(app->notes, id, &note);
	if (ret == -ENOENT)
		return reply_error(reply, 404, "no such note");
	if (ret < 0)
		return reply_error(reply, 500, "storage failure");
	return reply_json(reply, 200, note);
}

/* What the list's envelope adds to the array, at most:
 * {"notes":[...],"truncated":true,"next":"/api/notes?limit=1000&before=<int64>"} */
#define LIST_ENVELOPE_MAX 128

/* {"notes":[...],"truncated":false}: the newest notes (below ?before=), at
 * most ?limit= of them and at most NOTES_LIST_BYTES of body. When the byte
 * budget left notes out: "truncated":true and "next", the path of the rest. */
static int
route_note_list(struct app_state *app, const char *limit_arg,
    const char *before_arg, struct http_reply *reply)
{
	struct json_object *list = NULL, *obj;
	int64_t limit = NOTES_LIST_DEFAULT, before = 0, next = 0;
	char next_path[96];
	int ret;

	if (limit_arg && parse_positive(limit_arg, NOTES_LIST_MAX, &limit) < 0)
		return reply_error(
		    reply, 400, "limit must be an integer from 1 to 1000");
	if (before_arg && parse_positive(before_arg, INT64_MAX, &before) < 0)
		return reply_error(reply, 400,
		    "before must be a note id (a positive integer)");
	ret = notes_list(app->notes, (int)limit, before,
	    NOTES_LIST_BYTES - LIST_ENVELOPE_MAX, &list, &next);
	if (ret == -ENOMEM)
		return ret;
	if (ret < 0)
		return reply_error(reply, 500, "storage failure");
	obj = json_object_new_object();
	if (!obj || add(obj, "notes", list) < 0) {
		json_object_put(obj);
		return -ENOMEM;
	}
	snprintf(next_path, sizeof(next_path),
	    "/api/notes?limit=%lld&before=%lld", (long long)limit,
	    (long long)next);
	if (add(obj, "truncated", json_object_new_boolean(next != 0)) < 0 ||
	    (next != 0 &&
		add(obj, "next", json_object_new_string(next_path)) < 0)) {
		json_object_put(obj);
		return -ENOMEM;
	}
	return reply_json(reply, 200, obj);
}

/* application/json, optionally with parameters ("; charset=utf-8"). */
static int
is_json_type(const char *ctype)
{
	static const char json[] = "application/json";
	size_t n = sizeof(json) - 1;

	if (!ctype || strncasecmp(ctype, json, n) != 0)
		return 0;
	ctype += n;
	while (*ctype == ' ' || *ctype == '\t')
		ctype++;
	return *ctype == '\0' || *ctype == ';';
}

static int
route_note_post(struct app_state *app, const struct http_request *req,
    struct http_reply *reply)
{
	const char *why = NULL;
	int ret;

	switch (req->body_state) {
	case BODY_NOT_READ:
		if (!is_json_type(req->content_type))
			return reply_error(reply, 415,
			    "Content-Type must be application/json");
		if (req->content_length) {
			char *end;
			unsigned long long len;

			errno = 0;
			len = strtoull(req->content_length, &end, 10);
			if (errno || *end || end == req->content_length)
				return reply_error(
				    reply, 400, "bad Content-Length");
			if (len > app->max_body)
				return reply_error(
				    reply, 413, "body too large");
		}
		reply->kind = REPLY_READ_BODY;
		return 0;
	case BODY_TOO_LARGE:
		return reply_error(reply, 413, "body too large");
	case BODY_COMPLETE:
		break;
	}
	if (req->body_len > app->max_body)
		return reply_error(reply, 413, "body too large");
	ret = json_body_note_text(req->body, req->body_len, &reply->note_text,
	    &reply->note_len, &why);
	if (ret == -ENOMEM)
		return ret;
	if (ret < 0)
		return reply_error(reply, 400, why);
	reply->kind = REPLY_STORE_NOTE;
	return 0;
}

static int
is_method(const struct http_request *req, const char *m)
{
	return strcmp(req->method, m) == 0;
}

static int
is_read(const struct http_request *req)
{
	return is_method(req, "GET") || is_method(req, "HEAD");
}

int
route_request(struct app_state *app, const struct http_request *req,
    struct http_reply *reply)
{
	static const char notes_prefix[] = "/api/notes/";
	const char *path = req->path ? req->path : "";

	memset(reply, 0, sizeof(*reply));
	if (!req->method)
		return reply_error(reply, 400, "bad request");
	if (req->body_state == BODY_NOT_READ)
		atomic_fetch_add(&app->requests, 1);

	if (strcmp(path, "/") == 0)
		return is_read(req) ? route_index(app, reply)
				    : reply_not_allowed(reply, "GET, HEAD");
	if (strcmp(path, "/healthz") == 0)
		return is_read(req) ? route_healthz(app, reply)
				    : reply_not_allowed(reply, "GET, HEAD");
	if (strcmp(path, "/api/status") == 0)
		return is_read(req) ? route_status(app, reply)
				    : reply_not_allowed(reply, "GET, HEAD");
	if (strcmp(path, "/api/notes") == 0) {
		if (is_read(req))
			return route_note_list(
			    app, req->limit_arg, req->before_arg, reply);
		if (is_method(req, "POST"))
			return route_note_post(app, req, reply);
		return reply_not_allowed(reply, "GET, HEAD, POST");
	}
	if (strncmp(path, notes_prefix, sizeof(notes_prefix) - 1) == 0) {
		if (!is_read(req))
			return reply_not_allowed(reply, "GET, HEAD");
		return route_note_get(
		    app, path + sizeof(notes_prefix) - 1, reply);
	}
	return reply_error(reply, 404, "not found");
}

int
reply_note_stored(struct http_reply *reply, int64_t id, int result)
{
	struct json_object *obj;

	free(reply->note_text);
	reply->note_text = NULL;
	reply->note_len = 0;
	if (result < 0 || id <= 0)
		return reply_error(reply, 500, "storage failure");
	obj = json_object_new_object();
	if (!obj || add(obj, "id", json_object_new_int64(id)) < 0) {
		json_object_put(obj);
		return -ENOMEM;
	}
	return reply_json(reply, 201, obj);
}

void
reply_free(struct http_reply *reply)
{
	free(reply->body);
	free(reply->note_text);
	memset(reply, 0, sizeof(*reply));
}
