/* Log-linear latency histogram (HDR style), microsecond resolution. */
#ifndef ZDD_LOAD_HISTOGRAM_H
#define ZDD_LOAD_HISTOGRAM_H

#include <stdint.h>

/* Values below HIST_LINEAR are exact; above, each power of two is split in
 * HIST_HALF buckets, so a reported value is within 1/128 (0.8 %) of the truth.
 * The top power of two is 2^26 us (67 s): beyond that values land in the last
 * bucket, and `max` keeps the exact largest value. */
#define HIST_LINEAR_BITS 8
#define HIST_LINEAR (1u << HIST_LINEAR_BITS)
#define HIST_HALF (HIST_LINEAR / 2)
#define HIST_TOP_EXP 26
#define HIST_BUCKETS \
	(HIST_LINEAR + (HIST_TOP_EXP - HIST_LINEAR_BITS + 1) * HIST_HALF)

struct histogram {
	uint64_t counts[HIST_BUCKETS];
	uint64_t total;
	uint64_t max;
};

void histogram_reset(struct histogram *h);
void histogram_add(struct histogram *h, uint64_t value);
/* Smallest recorded-bucket value v such that at least `percent` % of the
 * samples are <= v (reported as the bucket's upper edge, capped at max).
 * 0 when empty. */
uint64_t histogram_percentile(const struct histogram *h, double percent);
/* Exposed for tests. */
unsigned histogram_index(uint64_t value);
uint64_t histogram_bucket_upper(unsigned index);

#endif
