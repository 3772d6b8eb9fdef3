/* Incremental HTTP/1.1 response parser: feed it bytes as they arrive. */
#ifndef ZDD_LOAD_HTTP_RESPONSE_H
#define ZDD_LOAD_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_LINE_MAX 8192   /* longest status/header/chunk-size line */
#define HTTP_HEADERS_MAX 128 /* most header lines in one response */
#define HTTP_BODY_MAX (UINT64_C(1) << 32) /* largest body we accept */

enum http_parse_result {
	HTTP_PARSE_INCOMPLETE = 0,
	HTTP_PARSE_COMPLETE = 1,
};

enum http_state {
	HTTP_STATUS_LINE,
	HTTP_HEADER_LINE,
	HTTP_BODY_LENGTH,
	HTTP_BODY_EOF,
	HTTP_CHUNK_SIZE,
	HTTP_CHUNK_DATA,
	HTTP_CHUNK_DATA_END,
	HTTP_TRAILER_LINE,
	HTTP_DONE,
};

struct http_response {
	enum http_state state;
	int status;
	bool keep_alive; /* false: the server closes after this response */
	bool chunked;
	bool have_length;
	uint64_t content_length;
	uint64_t remaining; /* body or chunk bytes still to read */
	unsigned header_count;
	size_t bytes_seen; /* every byte consumed for this response */
	char line[HTTP_LINE_MAX];
	size_t line_len;
	/* body capture: the first body_cap bytes are kept (NUL-terminated) */
	char *body;
	size_t body_cap;
	size_t body_len;
	uint64_t body_total;
};

/* body may be NULL (body_cap 0): the body is then only counted. body_cap
 * includes room for the terminating NUL. */
void http_response_init(struct http_response *r, char *body, size_t body_cap);
/* Consume bytes; *consumed says how many were used (a complete response
 * leaves the rest). Returns HTTP_PARSE_INCOMPLETE, HTTP_PARSE_COMPLETE or
 * -EBADMSG (malformed) / -EMSGSIZE (a limit was exceeded). */
int http_response_feed(
    struct http_response *r, const char *data, size_t len, size_t *consumed);
/* The server closed the connection: completes a close-delimited body,
 * otherwise the response is truncated (-EPIPE). */
int http_response_eof(struct http_response *r);

#endif
