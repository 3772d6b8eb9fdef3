/* Incremental HTTP/1.1 response parser (status line, headers,
 * Content-Length, chunked and close-delimited bodies, Connection). */
#include "http_response.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

void
http_response_init(struct http_response *r, char *body, size_t body_cap)
{
	memset(r, 0, sizeof(*r));
	r->state = HTTP_STATUS_LINE;
	r->keep_alive = true;
	r->body = body;
	r->body_cap = body_cap;
	if (body && body_cap)
		body[0] = '\0';
}

static void
keep_body(struct http_response *r, const char *data, size_t len)
{
	r->body_total += len;
	if (!r->body || r->body_cap == 0)
		return;
	size_t room = r->body_cap - 1 - r->body_len;
	size_t n = len < room ? len : room;
	memcpy(r->body + r->body_len, data, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
}

static bool
token_in_list(const char *list, const char *token)
{
	size_t tlen = strlen(token);
	const char *p = list;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *start = p;
		while (*p && *p != ',')
			p++;
		const char *end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if ((size_t)(end - start) == tlen &&
		    strncasecmp(start, token, tlen) == 0)
			return true;
	}
	return false;
}

static int
parse_status_line(struct http_response *r, const char *line)
{
	/* "HTTP/1.x SSS[ reason]" */
	if (strncmp(line, "HTTP/1.", 7) != 0 ||
	    (line[7] != '0' && line[7] != '1') || line[8] != ' ')
		return -EBADMSG;
	const char *s = line + 9;
	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
	    !isdigit((unsigned char)s[2]) || (s[3] != '\0' && s[3] != ' '))
		return -EBADMSG;
	r->status = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (r->status < 100)
		return -EBADMSG;
	/* HTTP/1.0 closes unless it says keep-alive */
	r->keep_alive = line[7] == '1';
	return 0;
}

static int
parse_length(const char *value, uint64_t *out)
{
	uint64_t v = 0;
	if (!isdigit((unsigned char)*value))
		return -EBADMSG;
	for (; isdigit((unsigned char)*value); value++) {
		v = v * 10 + (uint64_t)(*value - '0');
		if (v > HTTP_BODY_MAX)
			return -EMSGSIZE;
	}
	while (*value == ' ' || *value == '\t')
		value++;
	if (*value)
		return -EBADMSG;
	*out = v;
	return 0;
}

static int
parse_header_line(struct http_response *r, char *line)
{
	if (++r->header_count > HTTP_HEADERS_MAX)
		return -EMSGSIZE;
	char *colon = strchr(line, ':');
	if (!colon || colon == line)
		return -EBADMSG;
	*colon = '\0';
	for (char *p = line; *p; p++)
		if (*p == ' ' ||
		    *p ==
			'\t') /* no whitespace before the colon (RFC 9112 5.1) */
			return -EBADMSG;
	char *value = colon + 1;
	while (*value == ' ' || *value == '\t')
		value++;
	size_t vlen = strlen(value);
	while (vlen && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
		value[--vlen] = '\0';

	if (strcasecmp(line, "Content-Length") == 0) {
		uint64_t len;
		int rc = parse_length(value, &len);
		if (rc < 0)
			return rc;
		if (r->have_length && len != r->content_length)
			return -EBADMSG;
		r->have_length = true;
		r->content_length = len;
	} else if (strcasecmp(line, "Transfer-Encoding") == 0) {
		if (token_in_list(value, "chunked"))
			r->chunked = true;
		else
			return -EBADMSG; /* a coding we cannot frame */
	} else if (strcasecmp(line, "Connection") == 0) {
		if (token_in_list(value, "close"))
			r->keep_alive = false;
		else if (token_in_list(value, "keep-alive"))
			r->keep_alive = true;
	}
	return 0;
}

/* Headers are over: decide how the body is framed. */
static int
end_of_headers(struct http_response *r)
{
	if (r->status < 200 && r->status != 101) {
		/* interim response (100 Continue): the real one follows */
		bool keep = r->keep_alive;
		char *body = r->body;
		size_t cap = r->body_cap;
		size_t seen = r->bytes_seen;
		http_response_init(r, body, cap);
		r->keep_alive = keep;
		r->bytes_seen = seen;
		return HTTP_PARSE_INCOMPLETE;
	}
	if (r->status == 101)
		return -EBADMSG; /* we never ask to switch protocols */
	if (r->status == 204 || r->status == 304) {
		r->state = HTTP_DONE;
		return HTTP_PARSE_COMPLETE;
	}
	if (r->chunked) {
		/* chunked wins over Content-Length (RFC 9112 6.3); the
		 * connection must not be reused after such a message */
		if (r->have_length)
			r->keep_alive = false;
		r->state = HTTP_CHUNK_SIZE;
		return HTTP_PARSE_INCOMPLETE;
	}
	if (r->have_length) {
		r->remaining = r->content_length;
		r->state = r->remaining ? HTTP_BODY_LENGTH : HTTP_DONE;
		return r->remaining ? HTTP_PARSE_INCOMPLETE
				    : HTTP_PARSE_COMPLETE;
	}
	r->keep_alive = false; /* body ends when the server closes */
	r->state = HTTP_BODY_EOF;
	return HTTP_PARSE_INCOMPLETE;
}

static int
parse_chunk_size(struct http_response *r, const char *line)
{
	uint64_t v = 0;
	const char *p = line;
	if (!isxdigit((unsigned char)*p))
		return -EBADMSG;
	for (; isxdigit((unsigned char)*p); p++) {
		int d = isdigit((unsigned char)*p)
		    ? *p - '0'
		    : tolower((unsigned char)*p) - 'a' + 10;
		v = v * 16 + (uint64_t)d;
		if (v > HTTP_BODY_MAX)
			return -EMSGSIZE;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p && *p != ';')
		return -EBADMSG;
	if (r->body_total + v > HTTP_BODY_MAX)
		return -EMSGSIZE;
	r->remaining = v;
	r->state = v ? HTTP_CHUNK_DATA : HTTP_TRAILER_LINE;
	return HTTP_PARSE_INCOMPLETE;
}

/* A complete line (without CRLF) for the line-oriented states. */
static int
handle_line(struct http_response *r, char *line)
{
	int rc;
	switch (r->state) {
	case HTTP_STATUS_LINE:
		rc = parse_status_line(r, line);
		if (rc < 0)
			return rc;
		r->state = HTTP_HEADER_LINE;
		return HTTP_PARSE_INCOMPLETE;
	case HTTP_HEADER_LINE:
		if (line[0] == '\0')
			return end_of_headers(r);
		if (line[0] == ' ' || line[0] == '\t')
			return -EBADMSG; /* obsolete line folding */
		rc = parse_header_line(r, line);
		return rc < 0 ? rc : HTTP_PARSE_INCOMPLETE;
	case HTTP_CHUNK_SIZE:
		return parse_chunk_size(r, line);
	case HTTP_CHUNK_DATA_END:
		if (line[0] != '\0')
			return -EBADMSG;
		r->state = HTTP_CHUNK_SIZE;
		return HTTP_PARSE_INCOMPLETE;
	case HTTP_TRAILER_LINE:
		if (line[0] == '\0') {
			r->state = HTTP_DONE;
			return HTTP_PARSE_COMPLETE;
		}
		if (++r->header_count > HTTP_HEADERS_MAX)
			return -EMSGSIZE;
		return HTTP_PARSE_INCOMPLETE;
	default:
		return -EBADMSG;
	}
}

static bool
line_state(enum http_state s)
{
	return s == HTTP_STATUS_LINE || s == HTTP_HEADER_LINE ||
	    s == HTTP_CHUNK_SIZE || s == HTTP_CHUNK_DATA_END ||
	    s == HTTP_TRAILER_LINE;
}

int
http_response_feed(
    struct http_response *r, const char *data, size_t len, size_t *consumed)
{
	size_t i = 0;
	int rc = HTTP_PARSE_INCOMPLETE;

	if (r->state == HTTP_DONE) {
		*consumed = 0;
		return HTTP_PARSE_COMPLETE;
	}
	while (i < len) {
		if (line_state(r->state)) {
			const char *nl = memchr(data + i, '\n', len - i);
			size_t take = nl ? (size_t)(nl - (data + i)) : len - i;
			if (r->line_len + take >= sizeof(r->line)) {
				rc = -EMSGSIZE;
				break;
			}
			memcpy(r->line + r->line_len, data + i, take);
			r->line_len += take;
			i += take;
			if (!nl)
				break;
			i++; /* the '\n' */
			if (r->line_len && r->line[r->line_len - 1] == '\r')
				r->line_len--;
			r->line[r->line_len] = '\0';
			if (memchr(r->line, '\0', r->line_len) ||
			    memchr(r->line, '\r', r->line_len)) {
				rc = -EBADMSG;
				break;
			}
			r->line_len = 0;
			rc = handle_line(r, r->line);
		} else if (r->state == HTTP_BODY_EOF) {
			keep_body(r, data + i, len - i);
			if (r->body_total > HTTP_BODY_MAX) {
				rc = -EMSGSIZE;
				break;
			}
			i = len;
		} else { /* HTTP_BODY_LENGTH or HTTP_CHUNK_DATA */
			size_t avail = len - i;
			size_t n =
			    r->remaining < avail ? (size_t)r->remaining : avail;
			keep_body(r, data + i, n);
			i += n;
			r->remaining -= n;
			if (r->remaining == 0) {
				if (r->state == HTTP_BODY_LENGTH) {
					r->state = HTTP_DONE;
					rc = HTTP_PARSE_COMPLETE;
				} else {
					r->state = HTTP_CHUNK_DATA_END;
				}
			}
		}
		if (rc != HTTP_PARSE_INCOMPLETE)
			break;
	}
	r->bytes_seen += i;
	*consumed = i;
	return rc;
}

int
http_response_eof(struct http_response *r)
{
	if (r->state == HTTP_DONE)
		return HTTP_PARSE_COMPLETE;
	if (r->state == HTTP_BODY_EOF) {
		r->state = HTTP_DONE;
		return HTTP_PARSE_COMPLETE;
	}
	return -EPIPE;
}
