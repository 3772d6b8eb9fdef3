/*
 * Releases on disk: ids, checkout, the current/previous symlinks, listing
 * and pruning.
 *
 *   APP_ROOT/releases/<id>   id = UTC YYYYmmddHHMMSS-<sha7>, sorts by time
 *   APP_ROOT/current         -> releases/<id>   (relative symlinks,
 *   APP_ROOT/previous        -> releases/<id>    replaced by rename(2))
 */
#define _XOPEN_SOURCE_EXTENDED 1
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdd.h"

#define ID_TIME_LEN 14
#define ID_SHA_LEN  7
#define ID_LEN      (ID_TIME_LEN + 1 + ID_SHA_LEN)
#define CHECKOUT_TIMEOUT_S 600
#define MAX_RELEASES 10000  /* bound on what we list */

int
release_id_make(time_t t, const char *sha, char *out, size_t n)
{
	struct tm tm;
	char stamp[ID_TIME_LEN + 1];

	if (strlen(sha) < ID_SHA_LEN || n < ID_LEN + 1 ||
	    gmtime_r(&t, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm) != ID_TIME_LEN)
		return -EINVAL;
	for (int i = 0; i < ID_SHA_LEN; i++)
		if (!isxdigit((unsigned char)sha[i]))
			return -EINVAL;
	snprintf(out, n, "%s-%.*s", stamp, ID_SHA_LEN, sha);
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

bool
release_id_valid(const char *id)
{
	if (strlen(id) != ID_LEN || id[ID_TIME_LEN] != '-')
		return false;
	for (int i = 0; i < ID_LEN; i++) {
		if (i == ID_TIME_LEN)
			continue;
		if (i < ID_TIME_LEN ? !isdigit((unsigned char)id[i]) :
		    !(isdigit((unsigned char)id[i]) ||
		    (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	}
	return true;
}

static bool
path_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 || errno != ENOENT;
}

/*
 * Two deploys in the same second (same commit redeployed, or a very fast
 * build) must not collide: step the time forward until the id is free.
 * Ids stay sortable; we run under the deploy lock, so this is race-free.
 */
int
release_id_pick(const char *app_root, const char *sha, char *out, size_t n)
{
	char path[ZDD_PATH_MAX + 64];
	time_t t = time(NULL);

	for (int tries = 0; tries < 600; tries++, t++) {
		if (release_id_make(t, sha, out, n) < 0)
			return -EINVAL;
		snprintf(path, sizeof(path), "%s/releases/%s", app_root, out);
		if (path_exists(path))
			continue;
		snprintf(path, sizeof(path), "%s/releases/%s.tmp", app_root,
		    out);
		if (!path_exists(path))
			return 0;
	}
	log_err("cannot find a free release id for %.7s", sha);
	return -EEXIST;
}

int
release_link_read(const char *app_root, const char *name, char *id, size_t n)
{
	char path[ZDD_PATH_MAX + 32], target[ZDD_PATH_MAX];
	ssize_t len;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", app_root, name);
	len = readlink(path, target, sizeof(target) - 1);
	if (len < 0) {
		rc = -errno;
		if (rc != -ENOENT)
			log_err("cannot read link %s: %m", path);
		return rc;
	}
	target[len] = '\0';
	if (strncmp(target, "releases/", 9) != 0 ||
	    !release_id_valid(target + 9) || strlen(target + 9) >= n) {
		log_err("%s points to '%s', not releases/<id>; fix it by hand",
		    path, target);
		return -EINVAL;
	}
	snprintf(id, n, "%s", target + 9);
	return 0;
}

/* A fresh symlink renamed over the old: readers see old or new, never
 * nothing (ln -sf unlinks first). */
int
release_link_swap(const char *app_root, const char *name, const char *id)
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
	snprintf(target, sizeof(target), "releases/%s", id);
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
release_link_remove(const char *app_root, const char *name)
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
	char path[ZDD_PATH_MAX + 16];
	struct dirent *de;
	char **ids = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	DIR *d;

	*ids_out = NULL;
	*n_out = 0;
	snprintf(path, sizeof(path), "%s/releases", app_root);
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
			    "first", MAX_RELEASES, path);
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

/* rm -rf APP_ROOT/releases/<name>, where name is an id or id.tmp. */
int
release_remove(const char *app_root, const char *name)
{
	char path[ZDD_PATH_MAX + 64];
	char id[ZDD_ID_MAX];
	size_t len = strlen(name);

	snprintf(id, sizeof(id), "%.*s", (int)(len > 4 &&
	    strcmp(name + len - 4, ".tmp") == 0 ? len - 4 : len), name);
	if (!release_id_valid(id) || len >= sizeof(id)) {
		log_err("refusing to remove '%s': not a release", name);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "%s/releases/%s", app_root, name);
	if (!path_exists(path))
		return 0;
	nftw(path, unlock_dir, 16, FTW_PHYS | FTW_MOUNT);
	if (nftw(path, remove_entry, 16, FTW_PHYS | FTW_MOUNT | FTW_DEPTH) != 0)
		return -EIO;
	return 0;
}

static void
remove_stale(const char *app_root)
{
	char path[ZDD_PATH_MAX + 16], id[ZDD_ID_MAX];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/releases", app_root);
	d = opendir(path);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len <= 4 || len - 4 >= sizeof(id) ||
		    strcmp(de->d_name + len - 4, ".tmp") != 0)
			continue;
		snprintf(id, sizeof(id), "%.*s", (int)(len - 4), de->d_name);
		if (!release_id_valid(id))
			continue;
		if (release_remove(app_root, de->d_name) == 0)
			log_info("       removed unfinished %s", de->d_name);
	}
	closedir(d);
}

/* Caller holds the deploy lock. */
int
release_prune(const struct zdd_config *cfg, unsigned *removed)
{
	char current[ZDD_ID_MAX] = "", previous[ZDD_ID_MAX] = "";
	char **ids;
	bool *remove = NULL;
	size_t n;
	int rc;

	*removed = 0;
	rc = release_link_read(cfg->app_root, "current", current,
	    sizeof(current));
	if (rc < 0 && rc != -ENOENT)
		return rc;  /* never prune blind */
	rc = release_link_read(cfg->app_root, "previous", previous,
	    sizeof(previous));
	if (rc < 0 && rc != -ENOENT)
		return rc;
	remove_stale(cfg->app_root);
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
	prune_select(ids, n, current[0] ? current : NULL,
	    previous[0] ? previous : NULL, cfg->keep_releases, remove);
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

static bool
rev_acceptable(const char *rev)
{
	if (rev[0] == '\0' || rev[0] == '-' || strlen(rev) >= ZDD_REF_MAX)
		return false;
	for (; *rev; rev++)
		if (!isgraph((unsigned char)*rev))
			return false;
	return true;
}

/* REV (NULL: tip of BRANCH) -> full commit sha. */
int
release_resolve(const struct zdd_config *cfg, const char *rev, char *sha,
    size_t n)
{
	char gitdir[ZDD_PATH_MAX + 16], spec[ZDD_REF_MAX + 32];
	char out[256], why[64];
	struct spawn_opts o = { .in_fd = -1, .out_fd = -1, .err_fd = -1,
	    .timeout_s = 60 };
	int status, rc;

	if (rev != NULL && !rev_acceptable(rev)) {
		log_err("'%s' is not a revision", rev);
		return -EINVAL;
	}
	snprintf(gitdir, sizeof(gitdir), "--git-dir=%s", cfg->repo);
	if (rev == NULL)
		snprintf(spec, sizeof(spec), "refs/heads/%s^{commit}",
		    cfg->branch);
	else
		snprintf(spec, sizeof(spec), "%s^{commit}", rev);
	char *argv[] = { (char *)cfg->git, gitdir, "rev-parse", "--verify",
	    "--quiet", "--end-of-options", spec, NULL };

	rc = spawn_capture(argv, &o, out, sizeof(out), &status);
	if (rc < 0)
		return rc;
	out[strcspn(out, "\n")] = '\0';
	if (!spawn_ok(status) || !sha_valid(out) || strlen(out) >= n) {
		spawn_describe(status, why, sizeof(why));
		log_err("no commit '%s' in %s (git rev-parse: %s)",
		    rev ? rev : cfg->branch, cfg->repo, why);
		return -ENOENT;
	}
	snprintf(sha, n, "%s", out);
	return 0;
}

static int
write_small_file(int dfd, const char *name, const char *content)
{
	size_t len = strlen(content);
	int fd, rc = 0;

	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, content, len) != (ssize_t)len)
		rc = errno ? -errno : -EIO;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

static int
checkout_tree(const struct zdd_config *cfg, const char *sha,
    const char *dir, const char *index)
{
	char gitdir[ZDD_PATH_MAX + 16], worktree[2 * ZDD_PATH_MAX];
	char indexenv[2 * ZDD_PATH_MAX], why[64];
	char *env[] = { indexenv, NULL };
	/* Background work like the build: it must not take CPU or disk
	 * from the live app (the checkout of a big tree is mostly I/O). */
	struct spawn_opts o = { .in_fd = -1, .out_fd = -1, .err_fd = -1,
	    .extra_env = env, .timeout_s = CHECKOUT_TIMEOUT_S,
	    .new_pgrp = true, .low_priority = true };
	int status, rc;

	snprintf(gitdir, sizeof(gitdir), "--git-dir=%s", cfg->repo);
	snprintf(worktree, sizeof(worktree), "--work-tree=%s", dir);
	/* A private index: the bare repo has none and must not get one. */
	snprintf(indexenv, sizeof(indexenv), "GIT_INDEX_FILE=%s", index);
	char *argv[] = { (char *)cfg->git, gitdir, worktree, "checkout",
	    "--quiet", "--force", (char *)sha, "--", ".", NULL };

	rc = spawn_run(argv, &o, &status);
	unlink(index);
	if (rc == -ETIMEDOUT) {
		log_err("git checkout of %s took more than %d s", sha,
		    CHECKOUT_TIMEOUT_S);
		return rc;
	}
	if (rc < 0)
		return rc;
	if (!spawn_ok(status)) {
		spawn_describe(status, why, sizeof(why));
		log_err("git checkout of %s into %s failed (%s)", sha, dir,
		    why);
		return -EIO;
	}
	return 0;
}

/*
 * Check SHA out into releases/<id>.tmp, add REVISION and RELEASE, then
 * rename to releases/<id>.  (The app's environment is not linked in: it is
 * root's, /etc/myapp-zdd/env, given to the app by systemd.)  The build runs in the final
 * directory afterwards because builds bake in absolute paths (virtualenvs,
 * rpaths).
 */
int
release_checkout(const struct zdd_config *cfg, const char *sha,
    const char *id)
{
	char releases[ZDD_PATH_MAX + 16], tmp[ZDD_PATH_MAX + 64];
	char final[ZDD_PATH_MAX + 64], index[ZDD_PATH_MAX + 64];
	char tmpname[ZDD_ID_MAX + 8], line[ZDD_SHA_MAX + 2];
	int dfd = -1, rc;

	snprintf(releases, sizeof(releases), "%s/releases", cfg->app_root);
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", releases, id);
	snprintf(tmpname, sizeof(tmpname), "%s.tmp", id);
	snprintf(final, sizeof(final), "%s/%s", releases, id);
	snprintf(index, sizeof(index), "%s/.%s.index", releases, id);
	if (mkdir(releases, 0755) < 0 && errno != EEXIST) {
		rc = -errno;
		log_err("cannot create %s: %m", releases);
		return rc;
	}
	if (mkdir(tmp, 0755) < 0) {
		rc = -errno;
		log_err("cannot create release %s: %m", tmp);
		return rc;
	}
	rc = checkout_tree(cfg, sha, tmp, index);
	if (rc < 0)
		goto fail;
	dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = -errno;
		log_err("cannot open %s: %m", tmp);
		goto fail;
	}
	snprintf(line, sizeof(line), "%s\n", sha);
	rc = write_small_file(dfd, "REVISION", line);
	if (rc == 0) {
		snprintf(line, sizeof(line), "%s\n", id);
		rc = write_small_file(dfd, "RELEASE", line);
	}
	if (rc < 0) {
		errno = -rc;
		log_err("cannot write REVISION/RELEASE in %s: %m", tmp);
		goto fail;
	}
	close(dfd);
	dfd = -1;
	if (rename(tmp, final) < 0) {
		rc = -errno;
		log_err("cannot rename %s to %s: %m", tmp, final);
		goto fail;
	}
	return 0;
fail:
	if (dfd >= 0)
		close(dfd);
	release_remove(cfg->app_root, tmpname);
	return rc;
}

/* First line of releases/<id>/<name>, without the newline. */
int
release_read_file(const char *app_root, const char *id, const char *name,
    char *buf, size_t n)
{
	char path[ZDD_PATH_MAX + 96];
	ssize_t got;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/releases/%s/%s", app_root, id, name);
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
