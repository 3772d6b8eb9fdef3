/*
 * The build: sh -c COMMAND (builder.c chose it) at the top of the release,
 * with the engine's clean environment and the build caches, at low CPU and
 * I/O priority (the live app shares the machine), in its own process group
 * killed whole on timeout, its output in releases/<id>/build.log.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "zdd.h"

#define BUILD_LOG "build.log"

int
build_run(const struct zdd_config *cfg, const char *id, const char *command,
    char *why, size_t whylen)
{
	char dir[ZDD_RELEASE_PATH_MAX], log[ZDD_RELEASE_PATH_MAX];
	char status_text[64];
	struct spawn_opts o = { .in_fd = -1,
		.new_pgrp = true,
		.low_priority = true,
		.timeout_s = cfg->build_timeout };
	char *argv[] = { "sh", "-c", (char *)command, NULL };
	char *env[16];
	int fd, status, rc;

	if (release_path(cfg->app_root, id, NULL, dir, sizeof(dir)) < 0 ||
	    release_path(cfg->app_root, id, BUILD_LOG, log, sizeof(log)) < 0) {
		snprintf(why, whylen, "release path too long (APP_ROOT)");
		return -ENAMETOOLONG;
	}
	fd = open(
	    log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		rc = -errno;
		snprintf(why, whylen, "cannot create %s: %m", log);
		return rc;
	}
	builder_env(env, sizeof(env) / sizeof(env[0]));
	o.extra_env = env;
	o.cwd = dir;
	o.out_fd = fd;
	o.err_fd = fd;
	rc = spawn_run(argv, &o, &status);
	close(fd);
	if (rc == -ETIMEDOUT && zdd_interrupted) {
		snprintf(why, whylen, "interrupted, build killed");
	} else if (rc == -ETIMEDOUT) {
		snprintf(why, whylen,
		    "build took longer than %u s "
		    "(BUILD_TIMEOUT), killed",
		    cfg->build_timeout);
	} else if (rc < 0) {
		errno = -rc;
		snprintf(why, whylen, "cannot run the build: %m");
	} else if (!spawn_ok(status)) {
		spawn_describe(status, status_text, sizeof(status_text));
		snprintf(why, whylen, "'%s' failed (%s)", command, status_text);
		rc = -EIO;
	}
	if (rc < 0) {
		log_info("       last lines of %s:", log);
		log_file_tail(log, 20);
	}
	return rc;
}
