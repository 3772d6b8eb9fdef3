/*
 * `myapp-zdd build-exec ID`: the ExecStart= of the build unit
 * (<APP>-build@<id>.service), run by systemd as the deploy user in the
 * build's sandbox. It runs the command the engine wrote into the release
 * (build.command) with sh -c at the top of the release, stdin from
 * /dev/null, stdout and stderr into build.log, a clean environment and the
 * build caches in the unit's CacheDirectory=. Its exit status is the
 * command's: systemd records it, the engine reads it (build.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdd.h"

#define BUILD_COMMAND_MAX ((size_t)ZDD_VALUE_MAX + 128)
#define ENV_MAX 16

/* The build's environment: nothing inherited but the cache directory. */
static int
build_environment(const char *id, char **env, size_t n)
{
	static char home[ZDD_PATH_MAX + 16], home_var[ZDD_PATH_MAX + 32];
	static char release[ZDD_NAME_MAX + 32];
	const char *cache = getenv("CACHE_DIRECTORY");
	size_t used = 0;

	if (cache == NULL || cache[0] != '/' || strchr(cache, ':') != NULL ||
	    strlen(cache) >= ZDD_PATH_MAX)
		return -EINVAL;
	/* HOME is in the cache: the real one is hidden (ProtectHome=) */
	snprintf(home, sizeof(home), "%s/home", cache);
	snprintf(home_var, sizeof(home_var), "HOME=%s", home);
	if (mkdir(home, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(release, sizeof(release), "ZDD_RELEASE=%s", id);
	env[used++] = "PATH=" ZDD_CLEAN_PATH;
	env[used++] = "LANG=C.UTF-8";
	env[used++] = release;
	used += builder_env(cache, env + used, n - used);
	if (used + 2 > n)
		return -E2BIG;
	env[used++] = home_var;
	env[used] = NULL;
	return 0;
}

int
build_exec_command(const char *config_path, int argc, char *argv[])
{
	static struct zdd_config cfg;
	char dir[ZDD_RELEASE_PATH_MAX], why[ZDD_WHY_MAX], *command = NULL;
	char *env[ENV_MAX];
	const char *id = argc == 1 ? argv[0] : NULL;
	int dirfd = -1, log = -1, null = -1, rc;

	if (id == NULL || !release_id_valid(id)) {
		fprintf(stderr, "usage: myapp-zdd build-exec ID\n");
		return ZDD_EXIT_USAGE;
	}
	spawn_close_inherited_fds();
	config_defaults(&cfg);
	if (config_load(&cfg, config_path, false) < 0)
		return ZDD_EXIT_USAGE;
	if (release_path(cfg.app_root, id, NULL, dir, sizeof(dir)) < 0) {
		fprintf(stderr, "myapp-zdd build-exec: release path too long\n");
		return ZDD_EXIT_USAGE;
	}
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0 || fchdir(dirfd) < 0) {
		fprintf(stderr, "myapp-zdd build-exec: cannot enter %s: %m\n",
		    dir);
		goto fail;
	}
	rc = file_read_bounded(
	    "build.command", BUILD_COMMAND_MAX, &command, why, sizeof(why));
	if (rc < 0) {
		fprintf(stderr, "myapp-zdd build-exec: %s\n", why);
		goto fail;
	}
	rc = build_environment(id, env, ENV_MAX);
	if (rc < 0) {
		errno = -rc;
		fprintf(stderr,
		    "myapp-zdd build-exec: no build environment "
		    "(CACHE_DIRECTORY): %m\n");
		goto fail;
	}
	log = open("build.log",
	    O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (log < 0 || null < 0 || dup2(null, 0) < 0 || dup2(log, 1) < 0 ||
	    dup2(log, 2) < 0) {
		fprintf(stderr, "myapp-zdd build-exec: cannot open %s/build.log: %m\n",
		    dir);
		goto fail;
	}
	/* the command sees fds 0-2 only (the others are close-on-exec) */
	execle("/bin/sh", "sh", "-c", command, (char *)NULL, env);
	fprintf(stderr, "myapp-zdd build-exec: cannot run /bin/sh: %m\n");
fail:
	free(command);
	if (null >= 0)
		close(null);
	if (log >= 0)
		close(log);
	if (dirfd >= 0)
		close(dirfd);
	return 127;
}
