/*
 * systemd: systemctl, exec'd directly with
 * --no-ask-password (a push has no terminal to ask on; polkit decides).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zdd.h"

/* kind: "main" <APP>.service, "side" <APP>@<id>.service,
 * "side-probe" <APP>-probe@<id>.socket, "socket" <APP>.socket,
 * "probe" <APP>-probe.socket, "twin" <APP>-twin@<id>.service (on the side
 * instance's probe socket alone), "build" <APP>-build@<id>.service,
 * "release" <APP>-release@<id>.service (the release command), "worker"
 * <APP>-worker@<type>.service (id: the Procfile type), "web" web process
 * <APP>-web@<k>.service and "web-probe" its <APP>-web-probe@<k>.socket
 * (id: k, 2 and up). */
int
unit_name(const struct zdd_config *cfg, const char *kind, const char *id,
    char *out, size_t n)
{
	int len;

	if (strcmp(kind, "main") == 0)
		len = snprintf(out, n, "%s.service", cfg->app);
	else if (strcmp(kind, "socket") == 0)
		len = snprintf(out, n, "%s.socket", cfg->app);
	else if (strcmp(kind, "probe") == 0)
		len = snprintf(out, n, "%s-probe.socket", cfg->app);
	else if (strcmp(kind, "side") == 0 && id)
		len = snprintf(out, n, "%s@%s.service", cfg->app, id);
	else if (strcmp(kind, "twin") == 0 && id)
		len = snprintf(out, n, "%s-twin@%s.service", cfg->app, id);
	else if (strcmp(kind, "build") == 0 && id)
		len = snprintf(out, n, "%s-build@%s.service", cfg->app, id);
	else if (strcmp(kind, "release") == 0 && id)
		len = snprintf(out, n, "%s-release@%s.service", cfg->app, id);
	else if (strcmp(kind, "web") == 0 && id)
		len = snprintf(out, n, "%s-web@%s.service", cfg->app, id);
	else if (strcmp(kind, "web-probe") == 0 && id)
		len = snprintf(out, n, "%s-web-probe@%s.socket", cfg->app, id);
	else if (strcmp(kind, "worker") == 0 && id)
		len = snprintf(out, n, "%s-worker@%s.service", cfg->app, id);
	else if (strcmp(kind, "cron") == 0 && id)
		len = snprintf(out, n, "%s-cron@%s.service", cfg->app, id);
	else if (strcmp(kind, "cron-timer") == 0 && id)
		len = snprintf(out, n, "%s-cron@%s.timer", cfg->app, id);
	else if (strcmp(kind, "cron-sync") == 0)
		len = snprintf(out, n, "%s-cron-sync.service", cfg->app);
	else if (strcmp(kind, "side-probe") == 0 && id)
		len = snprintf(out, n, "%s-probe@%s.socket", cfg->app, id);
	else
		return -EINVAL;
	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

int
units_run(const struct zdd_config *cfg, unsigned timeout_s, const char *verb,
    const char *unit1, const char *unit2, char *why, size_t whylen)
{
	char *argv[] = { (char *)cfg->systemctl, "--no-ask-password",
		(char *)verb, (char *)unit1, (char *)unit2, NULL };
	/* stderr into the captured output (err_fd 1 = the capture pipe):
	 * shown only when systemctl fails, so a push does not print its
	 * routine "can still be activated by myapp.socket" warning. */
	struct spawn_opts o = {
		.in_fd = -1, .out_fd = -1, .err_fd = 1, .timeout_s = timeout_s
	};
	char status_text[64], out[2048];
	int status, rc;

	rc = spawn_capture(argv, &o, out, sizeof(out), &status);
	if (rc == -ETIMEDOUT) {
		snprintf(why, whylen, "systemctl %s %s took more than %u s",
		    verb, unit1, timeout_s);
		return rc;
	}
	if (rc < 0) {
		errno = -rc;
		snprintf(why, whylen, "cannot run %s: %m", cfg->systemctl);
		return rc;
	}
	if (!spawn_ok(status)) {
		size_t len = strlen(out);

		while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' '))
			out[--len] = '\0';
		spawn_describe(status, status_text, sizeof(status_text));
		snprintf(why, whylen, "systemctl %s %s%s%s failed (%s)%s%s",
		    verb, unit1, unit2 ? " " : "", unit2 ? unit2 : "",
		    status_text, out[0] ? ": " : "", out);
		return -EIO;
	}
	return 0;
}

/* Best effort and quiet: a unit already unloaded has no failed state to
 * clear, and systemctl says so with an error. */
void
units_reset_failed(
    const struct zdd_config *cfg, const char *unit1, const char *unit2)
{
	char *argv[] = { (char *)cfg->systemctl, "--no-ask-password",
		"reset-failed", (char *)unit1, (char *)unit2, NULL };
	struct spawn_opts o = {
		.in_fd = -1, .out_fd = -1, .err_fd = 1, .timeout_s = 30
	};
	char out[512];
	int status;

	(void)spawn_capture(argv, &o, out, sizeof(out), &status);
}

/* `systemctl show -p P1 -p P2 -p P3 UNIT` into out (P3 may be NULL). */
int
units_properties(const struct zdd_config *cfg, const char *unit, const char *p1,
    const char *p2, const char *p3, char *out, size_t n, char *why,
    size_t whylen)
{
	char *argv[] = { (char *)cfg->systemctl, "show", "--no-pager", "-p",
		(char *)p1, "-p", (char *)p2, (char *)unit, NULL, NULL, NULL };
	struct spawn_opts o = {
		.in_fd = -1, .out_fd = -1, .err_fd = -1, .timeout_s = 30
	};
	int status, rc;

	if (p3 != NULL) {
		argv[7] = "-p";
		argv[8] = (char *)p3;
		argv[9] = (char *)unit;
	}
	rc = spawn_capture(argv, &o, out, n, &status);
	if (rc < 0 || !spawn_ok(status)) {
		snprintf(why, whylen, "systemctl show %s failed", unit);
		return rc < 0 ? rc : -EIO;
	}
	return 0;
}

/* ActiveState, MainPID and NRestarts of unit. */
int
units_state(const struct zdd_config *cfg, const char *unit,
    struct unit_state *st, char *why, size_t whylen)
{
	char out[1024], *save = NULL;
	int rc;

	memset(st, 0, sizeof(*st));
	snprintf(st->active, sizeof(st->active), "unknown");
	rc = units_properties(cfg, unit, "ActiveState", "MainPID", "NRestarts",
	    out, sizeof(out), why, whylen);
	if (rc < 0)
		return rc;
	for (char *line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "ActiveState=", 12) == 0)
			snprintf(
			    st->active, sizeof(st->active), "%s", line + 12);
		else if (strncmp(line, "MainPID=", 8) == 0)
			st->main_pid = strtol(line + 8, NULL, 10);
		else if (strncmp(line, "NRestarts=", 10) == 0)
			st->restarts = strtoul(line + 10, NULL, 10);
	}
	return 0;
}

/* How a unit's last run ended: Result= ("success", "exit-code",
 * "oom-kill", "timeout", "signal", ...) and its main process's exit status
 * (or signal). */
int
units_result(const struct zdd_config *cfg, const char *unit,
    struct unit_result *res, char *why, size_t whylen)
{
	char out[512], *save = NULL;
	int rc;

	memset(res, 0, sizeof(*res));
	snprintf(res->result, sizeof(res->result), "unknown");
	rc = units_properties(cfg, unit, "Result", "ExecMainStatus", NULL, out,
	    sizeof(out), why, whylen);
	if (rc < 0)
		return rc;
	for (char *line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "Result=", 7) == 0)
			snprintf(
			    res->result, sizeof(res->result), "%s", line + 7);
		else if (strncmp(line, "ExecMainStatus=", 15) == 0)
			res->exit_status = (int)strtol(line + 15, NULL, 10);
	}
	return 0;
}

/* Print a unit's state in one line: "<unit>: active (running) since ...". */
int
units_show(const struct zdd_config *cfg, const char *unit)
{
	char *argv[] = { (char *)cfg->systemctl, "show", "--no-pager", "-p",
		"ActiveState", "-p", "SubState", "-p", "ActiveEnterTimestamp",
		(char *)unit, NULL };
	struct spawn_opts o = {
		.in_fd = -1, .out_fd = -1, .err_fd = -1, .timeout_s = 30
	};
	char out[1024], active[64] = "?", sub[64] = "?", since[128] = "";
	int status, rc;

	rc = spawn_capture(argv, &o, out, sizeof(out), &status);
	if (rc < 0 || !spawn_ok(status)) {
		log_info("%-28s unknown (systemctl show failed)", unit);
		return rc < 0 ? rc : -EIO;
	}
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		if (strncmp(line, "ActiveState=", 12) == 0)
			snprintf(active, sizeof(active), "%s", line + 12);
		else if (strncmp(line, "SubState=", 9) == 0)
			snprintf(sub, sizeof(sub), "%s", line + 9);
		else if (strncmp(line, "ActiveEnterTimestamp=", 21) == 0)
			snprintf(since, sizeof(since), "%s", line + 21);
	}
	log_info("%-28s %s (%s)%s%s", unit, active, sub,
	    since[0] ? " since " : "", since);
	return strcmp(active, "active") == 0 ? 0 : 1;
}

/* `systemctl list-units --all` of the units matching any "<APP>SUFFIX"
 * (globs, at most UNITS_PATTERNS_MAX), one "unit load active sub ..."
 * line each, into out: one systemctl for them all. */
int
units_list_any(const struct zdd_config *cfg, const char *const *suffixes,
    size_t nsuffixes, char *out, size_t n)
{
	char patterns[UNITS_PATTERNS_MAX][ZDD_NAME_MAX + 32];
	char *argv[6 + UNITS_PATTERNS_MAX + 1] = { (char *)cfg->systemctl,
		"list-units", "--all", "--no-legend", "--plain", "--no-pager" };
	struct spawn_opts o = {
		.in_fd = -1, .out_fd = -1, .err_fd = -1, .timeout_s = 30
	};
	int status, rc;

	if (nsuffixes == 0 || nsuffixes > UNITS_PATTERNS_MAX)
		return -EINVAL;
	for (size_t i = 0; i < nsuffixes; i++) {
		int len = snprintf(patterns[i], sizeof(patterns[i]), "%s%s",
		    cfg->app, suffixes[i]);

		if (len < 0 || (size_t)len >= sizeof(patterns[i]))
			return -ENAMETOOLONG;
		argv[6 + i] = patterns[i];
	}
	rc = spawn_capture(argv, &o, out, n, &status);
	if (rc < 0 || !spawn_ok(status))
		return rc < 0 ? rc : -EIO;
	return 0;
}

/* The same for one glob. */
int
units_list(
    const struct zdd_config *cfg, const char *suffix, char *out, size_t n)
{
	return units_list_any(cfg, &suffix, 1, out, n);
}

/* `systemctl show -p PROPS UNIT...` (PROPS: "A,B,..."; timestamps in UTC
 * with microseconds, so they parse and compare): a block of "Key=value"
 * lines per unit, a blank line between, into out. */
int
units_show_many(const struct zdd_config *cfg, const char *props,
    const char *const *units, size_t nunits, char *out, size_t n, char *why,
    size_t whylen)
{
	char *argv[6 + UNITS_SHOW_MAX + 1] = { (char *)cfg->systemctl, "show",
		"--no-pager", "--timestamp=us+utc", "-p", (char *)props };
	struct spawn_opts o = {
		.in_fd = -1, .out_fd = -1, .err_fd = -1, .timeout_s = 30
	};
	int status, rc;

	if (nunits == 0 || nunits > UNITS_SHOW_MAX) {
		snprintf(why, whylen, "systemctl show: %zu units (1 to %d)",
		    nunits, UNITS_SHOW_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < nunits; i++)
		argv[6 + i] = (char *)units[i];
	rc = spawn_capture(argv, &o, out, n, &status);
	if (rc < 0 || !spawn_ok(status)) {
		snprintf(why, whylen, "systemctl show %s%s failed", units[0],
		    nunits > 1 ? " ..." : "");
		return rc < 0 ? rc : -EIO;
	}
	return 0;
}

/*
 * Side instances still loaded (a handover in progress, or one left running
 * after a failed restore).  With stop_strays, stop them and their probe
 * sockets (after a successful handover nothing but main should serve);
 * otherwise list them.  Returns how many were found.
 */
int
units_side_instances(const struct zdd_config *cfg, bool stop_strays)
{
	char pattern[ZDD_NAME_MAX + 16], out[4096];
	char *argv[] = { (char *)cfg->systemctl, "list-units", "--no-legend",
		"--plain", "--no-pager", pattern, NULL };
	struct spawn_opts o = {
		.in_fd = -1, .out_fd = -1, .err_fd = -1, .timeout_s = 30
	};
	size_t prefix = strlen(cfg->app) + 1;
	unsigned count = 0;
	int status, rc;

	snprintf(pattern, sizeof(pattern), "%s@*.service", cfg->app);
	rc = spawn_capture(argv, &o, out, sizeof(out), &status);
	if (rc < 0 || !spawn_ok(status))
		return rc < 0 ? rc : -EIO;
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		char unit[128], load[32], active[32], sub[32], id[ZDD_ID_MAX];
		char probe[ZDD_NAME_MAX + ZDD_ID_MAX + 24], why[ZDD_WHY_MAX];
		size_t len;

		if (sscanf(line, "%127s %31s %31s %31s", unit, load, active,
			sub) != 4)
			continue;
		len = strlen(unit);
		if (len <= prefix + 8 || len - prefix - 8 >= sizeof(id))
			continue;
		snprintf(id, sizeof(id), "%.*s", (int)(len - prefix - 8),
		    unit + prefix);
		if (!release_id_valid(id))
			continue;
		count++;
		if (!stop_strays) {
			log_info("%-28s %s (%s)  <- side instance", unit,
			    active, sub);
			continue;
		}
		log_info("       stopping stray %s", unit);
		if (unit_name(cfg, "side-probe", id, probe, sizeof(probe)) ==
			0 &&
		    units_run(cfg, 120, "stop", unit, probe, why, sizeof(why)) <
			0)
			log_err("%s", why);
	}
	return (int)count;
}

/*
 * Start a oneshot unit and wait for it to end (the build, the release
 * command). 0 when it succeeded; -EIO when it failed (why: how, from
 * Result= and ExecMainStatus=, in words for WHAT, the command it ran;
 * res: systemd's view, for the caller's own limits); -ETIMEDOUT when it
 * outlived timeout_s. A start job still running is stopped, and a failed
 * unit's state is cleared: the caller reports it.
 */
int
units_run_oneshot(const struct zdd_config *cfg, const char *unit,
    unsigned timeout_s, const char *what, struct unit_result *res, char *why,
    size_t whylen)
{
	char *argv[] = { (char *)cfg->systemctl, "--no-ask-password", "start",
		(char *)unit, NULL };
	/* its own group: an interrupted engine stops waiting at once */
	struct spawn_opts o = { .in_fd = -1,
		.out_fd = -1,
		.err_fd = 1,
		.new_pgrp = true,
		.timeout_s = timeout_s };
	char out[2048], ignored[256];
	int status, rc;

	memset(res, 0, sizeof(*res));
	rc = spawn_capture(argv, &o, out, sizeof(out), &status);
	if (rc == -ETIMEDOUT || (rc == 0 && !spawn_ok(status)))
		(void)units_run(
		    cfg, 60, "stop", unit, NULL, ignored, sizeof(ignored));
	if (rc == -ETIMEDOUT) {
		snprintf(
		    why, whylen, "%s took more than %u s", what, timeout_s);
	} else if (rc < 0) {
		errno = -rc;
		snprintf(
		    why, whylen, "cannot run systemctl start %s: %m", unit);
	} else if (!spawn_ok(status)) {
		rc = -EIO;
		if (units_result(cfg, unit, res, ignored, sizeof(ignored)) < 0)
			snprintf(why, whylen,
			    "'%s' failed (%s did not say why)", what, unit);
		else if (strcmp(res->result, "signal") == 0 ||
		    strcmp(res->result, "core-dump") == 0)
			snprintf(why, whylen, "'%s' killed by signal %d (%s)",
			    what, res->exit_status,
			    strsignal(res->exit_status));
		else if (strcmp(res->result, "exit-code") == 0)
			snprintf(why, whylen, "'%s' failed (exit status %d)",
			    what, res->exit_status);
		else if (strcmp(res->result, "oom-kill") == 0 ||
		    strcmp(res->result, "timeout") == 0)
			snprintf(why, whylen, "'%s' stopped by systemd (%s)",
			    what, res->result);
		else /* it never ran: polkit, a missing unit, ... */
			snprintf(why, whylen, "cannot start %s: %.*s", unit,
			    (int)strcspn(out, "\n"), out);
	}
	units_reset_failed(cfg, unit, NULL);
	return rc;
}
