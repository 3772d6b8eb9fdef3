/*
 * git: the pushed revision resolved, and checked out into a release
 * without a work tree or index in the bare repo.  Failures are a negative
 * errno and a reason in why; the caller says it.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdd.h"

#define CHECKOUT_TIMEOUT_S 600

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

/*
 * git rev-parse --verify SPEC: the commit in sha.  -ENOENT when there is
 * none (why: what git said), another negative errno when git cannot run.
 */
int
git_rev_parse(const struct zdd_config *cfg, const char *spec, char *sha,
    size_t n, char *why, size_t whylen)
{
	char gitdir[ZDD_PATH_MAX + 16], out[256];
	struct spawn_opts o = {
		.in_fd = -1, .out_fd = -1, .err_fd = -1, .timeout_s = 60
	};
	char *argv[] = { (char *)cfg->git, gitdir, "rev-parse", "--verify",
		"--quiet", "--end-of-options", (char *)spec, NULL };
	int status, rc;

	snprintf(gitdir, sizeof(gitdir), "--git-dir=%s", cfg->repo);
	rc = spawn_capture(argv, &o, out, sizeof(out), &status);
	if (rc < 0) {
		errno = -rc;
		snprintf(why, whylen, "cannot run %s: %m", cfg->git);
		return rc;
	}
	out[strcspn(out, "\n")] = '\0';
	if (!spawn_ok(status) || !sha_valid(out) || strlen(out) >= n) {
		spawn_describe(status, why, whylen);
		return -ENOENT;
	}
	snprintf(sha, n, "%s", out);
	return 0;
}

/* REV (NULL: tip of BRANCH) -> full commit sha. */
int
release_resolve(const struct zdd_config *cfg, const char *rev, char *sha,
    size_t n, char *why, size_t whylen)
{
	char spec[ZDD_REF_MAX + 32], said[64];
	int rc;

	if (rev != NULL && !rev_acceptable(rev)) {
		snprintf(why, whylen, "'%s' is not a revision", rev);
		return -EINVAL;
	}
	if (rev == NULL)
		snprintf(
		    spec, sizeof(spec), "refs/heads/%s^{commit}", cfg->branch);
	else
		snprintf(spec, sizeof(spec), "%s^{commit}", rev);
	rc = git_rev_parse(cfg, spec, sha, n, why, whylen);
	if (rc == -ENOENT) {
		snprintf(said, sizeof(said), "%s", why);
		snprintf(why, whylen,
		    "no commit '%s' in %s (git rev-parse: "
		    "%s)",
		    rev ? rev : cfg->branch, cfg->repo, said);
	}
	return rc;
}

static int
write_small_file(int dfd, const char *name, const char *content)
{
	size_t len = strlen(content);
	int fd, rc = 0;

	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	fd = openat(dfd, name,
	    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, content, len) != (ssize_t)len)
		rc = errno ? -errno : -EIO;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

static int
checkout_tree(const struct zdd_config *cfg, const char *sha, const char *dir,
    const char *index, char *why, size_t whylen)
{
	char gitdir[ZDD_PATH_MAX + 16], worktree[2 * ZDD_PATH_MAX];
	char indexenv[2 * ZDD_PATH_MAX], status_text[64];
	char *env[] = { indexenv, NULL };
	/* Background work like the build: it must not take CPU or disk
	 * from the live app (the checkout of a big tree is mostly I/O). */
	struct spawn_opts o = { .in_fd = -1,
		.out_fd = -1,
		.err_fd = -1,
		.extra_env = env,
		.timeout_s = CHECKOUT_TIMEOUT_S,
		.new_pgrp = true,
		.low_priority = true };
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
		snprintf(why, whylen, "git checkout of %s took more than %d s",
		    sha, CHECKOUT_TIMEOUT_S);
		return rc;
	}
	if (rc < 0) {
		errno = -rc;
		snprintf(why, whylen, "cannot run %s: %m", cfg->git);
		return rc;
	}
	if (!spawn_ok(status)) {
		spawn_describe(status, status_text, sizeof(status_text));
		snprintf(why, whylen, "git checkout of %s into %s failed (%s)",
		    sha, dir, status_text);
		return -EIO;
	}
	return 0;
}

/*
 * Check SHA out into releases/<id>.tmp, add REVISION and RELEASE, then
 * rename to releases/<id>.  (The app's environment is not linked in: it is
 * root's, /etc/myapp-zdd/env, given to the app by systemd.)  The build
 * runs in the final directory afterwards because builds bake in absolute
 * paths (virtualenvs, rpaths).
 */
int
release_checkout(const struct zdd_config *cfg, const char *sha, const char *id,
    char *why, size_t whylen)
{
	char releases[ZDD_RELEASE_PATH_MAX], tmp[ZDD_RELEASE_PATH_MAX];
	char final[ZDD_RELEASE_PATH_MAX], index[ZDD_RELEASE_PATH_MAX];
	char tmpname[ZDD_ID_MAX + 8], indexname[ZDD_ID_MAX + 8];
	char line[ZDD_SHA_MAX + 2];
	int dfd = -1, rc;

	snprintf(tmpname, sizeof(tmpname), "%s.tmp", id);
	snprintf(indexname, sizeof(indexname), ".%s.index", id);
	if (release_path(
		cfg->app_root, NULL, NULL, releases, sizeof(releases)) < 0 ||
	    release_path(cfg->app_root, tmpname, NULL, tmp, sizeof(tmp)) < 0 ||
	    release_path(cfg->app_root, id, NULL, final, sizeof(final)) < 0 ||
	    release_path(cfg->app_root, indexname, NULL, index, sizeof(index)) <
		0) {
		snprintf(
		    why, whylen, "cannot check out %s: APP_ROOT too long", id);
		return -ENAMETOOLONG;
	}
	if (mkdir(releases, 0755) < 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(why, whylen, "cannot create %s: %m", releases);
		return rc;
	}
	if (mkdir(tmp, 0755) < 0) {
		rc = -errno;
		snprintf(why, whylen, "cannot create release %s: %m", tmp);
		return rc;
	}
	rc = checkout_tree(cfg, sha, tmp, index, why, whylen);
	if (rc < 0)
		goto fail;
	dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = -errno;
		snprintf(why, whylen, "cannot open %s: %m", tmp);
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
		snprintf(why, whylen, "cannot write REVISION/RELEASE in %s: %m",
		    tmp);
		goto fail;
	}
	close(dfd);
	dfd = -1;
	if (rename(tmp, final) < 0) {
		rc = -errno;
		snprintf(why, whylen, "cannot rename %s to %s: %m", tmp, final);
		goto fail;
	}
	return 0;
fail:
	if (dfd >= 0)
		close(dfd);
	release_remove(cfg->app_root, tmpname);
	return rc;
}
