/*
 * `myapp-zdd cron-sync` (myapp-cron-sync.service, as root): the timers of
 * the live release's app.json "cron" entries. Entry N's schedule becomes
 * OnCalendar= in /run/systemd/system/<APP>-cron@N.timer.d/50-schedule.conf
 * (volatile, so the boot runs this again), the timers of the entries
 * declared run, the others stop. A run in progress is never stopped: only
 * its timer is.
 *
 * What a release declares is the pusher's to write, and root reads none of
 * it: `myapp-zdd cron-list` (this program again, which becomes the deploy
 * user before it reads anything) prints "N CALENDAR" lines, and only
 * calendars of the characters cron_calendar() writes are taken from it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdd.h"

#define RUN_UNIT_DIR "/run/systemd/system"
#define DROPIN_NAME "50-schedule.conf"
#define LIST_MAX (ZDD_CRON_MAX * (ZDD_CRON_CALENDAR_MAX + 8))
#define SYSTEMCTL_S 60

/* As the deploy user: "N CALENDAR" for each entry to run. */
int
cron_sync_list(const struct zdd_config *cfg)
{
	char dir[ZDD_RELEASE_PATH_MAX], why[ZDD_WHY_MAX];
	static struct app_spec spec;
	struct links l;

	if (links_read(cfg->app_root, &l, why, sizeof(why)) < 0 ||
	    l.current_rc < 0)
		return ZDD_EXIT_OK; /* nothing live, nothing scheduled */
	if (release_path(cfg->app_root, l.current, NULL, dir, sizeof(dir)) <
		0 ||
	    app_spec_load(dir, &spec, why, sizeof(why)) < 0) {
		log_err("cannot read what %s declares: %s", l.current, why);
		return ZDD_EXIT_FAILED;
	}
	for (unsigned i = 0; i < spec.json.ncron; i++)
		if (!spec.json.cron[i].maintenance)
			printf("%u %s\n", i, spec.json.cron[i].calendar);
	return fflush(stdout) == 0 ? ZDD_EXIT_OK : ZDD_EXIT_FAILED;
}

/* The calendars to run, by entry, from cron-list's output. */
static int
list_parse(char *out, char calendars[][ZDD_CRON_CALENDAR_MAX])
{
	char *save = NULL;

	for (char *line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char *end;
		unsigned long n = strtoul(line, &end, 10);

		if (end == line || *end != ' ' || n >= ZDD_CRON_MAX ||
		    !cron_calendar_valid(end + 1))
			return -EINVAL;
		snprintf(calendars[n], ZDD_CRON_CALENDAR_MAX, "%s", end + 1);
	}
	return 0;
}

static int
run_list(const char *config_path, char *out, size_t n)
{
	char self[PATH_MAX];
	char *argv[5];
	struct spawn_opts o = {
		.in_fd = -1, .out_fd = -1, .err_fd = 2, .timeout_s = 60
	};
	int status, rc;

	rc =
	    spawn_self_argv(config_path, "cron-list", self, sizeof(self), argv);
	if (rc < 0)
		return rc;
	/* stderr stays the journal's: only stdout is captured */
	rc = spawn_capture(argv, &o, out, n, &status);
	if (rc < 0)
		return rc;
	return spawn_ok(status) ? 0 : -EIO;
}

/* 1 when path holds exactly text, 0 when not (or absent). */
static int
same_content(const char *path, const char *text)
{
	char buf[ZDD_CRON_CALENDAR_MAX + 256];
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t len;

	if (fd < 0)
		return 0;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len < 0)
		return 0;
	buf[len] = '\0';
	return strcmp(buf, text) == 0;
}

static int
dropin_write(const char *dir, const char *path, const char *text)
{
	char tmp[PATH_MAX + 32];
	size_t len = strlen(text);
	int fd, rc = 0;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	snprintf(tmp, sizeof(tmp), "%s/.%s.new", dir, DROPIN_NAME);
	fd = open(
	    tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
		rc = errno ? -errno : -EIO;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

static int
systemctl(const struct zdd_config *cfg, const char *verb, const char *unit)
{
	char why[ZDD_WHY_MAX];
	int rc =
	    units_run(cfg, SYSTEMCTL_S, verb, unit, NULL, why, sizeof(why));

	if (rc < 0)
		log_err("%s", why);
	return rc;
}

int
cron_sync_command(const char *config_path, int argc, char *argv[])
{
	static char calendars[ZDD_CRON_MAX][ZDD_CRON_CALENDAR_MAX];
	static char out[LIST_MAX];
	bool changed[ZDD_CRON_MAX] = { false }, reload = false;
	struct zdd_config cfg;
	int code = ZDD_EXIT_OK, rc;

	(void)argv;
	if (argc > 0) {
		fprintf(stderr, "usage: myapp-zdd cron-sync\n");
		return ZDD_EXIT_USAGE;
	}
	if (geteuid() != 0) {
		log_err("cron-sync writes unit drop-ins: run it as root "
			"(systemctl start myapp-cron-sync.service)");
		return ZDD_EXIT_USAGE;
	}
	config_defaults(&cfg);
	if (config_load(&cfg, config_path, false) < 0)
		return ZDD_EXIT_USAGE;
	rc = run_list(config_path, out, sizeof(out));
	if (rc < 0 || list_parse(out, calendars) < 0) {
		log_err("cannot read the live release's cron schedules%s",
		    rc < 0 ? " (myapp-zdd cron-list failed)"
			   : ": unexpected output of myapp-zdd cron-list");
		return ZDD_EXIT_FAILED;
	}
	for (unsigned i = 0; i < ZDD_CRON_MAX; i++) {
		char dir[PATH_MAX], path[PATH_MAX + 32], n[12],
		    timer[ZDD_NAME_MAX + 32], text[ZDD_CRON_CALENDAR_MAX + 128];

		snprintf(n, sizeof(n), "%u", i);
		if (unit_name(&cfg, "cron-timer", n, timer, sizeof(timer)) < 0)
			return ZDD_EXIT_FAILED;
		snprintf(dir, sizeof(dir), "%s/%s.d", RUN_UNIT_DIR, timer);
		snprintf(path, sizeof(path), "%s/%s", dir, DROPIN_NAME);
		if (calendars[i][0] == '\0') {
			if (unlink(path) == 0) {
				(void)rmdir(dir);
				changed[i] = reload = true;
			}
			continue;
		}
		snprintf(text, sizeof(text),
		    "# myapp-zdd cron-sync: app.json cron[%u] of the live "
		    "release\n[Timer]\nOnCalendar=%.*s\n",
		    i, ZDD_CRON_CALENDAR_MAX - 1, calendars[i]);
		if (same_content(path, text))
			continue;
		rc = dropin_write(dir, path, text);
		if (rc < 0) {
			errno = -rc;
			log_err("cannot write %s: %m", path);
			code = ZDD_EXIT_FAILED;
			continue;
		}
		changed[i] = reload = true;
	}
	if (reload && systemctl(&cfg, "daemon-reload", NULL) < 0)
		return ZDD_EXIT_FAILED;
	for (unsigned i = 0; i < ZDD_CRON_MAX; i++) {
		char timer[ZDD_NAME_MAX + 32], n[12];
		const char *verb;

		if (calendars[i][0] == '\0' && !changed[i])
			continue;
		snprintf(n, sizeof(n), "%u", i);
		if (unit_name(&cfg, "cron-timer", n, timer, sizeof(timer)) < 0)
			return ZDD_EXIT_FAILED;
		verb = calendars[i][0] == '\0' ? "stop"
		    : changed[i]               ? "restart"
					       : "start";
		if (systemctl(&cfg, verb, timer) < 0)
			code = ZDD_EXIT_FAILED;
		else if (changed[i])
			log_info("cron %u: %s%s", i,
			    calendars[i][0] ? "OnCalendar="
					    : "no longer "
					      "declared: timer "
					      "stopped",
			    calendars[i]);
	}
	return code;
}
