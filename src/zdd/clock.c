/* Time for durations and deadlines: monotonic, in seconds. */
#include <errno.h>
#include <time.h>

#include "zdd.h"

double
clock_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleep s seconds; a SIGINT/SIGTERM (zdd_interrupted) cuts it short. */
void
clock_sleep(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (!zdd_interrupted && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}
