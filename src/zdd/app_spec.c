/*
 * What a release declares about itself, from its Procfile, app.json and an
 * executable ./start (the project's own contract): what runs as web, how
 * it says it is ready, how its health is checked, what its sandbox needs.
 * The engine reads it before the build and at every handover; the launcher
 * (launch.c) reads the same files when systemd starts the release.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "zdd.h"

static int
join(const char *dir, const char *name, char *out, size_t n)
{
	int len = snprintf(out, n, "%s/%s", dir, name);

	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

int
app_spec_load(const char *dir, struct app_spec *s, char *why, size_t whylen)
{
	char path[ZDD_RELEASE_PATH_MAX + 16];
	int rc;

	memset(s, 0, sizeof(*s));
	if (join(dir, "Procfile", path, sizeof(path)) < 0) {
		snprintf(why, whylen, "release path too long");
		return -ENAMETOOLONG;
	}
	rc = procfile_load(path, &s->procfile, why, whylen);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	s->has_procfile = rc == 0;
	s->web = s->has_procfile ? procfile_command(&s->procfile, "web") : NULL;
	if (join(dir, "app.json", path, sizeof(path)) < 0) {
		snprintf(why, whylen, "release path too long");
		return -ENAMETOOLONG;
	}
	rc = app_json_load(path, &s->json, why, whylen);
	if (rc < 0)
		return rc;
	if (s->json.readiness != ZDD_READY_UNSET) {
		s->readiness = s->json.readiness;
		snprintf(s->readiness_why, sizeof(s->readiness_why),
		    "app.json myapp-zdd.readiness");
	} else if (s->web != NULL) {
		s->readiness = ZDD_READY_HEALTH;
		snprintf(s->readiness_why, sizeof(s->readiness_why),
		    "a Procfile app that does not declare readiness: ready "
		    "when its health check passes");
	} else {
		s->readiness = ZDD_READY_NOTIFY;
		snprintf(s->readiness_why, sizeof(s->readiness_why),
		    "./start keeps the release contract: READY=1");
	}
	return 0;
}

/* After the build: something must be there to run as web. */
int
app_spec_check_runnable(
    const char *dir, const struct app_spec *s, char *why, size_t whylen)
{
	char path[ZDD_RELEASE_PATH_MAX + 16];

	if (s->web != NULL)
		return 0;
	if (join(dir, "start", path, sizeof(path)) == 0 &&
	    access(path, X_OK) == 0)
		return 0;
	snprintf(why, whylen,
	    s->has_procfile
		? "the Procfile declares no 'web:' process and there is no "
		  "executable ./start"
		: "nothing to run: add a Procfile with 'web: COMMAND' (or an "
		  "executable ./start)");
	return -ENOENT;
}

const char *
readiness_name(enum zdd_readiness r)
{
	return r == ZDD_READY_HEALTH ? "health" : "notify";
}

/* How many web processes the release asks for (1 unless app.json says). */
unsigned
app_spec_web_quantity(const struct app_spec *s)
{
	return s->json.web_quantity ? s->json.web_quantity : 1;
}
