/*
 * Workers: every Procfile type but web and release runs as
 * <APP>-worker@<type>.service, on the release "current" points at when it
 * starts. One generation at a time: after the new web release is live
 * (deploy, rollback, restart) each of the release's types is restarted,
 * and systemd stops the old process (SIGTERM, TimeoutStopSec= for the job
 * in hand) before it starts the new one, so two generations never run
 * together; the types the release no longer declares are stopped. A
 * worker that does not stay up is said in the push and recorded; the web
 * release stays live (rollback restores the old generation).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "zdd.h"

#define WORKER_RESTART_S 120 /* TimeoutStopSec=30 + the start, plus margin */
#define WORKER_SETTLE_S 1.0  /* it must still run after this, unrestarted */
#define WORKER_JOURNAL_LINES 20

bool
worker_type(const char *type)
{
	return strcmp(type, "web") != 0 && strcmp(type, "release") != 0;
}

/* Whether unit is a worker unit's name (<APP>-worker@<type>.service);
 * its type into type (n > 0). */
bool
worker_unit_type(
    const struct zdd_config *cfg, const char *unit, char *type, size_t n)
{
	size_t prefix = strlen(cfg->app) + strlen("-worker@"), len;
	const char *end;

	if (strncmp(unit, cfg->app, strlen(cfg->app)) != 0 ||
	    strncmp(unit + strlen(cfg->app), "-worker@", 8) != 0)
		return false;
	end = strstr(unit + prefix, ".service");
	if (end == NULL || strcmp(end, ".service") != 0)
		return false;
	len = (size_t)(end - (unit + prefix));
	if (!procfile_type_valid(unit + prefix, len) || (n > 0 && len >= n))
		return false;
	if (n > 0)
		snprintf(type, n, "%.*s", (int)len, unit + prefix);
	return true;
}

/* Worker units systemd has loaded (running, failed, stopping), by type. */
static int
loaded_types(const struct zdd_config *cfg, char types[][ZDD_PROC_TYPE_MAX + 1],
    size_t max, size_t *n)
{
	char out[8192], *save = NULL;
	int rc;

	*n = 0;
	rc = units_list(cfg, "-worker@*.service", out, sizeof(out));
	if (rc < 0)
		return rc;
	for (char *line = strtok_r(out, "\n", &save); line && *n < max;
	     line = strtok_r(NULL, "\n", &save)) {
		char unit[128], load[32], active[32];

		if (sscanf(line, "%127s %31s %31s", unit, load, active) == 3 &&
		    strcmp(active, "inactive") != 0 &&
		    worker_unit_type(cfg, unit, types[*n], sizeof(types[*n])))
			(*n)++;
	}
	return 0;
}

static bool
declared(const struct procfile *p, const char *type)
{
	return p != NULL && procfile_command(p, type) != NULL;
}

size_t
workers_declared(const struct procfile *p)
{
	size_t n = 0;

	for (size_t i = 0; p != NULL && i < p->n; i++)
		n += worker_type(p->procs[i].type);
	return n;
}

static void
result_add(struct worker_results *res, const char *type, const char *result)
{
	if (res->n >= sizeof(res->w) / sizeof(res->w[0]))
		return;
	snprintf(res->w[res->n].type, sizeof(res->w[res->n].type), "%.*s",
	    ZDD_PROC_TYPE_MAX, type);
	res->w[res->n].result = result;
	res->n++;
}

/* Stop the worker types p does not declare (all of them when p is NULL). */
static int
stop_undeclared(const struct zdd_config *cfg, const struct procfile *p,
    struct worker_results *res)
{
	char types[ZDD_PROCS_MAX * 2][ZDD_PROC_TYPE_MAX + 1];
	char unit[ZDD_NAME_MAX + ZDD_PROC_TYPE_MAX + 24], why[ZDD_WHY_MAX];
	size_t n;
	int rc, bad = 0;

	rc = loaded_types(cfg, types, sizeof(types) / sizeof(types[0]), &n);
	if (rc < 0) {
		log_err("cannot list the worker units (systemctl list-units)");
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		if (declared(p, types[i]) ||
		    unit_name(cfg, "worker", types[i], unit, sizeof(unit)) < 0)
			continue;
		log_info("       worker %s: no longer declared, stopping %s",
		    types[i], unit);
		if (units_run(cfg, WORKER_RESTART_S, "stop", unit, NULL, why,
			sizeof(why)) < 0) {
			log_err("%s", why);
			bad = -EIO;
		}
		units_reset_failed(cfg, unit, NULL);
		result_add(res, types[i], bad ? "stop-failed" : "stopped");
	}
	return bad;
}

int
workers_replace(const struct zdd_config *cfg, const struct procfile *p,
    const char *verb, struct worker_results *res)
{
	struct unit_state was[ZDD_PROCS_MAX];
	char unit[ZDD_NAME_MAX + ZDD_PROC_TYPE_MAX + 24], why[ZDD_WHY_MAX];
	bool started[ZDD_PROCS_MAX] = { false };
	int rc = stop_undeclared(cfg, p, res);

	for (size_t i = 0; p != NULL && i < p->n; i++) {
		const char *type = p->procs[i].type;

		if (!worker_type(type) ||
		    unit_name(cfg, "worker", type, unit, sizeof(unit)) < 0)
			continue;
		log_info("       worker %s: %s %s", type, verb, unit);
		units_reset_failed(cfg, unit, NULL);
		if (units_run(cfg, WORKER_RESTART_S, verb, unit, NULL, why,
			sizeof(why)) < 0 ||
		    units_state(cfg, unit, &was[i], why, sizeof(why)) < 0) {
			log_err("%s", why);
			continue;
		}
		started[i] = true;
	}
	/* once for them all: each must still run, and not restarted */
	if (p != NULL && workers_declared(p) > 0)
		clock_sleep(WORKER_SETTLE_S);
	for (size_t i = 0; p != NULL && i < p->n; i++) {
		const char *type = p->procs[i].type;
		struct unit_state now;
		bool up;

		if (!worker_type(type) ||
		    unit_name(cfg, "worker", type, unit, sizeof(unit)) < 0)
			continue;
		up = started[i] &&
		    units_state(cfg, unit, &now, why, sizeof(why)) == 0 &&
		    strcmp(now.active, "active") == 0 &&
		    now.main_pid == was[i].main_pid &&
		    now.restarts == was[i].restarts;
		result_add(res, type, up ? "running" : "failed");
		if (up)
			continue;
		log_err("worker %s did not stay up (%s); journal:", type, unit);
		logs_tail(cfg, unit, WORKER_JOURNAL_LINES);
		rc = -EIO;
	}
	return rc;
}

/* status: every worker unit loaded, with the release that started it;
 * 1 when one the release declares does not run. */
int
workers_show(const struct zdd_config *cfg, const struct procfile *p)
{
	int code = 0;

	char types[ZDD_PROCS_MAX * 2][ZDD_PROC_TYPE_MAX + 1];
	char unit[ZDD_NAME_MAX + ZDD_PROC_TYPE_MAX + 24];
	size_t n = 0;

	if (loaded_types(cfg, types, sizeof(types) / sizeof(types[0]), &n) < 0)
		log_info("workers:  unknown (systemctl list-units failed)");
	for (size_t i = 0; p != NULL && i < p->n; i++) {
		bool loaded = false;

		if (!worker_type(p->procs[i].type))
			continue;
		for (size_t j = 0; j < n; j++)
			loaded |= strcmp(types[j], p->procs[i].type) == 0;
		if (!loaded) {
			log_info("worker %s: declared, not running",
			    p->procs[i].type);
			code = 1;
		}
	}
	for (size_t j = 0; j < n; j++) {
		char id[ZDD_ID_MAX];

		if (unit_name(cfg, "worker", types[j], unit, sizeof(unit)) < 0)
			continue;
		if (units_show(cfg, unit) != 0 && declared(p, types[j]))
			code = 1;
		if (history_last_worker_start(
			cfg->app_root, types[j], id, sizeof(id)) < 0)
			id[0] = '\0';
		log_info("%-28s started on release %s", "",
		    id[0] ? id : "unknown (not by a deploy)");
	}
	return code;
}
