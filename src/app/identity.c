/* Release identity: environment first (the unit sets ZDD_RELEASE for side
 * instances), then the files the deploy engine writes into the release. */
#include "identity.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
identity_clean(char *dst, size_t dst_size, const char *src, size_t src_len)
{
	size_t n = 0;

	for (size_t i = 0; i < src_len && n + 1 < dst_size; i++) {
		unsigned char c = (unsigned char)src[i];
		if (c == '\n' || c == '\r' || c == '\0')
			break;
		if (c < 0x20 || c > 0x7e)
			continue; /* the value ends up in HTML and logs */
		dst[n++] = (char)c;
	}
	while (n > 0 && dst[n - 1] == ' ')
		n--;
	dst[n] = '\0';
	if (n == 0)
		snprintf(dst, dst_size, "unknown");
}

static int
read_small_file(
    const char *dir, const char *name, char *buf, size_t size, size_t *len)
{
	char path[4096];
	int fd;
	ssize_t got;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	got = read(fd, buf, size);
	if (got < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	close(fd);
	*len = (size_t)got;
	return 0;
}

static void
load_one(char *dst, const char *env_name, const char *dir, const char *file)
{
	const char *env = getenv(env_name);
	char buf[IDENTITY_MAX];
	size_t len = 0;

	if (env && *env) {
		identity_clean(dst, IDENTITY_MAX, env, strlen(env));
		return;
	}
	if (read_small_file(dir, file, buf, sizeof(buf), &len) < 0)
		len = 0;
	identity_clean(dst, IDENTITY_MAX, buf, len);
}

void
identity_load(struct identity *id, const char *dir)
{
	load_one(id->release, "ZDD_RELEASE", dir, "RELEASE");
	load_one(id->revision, "ZDD_REVISION", dir, "REVISION");
}
