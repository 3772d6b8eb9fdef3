/* Time for durations and deadlines: monotonic, in seconds. */
#include <time.h>

#include "zdd.h"

double
clock_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
