/* Figures over a run: the whole run, each window, all windows, the rest. */
#ifndef ZDD_LOAD_SUMMARY_H
#define ZDD_LOAD_SUMMARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "windows.h"

#define BUCKET_NS UINT64_C(100000000) /* timeline resolution: 100 ms */

struct run_view {
	const struct request_record *rec;
	uint64_t count; /* scheduled requests */
	uint64_t interval_ns;
	int64_t start_epoch_ns;
	uint64_t *done_ok; /* 2xx completions per bucket (by completion time) */
	uint64_t nbuckets; /* buckets in the timeline (sending + draining) */
	uint64_t full_buckets; /* buckets wholly inside the sending period */
};

enum range_kind { RANGE_ALL, RANGE_WINDOW, RANGE_ANY_WINDOW, RANGE_OUTSIDE };

struct range_summary {
	uint64_t count;    /* requests scheduled inside the range */
	uint64_t ok;       /* 2xx */
	uint64_t errors;   /* everything else, by any cause */
	uint64_t answered; /* complete HTTP responses (latency sample) */
	uint64_t p50_us, p90_us, p99_us, p999_us, max_us;
	bool have_tput;
	double
	    min_tput_rps; /* lowest 2xx completions per 100 ms bucket, as req/s */
	int64_t min_tput_at_ms; /* epoch ms of that bucket */
};

int run_view_init(struct run_view *v, const struct request_record *rec,
    uint64_t count, uint64_t interval_ns, int64_t start_epoch_ns);
void run_view_free(struct run_view *v);
/* Requests belong to a window by their scheduled time; throughput buckets
 * by lying wholly inside it (or, for a window shorter than a bucket, by
 * overlapping it). `index` picks the window for RANGE_WINDOW. */
int summarize(const struct run_view *v, const struct window *w, size_t nw,
    enum range_kind kind, size_t index, struct range_summary *out);
static inline bool
record_ok(const struct request_record *r)
{
	return r->outcome == OUTCOME_HTTP && r->status >= 200 &&
	    r->status <= 299;
}

#endif
