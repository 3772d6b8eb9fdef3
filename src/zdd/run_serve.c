/*
 * `myapp-zdd run-serve`: one `run` request on myapp-run.socket (group
 * deploy, Accept=yes, SOCK_SEQPACKET). systemd starts it as
 * myapp-run@.service: the app's user, environment and sandbox (the same
 * sandbox.conf and drop-ins as the app's units), in `current`.
 *
 * The client sends one message, the command line. It runs with bash -c in
 * the live release, as the Procfile's commands do (a first word that is a
 * Procfile type stands for that type's command, as in Dokku's run), stdin
 * /dev/null. Its output comes back as messages: 'o' + bytes of stdout,
 * 'e' + bytes of stderr, then one 'x' + "exit N", "signal N" or
 * "error WHY". The client going away stops the command.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdd.h"

#define REQUEST_TIMEOUT_MS 10000
#define STOP_GRACE_S 5 /* SIGTERM, then SIGKILL: the unit stops the rest */
#define SOCKET_FD STDIN_FILENO /* stdin and stdout: the connection */

/* One line of at most RUN_COMMAND_MAX bytes, printable or tab: it is
 * logged as it is. */
int
run_request_check(const char *cmd, size_t n, char *why, size_t whylen)
{
	if (n == 0 || n > RUN_COMMAND_MAX) {
		snprintf(
		    why, whylen, "a command of 1 to %d bytes", RUN_COMMAND_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)cmd[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			snprintf(why, whylen,
			    "the command has a control character (byte %zu): "
			    "one line, please",
			    i + 1);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * The command bash runs: CMD, or, when CMD's first word is a Procfile type,
 * that type's command with the rest of CMD after it.
 */
int
run_command_expand(
    const struct app_spec *spec, const char *cmd, char *out, size_t n)
{
	size_t word = strcspn(cmd, " \t");
	char type[ZDD_PROC_TYPE_MAX + 1];
	const char *proc = NULL;
	int len;

	if (spec->has_procfile && word > 0 && word < sizeof(type)) {
		memcpy(type, cmd, word);
		type[word] = '\0';
		proc = procfile_command(&spec->procfile, type);
	}
	if (proc != NULL)
		len = snprintf(out, n, "%s%s", proc, cmd + word);
	else
		len = snprintf(out, n, "%s", cmd);
	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

static int
send_msg(char tag, const char *data, size_t n)
{
	char buf[RUN_MSG_MAX];

	if (n > sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	buf[0] = tag;
	memcpy(buf + 1, data, n);
	if (send(SOCKET_FD, buf, n + 1, MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

/* The last message: "exit N", "signal N" or "error WHY". */
static void
send_end(const char *what, const char *detail)
{
	char msg[ZDD_WHY_MAX + 32];

	snprintf(msg, sizeof(msg), "%s %s", what, detail);
	(void)send_msg('x', msg, strlen(msg));
}

static int
read_request(char *cmd, size_t n)
{
	struct pollfd p = { .fd = SOCKET_FD, .events = POLLIN };
	ssize_t r;
	int rc;

	rc = poll(&p, 1, REQUEST_TIMEOUT_MS);
	if (rc <= 0)
		return rc < 0 ? -errno : -ETIMEDOUT;
	r = recv(SOCKET_FD, cmd, n - 1, MSG_TRUNC);
	if (r < 0)
		return -errno;
	if ((size_t)r >= n)
		return -EMSGSIZE;
	cmd[r] = '\0';
	return (int)r;
}

/* The child: stdin /dev/null, stdout and stderr the pipes, nothing else
 * of ours (the connection, systemd's LISTEN_* for it). */
static void
child_exec(const char *command, int out, int err)
{
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (null < 0 || dup2(null, STDIN_FILENO) < 0 ||
	    dup2(out, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0)
		_exit(126);
	spawn_close_inherited_fds();
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	signal(SIGPIPE, SIG_DFL);
	execl("/bin/bash", "bash", "-c", command, (char *)NULL);
	dprintf(STDERR_FILENO, "myapp-zdd run: cannot run /bin/bash: %m\n");
	_exit(127);
}

static void
child_stop(pid_t pid)
{
	kill(-pid, SIGTERM);
	for (int i = 0; i < STOP_GRACE_S * 10; i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		usleep(100 * 1000);
	}
	kill(-pid, SIGKILL);
	(void)waitpid(pid, NULL, 0);
}

/* Copies the child's output to the client until both pipes end; -EPIPE
 * when the client went first. */
static int
relay(int out, int err)
{
	struct pollfd p[3] = { { .fd = out, .events = POLLIN },
		{ .fd = err, .events = POLLIN },
		{ .fd = SOCKET_FD, .events = 0 } };
	char buf[RUN_MSG_MAX - 1];

	while (p[0].fd >= 0 || p[1].fd >= 0) {
		int rc = poll(p, 3, -1);

		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return -errno;
		if (p[2].revents & (POLLERR | POLLHUP))
			return -EPIPE;
		for (int i = 0; i < 2; i++) {
			ssize_t r;

			if (p[i].fd < 0 || p[i].revents == 0)
				continue;
			r = read(p[i].fd, buf, sizeof(buf));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				close(p[i].fd);
				p[i].fd = -1;
				continue;
			}
			rc = send_msg(i == 0 ? 'o' : 'e', buf, (size_t)r);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

static int
run_child(const char *command, int *status)
{
	int out[2] = { -1, -1 }, err[2] = { -1, -1 }, rc;
	pid_t pid;

	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		rc = -errno;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto out;
	}
	if (pid == 0) {
		setpgid(0, 0);
		child_exec(command, out[1], err[1]);
	}
	setpgid(pid, pid);
	close(out[1]);
	close(err[1]);
	out[1] = err[1] = -1;
	rc = relay(out[0], err[0]);
	out[0] = err[0] = -1; /* relay closed them, or they die with us */
	if (rc < 0) {
		child_stop(pid);
		goto out;
	}
	if (waitpid(pid, status, 0) < 0)
		rc = -errno;
out:
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	return rc;
}

int
run_serve_command(const char *config_path, int argc, char *argv[])
{
	char cmd[RUN_COMMAND_MAX + 2] = "", command[RUN_COMMAND_MAX * 2];
	char why[ZDD_WHY_MAX];
	static struct app_spec spec;
	const char *release;
	int flags, rc, status = 0;

	(void)config_path; /* the sandbox hides the settings: none needed */
	(void)argv;
	if (argc != 0) {
		fprintf(stderr, "usage: myapp-zdd run-serve\n");
		return ZDD_EXIT_USAGE;
	}
	/* NonBlocking= of the sandbox reaches the connection too */
	flags = fcntl(SOCKET_FD, F_GETFL);
	if (flags < 0 || fcntl(SOCKET_FD, F_SETFL, flags & ~O_NONBLOCK) < 0) {
		log_err("run-serve: the connection: %m");
		return ZDD_EXIT_FAILED;
	}
	rc = read_request(cmd, sizeof(cmd));
	if (rc < 0) {
		errno = -rc;
		log_err("run-serve: no command read: %m");
		return ZDD_EXIT_USAGE;
	}
	if (run_request_check(cmd, (size_t)rc, why, sizeof(why)) < 0) {
		send_end("error", why);
		log_err("run-serve: refused: %s", why);
		return ZDD_EXIT_USAGE;
	}
	rc = launch_environment();
	release = getenv("ZDD_RELEASE");
	if (rc < 0 || release == NULL) {
		snprintf(why, sizeof(why), "%s",
		    rc < 0 ? "cannot set PATH for the release"
			   : "nothing is deployed (no current release)");
		send_end("error", why);
		log_err("run-serve: '%s' refused: %s", cmd, why);
		return ZDD_EXIT_FAILED;
	}
	rc = app_spec_load(".", &spec, why, sizeof(why));
	if (rc == 0)
		rc = run_command_expand(&spec, cmd, command, sizeof(command));
	if (rc == -ENAMETOOLONG)
		snprintf(why, sizeof(why), "the command is too long");
	if (rc < 0) {
		send_end("error", why);
		log_err("run-serve: '%s' refused: %s", cmd, why);
		return ZDD_EXIT_FAILED;
	}
	log_err("run-serve: running '%s' in release %s", cmd, release);
	rc = run_child(command, &status);
	if (rc == -EPIPE) {
		log_err("run-serve: '%s': the client went, the command stopped",
		    cmd);
		return ZDD_EXIT_OK;
	}
	if (rc < 0) {
		errno = -rc;
		snprintf(why, sizeof(why), "cannot run the command: %m");
		send_end("error", why);
		log_err("run-serve: '%s': %s", cmd, why);
		return ZDD_EXIT_FAILED;
	}
	snprintf(why, sizeof(why), "%d",
	    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	send_end(WIFSIGNALED(status) ? "signal" : "exit", why);
	spawn_describe(status, why, sizeof(why));
	log_err("run-serve: '%s': %s", cmd, why);
	return ZDD_EXIT_OK;
}
