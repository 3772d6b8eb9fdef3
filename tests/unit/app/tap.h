/* Minimal TAP output for the app's tests. */
#ifndef MYAPP_TEST_TAP_H
#define MYAPP_TEST_TAP_H

#include <stdio.h>

static int tap_count, tap_failed;

#define ok(cond, ...) \
	do { \
		int ok_ = !!(cond); \
		tap_count++; \
		if (!ok_) \
			tap_failed++; \
		printf("%s %d - ", ok_ ? "ok" : "not ok", tap_count); \
		printf(__VA_ARGS__); \
		printf("\n"); \
		if (!ok_) \
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
