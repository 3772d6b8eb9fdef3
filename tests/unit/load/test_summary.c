/* Unit tests: window parsing and per-window summaries. */
#include <stdlib.h>
#include <string.h>

#include "summary.h"
#include "../../lib/tap.h"
#include "windows.h"

#define N 1000 /* 1000 requests at 100 req/s: 10 s, 100 buckets */

int
main(void)
{
	static struct request_record rec[N];
	struct run_view v;
	struct range_summary s;
	const int64_t start_ns =
	    INT64_C(1700000000000) * 1000000; /* epoch ms 1700000000000 */
	const int64_t t0 = 1700000000000;

	/* every request ok in 1 ms, except: requests 300..309 (3.0-3.1 s) take
	 * 50 ms, and requests 500..504 failed (reset) */
	for (int i = 0; i < N; i++)
		rec[i] = (struct request_record){ .latency_us = 1000,
			.status = 200,
			.outcome = OUTCOME_HTTP };
	for (int i = 300; i < 310; i++)
		rec[i].latency_us = 50000;
	for (int i = 500; i < 505; i++)
		rec[i] = (struct request_record){ .latency_us = 2000,
			.outcome = OUTCOME_RESET };
	rec[700].status = 502;

	ok(run_view_init(&v, rec, N, 10000000, start_ns) == 0,
	    "run view built");
	ok(v.full_buckets == 100 && v.nbuckets == 100,
	    "100 buckets of 100 ms (got %llu/%llu)",
	    (unsigned long long)v.full_buckets, (unsigned long long)v.nbuckets);

	ok(summarize(&v, NULL, 0, RANGE_ALL, 0, &s) == 0, "whole-run summary");
	ok(s.count == N && s.errors == 6 && s.ok == 994 && s.answered == 995,
	    "whole run: 1000 sent, 6 errors");
	ok(s.p50_us >= 1000 && s.p50_us <= 1008 && s.max_us == 50000,
	    "whole run p50 ~1 ms, max 50 ms");
	ok(s.p99_us == 50000,
	    "whole run p99 50 ms: 10 slow of 995 answered is over 1 %% (got %llu)",
	    (unsigned long long)s.p99_us);
	/* bucket 30 (3.0-3.1 s): requests 300..304 finish inside it, 305..309
	 * in the next; bucket 50 lost 5 to resets: both 5 ok -> 50 req/s */
	ok(s.have_tput && s.min_tput_rps == 50.0 &&
		s.min_tput_at_ms == t0 + 3000,
	    "lowest 100 ms throughput 50 req/s, first at 3.0 s (got %.0f at +%lld)",
	    s.min_tput_rps, (long long)(s.min_tput_at_ms - t0));

	const char *text = "# deploys\n"
			   "1700000003000 1700000003500 deploy-1\n"
			   "\n"
			   "1700000005000 1700000005100\n"
			   "1700000009000 1700000009050 short\n";
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	struct window *w = NULL;
	size_t nw = 0;
	unsigned bad = 0;
	ok(f && windows_read(f, &w, &nw, &bad) == 0 && nw == 3,
	    "three windows read");
	fclose(f);
	ok(strcmp(w[0].label, "deploy-1") == 0 &&
		strcmp(w[1].label, "window2") == 0,
	    "labels (given and default)");

	ok(summarize(&v, w, nw, RANGE_WINDOW, 0, &s) == 0, "window 1 summary");
	ok(s.count == 50 && s.errors == 0 && s.max_us == 50000 &&
		s.p50_us <= 1008,
	    "window 1: 50 requests, the slow ones inside (count %llu)",
	    (unsigned long long)s.count);
	ok(s.have_tput && s.min_tput_rps == 50.0 &&
		s.min_tput_at_ms == t0 + 3000,
	    "window 1: lowest 100 ms is the slow bucket, 50 req/s (got %.0f)",
	    s.min_tput_rps);

	ok(summarize(&v, w, nw, RANGE_WINDOW, 1, &s) == 0 && s.count == 10 &&
		s.errors == 5 && s.min_tput_rps == 50.0,
	    "window 2: the 5 resets, 50 req/s");
	ok(summarize(&v, w, nw, RANGE_WINDOW, 2, &s) == 0 && s.count == 5 &&
		s.have_tput && s.min_tput_rps == 100.0,
	    "window 3 shorter than a bucket: its overlapping bucket is used");

	ok(summarize(&v, w, nw, RANGE_ANY_WINDOW, 0, &s) == 0 &&
		s.count == 65 && s.errors == 5 && s.max_us == 50000 &&
		s.min_tput_rps == 50.0,
	    "all windows together: 65 requests, 5 errors");
	ok(summarize(&v, w, nw, RANGE_OUTSIDE, 0, &s) == 0 && s.count == 935 &&
		s.errors == 1 && s.max_us == 1000 && s.min_tput_rps >= 90.0,
	    "outside windows: 935 requests, the 502, max 1 ms (min %.0f)",
	    s.min_tput_rps);
	free(w);

	const char *broken = "1700000003000 x\n";
	f = fmemopen((void *)broken, strlen(broken), "r");
	ok(f && windows_read(f, &w, &nw, &bad) < 0 && bad == 1,
	    "malformed window line rejected with its line");
	fclose(f);
	const char *backwards = "20 10 oops\n";
	f = fmemopen((void *)backwards, strlen(backwards), "r");
	ok(f && windows_read(f, &w, &nw, &bad) < 0,
	    "end before start rejected");
	fclose(f);

	run_view_free(&v);
	return tap_done();
}
