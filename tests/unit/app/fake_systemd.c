#include "fake_systemd.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"

int
fake_sd_bind(const char *path, int type)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -1;
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 512) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* In the child: fds to 3, 4, …, the environment systemd would set, exec. */
static void
exec_child(const struct child *c, const int *fds, int nfds, const char *fdnames,
    char *const env[], char *const argv[])
{
	int high[FAKE_SD_FDS_MAX];
	int log =
	    open(c->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	char buf[32];

	if (log < 0 || dup2(log, 2) < 0)
		_exit(120);
	/* Out of the way first: a passed fd may already sit at 3 or 4. */
	for (int i = 0; i < nfds; i++)
		if ((high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 100)) < 0)
			_exit(120);
	for (int i = 0; i < nfds; i++)
		if (dup2(high[i], 3 + i) < 0)
			_exit(120);
	/* Only the passed fds, as systemd does: none the test inherited. */
	for (int fd = 3 + nfds; fd < 1024; fd++)
		close(fd);
	snprintf(buf, sizeof(buf), "%d", (int)getpid());
	setenv("LISTEN_PID", buf, 1);
	snprintf(buf, sizeof(buf), "%d", nfds);
	setenv("LISTEN_FDS", buf, 1);
	setenv("LISTEN_FDNAMES", fdnames, 1);
	setenv("NOTIFY_SOCKET", c->notify_path, 1);
	for (int i = 0; env && env[i]; i++)
		if (putenv(env[i]) != 0)
			_exit(120);
	execv(argv[0], argv);
	_exit(127);
}

int
fake_sd_start(struct child *c, const char *dir, const char *tag, const int *fds,
    int nfds, const char *fdnames, char *const env[], char *const argv[])
{
	memset(c, 0, sizeof(*c));
	c->pid = -1;
	if (nfds < 0 || nfds > FAKE_SD_FDS_MAX)
		return -1;
	snprintf(c->notify_path, sizeof(c->notify_path), "%s/notify-%s.sock",
	    dir, tag);
	snprintf(c->log_path, sizeof(c->log_path), "%s/%s.log", dir, tag);
	c->notify_fd = fake_sd_bind(c->notify_path, SOCK_DGRAM);
	if (c->notify_fd < 0)
		return -1;
	c->pid = fork();
	if (c->pid < 0)
		return -1;
	if (c->pid == 0)
		exec_child(c, fds, nfds, fdnames, env, argv);
	return 0;
}

/* Reads notifications until deadline; returns how many lines equal what,
 * stopping at the first when first_only. */
static int
read_notify(struct child *c, const char *what, int64_t deadline, int first_only)
{
	char buf[4096];
	int seen = 0;

	while (monotonic_ms() < deadline) {
		struct pollfd pfd = { .fd = c->notify_fd, .events = POLLIN };
		ssize_t n;
		char *save = NULL;

		if (poll(&pfd, 1, (int)(deadline - monotonic_ms())) <= 0)
			continue;
		n = recv(c->notify_fd, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		for (char *line = strtok_r(buf, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			if (strcmp(line, what) == 0) {
				seen++;
				if (first_only)
					return seen;
			}
	}
	return seen;
}

int
fake_sd_wait_notify(struct child *c, const char *what, int timeout_ms)
{
	return read_notify(c, what, monotonic_ms() + timeout_ms, 1) > 0 ? 0
									: -1;
}

int
fake_sd_count_notify(struct child *c, const char *what, int duration_ms)
{
	return read_notify(c, what, monotonic_ms() + duration_ms, 0);
}

static int
exit_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int
fake_sd_exited(struct child *c)
{
	if (!c->exited && c->pid > 0 &&
	    waitpid(c->pid, &c->status, WNOHANG) == c->pid)
		c->exited = 1;
	return c->exited;
}

int
fake_sd_reap(struct child *c, int timeout_ms)
{
	int64_t deadline = monotonic_ms() + timeout_ms;
	int status;

	if (c->exited) {
		c->exited = 0;
		c->pid = -1;
		return exit_code(c->status);
	}
	if (c->pid <= 0)
		return -1;
	while (monotonic_ms() < deadline) {
		pid_t r = waitpid(c->pid, &status, WNOHANG);

		if (r == c->pid) {
			c->pid = -1;
			return exit_code(status);
		}
		usleep(2000);
	}
	kill(c->pid, SIGKILL);
	waitpid(c->pid, &status, 0);
	c->pid = -1;
	return -1;
}

void
fake_sd_forget(struct child *c)
{
	if (c->notify_fd > 0)
		close(c->notify_fd);
	c->notify_fd = -1;
	unlink(c->notify_path);
}

void
fake_sd_show_log(const struct child *c)
{
	char cmd[256];

	snprintf(
	    cmd, sizeof(cmd), "tail -n 20 '%s' | sed 's/^/#   /'", c->log_path);
	if (system(cmd) != 0)
		printf("# (no log)\n");
}

int
fake_sd_scratch(struct scratch *s, const char *name)
{
	int n;

	s->public_fd = -1;
	n = snprintf(s->dir, sizeof(s->dir), "/tmp/myapp-%s-XXXXXX", name);
	if (n < 0 || (size_t)n >= sizeof(s->dir) || !mkdtemp(s->dir))
		return -1;
	snprintf(
	    s->public_path, sizeof(s->public_path), "%s/public.sock", s->dir);
	s->public_fd = fake_sd_bind(s->public_path, SOCK_STREAM);
	return 0;
}

void
fake_sd_scratch_done(struct scratch *s, int keep)
{
	char cmd[sizeof(s->dir) + 16];

	if (s->public_fd >= 0)
		close(s->public_fd);
	s->public_fd = -1;
	if (keep) {
		printf("# logs kept in %s\n", s->dir);
		return;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
	if (system(cmd) != 0)
		printf("# cannot remove %s\n", s->dir);
}
