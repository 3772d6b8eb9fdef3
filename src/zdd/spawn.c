/*
 * Running programs: always exec'd directly (never through a shell unless
 * the program *is* sh -c BUILD_COMMAND), with the engine's clean
 * environment, bounded in time, and killed as a process group so nothing
 * a build leaves behind in its group keeps running (one that calls setsid
 * escapes it: see myapp-zdd(8)).
 *
 * Nothing here logs: a program that cannot be started is a negative errno
 * (-ETIMEDOUT: killed at the deadline), and the caller says what failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "zdd.h"

extern char **environ;

#define ENV_MAX 64
#define KILL_GRACE_MS 3000
#define POLL_MS 20

/* From linux/ioprio.h, which older kernels' headers lack. */
#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_CLASS_BE 2
#define IOPRIO_WHO_PROCESS 1

void
spawn_reset_signals(void)
{
	signal(SIGPIPE, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Child side: only async-signal-safe calls until exec. */
static void __attribute__((noreturn)) child_exec(char *const argv[],
    const struct spawn_opts *o, char *const envp[], int errpipe)
{
	int err, devnull = -1;

	if (o->new_pgrp)
		setpgid(0, 0);
	if (o->in_fd < 0 || o->out_fd < 0 || o->err_fd < 0)
		devnull = open("/dev/null", O_RDWR);
	if (dup2(o->in_fd >= 0 ? o->in_fd : devnull, 0) < 0)
		goto fail;
	if (o->out_fd >= 0 && dup2(o->out_fd, 1) < 0)
		goto fail;
	if (o->err_fd >= 0 && dup2(o->err_fd, 2) < 0)
		goto fail;
	if (devnull > 2)
		close(devnull);
	if (o->cwd != NULL && chdir(o->cwd) < 0)
		goto fail;
	if (o->low_priority) {
		/* CPU: SCHED_IDLE, so the build only gets what the live app
		 * leaves over (nice alone still took a share of the 2 cores
		 * and showed as a latency spike under load). I/O: best-effort
		 * 7 rather than idle: idle can starve a build forever on a
		 * busy disk; BE7 yields but progresses. */
		struct sched_param idle = { .sched_priority = 0 };

		setpriority(PRIO_PROCESS, 0, 19);
		sched_setscheduler(0, SCHED_IDLE, &idle);
		syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0,
		    (IOPRIO_CLASS_BE << IOPRIO_CLASS_SHIFT) | 7);
	}
	spawn_reset_signals();
	execvpe(argv[0], argv, envp);
fail:
	err = errno;
	if (write(errpipe, &err, sizeof(err)) < 0)
		_exit(127);
	_exit(127);
}

static int
build_env(char *const extra[], char **envp, size_t max)
{
	size_t n = 0;

	for (char **e = environ; e && *e; e++) {
		if (n + 1 >= max)
			return -E2BIG;
		envp[n++] = *e;
	}
	for (size_t i = 0; extra && extra[i]; i++) {
		if (n + 1 >= max)
			return -E2BIG;
		envp[n++] = extra[i];
	}
	envp[n] = NULL;
	return 0;
}

static int
wait_child(pid_t pid, const struct spawn_opts *o, double deadline, int *wstatus)
{
	pid_t target = o->new_pgrp ? -pid : pid;
	bool timed_out = false;
	double killed_at = 0;

	for (;;) {
		pid_t r = waitpid(pid, wstatus, o->timeout_s ? WNOHANG : 0);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r == 0) {
			double now = clock_seconds();

			/* An interrupted engine takes its build down too. */
			if (!timed_out &&
			    (now >= deadline ||
				(zdd_interrupted && o->new_pgrp))) {
				timed_out = true;
				killed_at = now;
				kill(target, SIGTERM);
			} else if (timed_out &&
			    now >= killed_at + KILL_GRACE_MS / 1000.0) {
				kill(target, SIGKILL);
				killed_at = now + 3600; /* once */
			}
			sleep_ms(POLL_MS);
		}
	}
	/* Whatever the group left running in the background goes too. */
	if (o->new_pgrp)
		kill(-pid, SIGKILL);
	return timed_out ? -ETIMEDOUT : 0;
}

static int
spawn_start(char *const argv[], const struct spawn_opts *o, pid_t *pid_out)
{
	char *envp[ENV_MAX];
	int errpipe[2], child_err = 0, rc;
	ssize_t got;
	pid_t pid;

	rc = build_env(o->extra_env, envp, ENV_MAX);
	if (rc < 0)
		return rc;
	if (pipe2(errpipe, O_CLOEXEC) < 0)
		return -errno;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(errpipe[0]);
		close(errpipe[1]);
		return rc;
	}
	if (pid == 0)
		child_exec(argv, o, envp, errpipe[1]);
	if (o->new_pgrp)
		setpgid(pid, pid); /* both sides, to close the race */
	close(errpipe[1]);
	do {
		got = read(errpipe[0], &child_err, sizeof(child_err));
	} while (got < 0 && errno == EINTR);
	close(errpipe[0]);
	if (got == (ssize_t)sizeof(child_err)) {
		waitpid(pid, NULL, 0);
		return child_err > 0 ? -child_err : -EIO;
	}
	*pid_out = pid;
	return 0;
}

static double
deadline_for(const struct spawn_opts *o)
{
	return o->timeout_s ? clock_seconds() + o->timeout_s : 0;
}

int
spawn_run(char *const argv[], const struct spawn_opts *o, int *wstatus)
{
	pid_t pid = -1;
	int rc;

	rc = spawn_start(argv, o, &pid);
	if (rc < 0 || pid < 0)
		return rc < 0 ? rc : -EIO;
	return wait_child(pid, o, deadline_for(o), wstatus);
}

/* Like spawn_run, with stdout captured into out (NUL-terminated; output
 * beyond outsz-1 bytes is read and dropped). */
int
spawn_capture(char *const argv[], const struct spawn_opts *o, char *out,
    size_t outsz, int *wstatus)
{
	struct spawn_opts co = *o;
	double deadline = deadline_for(o);
	size_t len = 0;
	int fds[2], rc;
	pid_t pid = -1;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	co.out_fd = fds[1];
	rc = spawn_start(argv, &co, &pid);
	close(fds[1]);
	if (rc < 0 || pid < 0) {
		close(fds[0]);
		return rc < 0 ? rc : -EIO;
	}
	for (;;) {
		struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
		int wait_ms = -1;
		char chunk[4096];
		ssize_t got;

		if (deadline > 0) {
			double left = deadline - clock_seconds();

			if (left <= 0)
				break; /* wait_child kills it */
			wait_ms = (int)(left * 1000) + 1;
		}
		if (poll(&pfd, 1, wait_ms) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd.revents == 0)
			continue;
		got = read(fds[0], chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		for (ssize_t i = 0; i < got; i++)
			if (len + 1 < outsz)
				out[len++] = chunk[i];
	}
	if (outsz > 0)
		out[len] = '\0';
	close(fds[0]);
	return wait_child(pid, &co, deadline, wstatus);
}

bool
spawn_ok(int wstatus)
{
	return WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;
}

void
spawn_describe(int wstatus, char *buf, size_t n)
{
	if (WIFEXITED(wstatus))
		snprintf(buf, n, "exit status %d", WEXITSTATUS(wstatus));
	else if (WIFSIGNALED(wstatus))
		snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(wstatus),
		    strsignal(WTERMSIG(wstatus)));
	else
		snprintf(buf, n, "wait status %#x", (unsigned)wstatus);
}

/*
 * A hook inherits whatever descriptors git (or a shell) had open; none of
 * them may reach the build, git or systemctl.
 */
void
spawn_close_inherited_fds(void)
{
	if (close_range(3, ~0U, 0) == 0)
		return;
	for (int fd = 3; fd < 1024; fd++) /* kernels before 5.9 */
		close(fd);
}

/*
 * argv for this program again, "SELF --config CONFIG COMMAND": the root
 * commands that hand a step to the engine as another user (cron-sync), or
 * a client that runs a command of its own (env's restart).
 */
int
spawn_self_argv(const char *config_path, const char *command, char *self,
    size_t selfsz, char *argv[5])
{
	ssize_t len = readlink("/proc/self/exe", self, selfsz - 1);

	if (len < 0)
		return -errno;
	self[len] = '\0';
	argv[0] = self;
	argv[1] = "--config";
	argv[2] = (char *)config_path;
	argv[3] = (char *)command;
	argv[4] = NULL;
	return 0;
}
