/*
 * One deploy at a time: flock on APP_ROOT/.deploy.lock.  The holder
 * writes its pid into the file so a waiter can say whom it waits for.
 * The fd is close-on-exec: a build's stray background process must not
 * inherit the lock and hold it forever.  Failures: a negative errno and
 * why (empty for -ECANCELED, interrupted), said by the caller.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "zdd.h"

#define LOCK_POLL_MS 200

static long
lock_holder(int fd)
{
	char buf[32];
	ssize_t got = pread(fd, buf, sizeof(buf) - 1, 0);

	if (got <= 0)
		return 0;
	buf[got] = '\0';
	return strtol(buf, NULL, 10);
}

int
lock_acquire(const char *app_root, unsigned timeout_s, int *fd_out, char *why,
    size_t whylen)
{
	char path[ZDD_PATH_MAX + 32];
	struct timespec pause = { 0, LOCK_POLL_MS * 1000000L };
	double deadline = clock_seconds() + timeout_s;
	bool told = false;
	char pid[32];
	int fd, rc;

	if (whylen > 0)
		why[0] = '\0'; /* stays empty when interrupted */
	snprintf(path, sizeof(path), "%s/.deploy.lock", app_root);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		rc = -errno;
		snprintf(why, whylen, "cannot open deploy lock %s: %m", path);
		return rc;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			rc = -errno;
			snprintf(why, whylen, "cannot take deploy lock %s: %m",
			    path);
			goto fail;
		}
		if (!told) {
			log_info("waiting for deploy lock held by pid %ld "
				 "(up to %u s)",
			    lock_holder(fd), timeout_s);
			told = true;
		}
		if (zdd_interrupted) {
			rc = -ECANCELED;
			goto fail;
		}
		if (clock_seconds() >= deadline) {
			snprintf(why, whylen,
			    "deploy lock %s still held by "
			    "pid %ld after %u s; is a deploy stuck? "
			    "(LOCK_TIMEOUT)",
			    path, lock_holder(fd), timeout_s);
			rc = -ETIMEDOUT;
			goto fail;
		}
		nanosleep(&pause, NULL);
	}
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 ||
	    pwrite(fd, pid, strlen(pid), 0) != (ssize_t)strlen(pid))
		log_warn("cannot record pid in %s: %m", path);
	*fd_out = fd;
	return 0;
fail:
	close(fd);
	return rc;
}

void
lock_release(int fd)
{
	if (fd < 0)
		return;
	if (ftruncate(fd, 0) < 0)
		log_warn("cannot clear deploy lock: %m");
	close(fd);
}
