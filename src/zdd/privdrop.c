/*
 * Started as root (maintainer scripts, an admin with sudo) the engine
 * becomes the deploy user before touching anything, so every file it
 * creates is owned right and its systemctl calls go through the same
 * polkit rule as a push does.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
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
			"(set DEPLOY_USER in the configuration)",
		    user);
		return -ENOENT;
	}
	if (pw->pw_uid == 0)
		return 0; /* configured to stay root: nothing to drop */
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
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
