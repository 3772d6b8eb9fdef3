/*
 * Output.  stdout is the pusher's dashboard (it reaches them through
 * git's "remote:" lines), so it is plain text, one line per event, no
 * colour.  Errors go to stderr with the program name.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdd.h"

#define STEP_WIDTH 24    /* dots pad step names to this column */
#define TAIL_BYTES 65536 /* enough for 20 lines of a build log */

static void
vlog(FILE *f, const char *prefix, const char *fmt, va_list ap)
{
	fflush(stdout);
	fputs(prefix, f);
	/* Every caller passes a format, but gcc 14 with UBSan sees a path
	 * with a null one here (-Werror=format-overflow): Debian 13's unit test. */
	if (fmt)
		/* false positive: every caller va_starts ap */
		/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized) */
		vfprintf(f, fmt, ap);
	fputc('\n', f);
	fflush(f);
}

void
log_err(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	errno = saved; /* keep %m meaningful */
	vlog(stderr, "myapp-zdd: ", fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	errno = saved;
	vlog(stderr, "myapp-zdd: warning: ", fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_info(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	errno = saved;
	vlog(stdout, "", fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_step(const char *name, const char *result, double seconds)
{
	int dots = STEP_WIDTH - (int)strlen(name);

	if (dots < 3)
		dots = 3;
	printf("-----> %s %.*s %s %.1f s\n", name, dots,
	    "................................", result, seconds);
	fflush(stdout);
}

/* Print the last `lines` lines of a file, indented, to stdout. */
void
log_file_tail(const char *path, unsigned lines)
{
	static char buf[TAIL_BYTES + 1];
	struct stat st;
	ssize_t got;
	off_t start;
	char *p;
	unsigned seen = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_warn("cannot read %s: %m", path);
		return;
	}
	if (fstat(fd, &st) < 0) {
		log_warn("cannot stat %s: %m", path);
		close(fd);
		return;
	}
	start = st.st_size > TAIL_BYTES ? st.st_size - TAIL_BYTES : 0;
	got = pread(fd, buf, TAIL_BYTES, start);
	close(fd);
	if (got <= 0)
		return;
	buf[got] = '\0';
	p = buf + got;
	if (p > buf && p[-1] == '\n')
		p--;
	while (p > buf) {
		if (p[-1] == '\n' && ++seen == lines)
			break;
		p--;
	}
	for (char *line = p; *line != '\0';) {
		char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);

		printf("       %.*s\n", (int)len, line);
		line += len + (nl ? 1 : 0);
	}
	fflush(stdout);
}
