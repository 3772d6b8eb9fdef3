/* Experiment (docs/architecture.md, docs/benchmark.md): wake-up latency of a
 * normal task, 3,000 sleeps of 1 ms, printed as the overshoot's
 * p50/p99/p99.9/max. Run beside background work to see whether the
 * scheduler lets the task in at once; with an argument, the task first asks
 * for a CPU slice of that many microseconds (Linux 6.12+):
 *   cc -O2 -D_GNU_SOURCE -I src/app -o /tmp/wake tests/bench/experiments/wake.c src/app/slice.c
 *   setsid /tmp/wake [100] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "slice.h"
static long
ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000L + t.tv_nsec;
}
static int
cmp(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return x < y ? -1 : x > y;
}
int
main(int argc, char **argv)
{
	enum { N = 3000 };
	static long d[N];
	if (argc > 1) {
		int r = slice_request((unsigned)atoi(argv[1]));
		if (r < 0) {
			fprintf(stderr, "slice: %s\n", strerror(-r));
			return 1;
		}
	}
	for (int i = 0; i < N; i++) {
		struct timespec s = { 0, 1000000 };
		long t = ns();
		nanosleep(&s, NULL);
		d[i] = ns() - t - 1000000;
	}
	qsort(d, N, sizeof d[0], cmp);
	printf("wake overshoot us: p50 %ld p99 %ld p99.9 %ld max %ld\n",
	    d[N / 2] / 1000, d[N * 99 / 100] / 1000, d[N * 999 / 1000] / 1000,
	    d[N - 1] / 1000);
	return 0;
}
