/*
 * The engine's environment: replaced at start, so every child (git, the
 * build, systemctl) inherits exactly what is set here.
 */
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zdd.h"

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
	if (rc == 0 &&
	    (clearenv() != 0 || setenv("PATH", ZDD_CLEAN_PATH, 1) < 0 ||
		setenv("HOME", home, 1) < 0 ||
		setenv("LANG", "C.UTF-8", 1) < 0))
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
