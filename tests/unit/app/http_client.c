#include "http_client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define READ_TIMEOUT_MS 20000

int
http_connect_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int
http_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static ssize_t
read_some(int fd, char *buf, size_t size)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int r = poll(&pfd, 1, READ_TIMEOUT_MS);

	if (r <= 0)
		return -1;
	return read(fd, buf, size);
}

static void
header_value(const char *headers, const char *name, char *out, size_t size)
{
	size_t nlen = strlen(name);
	const char *p = headers;

	out[0] = '\0';
	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			const char *v = p + nlen + 1;
			size_t len;
			while (*v == ' ')
				v++;
			len = strcspn(v, "\r\n");
			if (len >= size)
				len = size - 1;
			memcpy(out, v, len);
			out[len] = '\0';
			return;
		}
	}
}

int
http_read_response(int fd, struct http_result *res)
{
	char buf[16384];
	size_t len = 0;
	char *end = NULL;
	char value[64];
	size_t want;

	memset(res, 0, sizeof(*res));
	while (!end) {
		ssize_t n;
		if (len + 1 >= sizeof(buf))
			return -1;
		n = read_some(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	*end = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", &res->status) != 1)
		return -1;
	header_value(buf, "Connection", value, sizeof(value));
	res->connection_close = strcasecmp(value, "close") == 0;
	header_value(
	    buf, "Content-Type", res->content_type, sizeof(res->content_type));
	header_value(buf, "Allow", res->allow, sizeof(res->allow));
	header_value(buf, "Content-Length", value, sizeof(value));
	want = (size_t)strtoul(value, NULL, 10);
	if (want >= sizeof(res->body))
		return -1;
	{
		size_t have = len - (size_t)(end + 4 - buf);
		if (have > want)
			have = want;
		memcpy(res->body, end + 4, have);
		res->body_len = have;
	}
	while (res->body_len < want) {
		ssize_t n = read_some(
		    fd, res->body + res->body_len, want - res->body_len);
		if (n <= 0)
			return -1;
		res->body_len += (size_t)n;
	}
	res->body[res->body_len] = '\0';
	return 0;
}

int
http_do(const char *path, const char *method, const char *target,
    const char *ctype, const char *body, struct http_result *res)
{
	char req[8192];
	int fd, len, ret;

	memset(res, 0, sizeof(*res));
	fd = http_connect_unix(path);
	if (fd < 0) {
		res->connect_errno = -fd;
		return -1;
	}
	if (body)
		len = snprintf(req, sizeof(req),
		    "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
		    "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n%s",
		    method, target, ctype ? ctype : "application/json",
		    strlen(body), body);
	else
		len = snprintf(req, sizeof(req),
		    "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
		    method, target);
	if (len < 0 || (size_t)len >= sizeof(req)) {
		close(fd);
		return -1;
	}
	ret = http_write_all(fd, req, (size_t)len);
	if (ret == 0)
		ret = http_read_response(fd, res);
	close(fd);
	return ret;
}
