/* Listening sockets. Inherited ones are shared with systemd and the other
 * instance: they are only checked and marked close-on-exec here, never
 * closed or shut down. */
#include "listen.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#define LISTEN_BACKLOG 4096

int
listen_inherited(int *fds, size_t max)
{
	int n = sd_listen_fds(1);
	size_t count = 0;

	if (n < 0) {
		fprintf(stderr,
		    "myapp: cannot read the sockets passed by systemd: %s\n",
		    strerror(-n));
		return n;
	}
	for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
		int r = sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1);

		if (r <= 0) {
			fprintf(stderr,
			    "myapp: passed fd %d is not a listening stream socket, ignored\n",
			    fd);
			continue;
		}
		if (count == max) {
			fprintf(stderr,
			    "myapp: more than %zu sockets passed, fd %d ignored\n",
			    max, fd);
			continue;
		}
		/* Children (none today) must not keep the shared socket open. */
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
			fprintf(stderr,
			    "myapp: cannot set close-on-exec on fd %d: %m\n",
			    fd);
		fds[count++] = fd;
	}
	if (n > 0 && count == 0) {
		fprintf(stderr,
		    "myapp: %d fds passed, none is a listening stream socket\n",
		    n);
		return -EBADF;
	}
	return (int)count;
}

static int
bind_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "myapp: socket path too long: %s\n", path);
		return -ENAMETOOLONG;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	/* A stale socket from an earlier run: replace it, but nothing else. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0) {
		int err = -errno;

		fprintf(stderr, "myapp: cannot listen on %s: %s\n", path,
		    strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

static int
bind_inet(const char *addr)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char host[256];
	const char *colon = strrchr(addr, ':');
	const char *port;
	size_t hlen;
	int fd, rc, one = 1;

	if (!colon || colon[1] == '\0') {
		fprintf(stderr,
		    "myapp: --listen wants HOST:PORT or /path, not %s\n", addr);
		return -EINVAL;
	}
	port = colon + 1;
	hlen = (size_t)(colon - addr);
	if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
		addr++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		return -ENAMETOOLONG;
	memcpy(host, addr, hlen);
	host[hlen] = '\0';
	rc = getaddrinfo(hlen ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "myapp: cannot resolve %s: %s\n", host,
		    gai_strerror(rc));
		return -EINVAL;
	}
	fd = socket(
	    res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
	if (fd < 0) {
		fd = -errno;
		goto out;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0) {
		int err = -errno;

		fprintf(stderr, "myapp: cannot listen on %s:%s: %s\n", host,
		    port, strerror(-err));
		close(fd);
		fd = err;
	}
out:
	freeaddrinfo(res);
	return fd;
}

int
listen_bind(const char *addr)
{
	if (!addr || !*addr)
		return -EINVAL;
	if (addr[0] == '/')
		return bind_unix(addr);
	return bind_inet(addr);
}
