/*
 * Web processes 2..N of the live release, when app.json asks for N
 * (formation.web.quantity): <APP>-web@<k>.service beside <APP>.service
 * (web process 1), all on the public socket, each with its own probe
 * socket <APP>-web-probe@<k>.socket. The handover restarts them one at a
 * time after <APP>.service (deploy.c checks each like main), while the
 * new release's handover instance still serves, and stops those above
 * the quantity. Here: their names, which are loaded, and stopping them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zdd.h"

#define INSTANCE_STOP_S 120 /* TimeoutStopSec=30, plus margin */

int
web_instance_units(
    const struct zdd_config *cfg, unsigned k, struct web_instance_names *w)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->id, sizeof(w->id), "%u", k);
	snprintf(w->probe_id, sizeof(w->probe_id), "web-%u", k);
	if (unit_name(cfg, "web", w->id, w->unit, sizeof(w->unit)) < 0 ||
	    unit_name(cfg, "web-probe", w->id, w->probe_unit,
		sizeof(w->probe_unit)) < 0 ||
	    probe_socket_path(cfg, w->probe_id, w->socket, sizeof(w->socket)) <
		0)
		return -ENAMETOOLONG;
	return 0;
}

/* The k of a loaded <APP>-web@<k>.service line, or 0. */
static unsigned
loaded_k(const struct zdd_config *cfg, const char *line)
{
	char unit[128], load[32], active[32], prefix[ZDD_NAME_MAX + 8];
	unsigned long k;
	char *end;

	if (sscanf(line, "%127s %31s %31s", unit, load, active) != 3 ||
	    strcmp(active, "inactive") == 0)
		return 0;
	snprintf(prefix, sizeof(prefix), "%s-web@", cfg->app);
	if (strncmp(unit, prefix, strlen(prefix)) != 0)
		return 0;
	k = strtoul(unit + strlen(prefix), &end, 10);
	if (strcmp(end, ".service") != 0 || k < 2 || k > ZDD_WEB_QUANTITY_MAX)
		return 0;
	return (unsigned)k;
}

/* Which web processes 2..16 systemd has loaded (running, failed, ...):
 * bit k of *mask. */
int
web_instances_loaded(const struct zdd_config *cfg, unsigned *mask)
{
	char out[4096], *save = NULL;
	int rc;

	*mask = 0;
	rc = units_list(cfg, "-web@*.service", out, sizeof(out));
	if (rc < 0)
		return rc;
	for (char *line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned k = loaded_k(cfg, line);

		if (k != 0)
			*mask |= 1u << k;
	}
	return 0;
}

/* Stop the web processes above quantity (a release that asks for fewer,
 * or none: quantity 1). */
int
web_instances_stop_above(const struct zdd_config *cfg, unsigned quantity)
{
	char why[ZDD_WHY_MAX];
	unsigned mask;
	int rc = web_instances_loaded(cfg, &mask);

	if (rc < 0) {
		log_err("cannot list the web process units (systemctl "
			"list-units)");
		return rc;
	}
	for (unsigned k = quantity + 1; k <= ZDD_WEB_QUANTITY_MAX; k++) {
		struct web_instance_names w;

		if (!(mask & (1u << k)) || web_instance_units(cfg, k, &w) < 0)
			continue;
		log_info(
		    "       stopping %s (web quantity %u)", w.unit, quantity);
		if (units_run(cfg, INSTANCE_STOP_S, "stop", w.unit,
			w.probe_unit, why, sizeof(why)) < 0) {
			log_err("%s", why);
			rc = -EIO;
		}
		units_reset_failed(cfg, w.unit, NULL);
	}
	return rc;
}

/* status: web processes 2..quantity, and any loaded above it; 1 when one
 * the release asks for is not active. */
int
web_instances_show(const struct zdd_config *cfg, unsigned quantity)
{
	unsigned mask = 0;
	int code = 0;

	if (web_instances_loaded(cfg, &mask) < 0)
		mask = 0;
	for (unsigned k = 2; k <= ZDD_WEB_QUANTITY_MAX; k++) {
		struct web_instance_names w;

		if ((k > quantity && !(mask & (1u << k))) ||
		    web_instance_units(cfg, k, &w) < 0)
			continue;
		if (units_show(cfg, w.unit) != 0 && k <= quantity)
			code = 1;
	}
	return code;
}
