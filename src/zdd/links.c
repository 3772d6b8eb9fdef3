/*
 * The live and rollback releases:
 *
 *   APP_ROOT/current   -> releases/<id>   relative symlinks, each replaced
 *   APP_ROOT/previous  -> releases/<id>   by rename(2) of a fresh one
 *
 * Failures are a negative errno and a reason in why, the caller says it.
 * links_read() and links_restore() start why afresh; links_swap() and
 * links_remove() add to what it holds ("; " between).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "zdd.h"

#define LINK_PREFIX "releases/"
#define LINK_PREFIX_LEN (sizeof(LINK_PREFIX) - 1)

/* Append one more problem to why ("a; b" when two things failed). */
static void __attribute__((format(printf, 3, 4)))
add_why(char *why, size_t whylen, const char *fmt, ...)
{
	size_t len = strlen(why);
	int saved = errno;
	va_list ap;

	if (len + 2 >= whylen)
		return;
	if (len > 0) {
		memcpy(why + len, "; ", 3);
		len += 2;
	}
	va_start(ap, fmt);
	errno = saved; /* keep %m meaningful */
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): as in log.c */
	vsnprintf(why + len, whylen - len, fmt, ap);
	va_end(ap);
	errno = saved;
}

static int
link_read(const char *app_root, const char *name, char *id, size_t n, char *why,
    size_t whylen)
{
	char path[ZDD_PATH_MAX + 32], target[ZDD_PATH_MAX];
	ssize_t len;
	int rc;

	id[0] = '\0';
	snprintf(path, sizeof(path), "%s/%s", app_root, name);
	len = readlink(path, target, sizeof(target) - 1);
	if (len < 0) {
		rc = -errno;
		if (rc != -ENOENT)
			add_why(why, whylen, "cannot read link %s: %m", path);
		return rc;
	}
	target[len] = '\0';
	if (strncmp(target, LINK_PREFIX, LINK_PREFIX_LEN) != 0 ||
	    !release_id_valid(target + LINK_PREFIX_LEN) ||
	    strlen(target + LINK_PREFIX_LEN) >= n) {
		add_why(why, whylen,
		    "%s points to '%s', not releases/<id>; "
		    "fix it by hand",
		    path, target);
		return -EINVAL;
	}
	snprintf(id, n, "%s", target + LINK_PREFIX_LEN);
	return 0;
}

/*
 * Both links; a missing one reads as "" (-ENOENT in its _rc), so does a
 * broken one, which why describes.  0 when each is there or missing, else
 * the first error.
 */
int
links_read(const char *app_root, struct links *l, char *why, size_t whylen)
{
	if (whylen > 0)
		why[0] = '\0';
	l->current_rc = link_read(
	    app_root, "current", l->current, sizeof(l->current), why, whylen);
	l->previous_rc = link_read(app_root, "previous", l->previous,
	    sizeof(l->previous), why, whylen);
	if (l->current_rc < 0 && l->current_rc != -ENOENT)
		return l->current_rc;
	if (l->previous_rc < 0 && l->previous_rc != -ENOENT)
		return l->previous_rc;
	return 0;
}

/* A fresh symlink renamed over the old: readers see old or new, never
 * nothing (ln -sf unlinks first). */
int
links_swap(const char *app_root, const char *name, const char *id, char *why,
    size_t whylen)
{
	char tmp[64], target[ZDD_ID_MAX + 16];
	int dfd, rc = 0;

	dfd = open(app_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = -errno;
		add_why(why, whylen, "cannot open %s: %m", app_root);
		return rc;
	}
	snprintf(tmp, sizeof(tmp), ".%s.new.%ld", name, (long)getpid());
	snprintf(target, sizeof(target), LINK_PREFIX "%s", id);
	if (unlinkat(dfd, tmp, 0) < 0 && errno != ENOENT) {
		rc = -errno;
		add_why(why, whylen, "cannot remove %s/%s: %m", app_root, tmp);
		goto out;
	}
	if (symlinkat(target, dfd, tmp) < 0) {
		rc = -errno;
		add_why(
		    why, whylen, "cannot create link %s/%s: %m", app_root, tmp);
		goto out;
	}
	if (renameat(dfd, tmp, dfd, name) < 0) {
		rc = -errno;
		add_why(why, whylen, "cannot rename %s/%s to %s: %m", app_root,
		    tmp, name);
		unlinkat(dfd, tmp, 0);
		goto out;
	}
	if (fsync(dfd) < 0)
		log_warn("cannot sync %s: %m", app_root);
out:
	close(dfd);
	return rc;
}

int
links_remove(const char *app_root, const char *name, char *why, size_t whylen)
{
	char path[ZDD_PATH_MAX + 32];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", app_root, name);
	if (unlink(path) < 0 && errno != ENOENT) {
		rc = -errno;
		add_why(why, whylen, "cannot remove %s: %m", path);
		return rc;
	}
	return 0;
}

/* Put both links back as links_read() found them ("" = no link). */
int
links_restore(
    const char *app_root, const struct links *old, char *why, size_t whylen)
{
	int rc = 0;

	if (whylen > 0)
		why[0] = '\0';
	if (old->current[0] == '\0')
		return links_remove(app_root, "current", why, whylen);
	if (links_swap(app_root, "current", old->current, why, whylen) < 0)
		rc = -EIO;
	if (old->previous[0] != '\0') {
		if (links_swap(
			app_root, "previous", old->previous, why, whylen) < 0)
			rc = -EIO;
	} else if (links_remove(app_root, "previous", why, whylen) < 0) {
		rc = -EIO;
	}
	return rc;
}
