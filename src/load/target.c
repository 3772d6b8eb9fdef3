/* Target parsing, the loopback-only rule, and non-blocking connect. */
#include "target.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

int
target_unix(struct target *t, const char *path)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&t->addr;
	size_t len = strlen(path);

	memset(t, 0, sizeof(*t));
	if (len == 0 || len >= sizeof(sun->sun_path)) {
		fprintf(stderr,
		    "zdd-load: UNIX socket path too long or empty: %s\n", path);
		return -ENAMETOOLONG;
	}
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, len + 1);
	t->addr_len =
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	t->family = AF_UNIX;
	snprintf(t->name, sizeof(t->name), "unix:%.150s", path);
	return 0;
}

bool
target_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
		    (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return true;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			return in6->sin6_addr.s6_addr[12] == 127;
	}
	return false;
}

int
target_tcp(struct target *t, const char *hostport, bool allow_nonloopback)
{
	char host[256];
	const char *port;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	int rc;

	memset(t, 0, sizeof(*t));
	if (hostport[0] == '[') {
		const char *close = strchr(hostport, ']');
		if (!close || close[1] != ':' ||
		    (size_t)(close - hostport - 1) >= sizeof(host))
			goto bad;
		memcpy(host, hostport + 1, (size_t)(close - hostport - 1));
		host[close - hostport - 1] = '\0';
		port = close + 2;
	} else {
		const char *colon = strrchr(hostport, ':');
		if (!colon || (size_t)(colon - hostport) >= sizeof(host))
			goto bad;
		memcpy(host, hostport, (size_t)(colon - hostport));
		host[colon - hostport] = '\0';
		port = colon + 1;
	}
	if (!host[0] || !port[0])
		goto bad;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "zdd-load: cannot resolve %s: %s\n", hostport,
		    gai_strerror(rc));
		return -EINVAL;
	}
	if (res->ai_addrlen > sizeof(t->addr)) {
		freeaddrinfo(res);
		return -EINVAL;
	}
	memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
	t->addr_len = res->ai_addrlen;
	t->family = res->ai_family;
	freeaddrinfo(res);
	if (!allow_nonloopback &&
	    !target_is_loopback((struct sockaddr *)&t->addr)) {
		fprintf(stderr,
		    "zdd-load: refusing %s: not a loopback address "
		    "(load goes only to 127.0.0.0/8, ::1 or test namespaces: --allow-nonloopback)\n",
		    hostport);
		return -EPERM;
	}
	snprintf(t->name, sizeof(t->name), "tcp:%.150s", hostport);
	return 0;
bad:
	fprintf(stderr,
	    "zdd-load: bad address %s (want HOST:PORT or [V6]:PORT)\n",
	    hostport);
	return -EINVAL;
}

int
target_connect(const struct target *t, bool *in_progress)
{
	int fd =
	    socket(t->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (t->family != AF_UNIX) {
		int one = 1;
		/* small requests: do not let Nagle hold them back */
		if (setsockopt(
			fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
			int err = errno;
			close(fd);
			return -err;
		}
	}
	*in_progress = false;
	if (connect(fd, (const struct sockaddr *)&t->addr, t->addr_len) < 0) {
		int err = errno;
		if (err == EINPROGRESS) {
			*in_progress = true;
			return fd;
		}
		close(fd);
		return -err;
	}
	return fd;
}
