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

#define RELEASE_UNIT_TIMEOUT_S 600u /* the unit's TimeoutStartSec= */
#define ENGINE_GRACE_S 30
#define OUTPUT_LINES 40

int
release_command_run(const struct zdd_config *cfg, const char *id,
    const char *command, char *why, size_t whylen)
{
	char unit[ZDD_NAME_MAX + ZDD_ID_MAX + 24];
	struct unit_result res;
	int rc;

	rc = unit_name(cfg, "release", id, unit, sizeof(unit));
	if (rc < 0) {
		snprintf(why, whylen, "unit name too long (APP)");
		return rc;
	}
	rc = units_run_oneshot(cfg, unit,
	    RELEASE_UNIT_TIMEOUT_S + ENGINE_GRACE_S, command, &res, why,
	    whylen);
	if (rc == -ETIMEDOUT && zdd_interrupted)
		snprintf(why, whylen, "interrupted, release command stopped");
	else if (rc == -ETIMEDOUT ||
	    (rc == -EIO && strcmp(res.result, "timeout") == 0))
		snprintf(why, whylen,
		    "the release command took longer than %u s, stopped",
		    RELEASE_UNIT_TIMEOUT_S);
	logs_tail(cfg, unit, OUTPUT_LINES);
	return rc;
}
