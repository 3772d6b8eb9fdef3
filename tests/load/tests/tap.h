/* Minimal TAP output for the unit tests; ends with "N passed, N failed". */
#ifndef ZDD_LOAD_TAP_H
#define ZDD_LOAD_TAP_H

#include <stdio.h>

static int tap_n, tap_failed;

#define ok(cond, ...) \
	do { \
		int tap_ok_ = (cond) ? 1 : 0; /* evaluated once */ \
		tap_n++; \
		if (!tap_ok_) \
			tap_failed++; \
		printf("%s %d - ", tap_ok_ ? "ok" : "not ok", tap_n); \
		printf(__VA_ARGS__); \
		printf("\n"); \
		if (!tap_ok_) \
			printf("#   failed at %s:%d: %s\n", __FILE__, \
			    __LINE__, #cond); \
	} while (0)

static inline int
tap_done(void)
{
	printf("1..%d\n", tap_n);
	printf("%d passed, %d failed\n", tap_n - tap_failed, tap_failed);
	return tap_failed ? 1 : 0;
}

#endif
