/*
 * Procfile (Heroku, Foreman, Dokku): "TYPE: COMMAND" lines, '#' comments
 * and blank lines ignored.  web is what serves; the other types are kept
 * for the process model.  Sizes are bounded: the file is the pusher's.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zdd.h"

#define PROCFILE_SIZE_MAX ((size_t)64 * 1024)

static bool
type_char(int c)
{
	return isalnum(c) || c == '_' || c == '-';
}

/* A process type: letters, digits, '_', '-', at most ZDD_PROC_TYPE_MAX. */
bool
procfile_type_valid(const char *s, size_t len)
{
	if (len == 0 || len > ZDD_PROC_TYPE_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!type_char((unsigned char)s[i]))
			return false;
	return true;
}

/* One line into p->procs; 0, or -EINVAL with why. */
static int
parse_line(
    struct procfile *p, char *line, unsigned lineno, char *why, size_t whylen)
{
	char *colon, *cmd;
	size_t tlen;

	while (isspace((unsigned char)*line))
		line++;
	if (*line == '\0' || *line == '#')
		return 0;
	colon = strchr(line, ':');
	tlen = colon ? (size_t)(colon - line) : 0;
	if (colon == NULL || !procfile_type_valid(line, tlen)) {
		snprintf(why, whylen,
		    "Procfile line %u: expected 'TYPE: COMMAND' with TYPE of "
		    "letters, digits, '_', '-' (at most %d)",
		    lineno, ZDD_PROC_TYPE_MAX);
		return -EINVAL;
	}
	cmd = colon + 1;
	while (isspace((unsigned char)*cmd))
		cmd++;
	for (size_t n = strlen(cmd);
	     n > 0 && isspace((unsigned char)cmd[n - 1]);)
		cmd[--n] = '\0';
	if (*cmd == '\0' || strlen(cmd) >= ZDD_PROC_CMD_MAX) {
		snprintf(why, whylen,
		    "Procfile line %u: the command is empty or longer than %d "
		    "characters",
		    lineno, ZDD_PROC_CMD_MAX - 1);
		return -EINVAL;
	}
	for (size_t i = 0; i < p->n; i++)
		if (strlen(p->procs[i].type) == tlen &&
		    strncmp(p->procs[i].type, line, tlen) == 0) {
			snprintf(why, whylen,
			    "Procfile line %u: type '%.*s' declared twice",
			    lineno, (int)tlen, line);
			return -EINVAL;
		}
	if (p->n >= ZDD_PROCS_MAX) {
		snprintf(why, whylen, "Procfile: more than %d process types",
		    ZDD_PROCS_MAX);
		return -EINVAL;
	}
	snprintf(p->procs[p->n].type, sizeof(p->procs[p->n].type), "%.*s",
	    (int)tlen, line);
	snprintf(
	    p->procs[p->n].command, sizeof(p->procs[p->n].command), "%s", cmd);
	p->n++;
	return 0;
}

int
procfile_parse(const char *text, struct procfile *p, char *why, size_t whylen)
{
	char line[ZDD_PROC_CMD_MAX + ZDD_PROC_TYPE_MAX + 64];
	unsigned lineno = 0;

	memset(p, 0, sizeof(*p));
	while (*text != '\0') {
		size_t len = strcspn(text, "\n");

		lineno++;
		if (len >= sizeof(line)) {
			snprintf(why, whylen,
			    "Procfile line %u: longer than %zu characters",
			    lineno, sizeof(line) - 1);
			return -EINVAL;
		}
		memcpy(line, text, len);
		line[len] = '\0';
		if (len > 0 && line[len - 1] == '\r')
			line[len - 1] = '\0';
		if (parse_line(p, line, lineno, why, whylen) < 0)
			return -EINVAL;
		text += len + (text[len] == '\n');
	}
	return 0;
}

/* 0 and p filled; -ENOENT when there is no Procfile; else why. */
int
procfile_load(const char *path, struct procfile *p, char *why, size_t whylen)
{
	char *text = NULL;
	int rc;

	rc = file_read_bounded(path, PROCFILE_SIZE_MAX, &text, why, whylen);
	if (rc == 0)
		rc = procfile_parse(text, p, why, whylen);
	free(text);
	return rc;
}

const char *
procfile_command(const struct procfile *p, const char *type)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->procs[i].type, type) == 0)
			return p->procs[i].command;
	return NULL;
}
