/* Deploy windows: "START_EPOCH_MS END_EPOCH_MS [label]" lines. */
#ifndef ZDD_LOAD_WINDOWS_H
#define ZDD_LOAD_WINDOWS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define WINDOWS_MAX 10000
#define WINDOW_LABEL_MAX 64

struct window {
	int64_t start_ms, end_ms; /* [start, end) in ms since the epoch */
	char label[WINDOW_LABEL_MAX];
};

/* Reads every window from f ('#' comments and blank lines allowed). On
 * success *out is malloc'ed (may be NULL when there are none). Returns 0 or
 * -EBADMSG (with the line number in *bad_line) / -E2BIG / -ENOMEM. */
int windows_read(
    FILE *f, struct window **out, size_t *count, unsigned *bad_line);

#endif
