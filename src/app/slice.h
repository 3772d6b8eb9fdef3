/* The scheduler slice the app asks for (Linux 6.12+ EEVDF custom slices). */
#ifndef MYAPP_SLICE_H
#define MYAPP_SLICE_H

#define SLICE_US_MIN 100    /* the kernel's shortest, and our default */
#define SLICE_US_MAX 100000 /* the kernel's longest */

/* Asks for a CPU slice of usec microseconds for this thread and the threads
 * it creates afterwards, keeping policy and nice. Returns 0 when the kernel
 * took it, -EOPNOTSUPP when it ignores slices (before Linux 6.12), or a
 * negative errno. */
int slice_request(unsigned usec);

#endif
