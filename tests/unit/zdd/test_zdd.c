/*
 * Unit tests for the deploy engine's parts (TAP).  Real files, a real git
 * bare repo, real processes; no systemd needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "zdd.h"
#include "../../lib/tap.h"

static char tmpdir[256];
/* What a failing engine function says (zdd.h: the error rule). */
static char why[ZDD_WHY_MAX];
#define WHY why, sizeof(why)

static int
sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool
exists(const char *fmt, ...)
{
	char path[2048];
	struct stat st;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	return lstat(path, &st) == 0;
}

static int
read_text(const char *path, char *buf, size_t n)
{
	FILE *f = fopen(path, "re");
	size_t got;

	if (f == NULL)
		return -1;
	got = fread(buf, 1, n - 1, f);
	buf[got] = '\0';
	fclose(f);
	return 0;
}

/* Run fn with stdout and stderr captured into buf. */
static void
capture(void (*fn)(void *), void *arg, char *buf, size_t n)
{
	char path[300];
	int fd, saved_out, saved_err;

	snprintf(path, sizeof(path), "%s/capture.txt", tmpdir);
	fflush(stdout);
	fflush(stderr);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	saved_out = dup(1);
	saved_err = dup(2);
	dup2(fd, 1);
	dup2(fd, 2);
	close(fd);
	fn(arg);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, 1);
	dup2(saved_err, 2);
	close(saved_out);
	close(saved_err);
	if (read_text(path, buf, n) < 0)
		buf[0] = '\0';
}

static void
test_config(void)
{
	struct zdd_config c;
	char path[300], out[4096];

	config_defaults(&c);
	ok(strcmp(c.app, "myapp") == 0 &&
		strcmp(c.deploy_user, "deploy") == 0 &&
		strcmp(c.repo, "/var/repo/myapp.git") == 0 &&
		strcmp(c.app_root, "/var/www/myapp") == 0 &&
		strcmp(c.branch, "main") == 0 && c.keep_releases == 5 &&
		c.build_command[0] == '\0' && c.build_timeout == 600 &&
		c.ready_timeout == 60 &&
		strcmp(c.health_path, "/healthz") == 0 &&
		c.health_timeout == 10 && c.lock_timeout == 300 &&
		strcmp(c.probe_socket_dir, "/run") == 0,
	    "config defaults");

	snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
	ok(config_load(&c, path, false) == 0 && c.keep_releases == 5,
	    "missing config file means defaults");
	ok(config_load(&c, path, true) < 0,
	    "missing --config file is an error");

	snprintf(path, sizeof(path), "%s/good.conf", tmpdir);
	sh("printf '%%s\\n' '# comment' '' '  APP = shop ' 'BRANCH=release/v2' "
	   "'KEEP_RELEASES=3' 'BUILD_COMMAND=\"make -j2 all\"' "
	   "\"HEALTH_PATH='/up'\" 'LOCK_TIMEOUT=0' > %s",
	    path);
	config_defaults(&c);
	ok(config_load(&c, path, true) == 0 && strcmp(c.app, "shop") == 0 &&
		strcmp(c.branch, "release/v2") == 0 && c.keep_releases == 3 &&
		strcmp(c.build_command, "make -j2 all") == 0 &&
		strcmp(c.health_path, "/up") == 0 && c.lock_timeout == 0,
	    "config file parsed (spaces, quotes, comments)");

	static const struct {
		const char *line, *expect;
	} bad[] = {
		{ "KEEP_RELEASES=abc", "is not a number between 1 and 1000" },
		{ "KEEP_RELEASES=0", "is not a number" },
		{ "KEEP_RELEASES=-3", "is not a number" },
		{ "BUILD_TIMEOUT=99999999999999999999", "is not a number" },
		{ "APP=My App", "APP: 'My App' is not valid" },
		{ "APP=../etc", "is not valid" },
		{ "REPO=relative/path", "expected an absolute path" },
		{ "HEALTH_PATH=healthz", "starting with '/'" },
		{ "BRANCH=-rf", "expected a git branch name" },
		{ "BRANCH=a..b", "git branch name" },
		{ "just words", "expected KEY=value" },
		{ "=value", "missing key" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(path, sizeof(path), "%s/bad.conf", tmpdir);
		FILE *f = fopen(path, "we");
		fprintf(f, "# x\n%s\n", bad[i].line);
		fclose(f);
		config_defaults(&c);
		struct {
			struct zdd_config *c;
			const char *p;
			int rc;
		} a = { &c, path, 0 };
		{
			int saved = dup(2), fd;
			char cap[300];

			snprintf(cap, sizeof(cap), "%s/err.txt", tmpdir);
			fd = open(cap, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			fflush(stderr);
			dup2(fd, 2);
			close(fd);
			a.rc = config_load(a.c, a.p, true);
			fflush(stderr);
			dup2(saved, 2);
			close(saved);
			read_text(cap, out, sizeof(out));
		}
		ok(a.rc == -EINVAL && strstr(out, bad[i].expect) &&
			strstr(out, "bad.conf:2"),
		    "bad config '%s' -> clear error "
		    "with file:line (%.*s)",
		    bad[i].line, (int)strcspn(out, "\n"), out);
	}

	config_defaults(&c);
	ok(config_parse_line(&c, "FROBNICATE=1", "t:1") == 0 &&
		c.keep_releases == 5,
	    "unknown key warned about, not fatal");
	char longline[ZDD_LINE_MAX + 10];
	memset(longline, 'a', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	longline[3] = '=';
	ok(config_parse_line(&c, longline, "t:1") == -EINVAL,
	    "over-long line refused");
	char longval[ZDD_VALUE_MAX + 40];
	snprintf(longval, sizeof(longval), "BUILD_COMMAND=%0*d",
	    ZDD_VALUE_MAX + 5, 0);
	ok(config_parse_line(&c, longval, "t:1") == -EINVAL &&
		c.build_command[0] == '\0',
	    "over-long value refused");
}

static void
noop(void *arg)
{
	(void)arg;
}

static void
test_refline(void)
{
	struct ref_update u;
	const char *zero = "0000000000000000000000000000000000000000";
	const char *a = "1111111111111111111111111111111111111111";
	const char *b = "abcdef0123456789abcdef0123456789abcdef01";
	char line[256];

	snprintf(line, sizeof(line), "%s %s refs/heads/main", a, b);
	ok(refline_parse(line, &u) == 0 && strcmp(u.old_sha, a) == 0 &&
		strcmp(u.new_sha, b) == 0 &&
		strcmp(u.ref, "refs/heads/main") == 0,
	    "ref line parsed");
	snprintf(line, sizeof(line), "%s %s refs/heads/main", b, zero);
	ok(refline_parse(line, &u) == 0 && sha_is_zero(u.new_sha) &&
		!sha_is_zero(u.old_sha),
	    "deletion recognised");
	snprintf(line, sizeof(line), "%s %s refs/heads/feature/x", zero, b);
	ok(refline_parse(line, &u) == 0 && sha_is_zero(u.old_sha) &&
		strcmp(u.ref, "refs/heads/feature/x") == 0,
	    "creation parsed");
	ok(refline_parse("", &u) < 0, "empty line refused");
	snprintf(line, sizeof(line), "%s %s", a, b);
	ok(refline_parse(line, &u) < 0, "missing ref refused");
	snprintf(line, sizeof(line), "%s XYZ refs/heads/main", a);
	ok(refline_parse(line, &u) < 0, "non-hex sha refused");
	snprintf(line, sizeof(line), "%s %s refs/heads/main extra", a, b);
	ok(refline_parse(line, &u) < 0, "trailing field refused");
	snprintf(line, sizeof(line), "%s %.39s refs/heads/main", a, b);
	ok(refline_parse(line, &u) < 0, "short sha refused");
	snprintf(line, sizeof(line), "%s %s main", a, b);
	ok(refline_parse(line, &u) < 0, "ref outside refs/ refused");
}

static void
test_release_id(void)
{
	char id[ZDD_ID_MAX], id2[ZDD_ID_MAX], root[300];
	const char *sha = "ABCDEF0123456789abcdef0123456789abcdef01";

	ok(release_id_make(1795601730, sha, id, sizeof(id)) == 0 &&
		strcmp(id, "20261125101530-abcdef0") == 0,
	    "release id is UTC YYYYmmddHHMMSS-sha7 (%s)", id);
	ok(release_id_valid(id), "made id is valid");
	ok(!release_id_valid("20261125101530-abcdef") &&
		!release_id_valid("20261125101530-abcdefg") &&
		!release_id_valid("2026112510153x-abcdef0") &&
		!release_id_valid("20261125101530_abcdef0") &&
		!release_id_valid("20261125101530-abcdef0.tmp") &&
		!release_id_valid("../../etc/passwd"),
	    "bad ids refused");
	ok(release_id_make(0, "abc", id2, sizeof(id2)) < 0,
	    "too-short sha refused");

	snprintf(root, sizeof(root), "%s/idroot", tmpdir);
	sh("mkdir -p %s/releases", root);
	ok(release_id_pick(root, sha, id, sizeof(id), WHY) == 0, "id picked");
	sh("mkdir %s/releases/%s", root, id);
	ok(release_id_pick(root, sha, id2, sizeof(id2), WHY) == 0 &&
		strcmp(id2, id) > 0,
	    "same second, same sha: next id is unique "
	    "and sorts later (%s > %s)",
	    id2, id);
	sh("mkdir %s/releases/%s.tmp", root, id2);
	char id3[ZDD_ID_MAX];
	ok(release_id_pick(root, sha, id3, sizeof(id3), WHY) == 0 &&
		strcmp(id3, id2) > 0,
	    "an unfinished .tmp also blocks its id");
}

static void
test_prune_select(void)
{
	char *ids[] = { "20260101000000-aaaaaaa", "20260102000000-bbbbbbb",
		"20260103000000-ccccccc", "20260104000000-ddddddd",
		"20260105000000-eeeeeee", "20260106000000-fffffff",
		"20260107000000-0000000" };
	size_t n = sizeof(ids) / sizeof(ids[0]);
	bool rm[7];
	int removed;

	prune_select(ids, n, ids[6], ids[5], 5, rm);
	ok(rm[0] && rm[1] && !rm[2] && !rm[3] && !rm[4] && !rm[5] && !rm[6],
	    "keep 5 newest of 7");
	prune_select(ids, n, ids[0], ids[1], 2, rm);
	removed = 0;
	for (size_t i = 0; i < n; i++)
		removed += rm[i];
	ok(!rm[0] && !rm[1] && !rm[5] && !rm[6] && removed == 3,
	    "old current and previous (rolled back to) are never pruned");
	prune_select(ids, n, ids[3], NULL, 1, rm);
	ok(!rm[3] && !rm[6] && rm[0] && rm[5], "keep 1 + current");
	unsigned cases = 0, kept = 0;

	for (unsigned keep = 1; keep <= 8; keep++)
		for (size_t c = 0; c < n; c++)
			for (size_t p = 0; p < n; p++) {
				size_t left = 0;

				prune_select(ids, n, ids[c], ids[p], keep, rm);
				for (size_t i = 0; i < n; i++)
					left += !rm[i];
				cases++;
				/* current and previous stay, and at least
				 * min(keep, n) releases are left */
				if (!rm[c] && !rm[p] &&
				    left >= (keep < n ? keep : n))
					kept++;
			}
	ok(cases == 8 * 7 * 7 && kept == cases,
	    "exhaustive: current/previous never selected, at least KEEP left "
	    "(%u of %u cases)",
	    kept, cases);
	memset(rm, 1, sizeof(rm));
	prune_select(ids, 0, NULL, NULL, 5, rm);
	removed = 0;
	for (size_t i = 0; i < n; i++)
		removed += rm[i];
	ok(removed == (int)n,
	    "an empty list selects nothing (and writes nothing)");
}

static void
test_symlink_swap(void)
{
	char root[300], target[300], link[340];
	struct links l;
	ssize_t len;

	snprintf(root, sizeof(root), "%s/swap", tmpdir);
	sh("mkdir -p %s/releases/20260101000000-aaaaaaa "
	   "%s/releases/20260102000000-bbbbbbb",
	    root, root);
	snprintf(link, sizeof(link), "%s/current", root);
	ok(links_read(root, &l, WHY) == 0 && l.current_rc == -ENOENT &&
		l.current[0] == '\0' && l.previous_rc == -ENOENT &&
		why[0] == '\0',
	    "no current, no previous yet -> -ENOENT each, no error");
	ok(links_swap(root, "current", "20260101000000-aaaaaaa", WHY) == 0,
	    "swap creates current");
	len = readlink(link, target, sizeof(target) - 1);
	target[len > 0 ? len : 0] = '\0';
	ok(strcmp(target, "releases/20260101000000-aaaaaaa") == 0,
	    "current is a relative link (%s)", target);
	ok(links_swap(root, "current", "20260102000000-bbbbbbb", WHY) == 0 &&
		links_read(root, &l, WHY) == 0 &&
		strcmp(l.current, "20260102000000-bbbbbbb") == 0,
	    "swap replaces current");
	ok(sh("ls -A %s | grep -q new", root) != 0, "no temporary link left");
	ok(sh("test -f %s/current/../../swap/current/. || test -d %s/current",
	       root, root) == 0,
	    "current resolves to a directory");

	/* A reader never sees the link missing while swaps happen. */
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < 2000; i++)
			links_swap(root, "current",
			    i % 2 ? "20260101000000-aaaaaaa"
				  : "20260102000000-bbbbbbb",
			    WHY);
		_exit(0);
	}
	int missing = 0, reads = 0, st;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		struct stat sb;

		reads++;
		if (lstat(link, &sb) < 0)
			missing++;
	}
	ok(missing == 0,
	    "current never missing during 2000 swaps "
	    "(%d reads)",
	    reads);
	sh("ln -sfn /etc %s/previous", root);
	ok(links_read(root, &l, WHY) == -EINVAL && l.previous_rc == -EINVAL &&
		l.previous[0] == '\0' && l.current_rc == 0 &&
		strstr(why, "/previous points to '/etc'"),
	    "a link outside releases/ is refused, not followed (%s)", why);
	sh("ln -sfn /etc %s/current", root);
	ok(links_read(root, &l, WHY) == -EINVAL &&
		strstr(why, "current points") && strstr(why, "; ") &&
		strstr(why, "previous points"),
	    "both broken: both named");
}

static void
make_repo(const char *dir)
{
	sh("set -e; rm -rf %s; mkdir -p %s; cd %s; git init -q --bare repo.git;"
	   "git init -q work; cd work; git checkout -q -b main;"
	   "printf 'all:\\n\\techo built > built.txt\\n' > Makefile;"
	   "printf '#!/bin/sh\\necho app\\n' > app.sh; chmod +x app.sh;"
	   "ln -s app.sh start; mkdir sub; echo data > sub/file;"
	   "echo committed-env > .env;"
	   "git add -A; git -c user.name=t -c user.email=t@example.org "
	   "commit -qm one; git push -q ../repo.git main;"
	   "echo two > sub/file; git -c user.name=t -c user.email=t@example.org "
	   "commit -qam two; git push -q ../repo.git main:main",
	    dir, dir, dir);
}

static void
test_checkout(void)
{
	struct zdd_config c;
	char dir[300], sha[ZDD_SHA_MAX + 1], first[ZDD_SHA_MAX + 1];
	char id[ZDD_ID_MAX], buf[4096], path[2048];

	snprintf(dir, sizeof(dir), "%s/co", tmpdir);
	make_repo(dir);
	config_defaults(&c);
	snprintf(c.repo, sizeof(c.repo), "%s/repo.git", dir);
	snprintf(c.app_root, sizeof(c.app_root), "%s/root", dir);
	sh("mkdir -p %s/root/shared && echo SECRET=1 > %s/root/shared/.env",
	    dir, dir);

	ok(release_resolve(&c, NULL, sha, sizeof(sha), WHY) == 0 &&
		sha_valid(sha),
	    "tip of main resolved (%.12s)", sha);
	ok(release_resolve(&c, "main~1", first, sizeof(first), WHY) == 0 &&
		strcmp(first, sha) != 0,
	    "main~1 resolved");
	ok(release_resolve(&c, "nosuchbranch", buf, sizeof(buf), WHY) ==
		    -ENOENT &&
		strstr(why, "no commit 'nosuchbranch'"),
	    "unknown revision -> -ENOENT");
	ok(release_resolve(&c, "--upload-pack=evil", buf, sizeof(buf), WHY) ==
		    -EINVAL &&
		strstr(why, "is not a revision"),
	    "option-looking revision refused");

	ok(release_id_pick(c.app_root, sha, id, sizeof(id), WHY) == 0 &&
		release_checkout(&c, sha, id, WHY) == 0,
	    "checkout into releases/%s", id);
	snprintf(path, sizeof(path), "%s/releases/%s", c.app_root, id);
	ok(!exists("%s.tmp", path) && exists("%s/Makefile", path),
	    "renamed from .tmp to the final id");
	ok(sh("test -L %s/start && test \"$(readlink %s/start)\" = app.sh && "
	      "test -x %s/start",
	       path, path, path) == 0,
	    "symlink in the tree checked out as a symlink, executable kept");
	snprintf(buf, sizeof(buf), "%s/sub/file", path);
	char content[64] = "";
	read_text(buf, content, sizeof(content));
	ok(strcmp(content, "two\n") == 0, "exactly the requested revision");
	ok(release_read_file(c.app_root, id, "REVISION", buf, sizeof(buf)) ==
		    0 &&
		strcmp(buf, sha) == 0,
	    "REVISION holds the full sha");
	ok(release_read_file(c.app_root, id, "RELEASE", buf, sizeof(buf)) ==
		    0 &&
		strcmp(buf, id) == 0,
	    "RELEASE holds the id");
	ok(sh("test ! -L %s/.env && grep -qx committed-env %s/.env", path,
	       path) == 0,
	    "a committed .env is the repo's: no link to shared/ (secrets are root's)");
	ok(!exists("%s/.git", path) && !exists("%s/index", c.repo) &&
		sh("ls -A %s/releases | grep -q index", c.app_root) != 0,
	    "no .git in the release, no index left in the repo or releases");

	char id2[ZDD_ID_MAX];
	ok(release_id_pick(c.app_root, first, id2, sizeof(id2), WHY) == 0 &&
		release_checkout(&c, first, id2, WHY) == 0 &&
		sh("grep -qx data %s/releases/%s/sub/file", c.app_root, id2) ==
		    0,
	    "older revision checked out beside it");

	/* a failing checkout leaves nothing behind */
	char bad_id[ZDD_ID_MAX];
	const char *nosha = "0123456789012345678901234567890123456789";
	release_id_make(time(NULL) + 100, nosha, bad_id, sizeof(bad_id));
	ok(release_checkout(&c, nosha, bad_id, WHY) < 0 &&
		!exists("%s/releases/%s.tmp", c.app_root, bad_id) &&
		!exists("%s/releases/%s", c.app_root, bad_id) &&
		strstr(why, "git checkout of"),
	    "failed checkout leaves no directory, says why (%s)", why);
}

struct build_case {
	struct zdd_config *c;
	const char *id, *cmd;
	int rc;
	char why[512];
};

static void
run_build(void *arg)
{
	struct build_case *b = arg;

	b->rc = build_run(b->c, b->id, b->cmd, b->why, sizeof(b->why));
}

/* Two pushes from one base: the second took the lock after the first one's
 * hook recorded what it deployed, but before git moved the branch. */
static void
test_branch_race(void)
{
	struct zdd_config c;
	char dir[300], base[ZDD_SHA_MAX + 1], next[ZDD_SHA_MAX + 1];
	char why[256] = "";
	double t0;
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s/race", tmpdir);
	make_repo(dir);
	config_defaults(&c);
	snprintf(c.repo, sizeof(c.repo), "%s/repo.git", dir);
	snprintf(c.app_root, sizeof(c.app_root), "%s/root", dir);
	sh("mkdir -p %s/root", dir);
	if (release_resolve(&c, "main~1", base, sizeof(base), WHY) < 0 ||
	    release_resolve(&c, "main", next, sizeof(next), WHY) < 0 ||
	    sh("git --git-dir=%s update-ref refs/heads/main %s", c.repo,
		base) != 0) {
		ok(false, "race repository set up");
		return;
	}
	ok(branch_check_unmoved(&c, base, why, sizeof(why)) == 0,
	    "nothing recorded, branch at the push's base: go on");

	ok(branch_record(&c, next, WHY) == 0, "deployed revision recorded");
	pid = fork();
	if (pid == 0) {
		usleep(300 * 1000);
		_exit(sh("git --git-dir=%s update-ref refs/heads/main %s",
			  c.repo, next) == 0
			? 0
			: 1);
	}
	t0 = clock_seconds();
	ok(pid > 0 &&
		branch_check_unmoved(&c, base, why, sizeof(why)) == -ESTALE &&
		strstr(why, "moved to") != NULL && clock_seconds() - t0 >= 0.25,
	    "second push from the same base "
	    "waits for git to move the branch, then is refused (%s)",
	    why);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	ok(branch_check_unmoved(&c, next, why, sizeof(why)) == 0,
	    "a push from the deployed tip goes on");
	printf("\n");
	fflush(stdout);
}

/* build_exec_command in a child (it execs): the unit side of the build. */
static int
run_build_exec(const char *conf, const char *id, const char *cache)
{
	char *argv[] = { (char *)id, NULL };
	int status = 0;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		setenv("CACHE_DIRECTORY", cache, 1);
		setenv("GIT_DIR", "/should/not/leak", 1);
		_exit(build_exec_command(conf, 1, argv));
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void
test_build(void)
{
	struct zdd_config c;
	struct build_case b;
	char root[300], out[8192], log[600], content[4096] = "";
	char conf[600], cache[600], fake[600], calls[600], cmdfile[600];
	const char *id = "20260101000000-aaaaaaa";
	int rc;

	config_defaults(&c);
	snprintf(root, sizeof(root), "%s/build", tmpdir);
	snprintf(c.app_root, sizeof(c.app_root), "%s", root);
	sh("mkdir -p %s/releases/%s", root, id);
	snprintf(log, sizeof(log), "%s/releases/%s/build.log", root, id);
	snprintf(
	    cmdfile, sizeof(cmdfile), "%s/releases/%s/build.command", root, id);
	snprintf(conf, sizeof(conf), "%s/zdd.conf", root);
	snprintf(cache, sizeof(cache), "%s/cache", root);
	snprintf(calls, sizeof(calls), "%s/calls", root);
	sh("printf 'APP_ROOT=%s\\n' > %s && mkdir -p %s", root, conf, cache);

	/* The unit side: build-exec runs build.command in the release. */
	sh("printf '%%s' 'echo out; echo err >&2; "
	   "echo \"PATH=$PATH HOME=$HOME LANG=$LANG "
	   "GIT_DIR=${GIT_DIR:-unset} npm=$npm_config_cache\"; "
	   "ls /proc/self/fd | tr \"\\n\" \" \"; echo; "
	   "read x && echo stdin=$x; pwd > where' > %s",
	    cmdfile);
	sh(": > %s", log);
	rc = run_build_exec(conf, id, cache);
	read_text(log, content, sizeof(content));
	ok(rc == 0, "build-exec: the command ran (exit %d)", rc);
	ok(strstr(content, "out\n") && strstr(content, "err\n"),
	    "build-exec: stdout and stderr in build.log");
	ok(strstr(content, "PATH=/usr/local/bin:/usr/bin:/bin ") &&
		strstr(content, "LANG=C.UTF-8") &&
		strstr(content, "GIT_DIR=unset"),
	    "build-exec: clean environment (PATH, LANG, no GIT_*)");
	ok(strstr(content, "/cache/home ") && strstr(content, "/cache/npm"),
	    "build-exec: HOME and the caches in CACHE_DIRECTORY");
	ok(strstr(content, "\n0 1 2 3 \n") != NULL,
	    "build-exec: the build gets fds 0-2 only (+ ls's own)");
	ok(strstr(content, "stdin=") == NULL, "build-exec: stdin is /dev/null");
	ok(sh("grep -qx %s/releases/%s %s/releases/%s/where", root, id, root,
	       id) == 0,
	    "build-exec: runs in the release directory");
	sh("printf 'exit 3' > %s", cmdfile);
	ok(run_build_exec(conf, id, cache) == 3,
	    "build-exec: exits with the command's status");
	ok(run_build_exec(conf, "../../etc", cache) == ZDD_EXIT_USAGE,
	    "build-exec: a malformed release id is refused");

	/* The engine side, with a systemctl that plays the unit's part. */
	snprintf(fake, sizeof(fake), "%s/systemctl", root);
	sh("printf '%%s\\n' '#!/bin/sh' 'echo \"$*\" >> %s' "
	   "'case \"$*\" in *\" start \"*) exit $(cat %s/start-rc) ;; "
	   "\"show \"*) cat %s/show ;; esac' > %s && chmod +x %s",
	    calls, root, root, fake, fake);
	snprintf(c.systemctl, sizeof(c.systemctl), "%s", fake);
	sh("echo 0 > %s/start-rc; : > %s", root, calls);
	b = (struct build_case){ &c, id, "make all", 0, "" };
	capture(run_build, &b, out, sizeof(out));
	ok(b.rc == 0 && sh("grep -qx 'make all' %s", cmdfile) == 0 &&
		sh("grep -qx -- '--no-ask-password start "
		   "myapp-build@%s.service' %s",
		    id, calls) == 0,
	    "build: the command goes to build.command, the build unit "
	    "starts (%s)",
	    b.why);
	ok(sh("grep -q 'reset-failed myapp-build@%s.service' %s", id, calls) ==
		0,
	    "build: no failed build unit is left behind");

	sh("echo 1 > %s/start-rc", root);
	sh("printf 'Result=exit-code\\nExecMainStatus=3\\n' > %s/show", root);
	b = (struct build_case){ &c, id, "exit 3", 0, "" };
	capture(run_build, &b, out, sizeof(out));
	ok(b.rc < 0 && strstr(b.why, "'exit 3' failed (exit status 3)"),
	    "build: a failing build is reported with its status (%s)", b.why);
	ok(sh("grep -q 'stop myapp-build@%s.service' %s", id, calls) == 0,
	    "build: a failed start stops the unit (and all it started)");

	sh("printf 'Result=oom-kill\\nExecMainStatus=9\\n' > %s/show", root);
	snprintf(c.build_memory_max, sizeof(c.build_memory_max), "512M");
	capture(run_build, &b, out, sizeof(out));
	ok(b.rc < 0 && strstr(b.why, "BUILD_MEMORY_MAX=512M"),
	    "build: killed at its memory ceiling, says which setting (%s)",
	    b.why);
	sh("printf 'Result=timeout\\nExecMainStatus=0\\n' > %s/show", root);
	capture(run_build, &b, out, sizeof(out));
	ok(b.rc < 0 && strstr(b.why, "BUILD_TIMEOUT"),
	    "build: a timeout says which setting (%s)", b.why);

	/* build.log's tail: what the unit wrote is shown when it fails */
	sh("printf '%%s\\n' '#!/bin/sh' 'echo \"$*\" >> %s' "
	   "'case \"$*\" in *\" start \"*) for i in $(seq 1 40); do "
	   "echo line $i; done >> %s; exit 1 ;; "
	   "\"show \"*) cat %s/show ;; esac' > %s",
	    calls, log, root, fake);
	sh("printf 'Result=exit-code\\nExecMainStatus=1\\n' > %s/show", root);
	capture(run_build, &b, out, sizeof(out));
	ok(strstr(out, "line 40") && strstr(out, "line 21\n") &&
		!strstr(out, "line 20\n"),
	    "build: the last 20 lines of build.log printed");
}

static void
test_lock(void)
{
	char root[300], out[4096];
	int fd = -1, fd2 = -1, rc, p[2];
	pid_t pid;
	double t0;

	snprintf(root, sizeof(root), "%s/lock", tmpdir);
	sh("mkdir -p %s", root);
	if (pipe(p) < 0)
		return;
	pid = fork();
	if (pid == 0) {
		char c = 'x';

		if (lock_acquire(root, 0, &fd, WHY) == 0) {
			if (write(p[1], &c, 1) < 0)
				_exit(1);
			sleep(3);
		}
		_exit(0);
	}
	char c;
	if (read(p[0], &c, 1) != 1)
		return;
	t0 = clock_seconds();
	{
		char cap[300];
		int saved = dup(1), cfd;

		snprintf(cap, sizeof(cap), "%s/lockout.txt", tmpdir);
		cfd = open(cap, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		fflush(stdout);
		dup2(cfd, 1);
		close(cfd);
		int saved2 = dup(2);
		dup2(1, 2);
		rc = lock_acquire(root, 1, &fd2, WHY);
		fflush(stdout);
		fflush(stderr);
		dup2(saved, 1);
		dup2(saved2, 2);
		close(saved);
		close(saved2);
		read_text(cap, out, sizeof(out));
	}
	double waited = clock_seconds() - t0;
	char expect[64];
	snprintf(expect, sizeof(expect), "held by pid %ld", (long)pid);
	ok(rc == -ETIMEDOUT && strstr(why, expect) &&
		strstr(why, "(LOCK_TIMEOUT)"),
	    "second taker times out, says "
	    "why (%s)",
	    why);
	ok(waited >= 0.9 && waited < 3, "after the bounded wait (%.1f s)",
	    waited);
	ok(strstr(out, "waiting for deploy lock") && strstr(out, expect),
	    "says whom it waits for ('%s')", expect);
	t0 = clock_seconds();
	rc = lock_acquire(root, 10, &fd2, WHY);
	ok(rc == 0 && clock_seconds() - t0 < 5,
	    "waiter gets the lock once the holder exits (%.1f s)",
	    clock_seconds() - t0);
	waitpid(pid, NULL, 0);
	lock_release(fd2);
	close(p[0]);
	close(p[1]);
}

static void
test_history(void)
{
	struct deploy_record r = {
		.action = "deploy",
		.id = "20261125101530-abc1234",
		.revision = "abc1234abc1234abc1234abc1234abc1234abc12",
		.branch = "main",
		.user = "deploy",
		.started = { 1795601730, 5000000 },
		.finished = { 1795601733, 999999999 },
		.result = "ok",
		.steps = { { "lock", 0.0001 }, { "build", 2.1234 } },
		.nsteps = 2,
	};
	char root[300], path[400], buf[8192];
	char *line;

	ok(history_format(&r, &line) == 0, "history line formatted");
	json_object *o = json_tokener_parse(line);
	json_object *v, *steps;
	ok(o != NULL && line[strlen(line) - 1] == '\n' &&
		strchr(line, '\n') == line + strlen(line) - 1,
	    "one JSON object on one line");
	ok(json_object_object_get_ex(o, "id", &v) &&
		strcmp(json_object_get_string(v), r.id) == 0 &&
		json_object_object_get_ex(o, "revision", &v) &&
		strcmp(json_object_get_string(v), r.revision) == 0 &&
		json_object_object_get_ex(o, "branch", &v) &&
		json_object_object_get_ex(o, "user", &v) &&
		json_object_object_get_ex(o, "result", &v) &&
		strcmp(json_object_get_string(v), "ok") == 0,
	    "id, revision, branch, user, result");
	ok(json_object_object_get_ex(o, "started", &v) &&
		strcmp(json_object_get_string(v), "2026-11-25T10:15:30.005Z") ==
		    0 &&
		json_object_object_get_ex(o, "finished", &v) &&
		strcmp(json_object_get_string(v), "2026-11-25T10:15:33.999Z") ==
		    0,
	    "started/finished in UTC ISO 8601, milliseconds");
	ok(json_object_object_get_ex(o, "seconds", &steps) &&
		json_object_object_get_ex(steps, "build", &v) &&
		json_object_get_double(v) > 2.12 &&
		json_object_get_double(v) < 2.13 &&
		strstr(line, "\"build\":2.123"),
	    "seconds per step (%s)", line);
	json_object_put(o);
	free(line);

	snprintf(root, sizeof(root), "%s/hist", tmpdir);
	sh("mkdir -p %s", root);
	r.result = "failed";
	r.failed_step = "build";
	r.reason = "'make' failed \"quoted\"\n";
	ok(history_append(root, &r) == 0 && history_append(root, &r) == 0,
	    "appended twice");
	snprintf(path, sizeof(path), "%s/deploys.jsonl", root);
	read_text(path, buf, sizeof(buf));
	int lines = 0;
	for (char *p = buf; *p; p++)
		lines += *p == '\n';
	o = json_tokener_parse(strtok(buf, "\n"));
	ok(lines == 2 && o && json_object_object_get_ex(o, "reason", &v) &&
		strcmp(json_object_get_string(v), r.reason) == 0,
	    "two lines; quotes and newlines escaped");
	json_object_put(o);
}

/* A minimal HTTP server on a UNIX socket, answering `code`. */
struct fake_server {
	char path[100];
	int code;
	int fd;
	pthread_t thread;
};

static void
test_logs_request(void)
{
	struct zdd_config c;
	struct logs_request req;

	config_defaults(&c);
	ok(logs_parse_request(&c, "myapp.service 40\n", &req) == 0 &&
		strcmp(req.unit, "myapp.service") == 0 && req.lines == 40 &&
		!req.follow,
	    "logs: the live instance's journal may be asked for");
	ok(logs_parse_request(
	       &c, "myapp@20261201101530-abc1234.service 5\n", &req) == 0 &&
		req.lines == 5,
	    "logs: a handover instance's journal may be asked for");
	ok(logs_parse_request(&c,
	       "myapp-release@20261201101530-abc1234.service 40\n",
	       &req) == 0 &&
		logs_parse_request(&c,
		    "myapp-twin@20261201101530-abc1234.service 40\n",
		    &req) == 0,
	    "logs: a release command's and a twin's journal may be asked for");
	ok(logs_parse_request(&c,
	       "myapp-build@20261201101530-abc1234.service 4\n",
	       &req) == -EPERM &&
		logs_parse_request(&c, "myapp-release@x.service 4\n", &req) ==
		    -EPERM &&
		logs_parse_request(&c, "myapp-release@.service 4\n", &req) ==
		    -EPERM,
	    "logs: other templates and bad release ids are refused");
	ok(logs_parse_request(&c, "ssh.service 40\n", &req) == -EPERM,
	    "logs: another service's journal is refused");
	ok(logs_parse_request(&c, "myapp-evil.service 40\n", &req) == -EPERM &&
		logs_parse_request(&c, "myapp@x.service 40\n", &req) ==
		    -EPERM &&
		logs_parse_request(&c,
		    "myapp@20261201101530-abc1234.service.x 4\n",
		    &req) == -EPERM &&
		logs_parse_request(&c, "myapp.socket 4\n", &req) == -EPERM,
	    "logs: look-alike unit names are refused");
	ok(logs_parse_request(&c, "myapp.service 0\n", &req) == -EINVAL &&
		logs_parse_request(&c, "myapp.service 1001\n", &req) ==
		    -EINVAL &&
		logs_parse_request(&c, "myapp.service -f\n", &req) == -EINVAL &&
		logs_parse_request(&c, "myapp.service 4 -u ssh\n", &req) ==
		    -EINVAL &&
		logs_parse_request(&c, "myapp.service\n", &req) == -EINVAL,
	    "logs: a line count outside 1..1000 or extra words are refused");
	ok(logs_parse_request(&c, "app 20 follow\n", &req) == 0 &&
		strcmp(req.unit, "app") == 0 && req.lines == 20 && req.follow,
	    "logs: 'follow' after the count asks for journalctl -f");
	ok(logs_parse_request(&c, "app 20 follow -u ssh\n", &req) == -EINVAL &&
		logs_parse_request(&c, "app 20 followx\n", &req) == -EINVAL &&
		logs_parse_request(&c, "app 20 -f\n", &req) == -EINVAL &&
		logs_parse_request(&c, "ssh.service 20 follow\n", &req) ==
		    -EPERM,
	    "logs: only the word 'follow', and still only the app's units");
}

static void *
serve(void *arg)
{
	struct fake_server *s = arg;

	for (;;) {
		char req[1024], resp[128];
		int c = accept(s->fd, NULL, NULL);

		if (c < 0)
			return NULL;
		if (read(c, req, sizeof(req)) > 0) {
			int n = snprintf(resp, sizeof(resp),
			    "HTTP/1.1 %d X\r\n"
			    "Content-Length: 2\r\nConnection: close\r\n\r\nok",
			    s->code);
			if (write(c, resp, (size_t)n) < 0)
				(void)0;
		}
		close(c);
	}
}

static int
server_start(struct fake_server *s, int code)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	s->code = code;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", s->path);
	unlink(s->path);
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(s->fd, 16) < 0)
		return -1;
	return pthread_create(&s->thread, NULL, serve, s);
}

static void
server_stop(struct fake_server *s)
{
	shutdown(s->fd, SHUT_RDWR);
	close(s->fd);
	pthread_join(s->thread, NULL);
	unlink(s->path);
}

static bool
instance_gone(const void *ctx, char *out, size_t n)
{
	(void)ctx;
	snprintf(out, n, "the twin exited");
	return false;
}

/* probe_check on path, strict, /healthz by default, within total_s. */
static int
strict_probe(const char *path, const struct health_check *check,
    unsigned total_s, char note[512], char why[512])
{
	return probe_check(&(struct probe_request){ .socket_path = path,
			       .check = check,
			       .default_path = "/healthz",
			       .total_s = total_s,
			       .lenient = false },
	    note, 512, why, 512);
}

static void
test_probe(void)
{
	struct zdd_config c;
	struct fake_server s;
	char path[300], why[512];
	long code;
	double t0;

	config_defaults(&c);
	ok(probe_socket_path(
	       &c, "20261125101530-abc1234", path, sizeof(path)) == 0 &&
		strcmp(path, "/run/myapp-probe-20261125101530-abc1234.sock") ==
		    0,
	    "side probe socket path (%s)", path);
	ok(probe_socket_path(&c, NULL, path, sizeof(path)) == 0 &&
		strcmp(path, "/run/myapp-probe.sock") == 0,
	    "main probe socket path");
	ok(app_socket_path(&c, "run", path, sizeof(path)) == 0 &&
		strcmp(path, "/run/myapp-run.sock") == 0 &&
		app_socket_path(&c, "logs", path, 16) == -ENAMETOOLONG,
	    "the deploy user's sockets: PROBE_SOCKET_DIR/APP-WHAT.sock, bounded");
	char unit[128];
	ok(unit_name(
	       &c, "side", "20261125101530-abc1234", unit, sizeof(unit)) == 0 &&
		strcmp(unit, "myapp@20261125101530-abc1234.service") == 0 &&
		unit_name(&c, "side-probe", "20261125101530-abc1234", unit,
		    sizeof(unit)) == 0 &&
		strcmp(unit, "myapp-probe@20261125101530-abc1234.socket") ==
		    0 &&
		unit_name(&c, "main", NULL, unit, sizeof(unit)) == 0 &&
		strcmp(unit, "myapp.service") == 0,
	    "unit names derive from APP");

	snprintf(s.path, sizeof(s.path), "%.60s/probe.sock", tmpdir);
	if (server_start(&s, 200) < 0) {
		ok(false, "test server on %s", s.path);
		return;
	}
	ok(probe_get(s.path, "/healthz", 1000, &code) == 0 && code == 200,
	    "GET over the UNIX socket answered 200");
	struct health_check undeclared = { .declared = false };
	struct health_check declared = { .path = "/ready",
		.attempts = 2,
		.timeout_s = 1,
		.declared = true };
	char note[512];

	ok(strict_probe(s.path, &undeclared, 2, note, why) == 0,
	    "healthy instance passes");
	s.code = 503;
	t0 = clock_seconds();
	ok(strict_probe(s.path, &undeclared, 1, note, why) < 0 &&
		strstr(why, "answered 503"),
	    "503 fails after HEALTH_TIMEOUT (%s)", why);
	double took = clock_seconds() - t0;
	ok(took >= 0.9 && took < 3, "retried until the timeout (%.1f s)", took);
	ok(strict_probe(s.path, &declared, 60, note, why) < 0 &&
		strstr(why, "GET /ready") && strstr(why, "(2 tries)"),
	    "a declared check: its path, its attempts (%s)", why);
	s.code = 204;
	ok(strict_probe(s.path, &declared, 60, note, why) == 0,
	    "any 2xx is healthy");
	s.code = 503;
	declared.attempts = 50;
	t0 = clock_seconds();
	ok(probe_check(&(struct probe_request){ .socket_path = s.path,
			   .check = &declared,
			   .alive = instance_gone },
	       note, sizeof(note), why, sizeof(why)) == -ESRCH &&
		strstr(why, "exited") && clock_seconds() - t0 < 5,
	    "an instance that is gone ends the check at once (%s)", why);
	server_stop(&s);
	ok(strict_probe(s.path, &undeclared, 1, note, why) < 0 &&
		strstr(why, "no answer"),
	    "no socket: fails (%s)", why);
}

int
main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/zdd-test.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	(void)noop;
	test_config();
	test_refline();
	test_release_id();
	test_prune_select();
	test_symlink_swap();
	test_checkout();
	test_branch_race();
	test_build();
	test_lock();
	test_history();
	test_probe();
	test_logs_request();
	curl_global_cleanup();
	if (tap_failed == 0)
		sh("rm -rf %s", tmpdir);
	else
		printf("# left %s for inspection\n", tmpdir);
	return tap_done();
}
