/* Unit tests: histogram buckets and percentiles. */
#include <stdbool.h>
#include <stdlib.h>

#include "histogram.h"
#include "../../lib/tap.h"

int
main(void)
{
	static struct histogram h;
	bool monotonic = true, covers = true;

	for (uint64_t v = 0; v < (UINT64_C(1) << 27);
	     v = v < 1000 ? v + 1 : v + v / 97) {
		unsigned i = histogram_index(v);
		if (i >= HIST_BUCKETS || histogram_bucket_upper(i) < v)
			covers = false;
		if (i > 0 && v > 0 && histogram_bucket_upper(i - 1) >= v)
			covers = false;
	}
	for (unsigned i = 1; i < HIST_BUCKETS; i++)
		if (histogram_bucket_upper(i) <= histogram_bucket_upper(i - 1))
			monotonic = false;
	ok(covers,
	    "every value up to 2^27 us lands in the bucket whose range holds it");
	ok(monotonic, "bucket edges strictly increase");
	ok(histogram_index(UINT64_C(1) << 40) == HIST_BUCKETS - 1,
	    "huge values clamp to the last bucket");
	bool precise = true;
	for (uint64_t v = 256; v < 60000000; v = v * 3 / 2) {
		uint64_t up = histogram_bucket_upper(histogram_index(v));
		if ((double)(up - v) / (double)v > 1.0 / 128)
			precise = false;
	}
	ok(precise, "relative error within 1/128 up to 60 s");

	histogram_reset(&h);
	ok(histogram_percentile(&h, 99) == 0, "empty histogram reports 0");
	for (uint64_t v = 1; v <= 100; v++)
		histogram_add(&h, v);
	ok(histogram_percentile(&h, 50) == 50,
	    "p50 of 1..100 is 50 (exact range)");
	ok(histogram_percentile(&h, 99) == 99, "p99 of 1..100 is 99");
	ok(histogram_percentile(&h, 100) == 100 && h.max == 100,
	    "p100 is the max");
	ok(histogram_percentile(&h, 0) == 1, "p0 is the smallest");

	histogram_reset(&h);
	for (int i = 0; i < 990; i++)
		histogram_add(&h, 1000);
	for (int i = 0; i < 10; i++)
		histogram_add(&h, 2000000);
	uint64_t p99 = histogram_percentile(&h, 99),
		 p999 = histogram_percentile(&h, 99.9);
	ok(p99 >= 1000 && p99 <= 1008,
	    "p99 of 990 x 1 ms + 10 x 2 s is ~1 ms (got %llu)",
	    (unsigned long long)p99);
	ok(p999 >= 2000000 && p999 <= 2000000,
	    "p99.9 is the 2 s outlier, capped at max (got %llu)",
	    (unsigned long long)p999);
	ok(h.total == 1000 && h.max == 2000000, "total and exact max kept");

	histogram_reset(&h);
	srand(7);
	for (int i = 0; i < 100000; i++)
		histogram_add(&h,
		    (uint64_t)(rand() % 10000) + 1); /* uniform 1..10000 us */
	uint64_t p90 = histogram_percentile(&h, 90);
	ok(p90 > 8900 && p90 < 9100,
	    "p90 of uniform 1..10000 near 9000 (got %llu)",
	    (unsigned long long)p90);
	return tap_done();
}
