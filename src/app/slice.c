/* A short scheduler slice for the app's threads.
 *
 * Why: on a small machine a deploy runs git, the compiler and systemd beside
 * the live app. Since Linux 6.6 the fair scheduler (EEVDF) picks by virtual
 * deadline; a thread that wakes up with a request to serve may wait for the
 * running task's slice (0.75 ms x (1 + log2 CPUs)) unless its own is
 * shorter. Linux 6.12 lets a task ask for a shorter slice through
 * sched_attr.sched_runtime, no privilege needed; older kernels accept the
 * call and ignore the field. Policy and nice stay. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Not <sched.h>: glibc declares struct sched_attr there only from 2.41. */
#include <linux/sched/types.h>

#include "slice.h"

static int
get_attr(struct sched_attr *attr)
{
	memset(attr, 0, sizeof(*attr));
	if (syscall(SYS_sched_getattr, 0, attr, (unsigned)sizeof(*attr), 0U) <
	    0)
		return -errno;
	return 0;
}

int
slice_request(unsigned usec)
{
	struct sched_attr attr;
	uint64_t want = (uint64_t)usec * 1000;
	int ret;

	if (usec < SLICE_US_MIN || usec > SLICE_US_MAX)
		return -EINVAL;
	ret = get_attr(&attr);
	if (ret < 0)
		return ret;
	attr.size = sizeof(attr);
	attr.sched_flags = 0;
	attr.sched_runtime = want;
	if (syscall(SYS_sched_setattr, 0, &attr, 0U) < 0)
		return -errno;
	/* Read it back: an older kernel returns success and keeps its own. */
	ret = get_attr(&attr);
	if (ret < 0)
		return ret;
	return attr.sched_runtime == want ? 0 : -EOPNOTSUPP;
}
