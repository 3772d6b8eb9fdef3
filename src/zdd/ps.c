/*
 * ps: every process of the app, one line each: its type, unit, the
 * release it runs, its state, main PID and since when. One `systemctl
 * list-units` of the app's unit names, one `systemctl show` of the units
 * it found. Read-only; takes no lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "zdd.h"

#define PS_UNITS_MAX UNITS_SHOW_MAX
#define PS_LIST_MAX 16384 /* list-units: a line is < 256 bytes */
#define PS_SHOW_MAX 65536 /* show: a unit's block is < 1 KiB */
#define PS_UNIT_MAX 128
#define PS_PROPS \
	"Id,MainPID,ActiveState,SubState,ExecMainStartTimestamp," \
	"ActiveEnterTimestamp,ActiveExitTimestamp,InactiveEnterTimestamp," \
	"InactiveExitTimestamp"

/* Where a unit's release comes from. */
enum ps_release {
	PS_RELEASE_NAME,    /* its instance is the release id */
	PS_RELEASE_CURRENT, /* WorkingDirectory=APP_ROOT/current */
};

struct ps_kind {
	const char *infix; /* between APP and ".service"; ending in '@': a
			    * template, its instance between '@' and ".service" */
	const char *type;  /* NULL: the instance (a worker's Procfile type) */
	enum ps_release release;
	bool oneshot;      /* runs to its end: "activating" is running */
	bool running_only; /* listed only while it runs */
	bool (*instance_ok)(const char *instance);
};

static bool
web_k_ok(const char *s)
{
	char *end;
	unsigned long k = strtoul(s, &end, 10);

	return s[0] >= '0' && s[0] <= '9' && *end == '\0' && k >= 2 &&
	    k <= ZDD_WEB_QUANTITY_MAX;
}

static bool
worker_ok(const char *s)
{
	return procfile_type_valid(s, strlen(s)) && worker_type(s);
}

/* A scheduled job's instance: its app.json cron index. */
static bool
cron_ok(const char *s)
{
	char *end;
	unsigned long n = strtoul(s, &end, 10);

	return s[0] >= '0' && s[0] <= '9' && *end == '\0' && n < ZDD_CRON_MAX;
}

/* In the order ps prints them. */
static const struct ps_kind kinds[] = {
	{ "", "web", PS_RELEASE_CURRENT, false, false, NULL }, /* process 1 */
	{ "-web@", "web", PS_RELEASE_CURRENT, false, false, web_k_ok },
	{ "@", "web", PS_RELEASE_NAME, false, false, release_id_valid },
	{ "-twin@", "web", PS_RELEASE_NAME, false, false, release_id_valid },
	{ "-worker@", NULL, PS_RELEASE_CURRENT, false, false, worker_ok },
	{ "-release@", "release", PS_RELEASE_NAME, true, true,
	    release_id_valid },
	{ "-build@", "build", PS_RELEASE_NAME, true, true, release_id_valid },
	/* a run: listed while it runs, in "current" when it started */
	{ "-cron@", "cron", PS_RELEASE_CURRENT, true, true, cron_ok },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

struct ps_row {
	const struct ps_kind *kind;
	char unit[PS_UNIT_MAX];
	char instance[PS_UNIT_MAX];
	char active[32], sub[32];
	long pid;
	/* microseconds since the epoch; -1: unknown or never */
	long long started, active_enter, active_exit, inactive_enter,
	    inactive_exit;
};

/* What current names, and since when (-1: unknown). */
struct ps_live {
	char current[ZDD_ID_MAX];
	long long changed;
	int rc; /* 0, -ENOENT (nothing deployed), or unreadable */
	char why[ZDD_WHY_MAX];
};

static struct ps_row rows[PS_UNITS_MAX];

/* "Thu 2024-05-02 10:11:12.123456 UTC" (--timestamp=us+utc) in µs; -1
 * for anything else ("" when it never happened). */
static long long
timestamp_us(const char *s)
{
	char wday[8], zone[8];
	int y, mo, d, h, mi, se, f0 = 0, f1 = 0;
	struct tm tm = { 0 };
	long us;
	time_t t;

	if (sscanf(s, "%7s %d-%d-%d %d:%d:%d.%n%ld%n %7s", wday, &y, &mo, &d,
		&h, &mi, &se, &f0, &us, &f1, zone) != 9 ||
	    f1 - f0 != 6 || us < 0 || strcmp(zone, "UTC") != 0 || mo < 1 ||
	    mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 ||
	    mi > 59 || se < 0 || se > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	t = timegm(&tm);
	if (t < 0)
		return -1;
	return (long long)t * 1000000 + us;
}

/* The ctime of APP_ROOT/current is when it was last swapped (rename(2)
 * sets it); read before and after the link, so the two agree. */
static void
live_read(const struct zdd_config *cfg, struct ps_live *live)
{
	char link[ZDD_PATH_MAX + 16];
	struct stat before, after;
	struct links l;

	memset(live, 0, sizeof(*live));
	live->changed = -1;
	snprintf(link, sizeof(link), "%s/current", cfg->app_root);
	if (lstat(link, &before) < 0) {
		live->rc = -errno;
		snprintf(live->why, sizeof(live->why), "%s: %m", link);
		return;
	}
	live->rc = links_read(cfg->app_root, &l, live->why, sizeof(live->why));
	if (live->rc == 0)
		live->rc = l.current_rc;
	if (live->rc < 0)
		return;
	snprintf(live->current, sizeof(live->current), "%s", l.current);
	if (lstat(link, &after) == 0 && after.st_ino == before.st_ino &&
	    after.st_ctim.tv_sec == before.st_ctim.tv_sec &&
	    after.st_ctim.tv_nsec == before.st_ctim.tv_nsec)
		/* rounded up: a start in the same microsecond is not after */
		live->changed = (long long)after.st_ctim.tv_sec * 1000000 +
		    (after.st_ctim.tv_nsec + 999) / 1000;
}

/* The kind of unit (and its instance into inst), or NULL: not the app's. */
static const struct ps_kind *
unit_kind(const struct zdd_config *cfg, const char *unit, char *inst, size_t n)
{
	size_t app = strlen(cfg->app), len = strlen(unit);

	if (strncmp(unit, cfg->app, app) != 0 || len < app + 8 ||
	    strcmp(unit + len - 8, ".service") != 0)
		return NULL;
	for (size_t i = 0; i < NKINDS; i++) {
		size_t il = strlen(kinds[i].infix), mid;

		if (il == 0) {
			if (len == app + 8) {
				inst[0] = '\0';
				return &kinds[i];
			}
			continue;
		}
		if (strncmp(unit + app, kinds[i].infix, il) != 0 ||
		    len < app + il + 8)
			continue;
		mid = len - app - il - 8;
		if (mid == 0 || mid >= n)
			continue;
		snprintf(inst, n, "%.*s", (int)mid, unit + app + il);
		if (kinds[i].instance_ok(inst))
			return &kinds[i];
	}
	return NULL;
}

static bool
is_running(const char *active)
{
	return strcmp(active, "inactive") != 0 && strcmp(active, "failed") != 0;
}

/* One list-units line into rows[*n] if it is one of the app's processes
 * (true: it is, stored or, past PS_UNITS_MAX, not). */
static bool
list_line(const struct zdd_config *cfg, const char *line, size_t *n)
{
	char unit[PS_UNIT_MAX], load[32], active[32], sub[32];
	char instance[PS_UNIT_MAX];
	const struct ps_kind *k;
	struct ps_row *r;

	if (sscanf(line, "%127s %31s %31s %31s", unit, load, active, sub) != 4)
		return false;
	k = unit_kind(cfg, unit, instance, sizeof(instance));
	if (k == NULL)
		return false;
	/* web process 1 in any state while loaded: its socket starts it on
	 * the first request (after a boot it is inactive until then) */
	if (strcmp(active, "inactive") == 0 &&
	    !(k->infix[0] == '\0' && strcmp(load, "loaded") == 0))
		return false;
	if (k->running_only && !is_running(active))
		return false;
	if (*n >= PS_UNITS_MAX)
		return true;
	r = &rows[*n];
	r->kind = k;
	snprintf(r->unit, sizeof(r->unit), "%s", unit);
	snprintf(r->instance, sizeof(r->instance), "%s", instance);
	snprintf(r->active, sizeof(r->active), "%s", active);
	snprintf(r->sub, sizeof(r->sub), "%s", sub);
	r->pid = 0;
	r->started = r->active_enter = r->active_exit = -1;
	r->inactive_enter = r->inactive_exit = -1;
	(*n)++;
	return true;
}

/* One "Key=value" of a show block into r. */
static void
show_field(struct ps_row *r, const char *line)
{
	static const struct {
		const char *key;
		size_t offset;
	} stamps[] = {
		{ "ExecMainStartTimestamp=", offsetof(struct ps_row, started) },
		{ "ActiveEnterTimestamp=",
		    offsetof(struct ps_row, active_enter) },
		{ "ActiveExitTimestamp=",
		    offsetof(struct ps_row, active_exit) },
		{ "InactiveEnterTimestamp=",
		    offsetof(struct ps_row, inactive_enter) },
		{ "InactiveExitTimestamp=",
		    offsetof(struct ps_row, inactive_exit) },
	};

	if (strncmp(line, "ActiveState=", 12) == 0)
		snprintf(r->active, sizeof(r->active), "%s", line + 12);
	else if (strncmp(line, "SubState=", 9) == 0)
		snprintf(r->sub, sizeof(r->sub), "%s", line + 9);
	else if (strncmp(line, "MainPID=", 8) == 0)
		r->pid = strtol(line + 8, NULL, 10);
	for (size_t i = 0; i < sizeof(stamps) / sizeof(stamps[0]); i++) {
		size_t kl = strlen(stamps[i].key);

		if (strncmp(line, stamps[i].key, kl) == 0)
			*(long long *)((char *)r + stamps[i].offset) =
			    timestamp_us(line + kl);
	}
}

/* systemctl show's blocks (a blank line between; systemd orders the
 * properties its own way, so Id= may come anywhere in one) into rows. */
static void
show_parse(char *out, size_t n)
{
	char *block[64];
	size_t nb = 0;
	char *line = out;

	for (;;) {
		char *nl = strchr(line, '\n');
		bool end = nl == NULL || nl[1] == '\n' || nl[1] == '\0';

		if (nl != NULL)
			*nl = '\0';
		if (line[0] != '\0' && nb < sizeof(block) / sizeof(block[0]))
			block[nb++] = line;
		if (end) {
			const char *id = NULL;

			for (size_t i = 0; i < nb; i++)
				if (strncmp(block[i], "Id=", 3) == 0)
					id = block[i] + 3;
			for (size_t r = 0; id != NULL && r < n; r++) {
				if (strcmp(rows[r].unit, id) != 0)
					continue;
				for (size_t i = 0; i < nb; i++)
					show_field(&rows[r], block[i]);
			}
			nb = 0;
		}
		if (nl == NULL)
			break;
		line = nl + 1;
		while (*line == '\n')
			line++;
		if (*line == '\0')
			break;
	}
}

static void
row_release(
    const struct ps_row *r, const struct ps_live *live, char *out, size_t n)
{
	/* A unit on current resolves the link as its process starts
	 * (WorkingDirectory=, after systemd stamps ExecMainStartTimestamp):
	 * started after the last swap, it runs what current names; before
	 * it, an older release, and nothing says which. */
	if (r->kind->release == PS_RELEASE_NAME)
		snprintf(out, n, "%s", r->instance);
	else if (r->kind->release == PS_RELEASE_CURRENT && live->rc == 0 &&
	    live->changed >= 0 && r->started > live->changed)
		snprintf(out, n, "%s", live->current);
	else
		snprintf(out, n, "?");
}

/* When it entered its state, as systemctl status says it. */
static void
row_since(const struct ps_row *r, char *out, size_t n)
{
	long long us = r->inactive_enter; /* failed, inactive */
	time_t t;
	struct tm tm;

	if (strcmp(r->active, "active") == 0 ||
	    strcmp(r->active, "reloading") == 0)
		us = r->active_enter;
	else if (strcmp(r->active, "activating") == 0)
		us = r->inactive_exit;
	else if (strcmp(r->active, "deactivating") == 0)
		us = r->active_exit;
	t = (time_t)(us / 1000000);
	if (us <= 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(out, n, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, n, "-");
}

static bool
row_ok(const struct ps_row *r)
{
	return strcmp(r->active, "active") == 0 ||
	    (r->kind->oneshot && strcmp(r->active, "activating") == 0);
}

struct ps_cells {
	char type[ZDD_PROC_TYPE_MAX + 1], release[ZDD_ID_MAX];
	char state[72], pid[24], since[40];
};

static void
row_cells(
    const struct ps_row *r, const struct ps_live *live, struct ps_cells *c)
{
	snprintf(c->type, sizeof(c->type), "%s",
	    r->kind->type ? r->kind->type : r->instance);
	row_release(r, live, c->release, sizeof(c->release));
	/* SubState only when it says more ("failed failed" does not) */
	snprintf(c->state, sizeof(c->state), "%s%s%s", r->active,
	    strcmp(r->sub, r->active) == 0 ? "" : "/",
	    strcmp(r->sub, r->active) == 0 ? "" : r->sub);
	if (r->pid > 0)
		snprintf(c->pid, sizeof(c->pid), "%ld", r->pid);
	else
		snprintf(c->pid, sizeof(c->pid), "-");
	row_since(r, c->since, sizeof(c->since));
}

static int
width(int w, const char *s)
{
	int len = (int)strlen(s);

	return len > w ? len : w;
}

/* The table, kinds in order; 1 when a row is not running. */
static int
print_rows(size_t n, const struct ps_live *live)
{
	static struct ps_cells cells[PS_UNITS_MAX];
	int wt = 4, wu = 4, wr = 7, ws = 5, wp = 3, code = ZDD_EXIT_OK;

	for (size_t i = 0; i < n; i++) {
		row_cells(&rows[i], live, &cells[i]);
		wt = width(wt, cells[i].type);
		wu = width(wu, rows[i].unit);
		wr = width(wr, cells[i].release);
		ws = width(ws, cells[i].state);
		wp = width(wp, cells[i].pid);
	}
	log_info("%-*s  %-*s  %-*s  %-*s  %*s  %s", wt, "TYPE", wu, "UNIT", wr,
	    "RELEASE", ws, "STATE", wp, "PID", "SINCE");
	for (size_t k = 0; k < NKINDS; k++)
		for (size_t i = 0; i < n; i++) {
			if (rows[i].kind != &kinds[k])
				continue;
			log_info("%-*s  %-*s  %-*s  %-*s  %*s  %s", wt,
			    cells[i].type, wu, rows[i].unit, wr,
			    cells[i].release, ws, cells[i].state, wp,
			    cells[i].pid, cells[i].since);
			if (!row_ok(&rows[i]))
				code = ZDD_EXIT_FAILED;
		}
	return code;
}

int
ps_show(const struct zdd_config *cfg)
{
	static char out[PS_SHOW_MAX];
	const char *suffixes[NKINDS], *units[PS_UNITS_MAX];
	char patterns[NKINDS][24], why[ZDD_WHY_MAX];
	struct ps_live live;
	size_t n = 0, found = 0;
	char *save = NULL;
	int rc, code = ZDD_EXIT_OK;

	live_read(cfg, &live);
	if (live.rc == -ENOENT) {
		log_info("nothing deployed yet (%s/current is missing)",
		    cfg->app_root);
		code = ZDD_EXIT_FAILED;
	} else if (live.rc < 0) {
		log_info("live release unknown (%s)", live.why);
		code = ZDD_EXIT_FAILED;
	}
	for (size_t i = 0; i < NKINDS; i++) {
		size_t il = strlen(kinds[i].infix);

		snprintf(patterns[i], sizeof(patterns[i]), "%s%s.service",
		    kinds[i].infix,
		    il > 0 && kinds[i].infix[il - 1] == '@' ? "*" : "");
		suffixes[i] = patterns[i];
	}
	rc = units_list_any(cfg, suffixes, NKINDS, out, PS_LIST_MAX);
	if (rc == 0 && strlen(out) >= PS_LIST_MAX - 1)
		rc = -E2BIG; /* a line may be cut: say so, never misread it */
	if (rc < 0) {
		errno = -rc;
		if (rc == -EIO)
			log_err("cannot list the units of %s: systemctl "
				"list-units failed",
			    cfg->app);
		else
			log_err("cannot list the units of %s: %m", cfg->app);
		return ZDD_EXIT_FAILED;
	}
	for (char *line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		found += list_line(cfg, line, &n);
	if (n == 0) {
		log_info(
		    "no processes: systemd runs none of %s's units", cfg->app);
		return ZDD_EXIT_FAILED;
	}
	for (size_t i = 0; i < n; i++)
		units[i] = rows[i].unit;
	if (units_show_many(cfg, PS_PROPS, units, n, out, sizeof(out), why,
		sizeof(why)) < 0) {
		/* the table still says what list-units said */
		log_err("%s", why);
		code = ZDD_EXIT_FAILED;
	} else {
		show_parse(out, n);
	}
	if (print_rows(n, &live) != ZDD_EXIT_OK)
		code = ZDD_EXIT_FAILED;
	if (found > n) {
		/* not shown, so not vouched for */
		log_info("... and %zu more units (ps lists %d)", found - n,
		    PS_UNITS_MAX);
		code = ZDD_EXIT_FAILED;
	}
	return code;
}
