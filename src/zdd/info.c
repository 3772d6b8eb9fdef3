/* Read-only commands: releases, status.  They take no lock. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "zdd.h"

#define STATUS_PROBE_S 3

int
releases_show(const struct zdd_config *cfg)
{
	char rev[ZDD_SHA_MAX + 2], why[ZDD_WHY_MAX];
	struct links l;
	char **ids;
	size_t n;

	if (links_read(cfg->app_root, &l, why, sizeof(why)) < 0)
		log_err("%s", why);
	if (release_list(cfg->app_root, &ids, &n) < 0)
		return ZDD_EXIT_FAILED;
	if (n == 0)
		log_info("no releases in %s/releases", cfg->app_root);
	for (size_t i = n; i-- > 0;) { /* newest first */
		const char *mark = strcmp(ids[i], l.current) == 0 ? "current"
		    : strcmp(ids[i], l.previous) == 0             ? "previous"
								  : "";

		if (release_read_file(cfg->app_root, ids[i], "REVISION", rev,
			sizeof(rev)) < 0)
			snprintf(rev, sizeof(rev), "?");
		log_info("%-9s %s  %.12s", mark, ids[i], rev);
	}
	release_list_free(ids, n);
	return ZDD_EXIT_OK;
}

/* What the live release declares, and the sandbox it runs in. */
static int
live_declared(
    const struct zdd_config *cfg, const char *id, struct app_spec *spec)
{
	char dir[ZDD_RELEASE_PATH_MAX], why[ZDD_WHY_MAX], line[512];
	char level[64], unit[ZDD_NAME_MAX + 16];

	if (release_path(cfg->app_root, id, NULL, dir, sizeof(dir)) < 0 ||
	    app_spec_load(dir, spec, why, sizeof(why)) < 0) {
		log_info("process:  unknown (%s)", why);
		return -EINVAL;
	}
	log_info("process:  web: %s", spec->web ? spec->web : "./start");
	if (app_spec_web_quantity(spec) > 1)
		log_info("web processes: %u (formation.web.quantity)",
		    app_spec_web_quantity(spec));
	for (size_t i = 0; spec->has_procfile && i < spec->procfile.n; i++)
		if (worker_type(spec->procfile.procs[i].type))
			log_info("process:  %s: %s",
			    spec->procfile.procs[i].type,
			    spec->procfile.procs[i].command);
	log_info("readiness: %s", readiness_name(spec->readiness));
	if (profile_check(cfg, spec->json.needs, line, sizeof(line), why,
		sizeof(why)) < 0)
		log_info("profile:  %s", why);
	else
		log_info("profile:  %s", line);
	if (unit_name(cfg, "main", NULL, unit, sizeof(unit)) == 0 &&
	    profile_exposure(cfg, unit, level, sizeof(level)) == 0)
		log_info(
		    "exposure: %s (systemd-analyze security %s)", level, unit);
	return 0;
}

int
status_show(const struct zdd_config *cfg)
{
	char rev[ZDD_SHA_MAX + 2] = "?", since[64] = "?";
	char why[ZDD_WHY_MAX];
	char link[ZDD_PATH_MAX + 16], sock[ZDD_PATH_MAX + 96], unit[128];
	static const char *const kinds[] = { "socket", "main", "probe" };
	static struct app_spec spec;
	char note[512];
	const char *path;
	struct links l;
	struct stat st;
	struct tm tm;
	double t0;
	int code = ZDD_EXIT_OK;

	if (links_read(cfg->app_root, &l, why, sizeof(why)) < 0)
		log_err("%s", why);
	if (l.current_rc < 0) {
		log_info("live:     none (%s/current: %s)", cfg->app_root,
		    l.current_rc == -ENOENT ? "missing, nothing deployed yet"
					    : "unreadable");
		code = ZDD_EXIT_FAILED;
	} else {
		release_read_file(
		    cfg->app_root, l.current, "REVISION", rev, sizeof(rev));
		snprintf(link, sizeof(link), "%s/current", cfg->app_root);
		if (lstat(link, &st) == 0 &&
		    gmtime_r(&st.st_mtime, &tm) != NULL)
			strftime(
			    since, sizeof(since), "%Y-%m-%d %H:%M:%S UTC", &tm);
		log_info("live:     %s", l.current);
		log_info("revision: %s", rev);
		log_info("since:    %s", since);
	}
	if (l.previous_rc == 0)
		log_info("previous: %s", l.previous);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (unit_name(cfg, kinds[i], NULL, unit, sizeof(unit)) == 0 &&
		    units_show(cfg, unit) != 0)
			code = ZDD_EXIT_FAILED;
	}
	units_side_instances(cfg, false);
	if (l.current_rc == 0 && live_declared(cfg, l.current, &spec) < 0)
		code = ZDD_EXIT_FAILED;
	if (web_instances_show(cfg, app_spec_web_quantity(&spec)) != 0 ||
	    workers_show(cfg, spec.has_procfile ? &spec.procfile : NULL) != 0 ||
	    cron_show(cfg, l.current_rc == 0 ? &spec.json : NULL) != 0)
		code = ZDD_EXIT_FAILED;
	/* An app judged by its health check may serve fd 3 alone: ask the
	 * public socket (whichever instance answers is the live one). */
	if (spec.readiness == ZDD_READY_HEALTH && cfg->listen[0] == '/')
		snprintf(sock, sizeof(sock), "%s", cfg->listen);
	else if (probe_socket_path(cfg, NULL, sock, sizeof(sock)) < 0)
		return ZDD_EXIT_FAILED;
	path = spec.json.health.declared && spec.json.health.path[0]
	    ? spec.json.health.path
	    : cfg->health_path;
	t0 = clock_seconds();
	if (spec.readiness == ZDD_READY_HEALTH && cfg->listen[0] != '/') {
		log_info("health:   not probed (the app listens on %s only)",
		    cfg->listen);
	} else if (probe_check(
		       &(struct probe_request){ .socket_path = sock,
			   .check = &spec.json.health,
			   .default_path = cfg->health_path,
			   .total_s = STATUS_PROBE_S,
			   .lenient = spec.readiness == ZDD_READY_HEALTH },
		       note, sizeof(note), why, sizeof(why)) == 0) {
		log_info("health:   200 from %s via %s (%.0f ms)%s%s", path,
		    sock, (clock_seconds() - t0) * 1000, note[0] ? "; " : "",
		    note);
	} else {
		log_info("health:   FAILED: %s", why);
		code = ZDD_EXIT_FAILED;
	}
	return code;
}
