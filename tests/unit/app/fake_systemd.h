/* Playing systemd for the app's tests: bind sockets, start myapp with them
 * as LISTEN_FDS and a NOTIFY_SOCKET, read its notifications, reap it. */
#ifndef MYAPP_TEST_FAKE_SYSTEMD_H
#define MYAPP_TEST_FAKE_SYSTEMD_H

#include <stdint.h>
#include <sys/types.h>

#define FAKE_SD_FDS_MAX 4

struct child {
	pid_t pid;
	int exited; /* reaped by fake_sd_exited(), status below */
	int status;
	int notify_fd;
	char notify_path[108];
	char log_path[128];
};

/* A test's scratch dir (state, sockets, logs) and the public socket in it. */
struct scratch {
	char dir[64];
	char public_path[108];
	int public_fd; /* listening on public_path, or -1: the caller checks */
};

/* A UNIX socket bound at path (SOCK_STREAM: listening too); fd or -1. */
int fake_sd_bind(const char *path, int type);
/* Forks and execs argv[0] with fds as LISTEN_FDS (fd 3, …) named fdnames,
 * NOTIFY_SOCKET in dir (named after tag), stderr to dir/tag.log and the
 * "NAME=value" strings of env; 0 or -1. */
int fake_sd_start(struct child *c, const char *dir, const char *tag,
    const int *fds, int nfds, const char *fdnames, char *const env[],
    char *const argv[]);
/* Waits for a notification line equal to what; 0 or -1 on timeout. */
int fake_sd_wait_notify(struct child *c, const char *what, int timeout_ms);
/* Counts notification lines equal to what during duration_ms. */
int fake_sd_count_notify(struct child *c, const char *what, int duration_ms);
/* Waits for the child's exit: its status, 128+signal, or -1 after a
 * timeout (then it is SIGKILLed). */
int fake_sd_reap(struct child *c, int timeout_ms);
/* Whether the child has exited (its status then kept for fake_sd_reap()). */
int fake_sd_exited(struct child *c);
void fake_sd_forget(struct child *c);
void fake_sd_show_log(const struct child *c);
/* mkdtemp /tmp/myapp-NAME-XXXXXX and bind public.sock in it; -1 when there
 * is no dir, 0 otherwise (public_fd -1 when the bind failed). */
int fake_sd_scratch(struct scratch *s, const char *name);
/* Closes the public socket; removes the dir, or keeps it (logs) when keep. */
void fake_sd_scratch_done(struct scratch *s, int keep);

#endif
