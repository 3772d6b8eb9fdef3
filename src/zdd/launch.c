/*
 * `myapp-zdd launch [TYPE]`: the ExecStart= of the app's units, run by
 * systemd as the app's user in its sandbox, in the release directory.
 * It runs the Procfile's TYPE (default web) with bash -c, as Heroku does
 * (bash execs a simple command, so the app keeps the PID systemd gave
 * LISTEN_PID to), or ./start when the release has no web process.
 *
 * `launch --cron N` runs app.json's cron entry N instead (its command, or
 * the Procfile's command of that name, as Dokku does).
 *
 * ZDD_RELEASE names the release the process runs (the units that run
 * "current" learn it here).
 *
 * An app that does not send READY=1 itself (readiness "health") is
 * declared started here, before the exec, from the same PID; the engine
 * then judges it by its health check.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "zdd.h"

/* PATH gets the release's own tool directories first, when they exist. */
static int
release_path_env(void)
{
	static const char *const dirs[] = { ".venv/bin", "node_modules/.bin" };
	char cwd[PATH_MAX], path[3 * PATH_MAX + 64];
	const char *old = getenv("PATH");
	size_t used = 0;

	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return -errno;
	path[0] = '\0';
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		struct stat st;
		int len;

		if (stat(dirs[i], &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		len = snprintf(
		    path + used, sizeof(path) - used, "%s/%s:", cwd, dirs[i]);
		if (len < 0 || (size_t)len >= sizeof(path) - used)
			return -ENAMETOOLONG;
		used += (size_t)len;
	}
	if (used == 0)
		return 0;
	if (snprintf(path + used, sizeof(path) - used, "%s",
		old ? old : ZDD_CLEAN_PATH) >= (int)(sizeof(path) - used))
		return -ENAMETOOLONG;
	if (access(".venv/bin", F_OK) == 0) {
		char venv[PATH_MAX + 8];

		snprintf(venv, sizeof(venv), "%s/.venv", cwd);
		if (setenv("VIRTUAL_ENV", venv, 1) < 0)
			return -errno;
	}
	return setenv("PATH", path, 1) < 0 ? -errno : 0;
}

/*
 * systemd passes a unit's sockets in an order of its own, not Sockets='s:
 * the public socket (FileDescriptorName=public) is moved to fd 3, where
 * apps that serve one socket look (LISTEN_FDNAMES follows).
 */
#define LISTEN_FDS_START 3
#define LISTEN_FDS_MAX 16
static int
public_socket_first(void)
{
	const char *fds = getenv("LISTEN_FDS"),
		   *names = getenv("LISTEN_FDNAMES");
	char buf[1024], *name[LISTEN_FDS_MAX], *save = NULL, joined[1024];
	int n, count = 0, pub = -1, tmp;

	if (fds == NULL || names == NULL || (n = atoi(fds)) < 2 ||
	    n > LISTEN_FDS_MAX || strlen(names) >= sizeof(buf))
		return 0;
	snprintf(buf, sizeof(buf), "%s", names);
	for (char *t = strtok_r(buf, ":", &save); t && count < n;
	     t = strtok_r(NULL, ":", &save))
		name[count++] = t;
	for (int i = 0; i < count && pub < 0; i++)
		if (strcmp(name[i], "public") == 0)
			pub = i;
	/* units from before FileDescriptorName=: the one not a probe */
	for (int i = 0; i < count && pub < 0; i++)
		if (strstr(name[i], "probe") == NULL)
			pub = i;
	if (count != n || pub <= 0)
		return 0;
	tmp = fcntl(LISTEN_FDS_START, F_DUPFD, LISTEN_FDS_START + n);
	if (tmp < 0 || dup2(LISTEN_FDS_START + pub, LISTEN_FDS_START) < 0 ||
	    dup2(tmp, LISTEN_FDS_START + pub) < 0)
		return -errno;
	close(tmp);
	name[pub] = name[0];
	name[0] = "public";
	joined[0] = '\0';
	for (int i = 0; i < n; i++)
		snprintf(joined + strlen(joined),
		    sizeof(joined) - strlen(joined), "%s%s", i ? ":" : "",
		    name[i]);
	return setenv("LISTEN_FDNAMES", joined, 1) < 0 ? -errno : 0;
}

/* ZDD_RELEASE for the units that run "current" (the live instance, the
 * workers): the release the working directory resolved to. */
static int
release_env(void)
{
	char cwd[PATH_MAX];
	const char *base;

	if (getenv("ZDD_RELEASE") != NULL)
		return 0;
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return -errno;
	base = strrchr(cwd, '/');
	base = base ? base + 1 : cwd;
	if (!release_id_valid(base))
		return 0;
	return setenv("ZDD_RELEASE", base, 1) < 0 ? -errno : 0;
}

/* What every process of a release is given: ZDD_RELEASE, PATH (and
 * VIRTUAL_ENV) for its own tools; the cwd is the release. */
int
launch_environment(void)
{
	int rc = release_env();

	return rc < 0 ? rc : release_path_env();
}

/* The command of cron entry arg: 0; 1 (said) when this release has no
 * such entry; -EINVAL (said) for a wrong arg. */
static int
cron_command(const struct app_spec *spec, const char *arg, const char **out)
{
	const char *command, *proc;
	unsigned long n;
	char *end;

	n = strtoul(arg, &end, 10);
	if (end == arg || *end != '\0' || n >= ZDD_CRON_MAX) {
		fprintf(stderr, "myapp-zdd launch: --cron %s: not 0-%d\n", arg,
		    ZDD_CRON_MAX - 1);
		return -EINVAL;
	}
	if (n >= spec->json.ncron) {
		/* the release changed between the timer and the start */
		fprintf(stderr,
		    "myapp-zdd launch: this release declares no cron[%lu]: "
		    "nothing to run\n",
		    n);
		return 1;
	}
	command = spec->json.cron[n].command;
	proc = spec->has_procfile ? procfile_command(&spec->procfile, command)
				  : NULL;
	*out = proc ? proc : command;
	return 0;
}

int
launch_command(const char *config_path, int argc, char *argv[])
{
	bool cron = argc == 2 && strcmp(argv[0], "--cron") == 0;
	const char *type = argc > 0 && !cron ? argv[0] : "web";
	char why[ZDD_WHY_MAX];
	static struct app_spec spec;
	const char *command = NULL;
	int rc;

	(void)config_path; /* the sandbox hides the settings: none needed */
	if (argc > 1 && !cron) {
		fprintf(stderr,
		    "usage: myapp-zdd launch [TYPE] | launch --cron N\n");
		return ZDD_EXIT_USAGE;
	}
	rc = app_spec_load(".", &spec, why, sizeof(why));
	if (rc < 0) {
		fprintf(stderr, "myapp-zdd launch: %s\n", why);
		return ZDD_EXIT_FAILED;
	}
	if (cron) {
		type = "cron";
		rc = cron_command(&spec, argv[1], &command);
		if (rc != 0)
			return rc < 0 ? ZDD_EXIT_USAGE : ZDD_EXIT_OK;
	} else {
		command = spec.has_procfile
		    ? procfile_command(&spec.procfile, type)
		    : NULL;
	}
	if (command == NULL && strcmp(type, "web") != 0) {
		fprintf(stderr,
		    "myapp-zdd launch: the Procfile declares no '%s:' "
		    "process\n",
		    type);
		return ZDD_EXIT_FAILED;
	}
	rc = public_socket_first();
	if (rc < 0) {
		errno = -rc;
		fprintf(
		    stderr, "myapp-zdd launch: cannot order the sockets: %m\n");
		return ZDD_EXIT_FAILED;
	}
	rc = launch_environment();
	if (rc < 0) {
		errno = -rc;
		fprintf(stderr, "myapp-zdd launch: cannot set PATH: %m\n");
		return ZDD_EXIT_FAILED;
	}
	/* only the web process is judged by the health check */
	if (spec.readiness == ZDD_READY_HEALTH && strcmp(type, "web") == 0) {
		rc = sd_notify(0,
		    "READY=1\nSTATUS=started; the deploy engine "
		    "judges readiness by the health check");
		if (rc < 0) {
			errno = -rc;
			fprintf(stderr, "myapp-zdd launch: sd_notify: %m\n");
		}
	}
	if (command != NULL)
		execl("/bin/bash", "bash", "-c", command, (char *)NULL);
	else
		execl("./start", "./start", (char *)NULL);
	fprintf(stderr, "myapp-zdd launch: cannot run %s: %m\n",
	    command ? "/bin/bash" : "./start");
	return 127;
}
