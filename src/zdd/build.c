/*
 * The build, engine side: the command builder.c chose goes into the
 * release (build.command), and the build unit <APP>-build@<id>.service
 * runs it (build_exec.c), bounded in CPU, memory, I/O, tasks and time by
 * systemd, its output in releases/<id>/build.log. When the unit ends,
 * whatever the build started ends with its cgroup. The engine only starts
 * it, waits, stops it on timeout or interrupt, and says why it failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "zdd.h"

#define BUILD_LOG "build.log"
#define BUILD_COMMAND_FILE "build.command"
/* systemd's own TimeoutStartSec= (BUILD_TIMEOUT) ends a build first; the
 * engine's limit is the backstop. */
#define ENGINE_GRACE_S 30

static int
write_new_file(const char *path, const char *text, char *why, size_t whylen)
{
	size_t len = strlen(text);
	int fd, rc = 0;

	fd = open(
	    path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		rc = -errno;
		snprintf(why, whylen, "cannot create %s: %m", path);
		return rc;
	}
	if (len > 0 && write(fd, text, len) != (ssize_t)len) {
		rc = errno ? -errno : -EIO;
		snprintf(why, whylen, "cannot write %s: %m", path);
	}
	if (close(fd) < 0 && rc == 0) {
		rc = -errno;
		snprintf(why, whylen, "cannot write %s: %m", path);
	}
	return rc;
}

/*
 * Where the kernel gives the build unit's limits no force (cgroup v1, a
 * container without the controllers), the push says so; the build still
 * runs, as a unit, with what there is.
 */
static void
say_unenforced_limits(void)
{
	static const char *const wanted[] = { "cpu", "io", "memory" };
	char have[512] = "", missing[64] = "";
	FILE *f = fopen("/sys/fs/cgroup/cgroup.controllers", "re");

	if (f != NULL) {
		if (fgets(have, sizeof(have), f) == NULL)
			have[0] = '\0';
		fclose(f);
	}
	for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
		const char *p = have;
		size_t len = strlen(wanted[i]);
		bool found = false;

		while ((p = strstr(p, wanted[i])) != NULL && !found) {
			found = (p == have || p[-1] == ' ') &&
			    (p[len] == ' ' || p[len] == '\n' || p[len] == '\0');
			p += len;
		}
		if (!found)
			snprintf(missing + strlen(missing),
			    sizeof(missing) - strlen(missing), "%s%s",
			    missing[0] ? ", " : "", wanted[i]);
	}
	if (missing[0] != '\0')
		log_info("       build limits: %s not enforced here (no cgroup "
			 "v2 controller for them)",
		    missing);
}

int
build_run(const struct zdd_config *cfg, const char *id, const char *command,
    char *why, size_t whylen)
{
	char cmdfile[ZDD_RELEASE_PATH_MAX], log[ZDD_RELEASE_PATH_MAX];
	char unit[ZDD_NAME_MAX + 64];
	struct unit_result res;
	int rc;

	if (release_path(cfg->app_root, id, BUILD_COMMAND_FILE, cmdfile,
		sizeof(cmdfile)) < 0 ||
	    release_path(cfg->app_root, id, BUILD_LOG, log, sizeof(log)) < 0) {
		snprintf(why, whylen, "release path too long (APP_ROOT)");
		return -ENAMETOOLONG;
	}
	rc = unit_name(cfg, "build", id, unit, sizeof(unit));
	if (rc < 0) {
		snprintf(why, whylen, "unit name too long (APP)");
		return rc;
	}
	/* build.log exists before the unit does, so its tail can be shown
	 * whatever stops the build */
	rc = write_new_file(cmdfile, command, why, whylen);
	if (rc == 0)
		rc = write_new_file(log, "", why, whylen);
	if (rc < 0)
		return rc;
	say_unenforced_limits();
	rc = units_run_oneshot(cfg, unit, cfg->build_timeout + ENGINE_GRACE_S,
	    command, &res, why, whylen);
	if (rc == -ETIMEDOUT && zdd_interrupted)
		snprintf(why, whylen, "interrupted, build stopped");
	else if (rc == -ETIMEDOUT)
		snprintf(why, whylen,
		    "build took longer than %u s (BUILD_TIMEOUT), stopped",
		    cfg->build_timeout);
	else if (rc == -EIO && strcmp(res.result, "oom-kill") == 0)
		snprintf(why, whylen,
		    "the build used more memory than BUILD_MEMORY_MAX=%s "
		    "allows, killed",
		    cfg->build_memory_max);
	else if (rc == -EIO && strcmp(res.result, "timeout") == 0)
		snprintf(why, whylen,
		    "build took longer than %u s (BUILD_TIMEOUT), killed",
		    cfg->build_timeout);
	if (rc < 0) {
		log_info("       last lines of %s:", log);
		log_file_tail(log, 20);
	}
	return rc;
}
