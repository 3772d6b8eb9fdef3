/*
 * Started as root (maintainer scripts, an admin with sudo) the engine
 * becomes the deploy user before touching anything, so every file it
 * creates is owned right and its systemctl calls go through the same
 * polkit rule as a push does.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zdd.h"

int
privdrop(const char *user)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	errno = 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		if (errno == 0)
			errno = ENOENT;
		log_err("cannot switch to deploy user %s: no such user "
		    "(set DEPLOY_USER in the configuration)", user);
		return -ENOENT;
	}
	if (pw->pw_uid == 0)
		return 0;  /* configured to stay root: nothing to drop */
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 ||
	    setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		int rc = -errno;

		log_err("cannot switch to deploy user %s: %m", user);
		return rc;
	}
	/* Paranoia: a drop that can be undone did not happen. */
	if (setuid(0) == 0) {
		log_err("cannot switch to deploy user %s: root regained", user);
		return -EPERM;
	}
	return 0;
}

/*
 * Replace the inherited environment (a hook's GIT_DIR & co, an admin's
 * shell) with a known one: every child inherits exactly this.
 */
int
env_sanitize(void)
{
	const char *home = "/";
	struct passwd *pw;

	pw = getpwuid(getuid());
	if (pw != NULL && pw->pw_dir != NULL && pw->pw_dir[0] == '/')
		home = pw->pw_dir;
	/* In a pre-receive hook the pushed objects are still in quarantine:
	 * git must be told where, or the checkout cannot see them. */
	static const char *const keep[] = { "GIT_QUARANTINE_PATH",
	    "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES" };
	char *kept[3] = { NULL, NULL, NULL };
	int rc = 0;

	for (size_t i = 0; i < 3; i++) {
		const char *v = getenv(keep[i]);

		if (v != NULL && strlen(v) < (size_t)ZDD_PATH_MAX * 4 &&
		    (kept[i] = strdup(v)) == NULL)
			rc = -ENOMEM;
	}
	if (rc == 0 && (clearenv() != 0 || setenv("PATH", ZDD_CLEAN_PATH, 1) < 0 ||
	    setenv("HOME", home, 1) < 0 || setenv("LANG", "C.UTF-8", 1) < 0))
		rc = errno ? -errno : -ENOMEM;
	for (size_t i = 0; i < 3 && rc == 0; i++)
		if (kept[i] != NULL && setenv(keep[i], kept[i], 1) < 0)
			rc = -errno;
	for (size_t i = 0; i < 3; i++)
		free(kept[i]);
	if (rc < 0) {
		errno = -rc;
		log_err("cannot set up the environment: %m");
	}
	return rc;
}
