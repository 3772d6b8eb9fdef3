/*
 * Reading a small file the pusher wrote (Procfile, app.json): a regular
 * file, at most max bytes, NUL-terminated; and writing all of a buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdd.h"

/* 0 and *text (free it); -ENOENT when missing (why empty); else why. */
int
file_read_bounded(
    const char *path, size_t max, char **text, char *why, size_t whylen)
{
	struct stat st;
	size_t got = 0;
	char *buf = NULL;
	int fd, rc = 0;

	*text = NULL;
	why[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		if (rc != -ENOENT)
			snprintf(why, whylen, "cannot open %s: %m", path);
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(why, whylen, "cannot stat %s: %m", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		rc = -EINVAL;
		snprintf(why, whylen,
		    "%s: not a regular file of at most %zu bytes", path, max);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		rc = -ENOMEM;
		snprintf(why, whylen, "cannot read %s: out of memory", path);
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			snprintf(why, whylen, "cannot read %s: %m", path);
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	if (memchr(buf, '\0', got) != NULL) {
		rc = -EINVAL;
		snprintf(why, whylen, "%s: contains a NUL byte", path);
		goto out;
	}
	*text = buf;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

/* All n bytes of s to fd (a short write or EINTR continues): 0 or -errno. */
int
fd_write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}
