/* A tiny blocking HTTP/1.1 client over UNIX sockets, for the tests. */
#ifndef MYAPP_TEST_HTTP_CLIENT_H
#define MYAPP_TEST_HTTP_CLIENT_H

#include <stddef.h>

struct http_result {
	int status;           /* 0 when no status line came back */
	int connection_close; /* "Connection: close" in the answer */
	char content_type[128];
	char allow[128];
	char body[8192];
	size_t body_len;
	int connect_errno; /* errno of a failed connect, else 0 */
};

int http_connect_unix(const char *path); /* fd or -errno */
int http_write_all(int fd, const void *buf, size_t len);
/* Read one answer (headers + Content-Length body); 0 or -1. */
int http_read_response(int fd, struct http_result *res);
/* One request on a fresh connection. 0 when an answer came back. */
int http_do(const char *path, const char *method, const char *target,
    const char *ctype, const char *body, struct http_result *res);

#endif
