/*
 * Engine configuration: KEY=value lines, '#' comments, optional matching
 * quotes around a value (debconf-written files quote BUILD_COMMAND).
 * Every value is checked here, so the rest of the engine can trust it.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zdd.h"

enum value_kind {
	V_NAME,
	V_PATH,
	V_BRANCH,
	V_COMMAND,
	V_URLPATH,
	V_UINT,
	V_PROGRAM
};

struct key_spec {
	const char *key;
	enum value_kind kind;
	size_t offset;     /* into struct zdd_config */
	size_t size;       /* of the char array, for strings */
	unsigned min, max; /* for numbers */
};

#define STR(k, kind, field) \
	{ \
		k, kind, offsetof(struct zdd_config, field), \
		    sizeof(((struct zdd_config *)0)->field), 0, 0 \
	}
#define NUM(k, field, lo, hi) \
	{ \
		k, V_UINT, offsetof(struct zdd_config, field), 0, lo, hi \
	}

static const struct key_spec keys[] = {
	STR("APP", V_NAME, app),
	STR("DEPLOY_USER", V_NAME, deploy_user),
	STR("REPO", V_PATH, repo),
	STR("APP_ROOT", V_PATH, app_root),
	STR("BRANCH", V_BRANCH, branch),
	NUM("KEEP_RELEASES", keep_releases, 1, 1000),
	STR("BUILD_COMMAND", V_COMMAND, build_command),
	NUM("BUILD_TIMEOUT", build_timeout, 1, 86400),
	NUM("READY_TIMEOUT", ready_timeout, 1, 3600),
	STR("HEALTH_PATH", V_URLPATH, health_path),
	NUM("HEALTH_TIMEOUT", health_timeout, 1, 3600),
	NUM("LOCK_TIMEOUT", lock_timeout, 0, 86400),
	STR("PROBE_SOCKET_DIR", V_PATH, probe_socket_dir),
	STR("SYSTEMCTL", V_PROGRAM, systemctl),
	STR("JOURNALCTL", V_PROGRAM, journalctl),
	STR("GIT", V_PROGRAM, git),
};

void
config_defaults(struct zdd_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->app, sizeof(cfg->app), "myapp");
	snprintf(cfg->deploy_user, sizeof(cfg->deploy_user), "deploy");
	snprintf(cfg->repo, sizeof(cfg->repo), "/var/repo/myapp.git");
	snprintf(cfg->app_root, sizeof(cfg->app_root), "/var/www/myapp");
	snprintf(cfg->branch, sizeof(cfg->branch), "main");
	cfg->keep_releases = 5;
	snprintf(cfg->build_command, sizeof(cfg->build_command), "make");
	cfg->build_timeout = 600;
	cfg->ready_timeout = 60;
	snprintf(cfg->health_path, sizeof(cfg->health_path), "/healthz");
	cfg->health_timeout = 10;
	cfg->lock_timeout = 300;
	snprintf(cfg->probe_socket_dir, sizeof(cfg->probe_socket_dir), "/run");
	snprintf(cfg->systemctl, sizeof(cfg->systemctl), "systemctl");
	snprintf(cfg->journalctl, sizeof(cfg->journalctl), "journalctl");
	snprintf(cfg->git, sizeof(cfg->git), "git");
}

static bool
has_control_chars(const char *s)
{
	for (; *s != '\0'; s++)
		if (iscntrl((unsigned char)*s))
			return true;
	return false;
}

/* Names end up in unit names, user lookups and socket paths. */
static bool
valid_name(const char *s)
{
	if (!islower((unsigned char)s[0]) && !isdigit((unsigned char)s[0]))
		return false;
	for (; *s != '\0'; s++)
		if (!islower((unsigned char)*s) &&
		    !isdigit((unsigned char)*s) && *s != '-' && *s != '_')
			return false;
	return true;
}

/* A subset of git-check-ref-format, enough to keep it out of argv trouble. */
static bool
valid_branch(const char *s)
{
	if (s[0] == '\0' || s[0] == '-' || s[0] == '/' || strstr(s, "..") ||
	    strstr(s, "//") || strstr(s, "@{") || s[strlen(s) - 1] == '/')
		return false;
	for (; *s != '\0'; s++)
		if (iscntrl((unsigned char)*s) || strchr(" ~^:?*[\\", *s))
			return false;
	return true;
}

static bool
valid_kind(enum value_kind kind, const char *v)
{
	switch (kind) {
	case V_NAME:
		return valid_name(v);
	case V_PATH:
		return v[0] == '/' && !has_control_chars(v);
	case V_BRANCH:
		return valid_branch(v);
	case V_COMMAND:
		return v[0] != '\0' && !has_control_chars(v);
	case V_URLPATH:
		if (v[0] != '/')
			return false;
		for (; *v != '\0'; v++)
			if (!isgraph((unsigned char)*v))
				return false;
		return true;
	case V_PROGRAM:
		return v[0] != '\0' && v[0] != '-' && !has_control_chars(v) &&
		    !strchr(v, ' ');
	case V_UINT:
		break;
	}
	return false;
}

static const char *
kind_hint(enum value_kind kind)
{
	switch (kind) {
	case V_NAME:
		return "lower-case letters, digits, '-' and '_', starting with a letter or digit";
	case V_PATH:
		return "an absolute path";
	case V_BRANCH:
		return "a git branch name";
	case V_COMMAND:
		return "a non-empty shell command on one line";
	case V_URLPATH:
		return "a URL path starting with '/', no spaces";
	case V_PROGRAM:
		return "a program name or absolute path";
	case V_UINT:
		break;
	}
	return "a number";
}

int
config_set(struct zdd_config *cfg, const char *key, const char *value,
    const char *where)
{
	const struct key_spec *k = NULL;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].key, key) == 0)
			k = &keys[i];
	if (k == NULL) {
		log_warn("%s: unknown key %s ignored", where, key);
		return 0;
	}
	if (k->kind == V_UINT) {
		char *end;
		unsigned long n;

		errno = 0;
		n = strtoul(value, &end, 10);
		if (!isdigit((unsigned char)value[0]) || *end != '\0' ||
		    errno != 0 || n < k->min || n > k->max) {
			log_err(
			    "%s: %s: '%s' is not a number between %u and %u",
			    where, key, value, k->min, k->max);
			return -EINVAL;
		}
		*(unsigned *)(void *)((char *)cfg + k->offset) = (unsigned)n;
		return 0;
	}
	if (strlen(value) >= k->size) {
		log_err("%s: %s: value longer than %zu characters", where, key,
		    k->size - 1);
		return -EINVAL;
	}
	if (strlen(value) > ZDD_NAME_MAX && k->kind == V_NAME) {
		log_err("%s: %s: longer than %d characters", where, key,
		    ZDD_NAME_MAX);
		return -EINVAL;
	}
	if (!valid_kind(k->kind, value)) {
		log_err("%s: %s: '%s' is not valid (expected %s)", where, key,
		    value, kind_hint(k->kind));
		return -EINVAL;
	}
	memcpy((char *)cfg + k->offset, value, strlen(value) + 1);
	return 0;
}

static char *
trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

int
config_parse_line(struct zdd_config *cfg, const char *line, const char *where)
{
	char buf[ZDD_LINE_MAX];
	char *key, *value, *eq;
	size_t len;

	if (strlen(line) >= sizeof(buf)) {
		log_err("%s: line longer than %zu characters", where,
		    sizeof(buf) - 1);
		return -EINVAL;
	}
	memcpy(buf, line, strlen(line) + 1);
	key = trim(buf);
	if (key[0] == '\0' || key[0] == '#')
		return 0;
	eq = strchr(key, '=');
	if (eq == NULL) {
		log_err("%s: expected KEY=value, got '%s'", where, key);
		return -EINVAL;
	}
	*eq = '\0';
	key = trim(key);
	value = trim(eq + 1);
	if (key[0] == '\0') {
		log_err("%s: missing key before '='", where);
		return -EINVAL;
	}
	len = strlen(value);
	if (len >= 2 && (value[0] == '"' || value[0] == '\'') &&
	    value[len - 1] == value[0]) {
		value[len - 1] = '\0';
		value++;
	}
	return config_set(cfg, key, value, where);
}

int
config_load(struct zdd_config *cfg, const char *path, bool must_exist)
{
	char line[ZDD_LINE_MAX + 2];
	char where[ZDD_PATH_MAX + 32];
	unsigned lineno = 0;
	int rc = 0;
	FILE *f;

	f = fopen(path, "re");
	if (f == NULL) {
		if (errno == ENOENT && !must_exist)
			return 0;
		rc = -errno;
		log_err("cannot read configuration %s: %m", path);
		return rc;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t len = strlen(line);

		lineno++;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(f)) {
			log_err("%s: line longer than %d characters", where,
			    ZDD_LINE_MAX);
			rc = -EINVAL;
			break;
		}
		if (config_parse_line(cfg, line, where) < 0)
			rc = -EINVAL;
	}
	if (ferror(f) && rc == 0) {
		rc = -EIO;
		log_err("cannot read configuration %s: %m", path);
	}
	fclose(f);
	return rc;
}
