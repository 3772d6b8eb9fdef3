/*
 * `myapp-zdd run CMD...` (and `ssh deploy@HOST run CMD...`): a one-off
 * command in the live release, with the app's rights, through
 * myapp-run.socket (see run_serve.c). The words are joined with blanks and
 * run by bash, as `heroku run` and `dokku run` do. Its output is streamed
 * here; the exit status is the command's (128 + N when signal N killed it),
 * 125 when it could not be run at all.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "zdd.h"

#define RUN_EXIT_CANNOT 125 /* as docker run and podman run: not run */

static int
join_words(int argc, char *argv[], char *out, size_t n)
{
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; i < argc; i++) {
		int len = snprintf(
		    out + used, n - used, "%s%s", i ? " " : "", argv[i]);

		if (len < 0 || (size_t)len >= n - used)
			return -E2BIG;
		used += (size_t)len;
	}
	return (int)used;
}

/* The 'x' message: the exit status to return. */
static int
end_status(const char *msg, const char *cmd)
{
	int n = 0;

	if (sscanf(msg, "exit %d", &n) == 1 && n >= 0 && n <= 255)
		return n;
	if (sscanf(msg, "signal %d", &n) == 1 && n > 0 && n < 128) {
		log_err(
		    "run '%s': killed by signal %d (%s)", cmd, n, strsignal(n));
		return 128 + n;
	}
	if (strncmp(msg, "error ", 6) == 0)
		log_err("run '%s': %s", cmd, msg + 6);
	else
		log_err("run '%s': a strange answer '%.60s'", cmd, msg);
	return RUN_EXIT_CANNOT;
}

/* The messages until 'x', or -EPIPE when our own reader went (ssh closed
 * the session: the server then stops the command). */
static int
relay(int fd, const char *cmd, int *status)
{
	struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
		{ .fd = STDOUT_FILENO, .events = 0 } };
	char buf[RUN_MSG_MAX + 1];

	for (;;) {
		ssize_t r;
		int rc = poll(p, 2, -1);

		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return -errno;
		if (p[1].revents & (POLLERR | POLLHUP))
			return -EPIPE;
		r = recv(fd, buf, RUN_MSG_MAX, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ECONNRESET;
		buf[r] = '\0';
		if (buf[0] == 'x') {
			*status = end_status(buf + 1, cmd);
			return 0;
		}
		if ((buf[0] != 'o' && buf[0] != 'e') ||
		    fd_write_all(buf[0] == 'o' ? STDOUT_FILENO : STDERR_FILENO,
			buf + 1, (size_t)r - 1) < 0)
			return buf[0] == 'o' || buf[0] == 'e' ? -EPIPE
							      : -EPROTO;
	}
}

int
run_command(const char *config_path, int argc, char *argv[])
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char cmd[RUN_COMMAND_MAX + 1] = "", why[ZDD_WHY_MAX];
	struct zdd_config cfg;
	int fd = -1, len, rc, status = RUN_EXIT_CANNOT;

	if (argc < 1) {
		fprintf(stderr, "usage: myapp-zdd run COMMAND [ARG...]\n");
		return ZDD_EXIT_USAGE;
	}
	len = join_words(argc, argv, cmd, sizeof(cmd));
	if (len < 0) {
		log_err("run: the command is longer than %d bytes",
		    RUN_COMMAND_MAX);
		return ZDD_EXIT_USAGE;
	}
	if (run_request_check(cmd, (size_t)len, why, sizeof(why)) < 0) {
		log_err("run: %s", why);
		return ZDD_EXIT_USAGE;
	}
	config_defaults(&cfg);
	if (config_load(&cfg, config_path, false) < 0)
		return ZDD_EXIT_USAGE;
	if (app_socket_path(&cfg, "run", sa.sun_path, sizeof(sa.sun_path)) <
	    0) {
		log_err("run: the socket's path is too long");
		return RUN_EXIT_CANNOT;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		log_err("cannot reach %s (is %s-run.socket running?): %m",
		    sa.sun_path, cfg.app);
		goto out;
	}
	if (send(fd, cmd, (size_t)len, MSG_NOSIGNAL) < 0) {
		log_err("run: cannot send the command: %m");
		goto out;
	}
	rc = relay(fd, cmd, &status);
	if (rc == -ECONNRESET)
		log_err("run '%s': ended without its exit status (stopped "
			"after an hour, or it could not start: "
			"'myapp-zdd logs' says)",
		    cmd);
	else if (rc == -EPROTO)
		log_err("run '%s': a message run-serve does not send", cmd);
	else if (rc < 0 && rc != -EPIPE) {
		errno = -rc;
		log_err("run '%s': %m", cmd);
	}
out:
	if (fd >= 0)
		close(fd);
	return status;
}
