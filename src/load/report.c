/* The figures, three ways: a short table, a JSON document, a CSV timeline. */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "histogram.h"

void
report_tally(struct run_result *r)
{
	const struct run_view *v = r->view;
	memset(r->outcomes, 0, sizeof(r->outcomes));
	memset(r->statuses, 0, sizeof(r->statuses));
	r->failed = 0;
	for (uint64_t i = 0; i < v->count; i++) {
		const struct request_record *rec = &v->rec[i];
		r->outcomes[rec->outcome < OUTCOME_COUNT ? rec->outcome
							 : OUTCOME_MALFORMED]++;
		if (rec->outcome == OUTCOME_HTTP && rec->status < STATUS_CODES)
			r->statuses[rec->status]++;
		if (!record_ok(rec))
			r->failed++;
	}
	r->lost =
	    r->verify ? r->verify->lost_404 + r->verify->lost_mismatch : 0;
}

bool
report_has_failures(const struct run_result *r)
{
	if (r->failed || r->lost || r->mix->posts_2xx_without_id)
		return true;
	/* --verify with no write acknowledged verified nothing: not a pass */
	return r->verify &&
	    (r->verify->errors || r->verify_unanswered ||
		r->mix->acks_len == 0);
}

static double
ms(uint64_t us)
{
	return (double)us / 1000.0;
}

static void
text_range(FILE *out, const char *name, const struct range_summary *s)
{
	fprintf(out,
	    "%-22.22s %9" PRIu64 " %8" PRIu64 " %9.2f %9.2f %9.2f %9.2f ", name,
	    s->count, s->errors, ms(s->p50_us), ms(s->p99_us), ms(s->p999_us),
	    ms(s->max_us));
	if (s->have_tput)
		fprintf(out, "%10.0f\n", s->min_tput_rps);
	else
		fprintf(out, "%10s\n", "-");
}

int
report_text(const struct run_result *r, FILE *out)
{
	struct range_summary s;
	int rc;
	const struct engine_stats *st = r->stats;
	double wall = (double)(st->end_mono_ns - st->start_mono_ns) / 1e9;

	fprintf(out,
	    "zdd-load %s: %.0f req/s for %.1f s, %s, %u connections, %.0f%% POST\n",
	    r->target, r->rate, r->duration_s,
	    r->keepalive ? "keep-alive" : "no keep-alive", r->connections,
	    r->post_ratio * 100);
	fprintf(out,
	    "requests  sent %" PRIu64 "  ok %" PRIu64 "  failed %" PRIu64 "\n",
	    r->view->count, r->view->count - r->failed, r->failed);
	fprintf(out, "failures ");
	for (int o = OUTCOME_REFUSED; o < OUTCOME_COUNT; o++)
		fprintf(out, " %s %" PRIu64, outcome_name(o), r->outcomes[o]);
	uint64_t non2xx =
	    r->outcomes[OUTCOME_HTTP] - (r->view->count - r->failed);
	fprintf(out, "  http_non2xx %" PRIu64 "\n", non2xx);
	if (non2xx) {
		fprintf(out, "statuses ");
		for (int c = 0; c < STATUS_CODES; c++)
			if ((c < 200 || c > 299) && r->statuses[c])
				fprintf(out, " %d:%" PRIu64, c, r->statuses[c]);
		fprintf(out, "\n");
	}
	fprintf(out, "writes    acknowledged %zu  2xx_without_id %" PRIu64,
	    r->mix->acks_len, r->mix->posts_2xx_without_id);
	if (r->verify)
		fprintf(out,
		    "  verified %" PRIu64 "  LOST %" PRIu64 " (404 %" PRIu64
		    ", mismatch %" PRIu64 ")  unverifiable %" PRIu64 "\n",
		    r->verify->verified, r->lost, r->verify->lost_404,
		    r->verify->lost_mismatch,
		    r->verify->errors + r->verify_unanswered);
	if (r->verify && r->mix->acks_len == 0)
		fprintf(out,
		    "writes    NOTHING ACKNOWLEDGED: no write to read back, none verified\n");
	else if (!r->verify)
		fprintf(out, "  (not read back: --verify)\n");
	fprintf(out,
	    "client    connects %" PRIu64 "  idle_closed %" PRIu64
	    "  resent_unsent %" PRIu64 "  resent_reused %" PRIu64
	    "  max_sched_lag %.2f ms  cpu %.2fs user + %.2fs sys over %.1fs"
	    " (%.0f%% of one core)\n",
	    st->connects, st->idle_closed, st->resent, st->resent_reused,
	    (double)st->max_lag_ns / 1e6, r->cpu_user_s, r->cpu_sys_s, wall,
	    wall > 0 ? 100.0 * (r->cpu_user_s + r->cpu_sys_s) / wall : 0.0);
	fprintf(out, "%-22s %9s %8s %9s %9s %9s %9s %10s\n", "range", "count",
	    "errors", "p50_ms", "p99_ms", "p99.9_ms", "max_ms", "min_rps");
	if ((rc = summarize(
		 r->view, r->windows, r->nwindows, RANGE_ALL, 0, &s)) < 0)
		return rc;
	text_range(out, "whole run", &s);
	if (!r->nwindows)
		return 0;
	if ((rc = summarize(
		 r->view, r->windows, r->nwindows, RANGE_OUTSIDE, 0, &s)) < 0)
		return rc;
	text_range(out, "outside windows", &s);
	if ((rc = summarize(r->view, r->windows, r->nwindows, RANGE_ANY_WINDOW,
		 0, &s)) < 0)
		return rc;
	text_range(out, "all windows", &s);
	for (size_t k = 0; k < r->nwindows; k++) {
		if ((rc = summarize(r->view, r->windows, r->nwindows,
			 RANGE_WINDOW, k, &s)) < 0)
			return rc;
		text_range(out, r->windows[k].label, &s);
	}
	return 0;
}

static json_object *
json_range(const struct range_summary *s)
{
	json_object *o = json_object_new_object();
	json_object_object_add(
	    o, "count", json_object_new_int64((int64_t)s->count));
	json_object_object_add(o, "ok", json_object_new_int64((int64_t)s->ok));
	json_object_object_add(
	    o, "errors", json_object_new_int64((int64_t)s->errors));
	json_object_object_add(
	    o, "answered", json_object_new_int64((int64_t)s->answered));
	json_object_object_add(
	    o, "p50_ms", json_object_new_double(ms(s->p50_us)));
	json_object_object_add(
	    o, "p90_ms", json_object_new_double(ms(s->p90_us)));
	json_object_object_add(
	    o, "p99_ms", json_object_new_double(ms(s->p99_us)));
	json_object_object_add(
	    o, "p999_ms", json_object_new_double(ms(s->p999_us)));
	json_object_object_add(
	    o, "max_ms", json_object_new_double(ms(s->max_us)));
	json_object_object_add(o, "lowest_100ms_rps",
	    s->have_tput ? json_object_new_double(s->min_tput_rps) : NULL);
	json_object_object_add(o, "lowest_100ms_at_epoch_ms",
	    s->have_tput ? json_object_new_int64(s->min_tput_at_ms) : NULL);
	return o;
}

static int
add_range(json_object *parent, const char *key, const struct run_result *r,
    enum range_kind kind, size_t index)
{
	struct range_summary s;
	int rc = summarize(r->view, r->windows, r->nwindows, kind, index, &s);
	if (rc < 0)
		return rc;
	json_object *o = json_range(&s);
	if (kind == RANGE_WINDOW) {
		json_object_object_add(o, "label",
		    json_object_new_string(r->windows[index].label));
		json_object_object_add(o, "start_epoch_ms",
		    json_object_new_int64(r->windows[index].start_ms));
		json_object_object_add(o, "end_epoch_ms",
		    json_object_new_int64(r->windows[index].end_ms));
	}
	if (key)
		json_object_object_add(parent, key, o);
	else
		json_object_array_add(parent, o);
	return 0;
}

int
report_json(const struct run_result *r, const char *path)
{
	json_object *root = json_object_new_object();
	json_object *cfg = json_object_new_object();
	json_object *fail = json_object_new_object();
	json_object *statuses = json_object_new_object();
	json_object *writes = json_object_new_object();
	json_object *client = json_object_new_object();
	json_object *wins = json_object_new_array();
	const struct engine_stats *st = r->stats;
	int rc;

	json_object_object_add(
	    cfg, "target", json_object_new_string(r->target));
	json_object_object_add(cfg, "rate", json_object_new_double(r->rate));
	json_object_object_add(
	    cfg, "duration_s", json_object_new_double(r->duration_s));
	json_object_object_add(
	    cfg, "connections", json_object_new_int((int)r->connections));
	json_object_object_add(
	    cfg, "keepalive", json_object_new_boolean(r->keepalive));
	json_object_object_add(
	    cfg, "post_ratio", json_object_new_double(r->post_ratio));
	json_object_object_add(root, "config", cfg);
	json_object_object_add(root, "start_epoch_ms",
	    json_object_new_int64(st->start_epoch_ns / 1000000));
	json_object_object_add(
	    root, "sent", json_object_new_int64((int64_t)r->view->count));
	json_object_object_add(root, "ok",
	    json_object_new_int64((int64_t)(r->view->count - r->failed)));
	json_object_object_add(
	    root, "failed", json_object_new_int64((int64_t)r->failed));
	for (int o = OUTCOME_REFUSED; o < OUTCOME_COUNT; o++)
		json_object_object_add(fail, outcome_name(o),
		    json_object_new_int64((int64_t)r->outcomes[o]));
	for (int c = 0; c < STATUS_CODES; c++) {
		if (!r->statuses[c])
			continue;
		char code[16];
		snprintf(code, sizeof(code), "%d", c);
		json_object_object_add(statuses, code,
		    json_object_new_int64((int64_t)r->statuses[c]));
	}
	json_object_object_add(root, "failures", fail);
	json_object_object_add(root, "statuses", statuses);
	json_object_object_add(writes, "acknowledged",
	    json_object_new_int64((int64_t)r->mix->acks_len));
	json_object_object_add(writes, "posts_2xx_without_id",
	    json_object_new_int64((int64_t)r->mix->posts_2xx_without_id));
	json_object_object_add(
	    writes, "verified_run", json_object_new_boolean(r->verify != NULL));
	if (r->verify) {
		json_object_object_add(writes, "nothing_acknowledged",
		    json_object_new_boolean(r->mix->acks_len == 0));
		json_object_object_add(writes, "verified",
		    json_object_new_int64((int64_t)r->verify->verified));
		json_object_object_add(
		    writes, "lost", json_object_new_int64((int64_t)r->lost));
		json_object_object_add(writes, "lost_404",
		    json_object_new_int64((int64_t)r->verify->lost_404));
		json_object_object_add(writes, "lost_mismatch",
		    json_object_new_int64((int64_t)r->verify->lost_mismatch));
		json_object_object_add(writes, "unverifiable",
		    json_object_new_int64(
			(int64_t)(r->verify->errors + r->verify_unanswered)));
	}
	json_object_object_add(root, "writes", writes);
	json_object_object_add(
	    client, "connects", json_object_new_int64((int64_t)st->connects));
	json_object_object_add(client, "idle_closed",
	    json_object_new_int64((int64_t)st->idle_closed));
	json_object_object_add(client, "resent_unsent",
	    json_object_new_int64((int64_t)st->resent));
	json_object_object_add(client, "resent_reused",
	    json_object_new_int64((int64_t)st->resent_reused));
	json_object_object_add(client, "max_sched_lag_ms",
	    json_object_new_double((double)st->max_lag_ns / 1e6));
	json_object_object_add(client, "wall_s",
	    json_object_new_double(
		(double)(st->end_mono_ns - st->start_mono_ns) / 1e9));
	json_object_object_add(
	    client, "cpu_user_s", json_object_new_double(r->cpu_user_s));
	json_object_object_add(
	    client, "cpu_sys_s", json_object_new_double(r->cpu_sys_s));
	json_object_object_add(root, "client", client);
	json_object_object_add(root, "windows", wins);
	if ((rc = add_range(root, "whole", r, RANGE_ALL, 0)) < 0)
		goto out;
	if (r->nwindows) {
		if ((rc = add_range(
			 root, "outside_windows", r, RANGE_OUTSIDE, 0)) < 0 ||
		    (rc = add_range(
			 root, "all_windows", r, RANGE_ANY_WINDOW, 0)) < 0)
			goto out;
		for (size_t k = 0; k < r->nwindows; k++)
			if ((rc = add_range(wins, NULL, r, RANGE_WINDOW, k)) <
			    0)
				goto out;
	}
	if (json_object_to_file_ext(path, root,
		JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE) < 0) {
		fprintf(stderr, "zdd-load: cannot write %s: %s\n", path,
		    json_util_get_last_err());
		rc = -EIO;
	}
out:
	json_object_put(root);
	return rc;
}

/* A CSV output file: opened, or NULL with the reason said once. */
static FILE *
csv_open(const char *path, int *rc)
{
	FILE *f = fopen(path, "we");

	*rc = 0;
	if (!f) {
		*rc = -errno;
		fprintf(stderr, "zdd-load: cannot write %s: %s\n", path,
		    strerror(errno));
	}
	return f;
}

/* Closes it; a failed write shows up here, said once. */
static int
csv_close(FILE *f, const char *path)
{
	if (fclose(f) != 0) {
		int rc = -errno;
		fprintf(stderr, "zdd-load: cannot write %s: %s\n", path,
		    strerror(errno));
		return rc;
	}
	return 0;
}

int
report_timeline(const struct run_result *r, const char *path)
{
	const struct run_view *v = r->view;
	struct histogram *h = malloc(sizeof(*h));
	FILE *f = NULL;
	int rc = 0;
	uint64_t i = 0;

	if (!h)
		return -ENOMEM;
	f = csv_open(path, &rc);
	if (!f)
		goto out;
	fprintf(f,
	    "t_ms,epoch_ms,sent,ok,errors,p50_ms,p99_ms,max_ms,done_ok,throughput_rps\n");
	for (uint64_t b = 0; b < v->nbuckets; b++) {
		uint64_t sent = 0, ok = 0;
		histogram_reset(h);
		for (; i < v->count && (i * v->interval_ns) / BUCKET_NS == b;
		     i++) {
			sent++;
			if (record_ok(&v->rec[i]))
				ok++;
			if (v->rec[i].outcome == OUTCOME_HTTP)
				histogram_add(h, v->rec[i].latency_us);
		}
		fprintf(f,
		    "%" PRIu64 ",%" PRId64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
		    ",%.3f,%.3f,%.3f,%" PRIu64 ",%.0f\n",
		    b * BUCKET_NS / 1000000,
		    (v->start_epoch_ns + (int64_t)(b * BUCKET_NS)) / 1000000,
		    sent, ok, sent - ok, ms(histogram_percentile(h, 50)),
		    ms(histogram_percentile(h, 99)), ms(h->max), v->done_ok[b],
		    (double)v->done_ok[b] * 1e9 / (double)BUCKET_NS);
	}
	rc = csv_close(f, path);
out:
	free(h);
	return rc;
}

int
report_requests(const struct run_result *r, const char *path)
{
	const struct run_view *v = r->view;
	int rc;
	FILE *f = csv_open(path, &rc);

	if (!f)
		return rc;
	fprintf(f, "epoch_us,latency_us,queued_us,fresh,post,outcome,status\n");
	for (uint64_t i = 0; i < v->count; i++) {
		const struct request_record *q = &v->rec[i];
		fprintf(f, "%" PRId64 ",%" PRIu32 ",%" PRIu32 ",%u,%d,%s,%u\n",
		    (v->start_epoch_ns + (int64_t)(i * v->interval_ns)) / 1000,
		    q->latency_us, q->queued_us, q->fresh,
		    mix_is_post(r->mix, i) ? 1 : 0,
		    outcome_name((enum outcome)q->outcome), q->status);
	}
	return csv_close(f, path);
}
