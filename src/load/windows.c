/* Reads the deploy windows the driver wrote while the load ran. */
#include "windows.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int
parse_line(char *line, struct window *w)
{
	char *end;
	errno = 0;
	long long a = strtoll(line, &end, 10);
	if (end == line || errno)
		return -EBADMSG;
	char *p = end;
	long long b = strtoll(p, &end, 10);
	if (end == p || errno || (*end && *end != ' ' && *end != '\t'))
		return -EBADMSG;
	if (a < 0 || b < a)
		return -EBADMSG;
	while (*end == ' ' || *end == '\t')
		end++;
	w->start_ms = a;
	w->end_ms = b;
	snprintf(w->label, sizeof(w->label), "%s", end);
	return 0;
}

int
windows_read(FILE *f, struct window **out, size_t *count, unsigned *bad_line)
{
	struct window *list = NULL;
	size_t len = 0, cap = 0;
	char line[512];
	unsigned lineno = 0;
	int rc = 0;

	*out = NULL;
	*count = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		size_t l = strlen(line);
		if (l == sizeof(line) - 1 && line[l - 1] != '\n') {
			rc = -EBADMSG;
			goto fail;
		}
		while (l &&
		    (line[l - 1] == '\n' || line[l - 1] == '\r' ||
			line[l - 1] == ' '))
			line[--l] = '\0';
		char *s = line;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0' || *s == '#')
			continue;
		if (len == WINDOWS_MAX) {
			rc = -E2BIG;
			goto fail;
		}
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct window *n = realloc(list, ncap * sizeof(*n));
			if (!n) {
				rc = -ENOMEM;
				goto fail;
			}
			list = n;
			cap = ncap;
		}
		rc = parse_line(s, &list[len]);
		if (rc < 0)
			goto fail;
		if (!list[len].label[0])
			snprintf(list[len].label, sizeof(list[len].label),
			    "window%zu", len + 1);
		len++;
	}
	*out = list;
	*count = len;
	return 0;
fail:
	*bad_line = lineno;
	free(list);
	return rc;
}
