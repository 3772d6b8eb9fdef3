/* Unit tests: the incremental HTTP/1.1 response parser. */
#include <errno.h>
#include <string.h>

#include "http_response.h"
#include "../../lib/tap.h"

static char body[4096];

/* Feeds `text` in pieces of `step` bytes; returns the last result and how
 * many bytes were consumed in total. */
static int
feed_split(struct http_response *r, const char *text, size_t len, size_t step,
    size_t *total)
{
	int rc = HTTP_PARSE_INCOMPLETE;
	*total = 0;
	for (size_t off = 0; off < len && rc == HTTP_PARSE_INCOMPLETE;) {
		size_t n = len - off < step ? len - off : step;
		size_t used = 0;
		rc = http_response_feed(r, text + off, n, &used);
		*total += used;
		if (rc != HTTP_PARSE_INCOMPLETE)
			break;
		off += n;
	}
	return rc;
}

static int
parse_all(struct http_response *r, const char *text, size_t step, size_t *total)
{
	http_response_init(r, body, sizeof(body));
	return feed_split(r, text, strlen(text), step, total);
}

int
main(void)
{
	struct http_response r;
	size_t used;
	int rc;
	const char *simple =
	    "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"id\":7}";

	for (size_t step = 1; step <= 7; step += 3) {
		rc = parse_all(&r, simple, step, &used);
		ok(rc == HTTP_PARSE_COMPLETE && r.status == 201 &&
			r.keep_alive && strcmp(body, "{\"id\":7}") == 0 &&
			used == strlen(simple),
		    "content-length body, split every %zu bytes", step);
	}

	const char *two =
	    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 204 No Content\r\n\r\n";
	rc = parse_all(&r, two, 1000, &used);
	ok(rc == HTTP_PARSE_COMPLETE &&
		used ==
		    strlen("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"),
	    "stops at the end of the first response (leftover bytes not consumed)");

	const char *chunked =
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-Trailer: y\r\n\r\n";
	for (size_t step = 1; step <= 64; step *= 4) {
		rc = parse_all(&r, chunked, step, &used);
		ok(rc == HTTP_PARSE_COMPLETE &&
			strcmp(body, "Wikipedia in \r\n\r\nchunks.") == 0 &&
			used == strlen(chunked),
		    "chunked body with extension and trailer, split every %zu bytes",
		    step);
	}

	rc = parse_all(&r,
	    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
	    5, &used);
	ok(rc == HTTP_PARSE_COMPLETE && !r.keep_alive,
	    "Connection: close ends keep-alive");
	rc = parse_all(&r,
	    "HTTP/1.1 200 OK\r\nconnection: Keep-Alive, CLOSE\r\nContent-Length: 0\r\n\r\n",
	    5, &used);
	ok(rc == HTTP_PARSE_COMPLETE && !r.keep_alive,
	    "Connection token list, any case");
	rc = parse_all(
	    &r, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 5, &used);
	ok(rc == HTTP_PARSE_COMPLETE && !r.keep_alive,
	    "HTTP/1.0 closes by default");
	rc = parse_all(&r,
	    "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
	    5, &used);
	ok(rc == HTTP_PARSE_COMPLETE && r.keep_alive,
	    "HTTP/1.0 with keep-alive");

	rc = parse_all(&r, "HTTP/1.1 200 OK\r\n\r\nuntil the end", 3, &used);
	ok(rc == HTTP_PARSE_INCOMPLETE && !r.keep_alive,
	    "no length: body runs to EOF");
	ok(http_response_eof(&r) == HTTP_PARSE_COMPLETE &&
		strcmp(body, "until the end") == 0,
	    "EOF completes a close-delimited body");

	rc = parse_all(&r, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
	    100, &used);
	ok(rc == HTTP_PARSE_INCOMPLETE && http_response_eof(&r) == -EPIPE,
	    "EOF inside a Content-Length body is an error");
	rc = parse_all(&r, "HTTP/1.1 200 OK\r\nContent-Le", 100, &used);
	ok(rc == HTTP_PARSE_INCOMPLETE && http_response_eof(&r) == -EPIPE,
	    "EOF inside the headers is an error");

	rc = parse_all(&r,
	    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
	    2, &used);
	ok(rc == HTTP_PARSE_COMPLETE && r.status == 200 &&
		strcmp(body, "x") == 0,
	    "interim 100 is skipped");
	rc = parse_all(&r, "HTTP/1.1 204 No Content\r\n\r\n", 2, &used);
	ok(rc == HTTP_PARSE_COMPLETE && r.status == 204, "204 has no body");
	rc = parse_all(&r,
	    "HTTP/1.1 503 Service Unavailable\nContent-Length: 3\n\nbye", 2,
	    &used);
	ok(rc == HTTP_PARSE_COMPLETE && r.status == 503 &&
		strcmp(body, "bye") == 0,
	    "bare LF line endings accepted");

	/* malformed */
	const char *bad[] = {
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 abc OK\r\n\r\n",
		"ICY 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nNoColonHere\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n",
		"HTTP/1.1 200 OK\r\n folded\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = parse_all(&r, bad[i], 3, &used);
		ok(rc == -EBADMSG, "malformed #%zu rejected", i);
	}
	rc = parse_all(&r,
	    "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999\r\n\r\n", 100,
	    &used);
	ok(rc == -EMSGSIZE, "absurd Content-Length rejected");

	static char huge[HTTP_LINE_MAX + 64];
	memset(huge, 'a', sizeof(huge) - 1);
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): a prefix */
	memcpy(huge, "HTTP/1.1 200 OK\r\nX: ", 20);
	rc = parse_all(&r, huge, 512, &used);
	ok(rc == -EMSGSIZE, "over-long header line rejected");

	/* body capture is bounded */
	char small[4];
	http_response_init(&r, small, sizeof(small));
	const char *big =
	    "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
	rc = http_response_feed(&r, big, strlen(big), &used);
	ok(rc == HTTP_PARSE_COMPLETE && strcmp(small, "012") == 0 &&
		r.body_total == 10,
	    "body capture truncated to its buffer, total still counted");
	return tap_done();
}
