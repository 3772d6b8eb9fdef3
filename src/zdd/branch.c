/*
 * The deploy branch as the last deploying push left it.
 *
 * A push deploys from the pre-receive hook, before git moves the branch, so
 * a rejected deploy rejects the push.  Two pushes from the same base must
 * not both deploy: the one that waited for the lock is refused unless the
 * branch is still where it started.  git moves the branch of the push before
 * it only after that push's hook (and its lock) is gone, so the engine also
 * records the revision it deployed, under the lock, and waits briefly for
 * the branch to catch up with it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zdd.h"

#define HEAD_FILE ".deployed-head"
#define SETTLE_MS 5000 /* git updates the ref right after the hook exits */
#define POLL_MS 50

/* The branch's commit, "" when it does not exist. */
static int
branch_tip(
    const struct zdd_config *cfg, char *sha, size_t n, char *why, size_t whylen)
{
	char ref[ZDD_REF_MAX + 16], said[ZDD_WHY_MAX];
	int rc;

	snprintf(ref, sizeof(ref), "refs/heads/%s", cfg->branch);
	rc = git_rev_parse(cfg, ref, sha, n, said, sizeof(said));
	if (rc == -ENOENT) {
		sha[0] = '\0';
		return 0;
	}
	if (rc < 0)
		snprintf(why, whylen, "%s", said);
	return rc;
}

static void
read_recorded(const struct zdd_config *cfg, char *sha, size_t n)
{
	char path[ZDD_PATH_MAX + 32];
	FILE *f;

	sha[0] = '\0';
	snprintf(path, sizeof(path), "%s/%s", cfg->app_root, HEAD_FILE);
	f = fopen(path, "re");
	if (f == NULL)
		return;
	if (fgets(sha, (int)n, f) == NULL)
		sha[0] = '\0';
	fclose(f);
	sha[strcspn(sha, "\n")] = '\0';
	if (!sha_valid(sha))
		sha[0] = '\0';
}

int
branch_check_unmoved(
    const struct zdd_config *cfg, const char *old_sha, char *why, size_t n)
{
	char tip[ZDD_SHA_MAX + 1], recorded[ZDD_SHA_MAX + 2];
	const char *expected = sha_is_zero(old_sha) ? "" : old_sha;
	struct timespec pause = { 0, POLL_MS * 1000000L };
	int rc, waited;

	/* Until git has moved the branch to what the last push deployed, the
	 * tip may still be the base both pushes started from: comparing with
	 * it then would let the second one deploy too. */
	read_recorded(cfg, recorded, sizeof(recorded));
	for (waited = 0;; waited += POLL_MS) {
		rc = branch_tip(cfg, tip, sizeof(tip), why, n);
		if (rc < 0)
			return rc;
		if (recorded[0] == '\0' || strcmp(recorded, tip) == 0 ||
		    waited >= SETTLE_MS)
			break;
		nanosleep(&pause, NULL);
	}
	if (strcmp(expected, tip) == 0)
		return 0;
	snprintf(why, n,
	    "branch %s moved to %.7s while this push waited "
	    "(it started from %.7s): fetch, merge and push again",
	    cfg->branch, tip[0] ? tip : "(deleted)",
	    expected[0] ? expected : "(new)");
	return -ESTALE;
}

int
branch_record(
    const struct zdd_config *cfg, const char *sha, char *why, size_t n)
{
	char path[ZDD_PATH_MAX + 32], tmp[ZDD_PATH_MAX + 40];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", cfg->app_root, HEAD_FILE);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(
	    tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		rc = -errno;
		snprintf(why, n,
		    "cannot record the deployed revision in "
		    "%s: %m",
		    tmp);
		return rc;
	}
	if (dprintf(fd, "%s\n", sha) < 0 || fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		errno = -rc;
		snprintf(why, n,
		    "cannot record the deployed revision in "
		    "%s: %m",
		    path);
		unlink(tmp);
	}
	return rc;
}
