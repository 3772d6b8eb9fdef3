/*
 * The app's logs for the deploy user, and only the app's.  The deploy user
 * is not in systemd-journal (a build would read every service's journal);
 * it asks myapp-logs.socket (group deploy, Accept=yes), whose instance runs
 * `myapp-zdd logs-serve` as a dynamic user in systemd-journal: that reads
 * one request line, checks the unit is one of the app's, and execs
 * journalctl for it with the connection as stdout.
 *
 * Request: "UNIT LINES[ follow]\n", UNIT = APP.service, APP@<release-id>.service,
 * APP-twin@<release-id>.service, APP-release@<release-id>.service, a
 * worker's, web process K's or a scheduled job's unit, or "app" for all
 * of them together; LINES 1..LOGS_LINES_MAX; "follow" runs journalctl
 * --follow as a child instead, stopped when the reader closes the
 * connection (see journalctl_follow) or at the unit's RuntimeMaxSec=.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdd.h"

#define LOGS_LINES_MAX 1000
#define LOGS_REQUEST_MAX (LOGS_UNIT_MAX + 16)
#define LOGS_FOLLOW " follow"
#define LOGS_TIMEOUT_MS 10000
#define LOGS_OUTPUT_MAX ((size_t)256 * 1024)
#define LOGS_ALL "app" /* every unit of the app, in one journal */
#define LOGS_DEFAULT_LINES 50

/*
 * The app's units as journalctl -u patterns (see logs_unit_allowed), and
 * its slice: journalctl expands a pattern to the units the journal knows
 * when it starts, so a follow would miss the instance a deploy starts
 * later; "-u APP.slice" matches every process in the slice (the app's
 * units, its builds and runs: sandbox.conf puts them there, nothing else
 * is), whenever it started. The patterns add what systemd says of them.
 */
static const char *const app_unit_patterns[] = { ".service", "@*.service",
	"-twin@*.service", "-release@*.service", "-build@*.service",
	"-worker@*.service", "-web@*.service", "-cron@*.service",
	"-run@*.service", ".slice" };
#define NPATTERNS (sizeof(app_unit_patterns) / sizeof(app_unit_patterns[0]))

/* The app's own units: the live instance, the handover instances, their
 * twins, the release commands (by release id), the workers (by Procfile
 * type), the web processes 2..N and the scheduled jobs. */
bool
logs_unit_allowed(const struct zdd_config *cfg, const char *unit)
{
	static const char *const templates[] = { "@", "-twin@", "-release@" };
	size_t n = strlen(cfg->app);
	char id[ZDD_ID_MAX + 1];
	const char *at = NULL, *end;

	if (strncmp(unit, cfg->app, n) != 0)
		return false;
	if (strcmp(unit + n, ".service") == 0)
		return true;
	for (size_t i = 0; i < sizeof(templates) / sizeof(templates[0]); i++)
		if (strncmp(unit + n, templates[i], strlen(templates[i])) == 0)
			at = unit + n + strlen(templates[i]);
	if (at == NULL && strncmp(unit + n, "-worker@", 8) == 0)
		return worker_unit_type(cfg, unit, NULL, 0);
	if (at == NULL && strncmp(unit + n, "-web@", 5) == 0) {
		char *rest;
		unsigned long k = strtoul(unit + n + 5, &rest, 10);

		return unit[n + 5] >= '0' && unit[n + 5] <= '9' && k >= 2 &&
		    k <= ZDD_WEB_QUANTITY_MAX && strcmp(rest, ".service") == 0;
	}
	if (at == NULL && strncmp(unit + n, "-cron@", 6) == 0) {
		char *rest;
		unsigned long k = strtoul(unit + n + 6, &rest, 10);

		return unit[n + 6] >= '0' && unit[n + 6] <= '9' &&
		    k < ZDD_CRON_MAX && strcmp(rest, ".service") == 0;
	}
	if (at == NULL)
		return false;
	end = strstr(at, ".service");
	if (end == NULL || strcmp(end, ".service") != 0 ||
	    (size_t)(end - at) > ZDD_ID_MAX)
		return false;
	memcpy(id, at, (size_t)(end - at));
	id[end - at] = '\0';
	return release_id_valid(id);
}

int
logs_parse_request(
    const struct zdd_config *cfg, const char *line, struct logs_request *req)
{
	const char *sp = strchr(line, ' ');
	char *end;
	unsigned long n;

	memset(req, 0, sizeof(*req));
	if (sp == NULL || (size_t)(sp - line) >= sizeof(req->unit))
		return -EINVAL;
	memcpy(req->unit, line, (size_t)(sp - line));
	errno = 0;
	n = strtoul(sp + 1, &end, 10);
	if (sp[1] < '0' || sp[1] > '9' || errno != 0 || n < 1 ||
	    n > LOGS_LINES_MAX)
		return -EINVAL;
	if (strncmp(end, LOGS_FOLLOW, strlen(LOGS_FOLLOW)) == 0) {
		req->follow = true;
		end += strlen(LOGS_FOLLOW);
	}
	if (*end != '\0' && strcmp(end, "\n") != 0)
		return -EINVAL;
	if (strcmp(req->unit, LOGS_ALL) != 0 &&
	    !logs_unit_allowed(cfg, req->unit))
		return -EPERM;
	req->lines = (unsigned)n;
	return 0;
}

static int
journalctl_argv_exec(
    const struct zdd_config *cfg, const struct logs_request *req)
{
	static char patterns[NPATTERNS][ZDD_NAME_MAX + 24];
	char *argv[8 + 2 * NPATTERNS + 1];
	const char *unit = req->unit;
	char n[16];
	size_t k = 0;

	snprintf(n, sizeof(n), "%u", req->lines);
	argv[k++] = (char *)cfg->journalctl;
	argv[k++] = "--no-pager";
	argv[k++] = "--quiet";
	argv[k++] = "-o";
	argv[k++] = "short-iso";
	argv[k++] = "-n";
	argv[k++] = n;
	if (req->follow)
		argv[k++] = "--follow";
	if (strcmp(unit, LOGS_ALL) != 0) {
		argv[k++] = "-u";
		argv[k++] = (char *)unit;
	}
	for (size_t i = 0; i < NPATTERNS && strcmp(unit, LOGS_ALL) == 0; i++) {
		snprintf(patterns[i], sizeof(patterns[i]), "%s%s", cfg->app,
		    app_unit_patterns[i]);
		argv[k++] = "-u";
		argv[k++] = patterns[i];
	}
	argv[k] = NULL;
	execvp(argv[0], argv);
	return -errno;
}

/*
 * A follow: journalctl --follow as a child, stdout the connection, until
 * it ends or the reader goes (POLLHUP or POLLERR on stdout). journalctl
 * itself notices a gone reader only when it next writes (systemd 252), so
 * an idle follow would hold one of the socket's few connections for the
 * whole RuntimeMaxSec=.
 */
static int
journalctl_follow(const struct zdd_config *cfg, const struct logs_request *req)
{
	struct pollfd p = { .fd = STDOUT_FILENO, .events = 0 };
	int status = 0;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int rc = journalctl_argv_exec(cfg, req);

		errno = -rc;
		log_err("logs-serve: cannot run %s: %m", cfg->journalctl);
		_exit(ZDD_EXIT_FAILED);
	}
	for (;;) {
		int rc = poll(&p, 1, 1000);

		if (waitpid(pid, &status, WNOHANG) == pid)
			return spawn_ok(status) ? 0 : -EIO;
		if (rc > 0 && (p.revents & (POLLHUP | POLLERR)) != 0) {
			kill(pid, SIGTERM);
			(void)waitpid(pid, &status, 0);
			return 0;
		}
	}
}

/* logs-serve: stdin/stdout are the connection (StandardInput=socket). */
int
logs_serve(const struct zdd_config *cfg)
{
	char line[LOGS_REQUEST_MAX + 2] = "";
	struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
	struct logs_request req;
	size_t len = 0;
	int rc;

	/* Read up to the newline, bounded in size and time. */
	while (len < sizeof(line) - 1 && memchr(line, '\n', len) == NULL) {
		ssize_t r;

		rc = poll(&p, 1, LOGS_TIMEOUT_MS);
		if (rc <= 0) {
			log_err("logs-serve: no request within %d s",
			    LOGS_TIMEOUT_MS / 1000);
			return ZDD_EXIT_USAGE;
		}
		r = read(STDIN_FILENO, line + len, sizeof(line) - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	line[len] = '\0';
	if (strchr(line, '\n') == NULL ||
	    logs_parse_request(cfg, line, &req) < 0) {
		printf("refused: expected '<unit of %s, or %s> <lines 1-%d>"
		       "[%s]'\n",
		    cfg->app, LOGS_ALL, LOGS_LINES_MAX, LOGS_FOLLOW);
		log_err("logs-serve: refused request '%.80s'", line);
		return ZDD_EXIT_USAGE;
	}
	fflush(stdout);
	if (req.follow) {
		rc = journalctl_follow(cfg, &req);
		if (rc == -EIO)
			log_err(
			    "logs-serve: %s --follow failed", cfg->journalctl);
		else if (rc < 0) {
			errno = -rc;
			log_err(
			    "logs-serve: cannot run %s: %m", cfg->journalctl);
		}
		return rc < 0 ? ZDD_EXIT_FAILED : ZDD_EXIT_OK;
	}
	rc = journalctl_argv_exec(cfg, &req);
	errno = -rc;
	log_err("logs-serve: cannot run %s: %m", cfg->journalctl);
	return ZDD_EXIT_FAILED;
}

/*
 * Copy what the server sends to stdout, bounded in size and time; when
 * following, for as long as it sends and our reader is there (ssh closing
 * the pipe shows as POLLERR on stdout, so we go, and logs-serve sees the
 * connection hang up and stops journalctl).
 */
static int
logs_copy(int fd, bool follow)
{
	struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
		{ .fd = STDOUT_FILENO, .events = 0 } };
	size_t total = 0;
	char buf[4096];

	for (;;) {
		ssize_t r;
		int rc = poll(p, follow ? 2 : 1, follow ? -1 : LOGS_TIMEOUT_MS);

		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			return rc < 0 ? -errno : -ETIMEDOUT;
		if (p[1].revents & (POLLERR | POLLHUP))
			return -EPIPE;
		r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return 0;
		if (!follow && total + (size_t)r > LOGS_OUTPUT_MAX)
			return -EFBIG;
		total += (size_t)r;
		if (fwrite(buf, 1, (size_t)r, stdout) != (size_t)r ||
		    (follow && fflush(stdout) != 0))
			return -EIO;
	}
}

static int
logs_ask(
    const struct zdd_config *cfg, const char *unit, unsigned lines, bool follow)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char req[LOGS_REQUEST_MAX + 2];
	int fd, rc, len;

	if (app_socket_path(cfg, "logs", sa.sun_path, sizeof(sa.sun_path)) < 0)
		return -ENAMETOOLONG;
	len = snprintf(req, sizeof(req), "%s %u%s\n", unit, lines,
	    follow ? LOGS_FOLLOW : "");
	if (len < 0 || (size_t)len >= sizeof(req))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write(fd, req, (size_t)len) != len) {
		rc = -errno;
		goto out;
	}
	fflush(stdout);
	rc = logs_copy(fd, follow);
	fflush(stdout);
out:
	close(fd);
	return rc;
}

/*
 * The last LINES journal lines of UNIT, on stdout (the push output).
 * Through the logs socket; where there is none (root, or the engine's
 * tests), journalctl directly.
 */
void
logs_tail(const struct zdd_config *cfg, const char *unit, unsigned lines)
{
	char n[16];
	char *argv[] = { (char *)cfg->journalctl, "--no-pager", "-u",
		(char *)unit, "-n", n, NULL };
	struct spawn_opts o = {
		.in_fd = -1, .out_fd = -1, .err_fd = 1, .timeout_s = 30
	};
	int rc, status;

	log_info("       last %u journal lines of %s:", lines, unit);
	rc = logs_ask(cfg, unit, lines, false);
	if (rc == 0)
		return;
	if (rc != -ENOENT && rc != -ECONNREFUSED) {
		errno = -rc;
		log_info(
		    "       (journal not readable through %s-logs.socket: %m)",
		    cfg->app);
		return;
	}
	snprintf(n, sizeof(n), "%u", lines);
	if (spawn_run(argv, &o, &status) < 0 || !spawn_ok(status))
		log_info("       (journal not readable: is %s-logs.socket "
			 "running?)",
		    cfg->app);
}

/* `myapp-zdd logs [-n LINES] [-f] [UNIT]`: the app's journal, all its
 * units unless one is named, through the logs socket; -f follows it. */
int
logs_show(const struct zdd_config *cfg, const char *unit, const char *lines,
    bool follow)
{
	unsigned long n = LOGS_DEFAULT_LINES;
	char *end;
	int rc;

	if (lines != NULL) {
		errno = 0;
		n = strtoul(lines, &end, 10);
		if (lines[0] < '0' || lines[0] > '9' || *end != '\0' ||
		    errno != 0 || n < 1 || n > LOGS_LINES_MAX) {
			log_err("-n %s: not a number of lines from 1 to %d",
			    lines, LOGS_LINES_MAX);
			return ZDD_EXIT_USAGE;
		}
	}
	if (unit == NULL)
		unit = LOGS_ALL;
	else if (!logs_unit_allowed(cfg, unit)) {
		log_err("%s is not a unit of %s (try 'myapp-zdd ps')", unit,
		    cfg->app);
		return ZDD_EXIT_USAGE;
	}
	rc = logs_ask(cfg, unit, (unsigned)n, follow);
	if (rc == -EPIPE && follow)
		return ZDD_EXIT_OK; /* the reader went: the end of a follow */
	if (rc < 0) {
		errno = -rc;
		log_err("cannot read the journal through %s-logs.socket: %m",
		    cfg->app);
		return ZDD_EXIT_FAILED;
	}
	return ZDD_EXIT_OK;
}
