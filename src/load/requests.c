/* The request mix (GET status / POST note), acknowledged writes, read-back. */
#include "requests.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
mix_is_post(const struct mix *m, uint64_t seq)
{
	/* exact and evenly spread: request seq is a POST when the running
	 * count of POSTs steps up (ratio 0.2 -> every 5th request) */
	return floor((double)(seq + 1) * m->post_ratio) >
	    floor((double)seq * m->post_ratio);
}

static int
fit(int n, size_t cap)
{
	return (n < 0 || (size_t)n >= cap) ? -ENOBUFS : n;
}

int
mix_build(void *ctx, uint64_t seq, bool keepalive, char *buf, size_t cap)
{
	const struct mix *m = ctx;
	const char *conn = keepalive ? "" : "Connection: close\r\n";

	if (!mix_is_post(m, seq))
		return fit(
		    snprintf(buf, cap, "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n",
			m->get_path, m->host, conn),
		    cap);
	char body[64];
	int blen = snprintf(body, sizeof(body), "{\"text\":\"zdd-load %llu\"}",
	    (unsigned long long)seq);
	return fit(
	    snprintf(buf, cap,
		"POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Type: application/json\r\n"
		"Content-Length: %d\r\n\r\n%s",
		m->post_path, m->host, conn, blen, body),
	    cap);
}

int
parse_ack_id(const char *body, int64_t *id)
{
	json_object *obj = json_tokener_parse(body);
	json_object *v;
	int rc = -EBADMSG;

	if (obj && json_object_is_type(obj, json_type_object) &&
	    json_object_object_get_ex(obj, "id", &v) &&
	    json_object_is_type(v, json_type_int)) {
		*id = json_object_get_int64(v);
		rc = 0;
	}
	json_object_put(obj);
	return rc;
}

int
note_text_matches(const char *body, const char *want)
{
	json_object *obj = json_tokener_parse(body);
	json_object *v;
	int match = 0;

	if (obj && json_object_is_type(obj, json_type_object) &&
	    json_object_object_get_ex(obj, "text", &v) &&
	    json_object_is_type(v, json_type_string))
		match = strcmp(json_object_get_string(v), want) == 0;
	json_object_put(obj);
	return match;
}

void
mix_on_response(void *ctx, uint64_t seq, const struct http_response *resp)
{
	struct mix *m = ctx;
	int64_t id;

	if (!mix_is_post(m, seq) || resp->status < 200 || resp->status > 299)
		return;
	if (!resp->body || parse_ack_id(resp->body, &id) < 0) {
		m->posts_2xx_without_id++;
		return;
	}
	if (m->acks_len == m->acks_cap) {
		size_t cap = m->acks_cap ? m->acks_cap * 2 : 1024;
		struct ack *a = realloc(m->acks, cap * sizeof(*a));
		if (!a) {
			m->alloc_error = -ENOMEM;
			m->posts_2xx_without_id++;
			return;
		}
		m->acks = a;
		m->acks_cap = cap;
	}
	m->acks[m->acks_len++] = (struct ack){ .seq = seq, .id = id };
}

int
verify_build(void *ctx, uint64_t i, bool keepalive, char *buf, size_t cap)
{
	const struct verify *v = ctx;
	return fit(
	    snprintf(buf, cap, "GET %s/%lld HTTP/1.1\r\nHost: %s\r\n%s\r\n",
		v->mix->post_path, (long long)v->mix->acks[i].id, v->mix->host,
		keepalive ? "" : "Connection: close\r\n"),
	    cap);
}

void
verify_on_response(void *ctx, uint64_t i, const struct http_response *resp)
{
	struct verify *v = ctx;
	char want[64];

	if (resp->status == 404 || resp->status == 410) {
		v->lost_404++;
		return;
	}
	if (resp->status != 200) {
		v->errors++;
		return;
	}
	snprintf(want, sizeof(want), "zdd-load %llu",
	    (unsigned long long)v->mix->acks[i].seq);
	if (resp->body && note_text_matches(resp->body, want))
		v->verified++;
	else
		v->lost_mismatch++;
}

bool
valid_path(const char *path)
{
	size_t len = strlen(path);
	if (path[0] != '/' || len >= PATH_MAX_LEN)
		return false;
	for (const char *p = path; *p; p++)
		if (*p <= ' ' || *p >= 0x7f)
			return false;
	return true;
}

bool
valid_host(const char *host)
{
	size_t len = strlen(host);
	if (len == 0 || len > HOST_MAX_LEN)
		return false;
	for (const char *p = host; *p; p++)
		if (*p <= ' ' || *p >= 0x7f)
			return false;
	return true;
}
