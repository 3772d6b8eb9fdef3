/*
 * `myapp-zdd build-exec ID`: the ExecStart= of the build unit
 * (<APP>-build@<id>.service), run by systemd as the deploy user in the
 * build's sandbox. It runs the command the engine wrote into the release
 * (build.command) with sh -c at the top of the release, stdin from
 * /dev/null, stdout and stderr into build.log, a clean environment and the
 * build caches in the unit's CacheDirectory=, then kills what the build
 * left running. Its exit status is the command's: systemd records it, the
 * engine reads it (build.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/*
 * The build unit's cgroup.procs file, when this process runs in that unit
 * (its cgroup is <APP>-build@<id>.service): cgroup v2, the hybrid's
 * unified tree, or v1's name=systemd tree.
 */
static int
unit_procs_path(const char *app, const char *id, char *out, size_t n)
{
	static const char *const roots[] = { "/sys/fs/cgroup",
		"/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd" };
	char line[ZDD_PATH_MAX], unit[ZDD_NAME_MAX + 64];
	FILE *f = fopen("/proc/self/cgroup", "re");
	int rc = -ENOENT;

	if (f == NULL)
		return -errno;
	snprintf(unit, sizeof(unit), "/%s-build@%s.service", app, id);
	while (rc < 0 && fgets(line, sizeof(line), f) != NULL) {
		char *path = strchr(line, ':');
		size_t len;

		path = path ? strchr(path + 1, ':') : NULL;
		if (path == NULL)
			continue;
		path++;
		path[strcspn(path, "\n")] = '\0';
		len = strlen(path);
		if (len < strlen(unit) ||
		    strcmp(path + len - strlen(unit), unit) != 0)
			continue;
		for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
			snprintf(out, n, "%s%s/cgroup.procs", roots[i], path);
			if (access(out, R_OK) == 0) {
				rc = 0;
				break;
			}
		}
	}
	fclose(f);
	return rc;
}

/*
 * Whatever the build left running in the unit (a daemon it started, a
 * setsid'd child) is killed here, before the unit's main process exits:
 * systemd's own sweep at that moment was seen to miss one in a container.
 */
#define SWEEPS_MAX 200
static void
kill_leftovers(const char *app, const char *id)
{
	char procs[ZDD_PATH_MAX + 64];

	if (unit_procs_path(app, id, procs, sizeof(procs)) < 0)
		return; /* not in the build unit (the tests): nothing of ours */
	for (int sweep = 0; sweep < SWEEPS_MAX; sweep++) {
		FILE *f = fopen(procs, "re");
		long pid;
		int others = 0;

		if (f == NULL)
			return;
		while (fscanf(f, "%ld", &pid) == 1)
			if (pid != (long)getpid() &&
			    kill((pid_t)pid, SIGKILL) == 0)
				others++;
		fclose(f);
		if (others == 0)
			return;
		clock_sleep(0.01);
	}
}

/* Runs the command in a child and returns its status as an exit code. */
static int
run_and_reap(const char *command, char **env, const char *app, const char *id)
{
	int status;
	pid_t pid = fork();

	if (pid < 0) {
		fprintf(stderr, "myapp-zdd build-exec: cannot fork: %m\n");
		return 127;
	}
	if (pid == 0) {
		execle("/bin/sh", "sh", "-c", command, (char *)NULL, env);
		fprintf(
		    stderr, "myapp-zdd build-exec: cannot run /bin/sh: %m\n");
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 127;
	kill_leftovers(app, id);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int
build_exec_command(const char *config_path, int argc, char *argv[])
{
	static struct zdd_config cfg;
	char dir[ZDD_RELEASE_PATH_MAX], why[ZDD_WHY_MAX], *command = NULL;
	char *env[ENV_MAX];
	const char *id = argc == 1 ? argv[0] : NULL;
	int dirfd = -1, log = -1, null = -1, rc, status = 127;

	if (id == NULL || !release_id_valid(id)) {
		fprintf(stderr, "usage: myapp-zdd build-exec ID\n");
		return ZDD_EXIT_USAGE;
	}
	spawn_close_inherited_fds();
	config_defaults(&cfg);
	if (config_load(&cfg, config_path, false) < 0)
		return ZDD_EXIT_USAGE;
	if (release_path(cfg.app_root, id, NULL, dir, sizeof(dir)) < 0) {
		fprintf(
		    stderr, "myapp-zdd build-exec: release path too long\n");
		return ZDD_EXIT_USAGE;
	}
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0 || fchdir(dirfd) < 0) {
		fprintf(
		    stderr, "myapp-zdd build-exec: cannot enter %s: %m\n", dir);
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
		fprintf(stderr,
		    "myapp-zdd build-exec: cannot open %s/build.log: %m\n",
		    dir);
		goto fail;
	}
	/* the command sees fds 0-2 only (the others are close-on-exec) */
	status = run_and_reap(command, env, cfg.app, id);
fail:
	free(command);
	if (null >= 0)
		close(null);
	if (log >= 0)
		close(log);
	if (dirfd >= 0)
		close(dirfd);
	return status;
}
