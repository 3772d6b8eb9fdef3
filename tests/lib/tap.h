/*
 * TAP output for every C test suite: ok(COND, FMT, ...) prints one line
 * (and where a failed check stands); tap_done() prints the plan and the
 * summary "# N passed, N failed" and is main's exit status.
 */
#ifndef ZDD_TESTS_TAP_H
#define ZDD_TESTS_TAP_H

#include <stdio.h>

static int tap_count, tap_failed;

#define ok(cond, ...) \
	do { \
		int tap_ok_ = (cond) ? 1 : 0; /* evaluated once */ \
		tap_count++; \
		if (!tap_ok_) \
			tap_failed++; \
		printf("%s %d - ", tap_ok_ ? "ok" : "not ok", tap_count); \
		printf(__VA_ARGS__); \
		printf("\n"); \
		if (!tap_ok_) \
			printf("#   failed at %s:%d: %s\n", __FILE__, \
			    __LINE__, #cond); \
		fflush(stdout); \
	} while (0)

static inline int
tap_done(void)
{
	printf("1..%d\n# %d passed, %d failed\n", tap_count,
	    tap_count - tap_failed, tap_failed);
	return tap_failed ? 1 : 0;
}

#endif
