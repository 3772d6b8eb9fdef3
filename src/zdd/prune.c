/*
 * Listing and pruning releases: everything but the KEEP_RELEASES newest,
 * never the current or previous one, and what an interrupted checkout
 * left behind (releases/<id>.tmp).
 */
#define _XOPEN_SOURCE_EXTENDED 1
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "zdd.h"

#define MAX_RELEASES 10000 /* bound on what we list */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void
release_list_free(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

/* Release ids under APP_ROOT/releases, oldest first. */
int
release_list(const char *app_root, char ***ids_out, size_t *n_out)
{
	char path[ZDD_RELEASE_PATH_MAX];
	struct dirent *de;
	char **ids = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	DIR *d;

	*ids_out = NULL;
	*n_out = 0;
	if (release_path(app_root, NULL, NULL, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	d = opendir(path);
	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		rc = -errno;
		log_err("cannot list %s: %m", path);
		return rc;
	}
	while ((de = readdir(d)) != NULL) {
		if (!release_id_valid(de->d_name))
			continue;
		if (n == MAX_RELEASES) {
			log_warn("more than %d releases in %s; listing the "
				 "first",
			    MAX_RELEASES, path);
			break;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **grown = realloc(ids, ncap * sizeof(*ids));

			if (grown == NULL) {
				rc = -ENOMEM;
				goto fail;
			}
			ids = grown;
			cap = ncap;
		}
		ids[n] = strdup(de->d_name);
		if (ids[n] == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(ids, n, sizeof(*ids), cmp_str);
	*ids_out = ids;
	*n_out = n;
	return 0;
fail:
	log_err("cannot list %s: out of memory", path);
	closedir(d);
	release_list_free(ids, n);
	return rc;
}

/*
 * Which releases to remove: all but the `keep` newest, and never the
 * current or previous one (whatever their age).  ids sorted oldest first.
 */
void
prune_select(char *const *ids, size_t n, const char *current,
    const char *previous, unsigned keep, bool *remove)
{
	for (size_t i = 0; i < n; i++) {
		bool newest = n - i <= keep;
		bool live = (current && strcmp(ids[i], current) == 0) ||
		    (previous && strcmp(ids[i], previous) == 0);

		remove[i] = !newest && !live;
	}
}

static int
unlock_dir(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)f;
	/* A build may leave read-only directories (e.g. module caches). */
	if ((flag == FTW_D || flag == FTW_DNR) && (st->st_mode & 0700) != 0700)
		chmod(path, (st->st_mode & 07777) | 0700);
	return 0;
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 &&
	    errno != ENOENT) {
		log_err("cannot remove %s: %m", path);
		return -1;
	}
	return 0;
}

/* id.tmp -> id in buf; false when name is no unfinished release. */
static bool
unfinished_id(const char *name, char *id, size_t n)
{
	size_t len = strlen(name);

	if (len <= 4 || len - 4 >= n || strcmp(name + len - 4, ".tmp") != 0)
		return false;
	snprintf(id, n, "%.*s", (int)(len - 4), name);
	return release_id_valid(id);
}

/* rm -rf APP_ROOT/releases/<name>, where name is an id or id.tmp. */
int
release_remove(const char *app_root, const char *name)
{
	char path[ZDD_RELEASE_PATH_MAX], id[ZDD_ID_MAX];

	if (!release_id_valid(name) && !unfinished_id(name, id, sizeof(id))) {
		log_err("refusing to remove '%s': not a release", name);
		return -EINVAL;
	}
	if (release_path(app_root, name, NULL, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	if (!path_exists(path))
		return 0;
	nftw(path, unlock_dir, 16, FTW_PHYS | FTW_MOUNT);
	if (nftw(path, remove_entry, 16, FTW_PHYS | FTW_MOUNT | FTW_DEPTH) != 0)
		return -EIO;
	return 0;
}

static void
remove_unfinished(const char *app_root)
{
	char path[ZDD_RELEASE_PATH_MAX], id[ZDD_ID_MAX];
	struct dirent *de;
	DIR *d;

	if (release_path(app_root, NULL, NULL, path, sizeof(path)) < 0)
		return;
	d = opendir(path);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (!unfinished_id(de->d_name, id, sizeof(id)))
			continue;
		if (release_remove(app_root, de->d_name) == 0)
			log_info("       removed unfinished %s", de->d_name);
	}
	closedir(d);
}

/* Caller holds the deploy lock. */
int
prune_releases(const struct zdd_config *cfg, unsigned *removed)
{
	char why[ZDD_WHY_MAX];
	struct links l;
	char **ids;
	bool *remove = NULL;
	size_t n;
	int rc;

	*removed = 0;
	rc = links_read(cfg->app_root, &l, why, sizeof(why));
	if (rc < 0) {
		log_err("%s", why);
		return rc; /* never prune blind */
	}
	remove_unfinished(cfg->app_root);
	rc = release_list(cfg->app_root, &ids, &n);
	if (rc < 0)
		return rc;
	if (n > 0) {
		remove = calloc(n, sizeof(*remove));
		if (remove == NULL) {
			rc = -ENOMEM;
			log_err("cannot prune: out of memory");
			goto out;
		}
	}
	prune_select(ids, n, l.current[0] ? l.current : NULL,
	    l.previous[0] ? l.previous : NULL, cfg->keep_releases, remove);
	for (size_t i = 0; i < n; i++) {
		if (!remove[i])
			continue;
		if (release_remove(cfg->app_root, ids[i]) < 0) {
			rc = -EIO;
			continue;
		}
		(*removed)++;
	}
out:
	free(remove);
	release_list_free(ids, n);
	return rc;
}

/* myapp-zdd prune */
int
prune_run(const struct zdd_config *cfg)
{
	char why[ZDD_WHY_MAX];
	unsigned removed = 0;
	int fd, rc;

	rc = lock_acquire(
	    cfg->app_root, cfg->lock_timeout, &fd, why, sizeof(why));
	if (rc < 0 && why[0] != '\0')
		log_err("%s", why);
	if (rc < 0)
		return rc == -ETIMEDOUT ? ZDD_EXIT_LOCK : ZDD_EXIT_FAILED;
	rc = prune_releases(cfg, &removed);
	lock_release(fd);
	log_info("removed %u release%s (keeping %u, current and previous)",
	    removed, removed == 1 ? "" : "s", cfg->keep_releases);
	return rc < 0 ? ZDD_EXIT_FAILED : ZDD_EXIT_OK;
}
