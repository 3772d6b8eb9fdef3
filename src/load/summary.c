/* Summaries over the per-request records: counts, latency percentiles from a
 * log-linear histogram, and the lowest 100 ms throughput. */
#include "summary.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "histogram.h"

int
run_view_init(struct run_view *v, const struct request_record *rec,
    uint64_t count, uint64_t interval_ns, int64_t start_epoch_ns)
{
	uint64_t send_ns = count * interval_ns;
	uint64_t nb = (send_ns + BUCKET_NS - 1) / BUCKET_NS;

	memset(v, 0, sizeof(*v));
	v->rec = rec;
	v->count = count;
	v->interval_ns = interval_ns;
	v->start_epoch_ns = start_epoch_ns;
	v->full_buckets = send_ns / BUCKET_NS;
	for (uint64_t i = 0; i < count; i++) {
		uint64_t done =
		    i * interval_ns + (uint64_t)rec[i].latency_us * 1000;
		if (done / BUCKET_NS + 1 > nb)
			nb = done / BUCKET_NS + 1;
	}
	v->nbuckets = nb;
	v->done_ok = calloc(nb ? nb : 1, sizeof(*v->done_ok));
	if (!v->done_ok)
		return -ENOMEM;
	for (uint64_t i = 0; i < count; i++)
		if (record_ok(&rec[i]))
			v->done_ok[(i * interval_ns +
				       (uint64_t)rec[i].latency_us * 1000) /
			    BUCKET_NS]++;
	return 0;
}

void
run_view_free(struct run_view *v)
{
	free(v->done_ok);
	v->done_ok = NULL;
}

static int64_t
sched_epoch_ns(const struct run_view *v, uint64_t i)
{
	return v->start_epoch_ns + (int64_t)(i * v->interval_ns);
}

static bool
in_window(int64_t t_ns, const struct window *w)
{
	return t_ns >= w->start_ms * 1000000 && t_ns < w->end_ms * 1000000;
}

static bool
in_range(const struct run_view *v, uint64_t i, const struct window *w,
    size_t nw, enum range_kind kind, size_t index)
{
	int64_t t = sched_epoch_ns(v, i);
	switch (kind) {
	case RANGE_ALL:
		return true;
	case RANGE_WINDOW:
		return in_window(t, &w[index]);
	case RANGE_ANY_WINDOW:
	case RANGE_OUTSIDE:
		for (size_t k = 0; k < nw; k++)
			if (in_window(t, &w[k]))
				return kind == RANGE_ANY_WINDOW;
		return kind == RANGE_OUTSIDE;
	}
	return false;
}

/* Buckets [*first, *last) that stand for window w. */
static void
window_buckets(const struct run_view *v, const struct window *w,
    uint64_t *first, uint64_t *last)
{
	int64_t ws = w->start_ms * 1000000 - v->start_epoch_ns;
	int64_t we = w->end_ms * 1000000 - v->start_epoch_ns;
	int64_t nb = (int64_t)v->full_buckets;
	int64_t b = (int64_t)BUCKET_NS;
	/* wholly inside: first bucket starting at or after ws, last ending by we */
	int64_t f = ws <= 0 ? 0 : (ws + b - 1) / b;
	int64_t l = we <= 0 ? 0 : we / b;
	if (l <= f) { /* shorter than a bucket: the buckets it touches */
		f = ws <= 0 ? 0 : ws / b;
		l = we <= 0 ? 0 : (we + b - 1) / b;
	}
	if (f > nb)
		f = nb;
	if (l > nb)
		l = nb;
	*first = (uint64_t)f;
	*last = (uint64_t)(l > f ? l : f);
}

static void
consider_bucket(const struct run_view *v, uint64_t b, struct range_summary *out)
{
	double rps = (double)v->done_ok[b] * (1e9 / (double)BUCKET_NS);
	if (!out->have_tput || rps < out->min_tput_rps) {
		out->have_tput = true;
		out->min_tput_rps = rps;
		out->min_tput_at_ms =
		    (v->start_epoch_ns + (int64_t)(b * BUCKET_NS)) / 1000000;
	}
}

static void
lowest_throughput(const struct run_view *v, const struct window *w, size_t nw,
    enum range_kind kind, size_t index, struct range_summary *out)
{
	uint64_t f, l;
	switch (kind) {
	case RANGE_ALL:
		for (uint64_t b = 0; b < v->full_buckets; b++)
			consider_bucket(v, b, out);
		break;
	case RANGE_WINDOW:
		window_buckets(v, &w[index], &f, &l);
		for (uint64_t b = f; b < l; b++)
			consider_bucket(v, b, out);
		break;
	case RANGE_ANY_WINDOW:
		for (size_t k = 0; k < nw; k++) {
			window_buckets(v, &w[k], &f, &l);
			for (uint64_t b = f; b < l; b++)
				consider_bucket(v, b, out);
		}
		break;
	case RANGE_OUTSIDE:
		for (uint64_t b = 0; b < v->full_buckets; b++) {
			int64_t bs =
			    v->start_epoch_ns + (int64_t)(b * BUCKET_NS);
			int64_t be = bs + (int64_t)BUCKET_NS;
			bool touched = false;
			for (size_t k = 0; k < nw && !touched; k++)
				touched = bs < w[k].end_ms * 1000000 &&
				    be > w[k].start_ms * 1000000;
			if (!touched)
				consider_bucket(v, b, out);
		}
		break;
	}
}

int
summarize(const struct run_view *v, const struct window *w, size_t nw,
    enum range_kind kind, size_t index, struct range_summary *out)
{
	struct histogram *h = malloc(sizeof(*h));
	if (!h)
		return -ENOMEM;
	if (kind == RANGE_WINDOW && index >= nw) {
		free(h);
		return -EINVAL;
	}
	histogram_reset(h);
	memset(out, 0, sizeof(*out));
	for (uint64_t i = 0; i < v->count; i++) {
		if (!in_range(v, i, w, nw, kind, index))
			continue;
		const struct request_record *r = &v->rec[i];
		out->count++;
		if (record_ok(r))
			out->ok++;
		else
			out->errors++;
		if (r->outcome == OUTCOME_HTTP) {
			out->answered++;
			histogram_add(h, r->latency_us);
		}
	}
	out->p50_us = histogram_percentile(h, 50);
	out->p90_us = histogram_percentile(h, 90);
	out->p99_us = histogram_percentile(h, 99);
	out->p999_us = histogram_percentile(h, 99.9);
	out->max_us = h->max;
	free(h);
	lowest_throughput(v, w, nw, kind, index, out);
	return 0;
}
