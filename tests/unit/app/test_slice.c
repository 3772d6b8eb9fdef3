/* slice_request(): bounds, the slice a new thread inherits, nice kept.
 * On a kernel before 6.12 the call must say the kernel ignores slices. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "slice.h"
#include "../../lib/tap.h"

/* The calling thread's slice in ns as the scheduler reports it
 * (se.slice in /proc/thread-self/sched, Linux 6.6+), or UINT64_MAX. */
static uint64_t
current_runtime(void)
{
	char line[256];
	unsigned long long ns;
	uint64_t found = UINT64_MAX;
	FILE *f = fopen("/proc/thread-self/sched", "r");

	if (!f)
		return UINT64_MAX;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "se.slice : %llu", &ns) == 1)
			found = ns;
	fclose(f);
	return found;
}

static void *
thread_runtime(void *out)
{
	*(uint64_t *)out = current_runtime();
	return NULL;
}

/* Custom slices came with Linux 6.12. */
static int
kernel_has_slices(void)
{
	struct utsname u;
	unsigned major = 0, minor = 0;

	if (uname(&u) < 0 || sscanf(u.release, "%u.%u", &major, &minor) != 2)
		return -1;
	return major > 6 || (major == 6 && minor >= 12);
}

int
main(void)
{
	uint64_t in_thread = 0;
	pthread_t t;
	int ret, has = kernel_has_slices();

	ok(slice_request(SLICE_US_MIN - 1) == -EINVAL,
	    "a slice under %d us is refused", SLICE_US_MIN);
	ok(slice_request(SLICE_US_MAX + 1) == -EINVAL,
	    "a slice over %d us is refused", SLICE_US_MAX);

	ok(setpriority(PRIO_PROCESS, 0, 3) == 0,
	    "nice set to 3 before the request");
	ret = slice_request(500);
	ok(getpriority(PRIO_PROCESS, 0) == 3,
	    "nice is still 3 after the request");
	if (has == 1) {
		ok(ret == 0, "kernel 6.12+: the 500 us slice is taken (%d)",
		    ret);
		ok(current_runtime() == 500000,
		    "the scheduler reports a 500000 ns slice (%llu)",
		    (unsigned long long)current_runtime());
		ok(pthread_create(&t, NULL, thread_runtime, &in_thread) == 0 &&
			pthread_join(t, NULL) == 0,
		    "a thread started afterwards ran");
		ok(in_thread == 500000,
		    "the new thread inherited the slice (%llu ns)",
		    (unsigned long long)in_thread);
		ok(slice_request(SLICE_US_MIN) == 0 &&
			current_runtime() == SLICE_US_MIN * 1000ULL,
		    "the shortest slice, %d us, is taken", SLICE_US_MIN);
	} else {
		ok(ret == -EOPNOTSUPP,
		    "kernel before 6.12: the request says slices are ignored (%d)",
		    ret);
	}
	return tap_done();
}
