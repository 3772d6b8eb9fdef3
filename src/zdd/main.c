/*
 * myapp-zdd — zero-downtime git-push deploys under systemd.
 * Command line, configuration, privilege drop, dispatch.
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "zdd.h"

#define MAX_REF_LINES 1000

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: myapp-zdd [--config FILE] COMMAND [ARGS]\n"
	    "\n"
	    "commands:\n"
	    "  hook                     read 'old new ref' lines on stdin (pre-receive)\n"
	    "                           and deploy the configured branch\n"
	    "  deploy [REV] [--build-command CMD]\n"
	    "                           build REV (default: tip of BRANCH) and hand over\n"
	    "  rollback [ID]            hand back to the previous (or the named) release\n"
	    "  restart                  hand over onto the current release (no rebuild)\n"
	    "  releases                 list releases, marking current and previous\n"
	    "  status                   live release, unit states, health\n"
	    "  prune                    remove old releases (never current or previous)\n"
	    "  logs-serve               (myapp-logs@.service) answer one request for\n"
	    "                           the app's journal on stdin/stdout\n"
	    "\n"
	    "options:\n"
	    "  --config FILE            default " ZDD_DEFAULT_CONFIG "\n"
	    "  --help, --version\n"
	    "\n"
	    "exit status: 0 ok, 1 failed before the swap (nothing live changed),\n"
	    "2 usage or configuration error, 3 deploy lock timeout, 4 failed after the\n"
	    "swap and rolled back, 5 failed after the swap and could not restore.\n"
	    "See myapp-zdd(8).\n");
}

static void
on_signal(int sig)
{
	(void)sig;
	zdd_interrupted = 1;
}

static int
setup_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	/* A pusher who disconnects must not kill a deploy half-way: the
	 * dashboard is lost, the deploy completes. */
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) < 0 || sigaction(SIGHUP, &sa, NULL) < 0)
		return -errno;
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
		return -errno;
	return 0;
}

/* Who asked, for the history (before the environment is replaced). */
static void
invoker(char *out, size_t n)
{
	const char *sudo = getenv("SUDO_USER");
	struct passwd *pw = getpwuid(getuid());

	if (sudo != NULL && sudo[0] != '\0' && strlen(sudo) <= ZDD_NAME_MAX)
		snprintf(out, n, "%s (sudo)", sudo);
	else if (pw != NULL)
		snprintf(out, n, "%s", pw->pw_name);
	else
		snprintf(out, n, "uid %ld", (long)getuid());
}

static int
cmd_hook(const struct zdd_config *cfg, const char *user)
{
	char line[ZDD_LINE_MAX + 2], deploy_sha[ZDD_SHA_MAX + 1] = "";
	char old_sha[ZDD_SHA_MAX + 1] = "";
	char want[ZDD_REF_MAX + 16];
	struct ref_update u;
	unsigned lines = 0;

	snprintf(want, sizeof(want), "refs/heads/%s", cfg->branch);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		size_t len = strlen(line);

		if (++lines > MAX_REF_LINES) {
			log_err("more than %d refs pushed at once", MAX_REF_LINES);
			return ZDD_EXIT_USAGE;
		}
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (refline_parse(line, &u) < 0) {
			log_err("unexpected line on stdin: '%.80s' (expected "
			    "'<old-sha> <new-sha> <ref>' from git)", line);
			return ZDD_EXIT_USAGE;
		}
		if (strcmp(u.ref, want) == 0) {
			if (sha_is_zero(u.new_sha)) {
				log_info("branch %s deleted, nothing deployed",
				    cfg->branch);
				deploy_sha[0] = '\0';
			} else {
				snprintf(deploy_sha, sizeof(deploy_sha), "%s",
				    u.new_sha);
				snprintf(old_sha, sizeof(old_sha), "%s",
				    u.old_sha);
			}
		} else if (strncmp(u.ref, "refs/heads/", 11) == 0) {
			log_info("branch %s pushed, not deployed (deploy branch "
			    "is %s)", u.ref + 11, cfg->branch);
		} else if (strncmp(u.ref, "refs/tags/", 10) == 0) {
			log_info("tag %s pushed, not deployed", u.ref + 10);
		} else {
			log_info("%s pushed, not deployed", u.ref);
		}
	}
	if (ferror(stdin)) {
		log_err("cannot read the pushed refs from stdin: %m");
		return ZDD_EXIT_USAGE;
	}
	if (deploy_sha[0] == '\0')
		return ZDD_EXIT_OK;

	struct deploy_request rq = { .rev = deploy_sha, .branch = cfg->branch,
	    .user = user, .expect_old = old_sha };
	return deploy_run(cfg, &rq);
}

/*
 * A hook inherits whatever descriptors git (or a shell) had open; none of
 * them may reach the build, git or systemctl.
 */
static void
close_inherited_fds(void)
{
	if (close_range(3, ~0U, 0) == 0)
		return;
	for (int fd = 3; fd < 1024; fd++)  /* kernels before 5.9 */
		close(fd);
}

static bool
known_command(const char *cmd)
{
	static const char *const commands[] = { "hook", "deploy", "rollback",
	    "restart", "releases", "status", "prune", "logs-serve" };

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(cmd, commands[i]) == 0)
			return true;
	return false;
}

static int
bad_usage(const char *fmt, const char *arg)
{
	fputs("myapp-zdd: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\nTry 'myapp-zdd --help'.\n", stderr);
	return ZDD_EXIT_USAGE;
}

int
main(int argc, char *argv[])
{
	const char *config_path = ZDD_DEFAULT_CONFIG, *cmd;
	const char *rev = NULL, *build_command = NULL, *arg = NULL;
	bool config_given = false;
	char user[ZDD_NAME_MAX + 16];
	struct zdd_config cfg;
	int i = 1, rc;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return ZDD_EXIT_OK;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("myapp-zdd %s\n", ZDD_VERSION);
			return ZDD_EXIT_OK;
		} else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			config_path = argv[++i];
			config_given = true;
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			config_path = argv[i] + 9;
			config_given = true;
		} else {
			return bad_usage("unknown option '%s'", argv[i]);
		}
	}
	if (i >= argc)
		return bad_usage("%s", "no command given");
	cmd = argv[i++];
	for (; i < argc; i++) {
		if (strcmp(cmd, "deploy") == 0 &&
		    strcmp(argv[i], "--build-command") == 0 && i + 1 < argc) {
			build_command = argv[++i];
		} else if (strcmp(cmd, "deploy") == 0 &&
		    strncmp(argv[i], "--build-command=", 16) == 0) {
			build_command = argv[i] + 16;
		} else if (argv[i][0] == '-') {
			return bad_usage("unknown option '%s'", argv[i]);
		} else if (arg == NULL && (strcmp(cmd, "deploy") == 0 ||
		    strcmp(cmd, "rollback") == 0)) {
			arg = argv[i];
		} else {
			return bad_usage("unexpected argument '%s'", argv[i]);
		}
	}
	if (!known_command(cmd))
		return bad_usage("unknown command '%s'", cmd);
	if (build_command != NULL && (build_command[0] == '\0' ||
	    strlen(build_command) >= ZDD_VALUE_MAX))
		return bad_usage("%s", "--build-command: empty or too long");
	rev = strcmp(cmd, "deploy") == 0 ? arg : NULL;

	close_inherited_fds();
	config_defaults(&cfg);
	if (config_load(&cfg, config_path, config_given) < 0)
		return ZDD_EXIT_USAGE;
	invoker(user, sizeof(user));
	if (privdrop(cfg.deploy_user) < 0)
		return ZDD_EXIT_USAGE;
	if (env_sanitize() < 0 || setup_signals() < 0)
		return ZDD_EXIT_FAILED;
	umask(022);  /* releases must be readable by the app's dynamic user */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_err("cannot initialise libcurl");
		return ZDD_EXIT_FAILED;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (strcmp(cmd, "hook") == 0) {
		rc = cmd_hook(&cfg, user);
	} else if (strcmp(cmd, "deploy") == 0) {
		struct deploy_request rq = { .rev = rev,
		    .build_command = build_command,
		    .branch = rev ? NULL : cfg.branch, .user = user };

		rc = deploy_run(&cfg, &rq);
	} else if (strcmp(cmd, "rollback") == 0) {
		rc = rollback_run(&cfg, arg, user);
	} else if (strcmp(cmd, "restart") == 0) {
		rc = restart_run(&cfg, user);
	} else if (strcmp(cmd, "releases") == 0) {
		rc = releases_show(&cfg);
	} else if (strcmp(cmd, "status") == 0) {
		rc = status_show(&cfg);
	} else if (strcmp(cmd, "logs-serve") == 0) {
		rc = logs_serve(&cfg);
	} else {
		rc = prune_run(&cfg);
	}
	curl_global_cleanup();
	return rc;
}
