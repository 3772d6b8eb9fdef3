/*
 * app.json "cron" schedules (Dokku's format: five cron fields, or @hourly,
 * @daily, ...) as systemd OnCalendar= expressions, for <APP>-cron@N.timer.
 *
 * Every field is expanded to the set of values it allows, as cron does,
 * and written back as systemd's comma list (or "*"), so the timer fires on
 * exactly the minutes cron would. Two things cron does that a calendar
 * cannot are refused rather than changed: a day of the month and a day of
 * the week both restricted (cron runs on either, a timer on both), and
 * @reboot. A sixth, leading field of seconds is our extension, for jobs
 * more often than once a minute.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "zdd.h"

#define FIELDS_MAX 6
#define FIELD_MAX 64 /* one field's text */

struct field_spec {
	const char *name;
	unsigned lo, hi;
	const char *const *names; /* [0] is lo's name; NULL: numbers only */
	unsigned nnames;
};

static const char *const month_names[] = { "jan", "feb", "mar", "apr", "may",
	"jun", "jul", "aug", "sep", "oct", "nov", "dec" };
static const char *const dow_names[] = { "sun", "mon", "tue", "wed", "thu",
	"fri", "sat" };
/* systemd's, Sunday first like cron's numbers */
static const char *const dow_systemd[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	"Fri", "Sat" };

static const struct field_spec second_spec = { "second", 0, 59, NULL, 0 };
static const struct field_spec minute_spec = { "minute", 0, 59, NULL, 0 };
static const struct field_spec hour_spec = { "hour", 0, 23, NULL, 0 };
static const struct field_spec dom_spec = { "day of month", 1, 31, NULL, 0 };
static const struct field_spec month_spec = { "month", 1, 12, month_names, 12 };
/* 7 is Sunday too, as in cron */
static const struct field_spec dow_spec = { "day of week", 0, 7, dow_names, 7 };

static const struct {
	const char *name;
	const char *fields;
} macros[] = {
	{ "@yearly", "0 0 1 1 *" },
	{ "@annually", "0 0 1 1 *" },
	{ "@monthly", "0 0 1 * *" },
	{ "@weekly", "0 0 * * 0" },
	{ "@daily", "0 0 * * *" },
	{ "@midnight", "0 0 * * *" },
	{ "@hourly", "0 * * * *" },
};

/* A number or (where the field has them) a three-letter name. */
static int
value_parse(const struct field_spec *f, const char *s, size_t len, unsigned *v)
{
	unsigned long n = 0;

	if (len == 0)
		return -EINVAL;
	if (f->names != NULL && len == 3 && isalpha((unsigned char)s[0])) {
		for (unsigned i = 0; i < f->nnames; i++)
			if (strncasecmp(s, f->names[i], 3) == 0) {
				*v = f->lo + i;
				return 0;
			}
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]) || i >= 3)
			return -EINVAL;
		n = n * 10 + (unsigned long)(s[i] - '0');
	}
	if (n < f->lo || n > f->hi)
		return -ERANGE;
	*v = (unsigned)n;
	return 0;
}

/* One comma-separated item: *, N, N-M, each with an optional /STEP. */
static int
item_parse(const struct field_spec *f, const char *s, uint64_t *bits)
{
	const char *slash = strchr(s, '/'), *dash;
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	unsigned lo = f->lo, hi = f->hi, step = 1;

	if (slash != NULL) {
		char *end;
		unsigned long n = strtoul(slash + 1, &end, 10);

		if (!isdigit((unsigned char)slash[1]) || *end != '\0' ||
		    n == 0 || n > f->hi)
			return -EINVAL;
		step = (unsigned)n;
	}
	if (len == 1 && s[0] == '*') {
		/* the whole range */
	} else if ((dash = memchr(s, '-', len)) != NULL) {
		if (value_parse(f, s, (size_t)(dash - s), &lo) < 0 ||
		    value_parse(
			f, dash + 1, len - (size_t)(dash - s) - 1, &hi) < 0 ||
		    hi < lo)
			return -EINVAL;
	} else {
		if (value_parse(f, s, len, &lo) < 0)
			return -EINVAL;
		if (slash == NULL)
			hi = lo; /* N alone; N/STEP runs to the end */
	}
	for (unsigned v = lo; v <= hi; v += step)
		*bits |= (uint64_t)1 << v;
	return 0;
}

static int
field_parse(const struct field_spec *f, const char *text, uint64_t *bits,
    char *why, size_t whylen)
{
	char buf[FIELD_MAX], *save = NULL;
	int rc = 0;

	*bits = 0;
	if (strlen(text) >= sizeof(buf)) {
		snprintf(why, whylen, "the %s field is too long", f->name);
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", text);
	if (buf[0] == ',' || buf[strlen(buf) - 1] == ',' || strstr(buf, ",,"))
		rc = -EINVAL;
	for (char *item = strtok_r(buf, ",", &save); item != NULL && rc == 0;
	     item = strtok_r(NULL, ",", &save))
		rc = item_parse(f, item, bits);
	if (rc < 0)
		snprintf(why, whylen, "the %s field '%s' is not %u-%u%s",
		    f->name, text, f->lo, f->hi, f->names ? " or a name" : "");
	return rc;
}

/* A field's values as systemd writes them: "*" when all, else "05,30". */
static int
field_format(const struct field_spec *f, uint64_t bits, char *out, size_t n)
{
	uint64_t all = 0;
	size_t used = 0;

	for (unsigned v = f->lo; v <= f->hi; v++)
		all |= (uint64_t)1 << v;
	if ((bits & all) == all)
		return snprintf(out, n, "*") >= (int)n ? -ENAMETOOLONG : 0;
	out[0] = '\0';
	for (unsigned v = f->lo; v <= f->hi; v++) {
		int len;

		if (!(bits & ((uint64_t)1 << v)))
			continue;
		len = snprintf(
		    out + used, n - used, "%s%02u", used ? "," : "", v);
		if (len < 0 || (size_t)len >= n - used)
			return -ENAMETOOLONG;
		used += (size_t)len;
	}
	return 0;
}

/* "Mon,Fri " (with its space), or "" for every day. */
static int
dow_format(uint64_t bits, char *out, size_t n)
{
	size_t used = 0;

	if (bits & ((uint64_t)1 << 7))
		bits = (bits | 1) & ~((uint64_t)1 << 7); /* 7: Sunday */
	out[0] = '\0';
	if ((bits & 0x7f) == 0x7f)
		return 0;
	for (unsigned v = 0; v < 7; v++) {
		int len;

		if (!(bits & ((uint64_t)1 << v)))
			continue;
		len = snprintf(out + used, n - used, "%s%s", used ? "," : "",
		    dow_systemd[v]);
		if (len < 0 || (size_t)len >= n - used)
			return -ENAMETOOLONG;
		used += (size_t)len;
	}
	return snprintf(out + used, n - used, " ") >= (int)(n - used)
	    ? -ENAMETOOLONG
	    : 0;
}

int
cron_calendar(
    const char *schedule, char *out, size_t n, char *why, size_t whylen)
{
	static const struct field_spec *const five[] = { &minute_spec,
		&hour_spec, &dom_spec, &month_spec, &dow_spec };
	char buf[ZDD_CRON_SCHEDULE_MAX], *field[FIELDS_MAX + 1], *save = NULL;
	char sec[192] = "00", min[192], hour[80], dom[96], mon[40], dow[32];
	uint64_t bits[FIELDS_MAX];
	const char *text = schedule;
	size_t count = 0, first;
	int len;

	if (strlen(schedule) >= sizeof(buf)) {
		snprintf(
		    why, whylen, "longer than %zu characters", sizeof(buf) - 1);
		return -EINVAL;
	}
	if (schedule[0] == '@') {
		text = NULL;
		for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
			if (strcmp(schedule, macros[i].name) == 0)
				text = macros[i].fields;
		if (text == NULL) {
			snprintf(why, whylen,
			    "'%s' is not one of @yearly, @annually, "
			    "@monthly, @weekly, @daily, @midnight, @hourly "
			    "(@reboot is not supported)",
			    schedule);
			return -EINVAL;
		}
	}
	snprintf(buf, sizeof(buf), "%s", text);
	for (char *t = strtok_r(buf, " \t", &save); t != NULL;
	     t = strtok_r(NULL, " \t", &save)) {
		if (count == FIELDS_MAX) {
			count++;
			break;
		}
		field[count++] = t;
	}
	if (count != 5 && count != FIELDS_MAX) {
		snprintf(why, whylen,
		    "'%s' is not five cron fields (minute hour day-of-month "
		    "month day-of-week), with an optional leading seconds "
		    "field",
		    schedule);
		return -EINVAL;
	}
	first = count - 5;
	if (first == 1 &&
	    field_parse(&second_spec, field[0], &bits[0], why, whylen) < 0)
		return -EINVAL;
	for (size_t i = 0; i < 5; i++)
		if (field_parse(five[i], field[first + i], &bits[first + i],
			why, whylen) < 0)
			return -EINVAL;
	/* cron runs when either day field matches, if both are restricted */
	if (field[first + 2][0] != '*' && field[first + 4][0] != '*') {
		snprintf(why, whylen,
		    "'%s' restricts both the day of the month and the day of "
		    "the week: cron runs on either, a systemd timer would run "
		    "on both; use two entries",
		    schedule);
		return -EINVAL;
	}
	if ((first == 1 &&
		field_format(&second_spec, bits[0], sec, sizeof(sec)) < 0) ||
	    field_format(&minute_spec, bits[first], min, sizeof(min)) < 0 ||
	    field_format(&hour_spec, bits[first + 1], hour, sizeof(hour)) < 0 ||
	    field_format(&dom_spec, bits[first + 2], dom, sizeof(dom)) < 0 ||
	    field_format(&month_spec, bits[first + 3], mon, sizeof(mon)) < 0 ||
	    dow_format(bits[first + 4], dow, sizeof(dow)) < 0) {
		snprintf(
		    why, whylen, "'%s' is too long as a calendar", schedule);
		return -ENAMETOOLONG;
	}
	len = snprintf(
	    out, n, "%s*-%s-%s %s:%s:%s", dow, mon, dom, hour, min, sec);
	if (len < 0 || (size_t)len >= n) {
		snprintf(
		    why, whylen, "'%s' is too long as a calendar", schedule);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* What a calendar cron_calendar wrote may hold: the check the privileged
 * side makes before it writes one into a unit file. */
bool
cron_calendar_valid(const char *calendar)
{
	size_t len = strlen(calendar);

	return len > 0 && len < ZDD_CRON_CALENDAR_MAX &&
	    strspn(calendar,
		"0123456789*,:- "
		"SunMoTeWdhFriSat") == len;
}
