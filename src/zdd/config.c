/*
 * Engine configuration: KEY=value lines, '#' comments, optional matching
 * quotes around a value (debconf-written files quote BUILD_COMMAND).
 * Every value is checked here, so the rest of the engine can trust it.
 *
 * This table is the one place a setting's default and validation live: the
 * package's scripts ask `myapp-zdd config` (config_cmd.c) instead of
 * repeating them. The site settings (the SITE rows: LISTEN, SERVER_NAME,
 * NGINX_*, HTTPS and what it uses; `config keys site`) live in server.conf
 * beside the engine's file; the engine does not use them.
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
	V_TREE,
	V_BRANCH,
	V_COMMAND,
	V_OPTCOMMAND,
	V_GRANTS,
	V_MEMSIZE,
	V_URLPATH,
	V_UINT,
	V_PROGRAM,
	V_LISTEN,
	V_HOSTS,
	V_BOOL,
	V_WEBHOOK,
	V_HTTPS,
	V_OPTFILE,
	V_EMAIL,
	V_ACME
};

struct key_spec {
	const char *key;
	size_t offset;   /* into struct zdd_config */
	size_t size;     /* of the char array, for strings */
	const char *def; /* the default */
	enum value_kind kind;
	unsigned min, max; /* for numbers */
	bool site;         /* in server.conf, for the package's scripts */
};

#define STRING_SPEC(k, kd, field, d) \
	.key = (k), .kind = (kd), \
	.offset = offsetof(struct zdd_config, field), \
	.size = sizeof(((struct zdd_config *)0)->field), .def = (d)
#define STR(k, kd, field, d) \
	{ \
		STRING_SPEC(k, kd, field, d) \
	}
/* a site setting (server.conf) */
#define SITE(k, kd, field, d) \
	{ \
		STRING_SPEC(k, kd, field, d), .site = true \
	}
#define NUM(k, field, lo, hi, d) \
	{ \
		.key = (k), .kind = V_UINT, \
		.offset = offsetof(struct zdd_config, field), .min = (lo), \
		.max = (hi), .def = (d) \
	}
static const struct key_spec keys[] = {
	STR("APP", V_NAME, app, "myapp"),
	STR("DEPLOY_USER", V_NAME, deploy_user, "deploy"),
	STR("REPO", V_TREE, repo, "/var/repo/myapp.git"),
	STR("APP_ROOT", V_TREE, app_root, "/var/www/myapp"),
	STR("BRANCH", V_BRANCH, branch, "main"),
	NUM("KEEP_RELEASES", keep_releases, 1, 1000, "5"),
	/* empty: chosen from the release's files (builder.c) */
	STR("BUILD_COMMAND", V_OPTCOMMAND, build_command, ""),
	NUM("BUILD_TIMEOUT", build_timeout, 1, 86400, "600"),
	/* the build unit's MemoryMax= (of the machine's RAM by default) */
	STR("BUILD_MEMORY_MAX", V_MEMSIZE, build_memory_max, "50%"),
	NUM("READY_TIMEOUT", ready_timeout, 1, 3600, "60"),
	STR("HEALTH_PATH", V_URLPATH, health_path, "/healthz"),
	NUM("HEALTH_TIMEOUT", health_timeout, 1, 3600, "10"),
	NUM("LOCK_TIMEOUT", lock_timeout, 0, 86400, "300"),
	STR("PROBE_SOCKET_DIR", V_PATH, probe_socket_dir, "/run"),
	/* POSTed the history line of every deploy, rollback and restart */
	STR("DEPLOY_WEBHOOK", V_WEBHOOK, deploy_webhook, ""),
	NUM("DEPLOY_WEBHOOK_TIMEOUT", deploy_webhook_timeout, 1, 30, "5"),
	/* what an app's sandbox may be given (app.json myapp-zdd.needs) */
	STR("SANDBOX_GRANTS", V_GRANTS, sandbox_grants, ""),
	STR("SYSTEMCTL", V_PROGRAM, systemctl, "systemctl"),
	STR("JOURNALCTL", V_PROGRAM, journalctl, "journalctl"),
	STR("GIT", V_PROGRAM, git, "git"),
	STR("SYSTEMD_ANALYZE", V_PROGRAM, systemd_analyze, "systemd-analyze"),
	/* the site's, in server.conf */
	SITE("LISTEN", V_LISTEN, listen, "/run/myapp.sock"),
	SITE("SERVER_NAME", V_HOSTS, server_name, "localhost"),
	SITE("NGINX_SITE", V_BOOL, nginx_site, "true"),
	/* the site also answers for every Host no other nginx site names:
	 * the server's addresses, whatever DNS or a NAT calls it */
	SITE("NGINX_ANY_HOST", V_BOOL, nginx_any_host, "true"),
	/* none: port 80 only; certificate: also 443 with TLS_CERTIFICATE and
	 * TLS_KEY (files root keeps), port 80 redirecting to it; letsencrypt:
	 * the same with a certificate certbot gets from ACME_SERVER */
	SITE("HTTPS", V_HTTPS, https, "none"),
	SITE("TLS_CERTIFICATE", V_OPTFILE, tls_certificate, ""),
	SITE("TLS_KEY", V_OPTFILE, tls_key, ""),
	SITE("LETSENCRYPT_EMAIL", V_EMAIL, letsencrypt_email, ""),
	SITE("ACME_SERVER", V_ACME, acme_server,
	    "https://acme-v02.api.letsencrypt.org/directory"),
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

void
config_defaults(struct zdd_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NKEYS; i++)
		(void)config_set(cfg, keys[i].key, keys[i].def, "default");
}

/* What systemd's MemoryMax= takes, in the forms an admin writes. */
static bool
memsize_valid(const char *v)
{
	unsigned long long n;
	char *end;

	if (strcmp(v, "infinity") == 0)
		return true;
	if (!isdigit((unsigned char)v[0]))
		return false;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || n == 0)
		return false;
	if (strcmp(end, "%") == 0)
		return n <= 100;
	/* at least 16 MiB: less cannot run a compiler */
	if (strcmp(end, "K") == 0)
		return n >= 16ULL * 1024 && n < (1ULL << 40);
	if (strcmp(end, "M") == 0)
		return n >= 16 && n < (1ULL << 30);
	if (strcmp(end, "G") == 0)
		return n < (1ULL << 20);
	if (strcmp(end, "T") == 0)
		return n < (1ULL << 10);
	return false;
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

/* Only these characters in a path that root creates and names in files. */
static bool
plain_path(const char *s)
{
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._/-", *s))
			return false;
	return true;
}

/* An absolute plain path, no "..", no "//", no trailing '/'. */
static bool
plain_absolute_path(const char *s)
{
	return s[0] == '/' && plain_path(s) && strstr(s, "..") == NULL &&
	    strstr(s, "//") == NULL && s[strlen(s) - 1] != '/';
}

/* A tree of the deploy user's: /DIR/NAME at least, plain, no "..". */
static bool
valid_tree(const char *s)
{
	const char *second = strchr(s + 1, '/');

	return plain_absolute_path(s) && second != NULL && second > s + 1 &&
	    second[1] != '\0';
}

static bool
valid_port(const char *s)
{
	char *end;
	unsigned long n;

	if (!isdigit((unsigned char)s[0]) || s[0] == '0')
		return false;
	errno = 0;
	n = strtoul(s, &end, 10);
	return *end == '\0' && errno == 0 && n <= 65535;
}

/* /run/NAME.sock, PORT, HOST:PORT or [V6]:PORT: it lands in the socket
 * unit and the nginx upstream, so nothing else passes. */
static bool
valid_listen(const char *s)
{
	const char *colon;
	size_t len = strlen(s);

	if (s[0] == '/')
		return strncmp(s, "/run/", 5) == 0 && len > 10 &&
		    strcmp(s + len - 5, ".sock") == 0 && plain_path(s) &&
		    strstr(s, "..") == NULL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':')
			return false;
		for (const char *p = s + 1; p < close; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' &&
			    *p != '.')
				return false;
		return close > s + 1 && valid_port(close + 2);
	}
	colon = strchr(s, ':');
	if (colon == NULL)
		return valid_port(s);
	if (colon == s || strchr(colon + 1, ':') != NULL)
		return false;
	for (const char *p = s; p < colon; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
			return false;
	return valid_port(colon + 1);
}

/* nginx server_name: host names (or *.wildcards) separated by one space. */
static bool
valid_hosts(const char *s)
{
	if (s[0] == '\0' || s[0] == ' ' || s[strlen(s) - 1] == ' ' ||
	    strstr(s, "  ") != NULL)
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && !strchr(".-_* ", *s))
			return false;
	return true;
}

/* An address certbot passes on: LOCAL@DOMAIN of plain characters. */
static bool
valid_email(const char *s)
{
	const char *at = strchr(s, '@');

	if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@'))
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._%+-@", *s))
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
	case V_TREE:
		return valid_tree(v);
	case V_LISTEN:
		return valid_listen(v);
	case V_HOSTS:
		return valid_hosts(v);
	case V_BOOL:
		return strcmp(v, "true") == 0 || strcmp(v, "false") == 0;
	case V_BRANCH:
		return valid_branch(v);
	case V_COMMAND:
		return v[0] != '\0' && !has_control_chars(v);
	case V_OPTCOMMAND:
		return !has_control_chars(v);
	case V_GRANTS: {
		unsigned grants;

		return grants_parse(v, &grants) == 0;
	}
	case V_MEMSIZE:
		return memsize_valid(v);
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
	case V_WEBHOOK:
		if (v[0] == '\0')
			return true;
		if (strncmp(v, "http://", 7) != 0 &&
		    strncmp(v, "https://", 8) != 0)
			return false;
		for (; *v != '\0'; v++)
			if (!isgraph((unsigned char)*v))
				return false;
		return true;
	case V_HTTPS:
		return strcmp(v, "none") == 0 ||
		    strcmp(v, "certificate") == 0 ||
		    strcmp(v, "letsencrypt") == 0;
	case V_EMAIL:
		return v[0] == '\0' || valid_email(v);
	case V_ACME:
		if (strncmp(v, "https://", 8) != 0 || v[8] == '\0')
			return false;
		for (; *v != '\0'; v++)
			if (!isgraph((unsigned char)*v) || strchr("\"'\\", *v))
				return false;
		return true;
	case V_OPTFILE:
		/* it lands in nginx's configuration: nothing but a plain path */
		return v[0] == '\0' || plain_absolute_path(v);
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
	case V_TREE:
		return "an absolute path below a top directory, of letters, digits, '.', '_', '-'";
	case V_LISTEN:
		return "a UNIX socket path /run/NAME.sock, PORT or HOST:PORT";
	case V_HOSTS:
		return "host names separated by spaces";
	case V_BOOL:
		return "true or false";
	case V_BRANCH:
		return "a git branch name";
	case V_COMMAND:
		return "a non-empty shell command on one line";
	case V_OPTCOMMAND:
		return "a shell command on one line, or empty";
	case V_GRANTS:
		return "empty, or jit, network or both separated by a comma";
	case V_MEMSIZE:
		return "a share of the RAM (1%-100%), a size (512M, 2G) or "
		       "infinity";
	case V_URLPATH:
		return "a URL path starting with '/', no spaces";
	case V_PROGRAM:
		return "a program name or absolute path";
	case V_WEBHOOK:
		return "empty, or an http:// or https:// URL without spaces";
	case V_HTTPS:
		return "none, certificate or letsencrypt";
	case V_EMAIL:
		return "empty, or an e-mail address";
	case V_ACME:
		return "an https:// URL without spaces or quotes";
	case V_OPTFILE:
		return "empty, or an absolute path of letters, digits, '.', '_', '-'";
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

	for (size_t i = 0; i < NKEYS; i++)
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

/* The settings, in table order, for `myapp-zdd config`. */
size_t
config_nkeys(void)
{
	return NKEYS;
}

const char *
config_key(size_t i)
{
	return i < NKEYS ? keys[i].key : NULL;
}

const char *
config_key_default(size_t i)
{
	return i < NKEYS ? keys[i].def : NULL;
}

bool
config_key_is_site(size_t i)
{
	return i < NKEYS && keys[i].site;
}

bool
config_known(const char *key)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].key, key) == 0)
			return true;
	return false;
}

/* KEY's value in cfg as text (numbers in decimal). */
int
config_value(const struct zdd_config *cfg, size_t i, char *out, size_t n)
{
	int len;

	if (i >= NKEYS)
		return -EINVAL;
	if (keys[i].kind == V_UINT)
		len = snprintf(out, n, "%u",
		    *(const unsigned *)(const void *)((const char *)cfg +
			keys[i].offset));
	else
		len =
		    snprintf(out, n, "%s", (const char *)cfg + keys[i].offset);
	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

/* The deploy user's sockets for APP, PROBE_SOCKET_DIR/APP-WHAT.sock (the
 * logs, env and run sockets; their units name the same paths). */
int
app_socket_path(
    const struct zdd_config *cfg, const char *what, char *out, size_t n)
{
	int len = snprintf(
	    out, n, "%s/%s-%s.sock", cfg->probe_socket_dir, cfg->app, what);

	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}
