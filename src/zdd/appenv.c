/*
 * The app's environment file (/etc/myapp-zdd/env, systemd's
 * EnvironmentFile= of every app unit): its names, its values as systemd
 * reads them, and the edits `myapp-zdd env set/unset` make.
 *
 * systemd's syntax (env-file.c): "KEY=VALUE" lines, '#' or ';' comments,
 * a value unquoted (trailing blanks dropped, '\' escapes the next
 * character), or in '…' (literal) or "…" (\ escapes " \ ` $). An edit
 * keeps every other line as it is and writes its own values so that
 * systemd reads them back byte for byte.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zdd.h"

/* Set by systemd for the process, or ours: a file value would override
 * them (EnvironmentFile= comes last) and break the app's contract. */
static const char *const reserved[] = { "NOTIFY_SOCKET", "MAINPID",
	"MANAGERPID", "SYSTEMD_EXEC_PID", "INVOCATION_ID", "JOURNAL_STREAM",
	"STATE_DIRECTORY", "RUNTIME_DIRECTORY", "CACHE_DIRECTORY",
	"LOGS_DIRECTORY", "CONFIGURATION_DIRECTORY", "CREDENTIALS_DIRECTORY",
	"HOME", "USER", "LOGNAME", "SHELL" };
static const char *const reserved_prefixes[] = { "LISTEN_", "WATCHDOG_",
	"ZDD_" };

bool
appenv_key_valid(const char *key, char *why, size_t whylen)
{
	size_t n = strlen(key);

	if (n == 0 || n > APPENV_KEY_MAX ||
	    strspn(key,
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		"0123456789_") != n ||
	    (key[0] >= '0' && key[0] <= '9')) {
		snprintf(why, whylen,
		    "'%.*s' is not a variable name (letters, digits, _; not "
		    "starting with a digit; at most %d)",
		    APPENV_KEY_MAX, key, APPENV_KEY_MAX);
		return false;
	}
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strcmp(key, reserved[i]) == 0)
			goto taken;
	for (size_t i = 0;
	     i < sizeof(reserved_prefixes) / sizeof(reserved_prefixes[0]); i++)
		if (strncmp(key, reserved_prefixes[i],
			strlen(reserved_prefixes[i])) == 0)
			goto taken;
	return true;
taken:
	snprintf(why, whylen,
	    "%s is set by systemd or myapp-zdd for the app and cannot be "
	    "overridden",
	    key);
	return false;
}

bool
appenv_value_valid(const char *value, char *why, size_t whylen)
{
	size_t n = strlen(value);

	if (n > APPENV_VALUE_MAX) {
		snprintf(why, whylen, "a value is longer than %d bytes",
		    APPENV_VALUE_MAX);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)value[i] < 0x20 && value[i] != '\t') {
			snprintf(why, whylen,
			    "a value holds a control character (a newline?): "
			    "one line each");
			return false;
		}
	return true;
}

int
appenv_assignment_parse(const char *arg, char *key, size_t keysz,
    const char **value, char *why, size_t whylen)
{
	const char *eq = strchr(arg, '=');
	size_t n = eq ? (size_t)(eq - arg) : strlen(arg);

	if (n >= keysz) {
		snprintf(
		    why, whylen, "a name is longer than %d", APPENV_KEY_MAX);
		return -EINVAL;
	}
	memcpy(key, arg, n);
	key[n] = '\0';
	if (value != NULL && eq == NULL) {
		/* not echoed: it may be a value typed without its name */
		snprintf(why, whylen,
		    "an argument has no '=': expected "
		    "KEY=VALUE");
		return -EINVAL;
	}
	if (!appenv_key_valid(key, why, whylen))
		return -EINVAL;
	if (value == NULL && eq != NULL) {
		snprintf(why, whylen, "expected a name, got '%s=...'", key);
		return -EINVAL;
	}
	if (value == NULL)
		return 0;
	*value = eq + 1;
	return appenv_value_valid(eq + 1, why, whylen) ? 0 : -EINVAL;
}

/* Appends c to out (n bytes), or fails when it is full. */
static int
put(char *out, size_t n, size_t *len, char c)
{
	if (*len + 1 >= n)
		return -ENAMETOOLONG;
	out[(*len)++] = c;
	out[*len] = '\0';
	return 0;
}

int
appenv_line_parse(const char *line, size_t linelen, char *key, size_t keysz,
    char *value, size_t valuesz)
{
	enum { PRE_VALUE, VALUE, VALUE_ESC, SQUOTE, DQUOTE, DQUOTE_ESC } st;
	size_t i = 0, start, end, vlen = 0, trim = (size_t)-1;
	int rc = 0;

	while (i < linelen && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i == linelen || line[i] == '#' || line[i] == ';')
		return -ENOENT; /* blank or comment */
	start = i;
	while (i < linelen && line[i] != '=')
		i++;
	if (i == linelen)
		return -EINVAL; /* systemd ignores it: not a line to edit */
	end = i;
	while (end > start && (line[end - 1] == ' ' || line[end - 1] == '\t'))
		end--;
	if (end == start || end - start >= keysz)
		return -EINVAL;
	memcpy(key, line + start, end - start);
	key[end - start] = '\0';
	value[0] = '\0';
	st = PRE_VALUE;
	for (i++; i < linelen && rc == 0; i++) {
		char c = line[i];

		switch (st) {
		case PRE_VALUE:
			if (c == '\'')
				st = SQUOTE;
			else if (c == '"')
				st = DQUOTE;
			else if (c == '\\')
				st = VALUE_ESC;
			else if (c != ' ' && c != '\t') {
				st = VALUE;
				rc = put(value, valuesz, &vlen, c);
			}
			break;
		case VALUE:
			if (c == '\\') {
				st = VALUE_ESC;
				trim = (size_t)-1;
				break;
			}
			if (c != ' ' && c != '\t')
				trim = (size_t)-1;
			else if (trim == (size_t)-1)
				trim = vlen;
			rc = put(value, valuesz, &vlen, c);
			break;
		case VALUE_ESC:
			st = VALUE;
			rc = put(value, valuesz, &vlen, c);
			break;
		case SQUOTE:
			if (c == '\'')
				st = PRE_VALUE;
			else
				rc = put(value, valuesz, &vlen, c);
			break;
		case DQUOTE:
			if (c == '"')
				st = PRE_VALUE;
			else if (c == '\\')
				st = DQUOTE_ESC;
			else
				rc = put(value, valuesz, &vlen, c);
			break;
		case DQUOTE_ESC:
			st = DQUOTE;
			if (strchr("\"\\`$", c) == NULL)
				rc = put(value, valuesz, &vlen, '\\');
			if (rc == 0)
				rc = put(value, valuesz, &vlen, c);
			break;
		}
	}
	if (rc < 0)
		return rc;
	/* A quote or an escape left open continues on the next line in
	 * systemd's reading: not a line this code may edit. */
	if (st != PRE_VALUE && st != VALUE)
		return -EINVAL;
	if (trim != (size_t)-1)
		value[trim] = '\0';
	return 0;
}

int
appenv_format(const char *key, const char *value, char *out, size_t n)
{
	static const char plain[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "abcdefghijklmnopqrstuvwxyz0123456789"
				    "_./:@%+,=-";
	size_t len = 0;
	int rc = 0;

	if (strlen(key) + 1 >= n)
		return -ENAMETOOLONG;
	memcpy(out, key, strlen(key));
	len = strlen(key);
	out[len++] = '=';
	out[len] = '\0';
	if (value[0] != '\0' && strspn(value, plain) == strlen(value)) {
		for (const char *p = value; *p && rc == 0; p++)
			rc = put(out, n, &len, *p);
	} else {
		rc = put(out, n, &len, '"');
		for (const char *p = value; *p && rc == 0; p++) {
			if (strchr("\"\\`$", *p) != NULL)
				rc = put(out, n, &len, '\\');
			if (rc == 0)
				rc = put(out, n, &len, *p);
		}
		if (rc == 0)
			rc = put(out, n, &len, '"');
	}
	if (rc == 0)
		rc = put(out, n, &len, '\n');
	return rc;
}

/* The index in names[] of the "KEY" or "KEY=…" that names key, or -1. */
static int
named(const char *key, char *const *names, size_t nnames)
{
	size_t k = strlen(key);

	for (size_t i = 0; i < nnames; i++)
		if (strncmp(names[i], key, k) == 0 &&
		    (names[i][k] == '\0' || names[i][k] == '='))
			return (int)i;
	return -1;
}

/* Appends len bytes to the growing text *out. */
static int
append(char **out, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > APPENV_FILE_MAX)
		return -EFBIG;
	if (*len + n + 1 > *cap) {
		size_t c = (*len + n + 1) * 2;
		char *p = realloc(*out, c);

		if (p == NULL)
			return -ENOMEM;
		*out = p;
		*cap = c;
	}
	memcpy(*out + *len, s, n);
	*len += n;
	(*out)[*len] = '\0';
	return 0;
}

/*
 * The file old with the assignments set ("K=V") and the names unset
 * ("K") applied: a name's first line replaced (or dropped), its later
 * ones dropped, new names appended. *changed says whether any value as
 * systemd reads it differs.
 */
int
appenv_edit(const char *old, char *const *set, size_t nset, char *const *unset,
    size_t nunset, char **out, bool *changed, char *why, size_t whylen)
{
	static char key[APPENV_KEY_MAX + 2], value[APPENV_VALUE_MAX + 2];
	static char line[APPENV_KEY_MAX + 2 * APPENV_VALUE_MAX + 8];
	bool done[APPENV_VARS_MAX] = { false };
	size_t len = 0, cap = 0, nline = 1;
	int rc = 0;

	*out = NULL;
	*changed = false;
	if (nset > APPENV_VARS_MAX) {
		snprintf(why, whylen, "more than %d variables at once",
		    APPENV_VARS_MAX);
		return -E2BIG;
	}
	rc = append(out, &len, &cap, "", 0);
	for (const char *p = old; rc == 0 && *p != '\0'; nline++) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		int r = appenv_line_parse(
		    p, n, key, sizeof(key), value, sizeof(value));
		int s = r == 0 ? named(key, set, nset) : -1;
		int u = r == 0 ? named(key, unset, nunset) : -1;

		if (r == -EINVAL || r == -ENAMETOOLONG) {
			snprintf(why, whylen,
			    "line %zu of the environment file is not one "
			    "KEY=VALUE line: edit it as root",
			    nline);
			rc = -EINVAL;
			break;
		}
		if (s >= 0 && !done[s]) {
			const char *v = strchr(set[s], '=') + 1;

			done[s] = true;
			*changed |= strcmp(value, v) != 0;
			rc = appenv_format(key, v, line, sizeof(line));
			if (rc == 0)
				rc =
				    append(out, &len, &cap, line, strlen(line));
		} else if (s >= 0 || u >= 0) {
			*changed = true; /* unset, or a later duplicate */
		} else {
			rc = append(out, &len, &cap, p, n);
			if (rc == 0)
				rc = append(out, &len, &cap, "\n", 1);
		}
		p += n + (nl != NULL);
	}
	for (size_t i = 0; rc == 0 && i < nset; i++) {
		char k[APPENV_KEY_MAX + 2];
		const char *eq = strchr(set[i], '=');

		if (done[i])
			continue;
		snprintf(k, sizeof(k), "%.*s", (int)(eq - set[i]), set[i]);
		*changed = true;
		rc = appenv_format(k, eq + 1, line, sizeof(line));
		if (rc == 0)
			rc = append(out, &len, &cap, line, strlen(line));
	}
	if (rc == -EFBIG)
		snprintf(why, whylen, "the environment would exceed %zu bytes",
		    APPENV_FILE_MAX);
	else if (rc == -ENOMEM || rc == -ENAMETOOLONG)
		snprintf(why, whylen, "cannot edit the environment: %s",
		    strerror(-rc));
	if (rc < 0) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

/* Every argument a valid "K=V" (assignments) or "K", no name twice. */
int
appenv_args_check(
    bool assignments, char *const *args, size_t n, char *why, size_t whylen)
{
	char key[APPENV_KEY_MAX + 2];
	const char *value;

	if (n == 0 || n > APPENV_VARS_MAX) {
		snprintf(why, whylen, "expected 1 to %d %s", APPENV_VARS_MAX,
		    assignments ? "KEY=VALUE" : "KEY");
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (appenv_assignment_parse(args[i], key, sizeof(key),
			assignments ? &value : NULL, why, whylen) < 0)
			return -EINVAL;
		if (named(key, args, i) >= 0) {
			snprintf(why, whylen, "%s is named twice", key);
			return -EINVAL;
		}
	}
	return 0;
}
