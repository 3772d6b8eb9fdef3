/*
 * Scheduled jobs, the deploy user's side: after the new web release is
 * live (deploy, rollback, restart) the engine starts <APP>-cron-sync.service
 * (cron_sync.c), which sets the timers to what the release declares, and
 * says what runs when. A deploy stops no run: a job still running says so
 * and finishes on the release it started on; systemd starts the next run
 * from "current". Status lists each entry with its last and next run.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zdd.h"

#define SYNC_S 120 /* its daemon-reload and a systemctl per timer */

struct cron_unit_state {
	char active[32]; /* the timer's ActiveState */
	char next[64];   /* NextElapseUSecRealtime, "" when none */
	char last[64];   /* LastTriggerUSec, "" when never */
};

static bool
declared(const struct app_json *j, unsigned n)
{
	return j != NULL && n < j->ncron && !j->cron[n].maintenance;
}

/* The N of a "<APP>-cron@N.SUFFIX" line not inactive; -1 otherwise. */
static int
loaded_n(const struct zdd_config *cfg, const char *line, const char *suffix)
{
	char unit[128], load[32], active[32], prefix[ZDD_NAME_MAX + 8];
	unsigned long n;
	char *end;

	if (sscanf(line, "%127s %31s %31s", unit, load, active) != 3 ||
	    strcmp(active, "inactive") == 0)
		return -1;
	snprintf(prefix, sizeof(prefix), "%s-cron@", cfg->app);
	if (strncmp(unit, prefix, strlen(prefix)) != 0)
		return -1;
	n = strtoul(unit + strlen(prefix), &end, 10);
	if (end == unit + strlen(prefix) || strcmp(end, suffix) != 0 ||
	    n >= ZDD_CRON_MAX)
		return -1;
	return (int)n;
}

/* Bit N of *mask: <APP>-cron@N.SUFFIX is loaded and not inactive. */
static int
loaded_mask(const struct zdd_config *cfg, const char *suffix, unsigned *mask)
{
	char out[4096], pattern[32], *save = NULL;
	int rc;

	*mask = 0;
	snprintf(pattern, sizeof(pattern), "-cron@*%s", suffix);
	rc = units_list(cfg, pattern, out, sizeof(out));
	if (rc < 0)
		return rc;
	for (char *line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		int n = loaded_n(cfg, line, suffix);

		if (n >= 0)
			*mask |= 1u << n;
	}
	return 0;
}

/* Whether a run has anything to do: entries declared, or timers left. */
bool
cron_needed(const struct zdd_config *cfg, const struct app_json *j)
{
	unsigned timers;

	if (j != NULL && j->ncron > 0)
		return true;
	return loaded_mask(cfg, ".timer", &timers) < 0 || timers != 0;
}

static void
timer_state(const struct zdd_config *cfg, unsigned n, struct cron_unit_state *s)
{
	char id[16], unit[ZDD_NAME_MAX + 32], out[512], why[ZDD_WHY_MAX];
	char *save = NULL;

	memset(s, 0, sizeof(*s));
	snprintf(s->active, sizeof(s->active), "unknown");
	snprintf(id, sizeof(id), "%u", n);
	if (unit_name(cfg, "cron-timer", id, unit, sizeof(unit)) < 0 ||
	    units_properties(cfg, unit, "ActiveState", "NextElapseUSecRealtime",
		"LastTriggerUSec", out, sizeof(out), why, sizeof(why)) < 0)
		return;
	for (char *line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char *v = strchr(line, '=');

		if (v == NULL || strcmp(v + 1, "n/a") == 0)
			continue;
		*v++ = '\0';
		if (strcmp(line, "ActiveState") == 0)
			snprintf(s->active, sizeof(s->active), "%s", v);
		else if (strcmp(line, "NextElapseUSecRealtime") == 0)
			snprintf(s->next, sizeof(s->next), "%s", v);
		else if (strcmp(line, "LastTriggerUSec") == 0)
			snprintf(s->last, sizeof(s->last), "%s", v);
	}
}

int
cron_apply(const struct zdd_config *cfg, const struct app_json *j, char *why,
    size_t whylen)
{
	char unit[ZDD_NAME_MAX + 32];
	unsigned running = 0;
	int rc;

	/* said before the timers change: a deploy stops no run */
	if (loaded_mask(cfg, ".service", &running) == 0)
		for (unsigned n = 0; n < ZDD_CRON_MAX; n++)
			if (running & (1u << n))
				log_info("cron %u: a run in progress finishes "
					 "on its release%s",
				    n,
				    declared(j, n) ? ""
						   : " (no longer declared)");
	if (unit_name(cfg, "cron-sync", NULL, unit, sizeof(unit)) < 0)
		return -ENAMETOOLONG;
	rc = units_run(cfg, SYNC_S, "start", unit, NULL, why, whylen);
	if (rc < 0)
		return rc;
	for (unsigned n = 0; j != NULL && n < j->ncron; n++) {
		struct cron_unit_state s;

		if (j->cron[n].maintenance) {
			log_info("cron %u: %s: in maintenance, not run", n,
			    j->cron[n].schedule);
			continue;
		}
		timer_state(cfg, n, &s);
		if (strcmp(s.active, "active") != 0) {
			snprintf(why, whylen,
			    "the timer of cron %u is %s (journalctl -u %s)", n,
			    s.active, unit);
			return -EIO;
		}
		/* systemd computes the next elapse once a run has ended */
		log_info("cron %u: %s: next %s", n, j->cron[n].schedule,
		    s.next[0]                 ? s.next
			: running & (1u << n) ? "when the run in progress ends"
					      : "never");
	}
	return 0;
}

/* Status: a line per entry; 1 when a declared one has no running timer. */
int
cron_show(const struct zdd_config *cfg, const struct app_json *j)
{
	int code = 0;

	for (unsigned n = 0; j != NULL && n < j->ncron; n++) {
		char id[16], unit[ZDD_NAME_MAX + 32], why[ZDD_WHY_MAX];
		char note[64];
		struct cron_unit_state s;
		struct unit_state run;
		struct unit_result res;

		if (j->cron[n].maintenance) {
			log_info("cron %u:   %s: in maintenance, not run", n,
			    j->cron[n].schedule);
			continue;
		}
		timer_state(cfg, n, &s);
		snprintf(id, sizeof(id), "%u", n);
		if (unit_name(cfg, "cron", id, unit, sizeof(unit)) < 0 ||
		    units_state(cfg, unit, &run, why, sizeof(why)) < 0 ||
		    units_result(cfg, unit, &res, why, sizeof(why)) < 0) {
			snprintf(run.active, sizeof(run.active), "unknown");
			snprintf(res.result, sizeof(res.result), "unknown");
		}
		if (strcmp(run.active, "activating") == 0)
			snprintf(note, sizeof(note), ", running now");
		else if (s.last[0] && strcmp(res.result, "success") != 0)
			snprintf(note, sizeof(note), ", which FAILED (%s)",
			    res.result);
		else
			note[0] = '\0';
		log_info("cron %u:   %s (timer %s): last %s%s, next %s", n,
		    j->cron[n].schedule, s.active, s.last[0] ? s.last : "never",
		    note,
		    s.next[0] ? s.next
			: strcmp(run.active, "activating") == 0
			? "when this run ends"
			: "never");
		if (strcmp(s.active, "active") != 0)
			code = 1;
	}
	return code;
}
