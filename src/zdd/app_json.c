/*
 * app.json, as Heroku and Dokku read it; what the engine uses of it:
 *
 *   "healthchecks": {"web": [{"type": "startup", "path": "/healthz",
 *       "attempts": 5, "timeout": 5, "wait": 1, "initialDelay": 0,
 *       "uptime": 0}]}                               (Dokku's format)
 *   "formation": {"web": {"quantity": 3}}            (Heroku's: web
 *                                                      processes, 1-16)
 *   "cron": [{"command": "CMD", "schedule": "0 1 * * *",
 *       "maintenance": false, "concurrency_policy": "forbid"}]
 *                                                     (Dokku's; cron.c)
 *   "myapp-zdd": {"needs": ["jit", "network"],       (sandbox grants)
 *                 "readiness": "notify" | "health",
 *                 "build": "COMMAND"}                (overrides detection)
 *
 * Everything else is left to the tools that read it.  Every number is
 * bounded; a wrong type is an error that names the key.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "zdd.h"

#define APP_JSON_SIZE_MAX ((size_t)1024 * 1024)
#define HEALTH_SECONDS_MAX 3600
#define HEALTH_ATTEMPTS_MAX 1000

static const struct {
	const char *name;
	unsigned bit;
} need_names[] = { { "jit", ZDD_NEED_JIT }, { "network", ZDD_NEED_NETWORK } };

int
needs_parse(const char *name, unsigned *bit)
{
	for (size_t i = 0; i < sizeof(need_names) / sizeof(need_names[0]); i++)
		if (strcmp(name, need_names[i].name) == 0) {
			*bit = need_names[i].bit;
			return 0;
		}
	return -EINVAL;
}

/* "strict", "jit", "network", "jit+network". */
void
needs_format(unsigned needs, char *out, size_t n)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(need_names) / sizeof(need_names[0]); i++)
		if (needs & need_names[i].bit) {
			int len = snprintf(out + used, n - used, "%s%s",
			    used ? "+" : "", need_names[i].name);

			if (len < 0 || (size_t)len >= n - used)
				return;
			used += (size_t)len;
		}
	if (used == 0)
		snprintf(out, n, "strict");
}

static int
get_uint(json_object *o, const char *key, unsigned max, unsigned *out,
    char *why, size_t whylen)
{
	json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int) ||
	    (n = json_object_get_int64(v)) < 0 || n > (int64_t)max) {
		snprintf(why, whylen,
		    "app.json: healthchecks.web %s must be a number from 0 "
		    "to %u",
		    key, max);
		return -EINVAL;
	}
	*out = (unsigned)n;
	return 0;
}

static int
get_string(json_object *o, const char *key, const char *where, char *out,
    size_t n, char *why, size_t whylen)
{
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_string) ||
	    strlen(s = json_object_get_string(v)) >= n || s[0] == '\0') {
		snprintf(why, whylen,
		    "app.json: %s%s must be a string of 1 to %zu characters",
		    where, key, n - 1);
		return -EINVAL;
	}
	for (const char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p < ' ') {
			snprintf(why, whylen,
			    "app.json: %s%s holds a control character", where,
			    key);
			return -EINVAL;
		}
	snprintf(out, n, "%s", s);
	return 1;
}

/* The first startup check of healthchecks.web (no type means startup). */
static int
parse_health(
    json_object *root, struct health_check *h, char *why, size_t whylen)
{
	json_object *checks, *web, *c = NULL, *type;
	size_t n;
	int rc;

	if (!json_object_object_get_ex(root, "healthchecks", &checks))
		return 0;
	if (!json_object_is_type(checks, json_type_object) ||
	    (json_object_object_get_ex(checks, "web", &web) &&
		!json_object_is_type(web, json_type_array))) {
		snprintf(why, whylen,
		    "app.json: healthchecks must be an object of arrays "
		    "(\"web\": [ … ])");
		return -EINVAL;
	}
	if (!json_object_object_get_ex(checks, "web", &web))
		return 0;
	n = json_object_array_length(web);
	for (size_t i = 0; i < n && c == NULL; i++) {
		json_object *e = json_object_array_get_idx(web, i);

		if (!json_object_is_type(e, json_type_object)) {
			snprintf(why, whylen,
			    "app.json: healthchecks.web[%zu] is not an object",
			    i);
			return -EINVAL;
		}
		if (!json_object_object_get_ex(e, "type", &type) ||
		    (json_object_is_type(type, json_type_string) &&
			strcmp(json_object_get_string(type), "startup") == 0))
			c = e;
	}
	if (c == NULL)
		return 0;
	rc = get_string(c, "path", "healthchecks.web ", h->path,
	    sizeof(h->path), why, whylen);
	if (rc < 0)
		return rc;
	if (rc == 1 && (h->path[0] != '/' || strchr(h->path, ' '))) {
		snprintf(why, whylen,
		    "app.json: healthchecks.web path must start with '/' and "
		    "hold no space");
		return -EINVAL;
	}
	if (get_uint(c, "attempts", HEALTH_ATTEMPTS_MAX, &h->attempts, why,
		whylen) < 0 ||
	    get_uint(c, "timeout", HEALTH_SECONDS_MAX, &h->timeout_s, why,
		whylen) < 0 ||
	    get_uint(c, "wait", HEALTH_SECONDS_MAX, &h->wait_s, why, whylen) <
		0 ||
	    get_uint(c, "initialDelay", HEALTH_SECONDS_MAX, &h->initial_delay_s,
		why, whylen) < 0 ||
	    get_uint(
		c, "uptime", HEALTH_SECONDS_MAX, &h->uptime_s, why, whylen) < 0)
		return -EINVAL;
	if (h->path[0] == '\0' && h->uptime_s == 0) {
		snprintf(why, whylen,
		    "app.json: healthchecks.web needs a \"path\" (an HTTP "
		    "check) or an \"uptime\" in seconds");
		return -EINVAL;
	}
	h->declared = true;
	return 0;
}

/* formation.web.quantity; the other types run one process each. */
static int
parse_formation(json_object *root, struct app_json *a, char *why, size_t whylen)
{
	json_object *f, *web, *q;
	int64_t n;

	if (!json_object_object_get_ex(root, "formation", &f))
		return 0;
	if (!json_object_is_type(f, json_type_object) ||
	    (json_object_object_get_ex(f, "web", &web) &&
		!json_object_is_type(web, json_type_object))) {
		snprintf(why, whylen,
		    "app.json: formation must be an object of objects "
		    "(\"web\": {\"quantity\": N})");
		return -EINVAL;
	}
	if (!json_object_object_get_ex(f, "web", &web) ||
	    !json_object_object_get_ex(web, "quantity", &q))
		return 0;
	if (!json_object_is_type(q, json_type_int) ||
	    (n = json_object_get_int64(q)) < 1 || n > ZDD_WEB_QUANTITY_MAX) {
		snprintf(why, whylen,
		    "app.json: formation.web.quantity must be a number from 1 "
		    "to %d",
		    ZDD_WEB_QUANTITY_MAX);
		return -EINVAL;
	}
	a->web_quantity = (unsigned)n;
	return 0;
}

/* One job at a time is what systemd does: "allow" (Dokku's default)
 * permits no more than that; "replace" would kill a run, and is refused. */
static int
parse_cron_entry(
    json_object *e, size_t i, struct cron_entry *c, char *why, size_t whylen)
{
	char where[32], policy[16] = "", cwhy[ZDD_WHY_MAX];
	json_object *m;
	int rc;

	snprintf(where, sizeof(where), "cron[%zu].", i);
	if (!json_object_is_type(e, json_type_object)) {
		snprintf(
		    why, whylen, "app.json: cron[%zu] is not an object", i);
		return -EINVAL;
	}
	rc = get_string(
	    e, "command", where, c->command, sizeof(c->command), why, whylen);
	if (rc == 1)
		rc = get_string(e, "schedule", where, c->schedule,
		    sizeof(c->schedule), why, whylen);
	if (rc == 0) {
		snprintf(why, whylen,
		    "app.json: cron[%zu] needs a \"command\" and a "
		    "\"schedule\"",
		    i);
		return -EINVAL;
	}
	if (rc < 0)
		return rc;
	if (cron_calendar(c->schedule, c->calendar, sizeof(c->calendar), cwhy,
		sizeof(cwhy)) < 0) {
		snprintf(
		    why, whylen, "app.json: cron[%zu].schedule: %s", i, cwhy);
		return -EINVAL;
	}
	if (json_object_object_get_ex(e, "maintenance", &m)) {
		if (!json_object_is_type(m, json_type_boolean)) {
			snprintf(why, whylen,
			    "app.json: cron[%zu].maintenance must be true or "
			    "false",
			    i);
			return -EINVAL;
		}
		c->maintenance = json_object_get_boolean(m);
	}
	rc = get_string(e, "concurrency_policy", where, policy, sizeof(policy),
	    why, whylen);
	if (rc < 0)
		return rc;
	if (rc == 1 && strcmp(policy, "forbid") != 0 &&
	    strcmp(policy, "allow") != 0) {
		snprintf(why, whylen,
		    "app.json: cron[%zu].concurrency_policy: a job runs once "
		    "at a time here (\"forbid\"); a run is never replaced",
		    i);
		return -EINVAL;
	}
	return 0;
}

static int
parse_cron(json_object *root, struct app_json *a, char *why, size_t whylen)
{
	json_object *list;
	size_t n;

	if (!json_object_object_get_ex(root, "cron", &list))
		return 0;
	if (!json_object_is_type(list, json_type_array)) {
		snprintf(why, whylen,
		    "app.json: cron must be an array of {\"command\": ..., "
		    "\"schedule\": ...}");
		return -EINVAL;
	}
	n = json_object_array_length(list);
	if (n > ZDD_CRON_MAX) {
		snprintf(why, whylen, "app.json: more than %d cron entries",
		    ZDD_CRON_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		int rc = parse_cron_entry(json_object_array_get_idx(list, i), i,
		    &a->cron[i], why, whylen);

		if (rc < 0)
			return rc;
	}
	a->ncron = (unsigned)n;
	return 0;
}

static int
parse_ours(json_object *root, struct app_json *a, char *why, size_t whylen)
{
	json_object *o, *needs, *v;
	char readiness[16] = "";
	int rc;

	if (!json_object_object_get_ex(root, "myapp-zdd", &o))
		return 0;
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(
		    why, whylen, "app.json: \"myapp-zdd\" must be an object");
		return -EINVAL;
	}
	if (json_object_object_get_ex(o, "needs", &needs)) {
		size_t n;

		if (!json_object_is_type(needs, json_type_array)) {
			snprintf(why, whylen,
			    "app.json: myapp-zdd.needs must be an array of "
			    "\"jit\", \"network\"");
			return -EINVAL;
		}
		n = json_object_array_length(needs);
		for (size_t i = 0; i < n; i++) {
			unsigned bit;

			v = json_object_array_get_idx(needs, i);
			if (!json_object_is_type(v, json_type_string) ||
			    needs_parse(json_object_get_string(v), &bit) < 0) {
				snprintf(why, whylen,
				    "app.json: myapp-zdd.needs[%zu]: expected "
				    "\"jit\" or \"network\"",
				    i);
				return -EINVAL;
			}
			a->needs |= bit;
		}
	}
	rc = get_string(o, "readiness", "myapp-zdd.", readiness,
	    sizeof(readiness), why, whylen);
	if (rc < 0)
		return rc;
	if (rc == 1 && strcmp(readiness, "notify") == 0)
		a->readiness = ZDD_READY_NOTIFY;
	else if (rc == 1 && strcmp(readiness, "health") == 0)
		a->readiness = ZDD_READY_HEALTH;
	else if (rc == 1) {
		snprintf(why, whylen,
		    "app.json: myapp-zdd.readiness: expected \"notify\" or "
		    "\"health\"");
		return -EINVAL;
	}
	rc = get_string(
	    o, "build", "myapp-zdd.", a->build, sizeof(a->build), why, whylen);
	return rc < 0 ? rc : 0;
}

int
app_json_parse(const char *text, struct app_json *a, char *why, size_t whylen)
{
	enum json_tokener_error jerr;
	json_tokener *tok;
	json_object *root;
	int rc;

	memset(a, 0, sizeof(*a));
	tok = json_tokener_new();
	if (tok == NULL) {
		snprintf(why, whylen, "app.json: out of memory");
		return -ENOMEM;
	}
	root = json_tokener_parse_ex(tok, text, (int)strlen(text));
	jerr = json_tokener_get_error(tok);
	if (root == NULL || jerr != json_tokener_success) {
		snprintf(why, whylen, "app.json is not valid JSON: %s",
		    json_tokener_error_desc(jerr));
		rc = -EINVAL;
	} else {
		const char *rest = text + json_tokener_get_parse_end(tok);

		rc = rest[strspn(rest, " \t\r\n")] == '\0' ? 0 : -EINVAL;
		if (rc < 0)
			snprintf(why, whylen,
			    "app.json is not valid JSON: text after the object");
	}
	json_tokener_free(tok);
	if (rc < 0) {
		json_object_put(root);
		return rc;
	}
	if (!json_object_is_type(root, json_type_object)) {
		snprintf(why, whylen, "app.json must hold a JSON object");
		rc = -EINVAL;
	} else {
		rc = parse_health(root, &a->health, why, whylen);
		if (rc == 0)
			rc = parse_formation(root, a, why, whylen);
		if (rc == 0)
			rc = parse_cron(root, a, why, whylen);
		if (rc == 0)
			rc = parse_ours(root, a, why, whylen);
	}
	json_object_put(root);
	return rc;
}

/* 0 and a filled (all unset when there is no app.json); else why. */
int
app_json_load(const char *path, struct app_json *a, char *why, size_t whylen)
{
	char *text = NULL;
	int rc;

	memset(a, 0, sizeof(*a));
	rc = file_read_bounded(path, APP_JSON_SIZE_MAX, &text, why, whylen);
	if (rc == -ENOENT)
		return 0;
	if (rc == 0)
		rc = app_json_parse(text, a, why, whylen);
	free(text);
	return rc;
}
