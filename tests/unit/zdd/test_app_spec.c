/*
 * Unit tests (TAP) for what a release declares: Procfile, app.json, the
 * builder chosen from its files, the sandbox grants.  Real files in a
 * temporary directory.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdd.h"
#include "../../lib/tap.h"

static char tmpdir[256];
static char why[ZDD_WHY_MAX];
#define WHY why, sizeof(why)

static void
put(const char *name, const char *fmt, ...)
{
	char path[512];
	va_list ap;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "we");
	if (f == NULL) {
		perror(path);
		exit(1);
	}
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
}

static void
clear(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf %s/* %s/.venv", tmpdir, tmpdir);
	if (system(cmd) != 0)
		exit(1);
}

static void
test_procfile(void)
{
	struct procfile p;

	ok(procfile_parse("# comment\n\nweb: node server.js\r\n"
			  "worker:   python3 worker.py --queue a  \n",
	       &p, WHY) == 0 &&
		p.n == 2 &&
		strcmp(procfile_command(&p, "web"), "node server.js") == 0 &&
		strcmp(procfile_command(&p, "worker"),
		    "python3 worker.py --queue a") == 0 &&
		procfile_command(&p, "cron") == NULL,
	    "Procfile: types and commands, comments, CRLF, spaces trimmed");
	ok(procfile_parse("web: a: b\n", &p, WHY) == 0 &&
		strcmp(procfile_command(&p, "web"), "a: b") == 0,
	    "Procfile: a colon in the command is the command's");
	ok(procfile_parse("web node\n", &p, WHY) == -EINVAL &&
		strstr(why, "line 1"),
	    "Procfile: no colon refused (%s)", why);
	ok(procfile_parse("we b: x\n", &p, WHY) == -EINVAL,
	    "Procfile: a space in the type refused");
	ok(procfile_parse("web:\n", &p, WHY) == -EINVAL,
	    "Procfile: empty command refused");
	ok(procfile_parse("web: a\nweb: b\n", &p, WHY) == -EINVAL &&
		strstr(why, "twice"),
	    "Procfile: a type twice refused (%s)", why);
	char big[ZDD_PROCS_MAX * 16 + 64] = "";
	for (int i = 0; i <= ZDD_PROCS_MAX; i++)
		snprintf(big + strlen(big), sizeof(big) - strlen(big),
		    "t%d: x\n", i);
	ok(procfile_parse(big, &p, WHY) == -EINVAL,
	    "Procfile: more than %d types refused", ZDD_PROCS_MAX);
	char *longcmd = malloc(ZDD_PROC_CMD_MAX + 16);
	memset(longcmd, 'x', ZDD_PROC_CMD_MAX + 8);
	memcpy(longcmd, "web: ", 5);
	longcmd[ZDD_PROC_CMD_MAX + 8] = '\0';
	ok(procfile_parse(longcmd, &p, WHY) == -EINVAL,
	    "Procfile: an over-long command refused");
	free(longcmd);
}

static void
test_app_json(void)
{
	struct app_json a;

	ok(app_json_parse(
	       "{\"name\":\"x\",\"healthchecks\":{\"web\":[{\"type\":"
	       "\"liveness\",\"path\":\"/live\"},{\"type\":\"startup\","
	       "\"path\":\"/ready\",\"attempts\":7,\"timeout\":3,"
	       "\"wait\":2,\"initialDelay\":1}]},\"myapp-zdd\":{\"needs\""
	       ":[\"jit\",\"network\"],\"readiness\":\"notify\",\"build\""
	       ":\"make all\"}}\n",
	       &a, WHY) == 0 &&
		a.health.declared && strcmp(a.health.path, "/ready") == 0 &&
		a.health.attempts == 7 && a.health.timeout_s == 3 &&
		a.health.wait_s == 2 && a.health.initial_delay_s == 1 &&
		a.needs == (ZDD_NEED_JIT | ZDD_NEED_NETWORK) &&
		a.readiness == ZDD_READY_NOTIFY &&
		strcmp(a.build, "make all") == 0,
	    "app.json: the startup check, needs, readiness, build");
	ok(app_json_parse("{\"healthchecks\":{\"web\":[{\"path\":\"/h\"}]}}",
	       &a, WHY) == 0 &&
		a.health.declared && a.health.attempts == 0 && a.needs == 0 &&
		a.readiness == ZDD_READY_UNSET,
	    "app.json: a check without a type is a startup check");
	ok(app_json_parse("{\"name\":\"plain\",\"env\":{}}", &a, WHY) == 0 &&
		!a.health.declared,
	    "app.json: nothing declared, nothing set");
	ok(app_json_parse("{\"name\":", &a, WHY) == -EINVAL &&
		strstr(why, "not valid JSON"),
	    "app.json: broken JSON refused (%s)", why);
	ok(app_json_parse("{} x", &a, WHY) == -EINVAL,
	    "app.json: text after the object refused");
	ok(app_json_parse("[1]", &a, WHY) == -EINVAL,
	    "app.json: not an object refused");
	ok(app_json_parse("{\"myapp-zdd\":{\"needs\":[\"root\"]}}", &a, WHY) ==
		    -EINVAL &&
		strstr(why, "needs[0]"),
	    "app.json: an unknown need refused (%s)", why);
	ok(app_json_parse("{\"healthchecks\":{\"web\":[{\"path\":\"/h\","
			  "\"attempts\":-1}]}}",
	       &a, WHY) == -EINVAL &&
		strstr(why, "attempts"),
	    "app.json: a negative number refused (%s)", why);
	ok(app_json_parse("{\"healthchecks\":{\"web\":[{\"path\":\"h\"}]}}", &a,
	       WHY) == -EINVAL,
	    "app.json: a path without '/' refused");
	ok(app_json_parse("{\"healthchecks\":{\"web\":[{\"attempts\":3}]}}", &a,
	       WHY) == -EINVAL,
	    "app.json: a check with neither path nor uptime refused");
	ok(app_json_parse(
	       "{\"healthchecks\":{\"web\":[{\"uptime\":3}]}}", &a, WHY) == 0 &&
		a.health.declared && a.health.path[0] == '\0' &&
		a.health.uptime_s == 3,
	    "app.json: an uptime-only check");
	ok(app_json_parse(
	       "{\"myapp-zdd\":{\"readiness\":\"soon\"}}", &a, WHY) == -EINVAL,
	    "app.json: an unknown readiness refused");
}

static void
test_app_spec(void)
{
	struct app_spec s;

	clear();
	ok(app_spec_load(tmpdir, &s, WHY) == 0 && !s.has_procfile &&
		s.web == NULL && s.readiness == ZDD_READY_NOTIFY &&
		app_spec_check_runnable(tmpdir, &s, WHY) == -ENOENT &&
		strstr(why, "Procfile"),
	    "spec: an empty release has nothing to run (%s)", why);
	put("start", "#!/bin/sh\n");
	chmod(strcat(strcpy(why, tmpdir), "/start"), 0755);
	ok(app_spec_load(tmpdir, &s, WHY) == 0 &&
		app_spec_check_runnable(tmpdir, &s, WHY) == 0 &&
		s.readiness == ZDD_READY_NOTIFY,
	    "spec: ./start keeps the contract: notify");
	put("Procfile", "web: node server.js\n");
	ok(app_spec_load(tmpdir, &s, WHY) == 0 && s.has_procfile &&
		strcmp(s.web, "node server.js") == 0 &&
		s.readiness == ZDD_READY_HEALTH,
	    "spec: a Procfile web wins over ./start, readiness health");
	put("app.json", "{\"myapp-zdd\":{\"readiness\":\"notify\"}}");
	ok(app_spec_load(tmpdir, &s, WHY) == 0 &&
		s.readiness == ZDD_READY_NOTIFY,
	    "spec: app.json readiness notify is kept");
	put("app.json", "{");
	ok(app_spec_load(tmpdir, &s, WHY) == -EINVAL,
	    "spec: a broken app.json refuses (%s)", why);
	put("app.json", "{}");
	put("Procfile", "worker: x\n");
	unlink(strcat(strcpy(why, tmpdir), "/start"));
	ok(app_spec_load(tmpdir, &s, WHY) == 0 &&
		app_spec_check_runnable(tmpdir, &s, WHY) == -ENOENT &&
		strstr(why, "no 'web:'"),
	    "spec: a Procfile without web and no ./start (%s)", why);
}

static void
test_builder(void)
{
	struct build_plan p;
	char *env[16];

	clear();
	ok(builder_plan(tmpdir, NULL, "", &p, WHY) == 0 &&
		strcmp(p.name, "none") == 0 && p.command[0] == '\0',
	    "builder: no files, nothing to build (%s)", p.why);
	put("go.mod", "module example.com/x\n");
	ok(builder_plan(tmpdir, NULL, "", &p, WHY) == 0 &&
		strcmp(p.name, "go") == 0 && strstr(p.command, "go build"),
	    "builder: go.mod -> go (%s)", p.command);
	put("requirements.txt", "flask\n");
	ok(builder_plan(tmpdir, NULL, "", &p, WHY) == 0 &&
		strcmp(p.name, "python") == 0 &&
		strstr(p.command, "--system-site-packages .venv") &&
		strstr(p.command, "-r requirements.txt"),
	    "builder: requirements.txt -> python (%s)", p.command);
	put("package.json", "{\"name\":\"x\",\"dependencies\":{}}");
	ok(builder_plan(tmpdir, NULL, "", &p, WHY) == 0 &&
		strcmp(p.name, "none") == 0 && strstr(p.why, "package.json"),
	    "builder: package.json without dependencies: nothing (%s)", p.why);
	put("package.json", "{\"dependencies\":{\"express\":\"^4\"}}");
	ok(builder_plan(tmpdir, NULL, "", &p, WHY) == 0 &&
		strcmp(p.name, "npm") == 0 &&
		strstr(p.command, "npm install --omit=dev"),
	    "builder: package.json, no lockfile -> npm install (%s)",
	    p.command);
	put("package-lock.json", "{}");
	put("package.json",
	    "{\"dependencies\":{\"a\":\"1\"},\"scripts\":"
	    "{\"build\":\"tsc\"}}");
	ok(builder_plan(tmpdir, NULL, "", &p, WHY) == 0 &&
		strcmp(p.name, "npm") == 0 && strstr(p.command, "npm ci ") &&
		strstr(p.command, "npm run build") &&
		strstr(p.command, "npm prune --omit=dev"),
	    "builder: lockfile and build script -> npm ci, build, prune (%s)",
	    p.command);
	put("package.json", "{");
	ok(builder_plan(tmpdir, NULL, "", &p, WHY) == -EINVAL,
	    "builder: a broken package.json refuses (%s)", why);
	put("Makefile", "all:\n");
	ok(builder_plan(tmpdir, NULL, "", &p, WHY) == 0 &&
		strcmp(p.name, "make") == 0 && strcmp(p.command, "make") == 0,
	    "builder: a Makefile wins");
	ok(builder_plan(tmpdir, "./build.sh", "the BUILD_COMMAND setting", &p,
	       WHY) == 0 &&
		strcmp(p.name, "command") == 0 &&
		strcmp(p.command, "./build.sh") == 0 &&
		strcmp(p.why, "the BUILD_COMMAND setting") == 0,
	    "builder: a given command wins, and says where from");
	ok(builder_env("/var/cache/myapp-build", env, 16) == 7 &&
		strcmp(env[0], "npm_config_cache=/var/cache/myapp-build/npm") ==
		    0 &&
		strcmp(env[6], "GOTOOLCHAIN=local") == 0 && env[7] == NULL,
	    "builder: caches in the build unit's cache directory (%s)", env[0]);
	ok(builder_env("relative", env, 16) == 0 && env[0] == NULL,
	    "builder: no caches without an absolute cache directory");
}

static void
test_grants(void)
{
	struct zdd_config c;
	unsigned g;
	char line[512];

	ok(grants_parse("", &g) == 0 && g == 0 &&
		grants_parse("jit", &g) == 0 && g == ZDD_NEED_JIT &&
		grants_parse("network,jit", &g) == 0 &&
		g == (ZDD_NEED_JIT | ZDD_NEED_NETWORK),
	    "grants: empty, one, both in either order");
	ok(grants_parse("jit,jit", &g) < 0 && grants_parse("jit,", &g) < 0 &&
		grants_parse("root", &g) < 0 &&
		grants_parse("jit network", &g) < 0,
	    "grants: twice, trailing comma, unknown, spaces refused");
	config_defaults(&c);
	ok(config_set(&c, "SANDBOX_GRANTS", "jit,network", "t") == 0 &&
		config_set(&c, "SANDBOX_GRANTS", "all", "t") == -EINVAL,
	    "grants: the setting is checked by the same rule");
	config_defaults(&c);
	ok(profile_check(&c, 0, line, sizeof(line), WHY) == 0 &&
		strncmp(line, "strict ", 7) == 0,
	    "profile: nothing needed, nothing granted: strict (%s)", line);
	ok(profile_check(&c, ZDD_NEED_JIT, line, sizeof(line), WHY) == -EPERM &&
		strstr(why, "SANDBOX_GRANTS=jit") &&
		strstr(why, "dpkg-reconfigure"),
	    "profile: a need not granted is refused, naming the setting (%s)",
	    why);
	config_set(&c, "SANDBOX_GRANTS", "network", "t");
	ok(profile_check(&c, ZDD_NEED_JIT | ZDD_NEED_NETWORK, line,
	       sizeof(line), WHY) == -EPERM &&
		strstr(why, "allow jit,") &&
		strstr(why, "SANDBOX_GRANTS=jit,network"),
	    "profile: says what is missing and the value to set (%s)", why);
	config_set(&c, "SANDBOX_GRANTS", "jit,network", "t");
	ok(profile_check(&c, ZDD_NEED_JIT, line, sizeof(line), WHY) == 0 &&
		strncmp(line, "jit+network ", 12) == 0 &&
		strstr(line, "needs jit"),
	    "profile: granted more than needed says so (%s)", line);
}

/* Schedule -> OnCalendar: each expected calendar was checked with
 * `systemd-analyze calendar` (systemd 252) to be what cron runs. */
static void
test_cron(void)
{
	static const struct {
		const char *schedule, *calendar;
	} good[] = {
		{ "0 1 * * *", "*-*-* 01:00:00" },
		{ "*/15 * * * *", "*-*-* *:00,15,30,45:00" },
		{ "30 8-10 * * mon-fri",
		    "Mon,Tue,Wed,Thu,Fri *-*-* 08,09,10:30:00" },
		{ "0 0 1,15 jan,jul *", "*-01,07-01,15 00:00:00" },
		{ "0 12 * * 0", "Sun *-*-* 12:00:00" },
		{ "0 12 * * 7", "Sun *-*-* 12:00:00" },
		{ "0 12 * * 5-7", "Sun,Fri,Sat *-*-* 12:00:00" },
		{ "5-20/5 * * * *", "*-*-* *:05,10,15,20:00" },
		{ "*/3 * * * * *",
		    "*-*-* *:*:00,03,06,09,12,15,18,21,24,27,30,"
		    "33,36,39,42,45,48,51,54,57" },
		{ "@daily", "*-*-* 00:00:00" },
		{ "@hourly", "*-*-* *:00:00" },
		{ "@weekly", "Sun *-*-* 00:00:00" },
		{ "@yearly", "*-01-01 00:00:00" },
		{ "* * * * *", "*-*-* *:*:00" },
	};
	static const struct {
		const char *schedule, *says;
	} bad[] = {
		{ "@reboot", "@reboot is not supported" },
		{ "0 1 * *", "not five cron fields" },
		{ "0 1 * * * * *", "not five cron fields" },
		{ "60 * * * *", "minute field '60'" },
		{ "0 24 * * *", "hour field" },
		{ "0 0 0 * *", "day of month field" },
		{ "0 0 * 13 *", "month field" },
		{ "0 0 * * 8", "day of week field" },
		{ "0 0 1 * mon",
		    "both the day of the month and the day of the week" },
		{ "*/0 * * * *", "minute field" },
		{ "1,,2 * * * *", "minute field" },
		{ "5-1 * * * *", "minute field" },
		{ "x * * * *", "minute field" },
		{ "0 0 * foo *", "month field" },
	};
	char cal[ZDD_CRON_CALENDAR_MAX];
	struct app_json a;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ok(cron_calendar(good[i].schedule, cal, sizeof(cal), WHY) ==
			    0 &&
			strcmp(cal, good[i].calendar) == 0 &&
			cron_calendar_valid(cal),
		    "cron: '%s' is '%s' (got '%s')", good[i].schedule,
		    good[i].calendar, cal);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(cron_calendar(bad[i].schedule, cal, sizeof(cal), WHY) ==
			    -EINVAL &&
			strstr(why, bad[i].says),
		    "cron: '%s' refused (%s)", bad[i].schedule, why);
	ok(!cron_calendar_valid("*-*-* 00:00:00\nExecStart=/bin/sh") &&
		!cron_calendar_valid("") && !cron_calendar_valid("a=b"),
	    "cron: a calendar with a newline, '=' or nothing is not taken");
	ok(app_json_parse("{\"cron\":[{\"command\":\"python3 job.py\","
			  "\"schedule\":\"@hourly\"},{\"command\":\"x\","
			  "\"schedule\":\"0 3 * * *\",\"maintenance\":true,"
			  "\"concurrency_policy\":\"forbid\"}]}",
	       &a, WHY) == 0 &&
		a.ncron == 2 &&
		strcmp(a.cron[0].command, "python3 job.py") == 0 &&
		strcmp(a.cron[0].calendar, "*-*-* *:00:00") == 0 &&
		!a.cron[0].maintenance && a.cron[1].maintenance &&
		strcmp(a.cron[1].calendar, "*-*-* 03:00:00") == 0,
	    "app.json: two cron entries, one in maintenance");
	ok(app_json_parse("{\"cron\":[{\"command\":\"x\",\"schedule\":"
			  "\"61 * * * *\"}]}",
	       &a, WHY) == -EINVAL &&
		strstr(why, "cron[0].schedule") && strstr(why, "minute"),
	    "app.json: a wrong schedule names the entry (%s)", why);
	ok(app_json_parse("{\"cron\":[{\"schedule\":\"@daily\"}]}", &a, WHY) ==
		    -EINVAL &&
		strstr(why, "needs a \"command\""),
	    "app.json: an entry without a command refused (%s)", why);
	ok(app_json_parse("{\"cron\":[{\"command\":\"x\",\"schedule\":"
			  "\"@daily\",\"concurrency_policy\":\"replace\"}]}",
	       &a, WHY) == -EINVAL &&
		strstr(why, "never replaced"),
	    "app.json: concurrency_policy replace refused (%s)", why);
	ok(app_json_parse("{\"cron\":{\"command\":\"x\"}}", &a, WHY) ==
		    -EINVAL &&
		strstr(why, "must be an array"),
	    "app.json: cron not an array refused");
}

/* `run`: the command line checked, a Procfile type's command expanded. */
static void
test_run(void)
{
	static struct app_spec s;
	char out[RUN_COMMAND_MAX * 2], big[RUN_COMMAND_MAX + 2];

	ok(run_request_check("echo hi\tthere", 13, WHY) == 0,
	    "run: one line with blanks and tabs is a command");
	ok(run_request_check("", 0, WHY) == -EINVAL &&
		run_request_check("a\nb", 3, WHY) == -EINVAL &&
		strstr(why, "byte 2") != NULL &&
		run_request_check("a\0b", 3, WHY) == -EINVAL &&
		run_request_check("a\x1b[2J", 5, WHY) == -EINVAL &&
		run_request_check("a\x7f", 2, WHY) == -EINVAL,
	    "run: empty, several lines, NUL, escapes and DEL are refused");
	memset(big, 'a', sizeof(big));
	ok(run_request_check(big, RUN_COMMAND_MAX, WHY) == 0 &&
		run_request_check(big, RUN_COMMAND_MAX + 1, WHY) == -EINVAL,
	    "run: at most 4096 bytes");
	clear();
	put("Procfile", "web: node server.js\nconsole: node repl.js --x\n");
	ok(app_spec_load(tmpdir, &s, WHY) == 0 &&
		run_command_expand(&s, "console", out, sizeof(out)) == 0 &&
		strcmp(out, "node repl.js --x") == 0 &&
		run_command_expand(&s, "console --y 1", out, sizeof(out)) ==
		    0 &&
		strcmp(out, "node repl.js --x --y 1") == 0,
	    "run: a Procfile type stands for its command, the rest after it");
	ok(run_command_expand(&s, "consoles", out, sizeof(out)) == 0 &&
		strcmp(out, "consoles") == 0 &&
		run_command_expand(&s, "ls console", out, sizeof(out)) == 0 &&
		strcmp(out, "ls console") == 0,
	    "run: anything else runs as it is");
	ok(run_command_expand(&s, "console", out, 8) == -ENAMETOOLONG,
	    "run: an expansion that does not fit is refused");
	clear();
	ok(app_spec_load(tmpdir, &s, WHY) == 0 &&
		run_command_expand(&s, "web", out, sizeof(out)) == 0 &&
		strcmp(out, "web") == 0,
	    "run: without a Procfile nothing is expanded");
}

int
main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/zdd-spec.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_procfile();
	test_app_json();
	test_cron();
	test_app_spec();
	test_builder();
	test_grants();
	test_run();
	if (tap_failed == 0) {
		clear();
		rmdir(tmpdir);
	} else {
		printf("# left %s for inspection\n", tmpdir);
	}
	return tap_done();
}
