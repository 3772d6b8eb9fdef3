/*
 * Where a release is on disk:
 *
 *   APP_ROOT/releases/<id>   id = UTC YYYYmmddHHMMSS-<sha7>, sorts by time
 *   APP_ROOT/releases/<id>.tmp          while it is checked out
 *   APP_ROOT/releases/.<id>.index       git's private index meanwhile
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdd.h"

/* APP_ROOT/releases, APP_ROOT/releases/<entry> or
 * APP_ROOT/releases/<entry>/<name>; -ENAMETOOLONG if it does not fit. */
int
release_path(const char *app_root, const char *entry, const char *name,
    char *out, size_t n)
{
	int len;

	if (entry == NULL)
		len = snprintf(out, n, "%s/releases", app_root);
	else if (name == NULL)
		len = snprintf(out, n, "%s/releases/%s", app_root, entry);
	else
		len = snprintf(
		    out, n, "%s/releases/%s/%s", app_root, entry, name);
	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

/* Anything there, even a dangling link or one we may not stat. */
bool
path_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 || errno != ENOENT;
}

/* First line of releases/<id>/<name>, without the newline. */
int
release_read_file(
    const char *app_root, const char *id, const char *name, char *buf, size_t n)
{
	char path[ZDD_RELEASE_PATH_MAX];
	ssize_t got;
	int fd, rc;

	rc = release_path(app_root, id, name, path, sizeof(path));
	if (rc < 0)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	got = read(fd, buf, n - 1);
	rc = got < 0 ? -errno : 0;
	close(fd);
	if (rc < 0)
		return rc;
	buf[got] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}
