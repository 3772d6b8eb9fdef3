/*
 * `myapp-zdd start-processes`, run at boot by <APP>-processes.service as
 * the deploy user: the live release's processes that socket activation
 * does not start, its web processes 2..N (instances.c) and its workers
 * (workers.c), started where they are not running.
 */
#include <stdio.h>

#include "zdd.h"

#define START_S 120 /* READY within TimeoutStartSec=60, plus margin */

int
processes_start_live(const struct zdd_config *cfg)
{
	char dir[ZDD_RELEASE_PATH_MAX], why[ZDD_WHY_MAX];
	static struct app_spec spec;
	struct worker_results res = { 0 };
	unsigned quantity;
	struct links l;
	int code = ZDD_EXIT_OK;

	if (links_read(cfg->app_root, &l, why, sizeof(why)) < 0 ||
	    l.current_rc < 0) {
		log_info("no live release: nothing to start");
		return ZDD_EXIT_OK;
	}
	if (release_path(cfg->app_root, l.current, NULL, dir, sizeof(dir)) <
		0 ||
	    app_spec_load(dir, &spec, why, sizeof(why)) < 0) {
		log_err("cannot read what %s declares: %s", l.current, why);
		return ZDD_EXIT_FAILED;
	}
	quantity = app_spec_web_quantity(&spec);
	for (unsigned k = 2; k <= quantity; k++) {
		struct web_instance_names w;

		if (web_instance_units(cfg, k, &w) < 0 ||
		    units_run(cfg, START_S, "start", w.unit, NULL, why,
			sizeof(why)) < 0) {
			log_err("web process %u of %s: %s", k, l.current, why);
			code = ZDD_EXIT_FAILED;
		}
	}
	if (spec.has_procfile && workers_declared(&spec.procfile) > 0 &&
	    workers_replace(cfg, &spec.procfile, "start", &res) < 0)
		code = ZDD_EXIT_FAILED;
	return code;
}
