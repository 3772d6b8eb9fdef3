/* Output: the summary table, the JSON report and the 100 ms timeline. */
#ifndef ZDD_LOAD_REPORT_H
#define ZDD_LOAD_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "engine.h"
#include "requests.h"
#include "summary.h"
#include "windows.h"

#define STATUS_CODES 600

struct run_result {
	/* what was asked */
	const char *target;
	double rate, duration_s, post_ratio;
	unsigned connections;
	bool keepalive;
	/* what happened */
	const struct run_view *view;
	const struct engine_stats *stats;
	const struct mix *mix;
	const struct verify *verify; /* NULL without --verify */
	uint64_t verify_unanswered;  /* read-backs that got no HTTP answer */
	const struct window *windows;
	size_t nwindows;
	double cpu_user_s, cpu_sys_s;
	/* filled by report_tally */
	uint64_t outcomes[OUTCOME_COUNT];
	uint64_t statuses[STATUS_CODES];
	uint64_t failed;
	uint64_t lost;
};

void report_tally(struct run_result *r);
/* true when a request failed, an acknowledged write was lost or unverified,
 * a 2xx POST carried no id, or --verify found nothing acknowledged */
bool report_has_failures(const struct run_result *r);
int report_text(const struct run_result *r, FILE *out);
int report_json(const struct run_result *r, const char *path);
int report_timeline(const struct run_result *r, const char *path);
/* one CSV line per scheduled request: when, how long, what came back */
int report_requests(const struct run_result *r, const char *path);

#endif
