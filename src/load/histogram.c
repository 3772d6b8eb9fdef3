/* Log-linear latency histogram: constant memory, ~0.8 % precision. */
#include "histogram.h"

#include <math.h>
#include <string.h>

void
histogram_reset(struct histogram *h)
{
	memset(h, 0, sizeof(*h));
}

unsigned
histogram_index(uint64_t value)
{
	if (value < HIST_LINEAR)
		return (unsigned)value;
	unsigned exp = 63u - (unsigned)__builtin_clzll(value);
	if (exp > HIST_TOP_EXP)
		return HIST_BUCKETS - 1;
	unsigned shift = exp - (HIST_LINEAR_BITS - 1);
	unsigned sub = (unsigned)(value >> shift) - HIST_HALF;
	return HIST_LINEAR + (exp - HIST_LINEAR_BITS) * HIST_HALF + sub;
}

uint64_t
histogram_bucket_upper(unsigned index)
{
	if (index < HIST_LINEAR)
		return index;
	unsigned k = index - HIST_LINEAR;
	unsigned exp = HIST_LINEAR_BITS + k / HIST_HALF;
	unsigned shift = exp - (HIST_LINEAR_BITS - 1);
	uint64_t lower = (uint64_t)(HIST_HALF + k % HIST_HALF) << shift;
	return lower + (UINT64_C(1) << shift) - 1;
}

void
histogram_add(struct histogram *h, uint64_t value)
{
	h->counts[histogram_index(value)]++;
	h->total++;
	if (value > h->max)
		h->max = value;
}

uint64_t
histogram_percentile(const struct histogram *h, double percent)
{
	if (h->total == 0)
		return 0;
	if (percent >= 100.0)
		return h->max;
	/* rank of the sample we want, 1-based: ceil(p * n), at least 1 */
	uint64_t rank = (uint64_t)ceil(percent / 100.0 * (double)h->total);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			uint64_t v = histogram_bucket_upper(i);
			return v < h->max ? v : h->max;
		}
	}
	return h->max;
}
