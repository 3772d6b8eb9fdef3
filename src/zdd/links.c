/*
 * The live and rollback releases:
 *
 *   APP_ROOT/current   -> releases/<id>   relative symlinks, each replaced
 *   APP_ROOT/previous  -> releases/<id>   by rename(2) of a fresh one
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "zdd.h"

#define LINK_PREFIX     "releases/"
#define LINK_PREFIX_LEN (sizeof(LINK_PREFIX) - 1)

/* Append one more problem to why ("a; b" when both links are bad). */
static void
add_why(char *why, size_t whylen, const char *what)
{
	size_t len = strlen(why);

	if (len < whylen)
		snprintf(why + len, whylen - len, "%s%s", len ? "; " : "",
		    what);
}

static int
link_read(const char *app_root, const char *name, char *id, size_t n,
    char *why, size_t whylen)
{
	char path[ZDD_PATH_MAX + 32], target[ZDD_PATH_MAX];
	char what[3 * ZDD_PATH_MAX];
	ssize_t len;
	int rc;

	id[0] = '\0';
	snprintf(path, sizeof(path), "%s/%s", app_root, name);
	len = readlink(path, target, sizeof(target) - 1);
	if (len < 0) {
		rc = -errno;
		if (rc != -ENOENT) {
			snprintf(what, sizeof(what), "cannot read link %s: %m",
			    path);
			add_why(why, whylen, what);
		}
		return rc;
	}
	target[len] = '\0';
	if (strncmp(target, LINK_PREFIX, LINK_PREFIX_LEN) != 0 ||
	    !release_id_valid(target + LINK_PREFIX_LEN) ||
	    strlen(target + LINK_PREFIX_LEN) >= n) {
		snprintf(what, sizeof(what), "%s points to '%s', not "
		    "releases/<id>; fix it by hand", path, target);
		add_why(why, whylen, what);
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
	l->current_rc = link_read(app_root, "current", l->current,
	    sizeof(l->current), why, whylen);
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
links_swap(const char *app_root, const char *name, const char *id)
{
	char tmp[64], target[ZDD_ID_MAX + 16];
	int dfd, rc = 0;

	dfd = open(app_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = -errno;
		log_err("cannot open %s: %m", app_root);
		return rc;
	}
	snprintf(tmp, sizeof(tmp), ".%s.new.%ld", name, (long)getpid());
	snprintf(target, sizeof(target), LINK_PREFIX "%s", id);
	if (unlinkat(dfd, tmp, 0) < 0 && errno != ENOENT) {
		rc = -errno;
		log_err("cannot remove %s/%s: %m", app_root, tmp);
		goto out;
	}
	if (symlinkat(target, dfd, tmp) < 0) {
		rc = -errno;
		log_err("cannot create link %s/%s: %m", app_root, tmp);
		goto out;
	}
	if (renameat(dfd, tmp, dfd, name) < 0) {
		rc = -errno;
		log_err("cannot rename %s/%s to %s: %m", app_root, tmp, name);
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
links_remove(const char *app_root, const char *name)
{
	char path[ZDD_PATH_MAX + 32];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", app_root, name);
	if (unlink(path) < 0 && errno != ENOENT) {
		rc = -errno;
		log_err("cannot remove %s: %m", path);
		return rc;
	}
	return 0;
}

/* Put both links back as links_read() found them ("" = no link). */
int
links_restore(const char *app_root, const struct links *old)
{
	int rc = 0;

	if (old->current[0] == '\0')
		return links_remove(app_root, "current");
	if (links_swap(app_root, "current", old->current) < 0)
		rc = -EIO;
	if (old->previous[0] != '\0') {
		if (links_swap(app_root, "previous", old->previous) < 0)
			rc = -EIO;
	} else if (links_remove(app_root, "previous") < 0) {
		rc = -EIO;
	}
	return rc;
}
