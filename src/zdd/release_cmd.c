/*
 * The release command: the Procfile's release: (database migrations, for
 * instance), run once per deploy after the build and before the release
 * starts. It runs as <APP>-release@<id>.service, a oneshot unit with the
 * app's rights (its user, environment, state directory and sandbox
 * profile), not the deploy user's: what it changes is the app's data.
 * Its output is the unit's journal, shown in the push.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "zdd.h"

#define RELEASE_UNIT_TIMEOUT_S 600 /* the unit's TimeoutStartSec= */
#define ENGINE_GRACE_S 30
#define OUTPUT_LINES 40

/* Why the unit failed, from how systemd saw it end. */
static void
describe_failure(const struct zdd_config *cfg, const char *unit,
    const char *systemctl_said, char *why, size_t whylen)
{
	struct unit_result res;
	char ignored[128];

	if (units_result(cfg, unit, &res, ignored, sizeof(ignored)) < 0)
		snprintf(why, whylen, "the release command failed (%s did not "
				      "say why)",
		    unit);
	else if (strcmp(res.result, "timeout") == 0)
		snprintf(why, whylen,
		    "the release command took longer than %u s, stopped",
		    RELEASE_UNIT_TIMEOUT_S);
	else if (strcmp(res.result, "signal") == 0 ||
	    strcmp(res.result, "core-dump") == 0)
		snprintf(why, whylen,
		    "the release command was killed by signal %d (%s)",
		    res.exit_status, strsignal(res.exit_status));
	else if (strcmp(res.result, "exit-code") == 0)
		snprintf(why, whylen,
		    "the release command failed (exit status %d)",
		    res.exit_status);
	else /* it never ran: polkit, a missing unit, ... */
		snprintf(why, whylen, "cannot start %s: %.*s", unit,
		    (int)strcspn(systemctl_said, "\n"), systemctl_said);
}

int
release_command_run(
    const struct zdd_config *cfg, const char *id, char *why, size_t whylen)
{
	char unit[ZDD_NAME_MAX + ZDD_ID_MAX + 24], out[2048], stop_why[256];
	char *argv[] = { (char *)cfg->systemctl, "--no-ask-password", "start",
		unit, NULL };
	/* its own group: an interrupted engine stops waiting at once */
	struct spawn_opts o = { .in_fd = -1,
		.out_fd = -1,
		.err_fd = 1,
		.new_pgrp = true,
		.timeout_s = RELEASE_UNIT_TIMEOUT_S + ENGINE_GRACE_S };
	int status, rc;

	rc = unit_name(cfg, "release", id, unit, sizeof(unit));
	if (rc < 0) {
		snprintf(why, whylen, "unit name too long (APP)");
		return rc;
	}
	rc = spawn_capture(argv, &o, out, sizeof(out), &status);
	if (rc == -ETIMEDOUT || (rc == 0 && !spawn_ok(status)))
		(void)units_run(
		    cfg, 60, "stop", unit, NULL, stop_why, sizeof(stop_why));
	if (rc == -ETIMEDOUT && zdd_interrupted) {
		snprintf(why, whylen, "interrupted, release command stopped");
	} else if (rc == -ETIMEDOUT) {
		snprintf(why, whylen,
		    "the release command took longer than %u s, stopped",
		    RELEASE_UNIT_TIMEOUT_S);
	} else if (rc < 0) {
		errno = -rc;
		snprintf(
		    why, whylen, "cannot run systemctl start %s: %m", unit);
	} else if (!spawn_ok(status)) {
		describe_failure(cfg, unit, out, why, whylen);
		rc = -EIO;
	}
	logs_tail(cfg, unit, OUTPUT_LINES);
	/* a failed release command is reported here, not left failed */
	units_reset_failed(cfg, unit, NULL);
	return rc;
}
