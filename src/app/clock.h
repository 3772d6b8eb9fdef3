/* The monotonic clock, for deadlines and durations. */
#ifndef MYAPP_CLOCK_H
#define MYAPP_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds. */
int64_t monotonic_ms(void);

#endif
