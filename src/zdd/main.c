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

/* What a command was given on the command line. */
struct invocation {
	const char *arg;          /* REV or ID; NULL when not given */
	const char *option_value; /* its option's value; NULL when not given */
	bool flag;                /* its flag was given */
	const char *user;         /* who asked, for the history */
};

typedef int command_fn(
    const struct zdd_config *cfg, const struct invocation *inv);
typedef int config_fn(const struct zdd_config *cfg);
typedef int raw_fn(const char *config_path, int argc, char *argv[]);

struct command {
	const char *name;
	const char *args;   /* its arguments as --help shows them */
	const char *help;   /* lines, '\n' between */
	bool takes_arg;     /* one optional argument (REV, ID) */
	const char *option; /* the one option it takes, with a value */
	const char *flag;   /* the one option it takes without one */
	size_t option_max;  /* the value's size limit, with the NUL */
	command_fn *run;    /* one of these three */
	config_fn *run_cfg; /* needs nothing but the configuration */
	raw_fn *run_raw;    /* its own arguments, as the caller, no drop */
};

static command_fn cmd_hook, cmd_deploy, cmd_rollback, cmd_restart, cmd_logs;

static const struct command commands[] = {
	{ .name = "hook",
	    .run = cmd_hook,
	    .help = "read 'old new ref' lines on stdin (pre-receive)\n"
		    "and deploy the configured branch" },
	{ .name = "deploy",
	    .run = cmd_deploy,
	    .args = "[REV] [--build-command CMD]",
	    .takes_arg = true,
	    .option = "--build-command",
	    .option_max = ZDD_VALUE_MAX,
	    .help = "build REV (default: tip of BRANCH) and hand over" },
	{ .name = "rollback",
	    .run = cmd_rollback,
	    .args = "[ID] [--force]",
	    .takes_arg = true,
	    .flag = "--force",
	    .help = "hand back to the previous (or the named) release;\n"
		    "--force: also behind the last release command" },
	{ .name = "restart",
	    .run = cmd_restart,
	    .help = "hand over onto the current release (no rebuild)" },
	{ .name = "releases",
	    .run_cfg = releases_show,
	    .help = "list releases, marking current and previous" },
	{ .name = "status",
	    .run_cfg = status_show,
	    .help = "live release, unit states, health" },
	{ .name = "ps",
	    .run_cfg = ps_show,
	    .help = "every process of the app: type, unit, release,\n"
		    "state, PID, since when" },
	{ .name = "logs",
	    .run = cmd_logs,
	    .args = "[-n LINES] [-f] [UNIT]",
	    .takes_arg = true,
	    .option = "-n",
	    .option_max = 8,
	    .flag = "-f",
	    .help = "the app's journal: all its units (or UNIT),\n"
		    "the last LINES (50; up to 1000); -f follows it" },
	{ .name = "start-processes",
	    .run_cfg = processes_start_live,
	    .help = "(myapp-processes.service, at boot) start the live\n"
		    "release's web processes 2..N and workers" },
	{ .name = "cron-sync",
	    .run_raw = cron_sync_command,
	    .help = "(myapp-cron-sync.service, as root) set the timers\n"
		    "of the live release's app.json cron entries" },
	{ .name = "cron-list",
	    .run_cfg = cron_sync_list,
	    .help = "(for cron-sync) the live release's cron entries\n"
		    "as 'N OnCalendar' lines" },
	{ .name = "prune",
	    .run_cfg = prune_run,
	    .help = "remove old releases (never current or previous)" },
	{ .name = "config",
	    .run_raw = config_command,
	    .args = "defaults|list|check|get KEY|check KEY=VALUE...",
	    .help = "the settings' defaults, values and checks\n"
		    "(for the package's scripts; changes nothing)" },
	{ .name = "env",
	    .run_raw = appenv_command,
	    .args = "list|get KEY|set K=V...|unset K...",
	    .help = "the app's environment (/etc/myapp-zdd/env) for\n"
		    "the deploy user; set/unset restart the app onto\n"
		    "it (--no-restart: not now)" },
	{ .name = "run",
	    .run_raw = run_command,
	    .args = "COMMAND [ARG...]",
	    .help = "a one-off command in the live release, with the\n"
		    "app's user, environment and sandbox (bash -c);\n"
		    "its output here, its exit status ours" },
	{ .name = "launch",
	    .run_raw = launch_command,
	    .args = "[TYPE]",
	    .help = "(the app's units) run the release's Procfile TYPE\n"
		    "(default web), or ./start" },
	{ .name = "build-exec",
	    .run_raw = build_exec_command,
	    .args = "ID",
	    .help = "(the build unit) run the build the engine\n"
		    "wrote into release ID" },
	{ .name = "env-serve",
	    .run_raw = appenv_serve_command,
	    .help = "(myapp-env@.service, as root) answer one request\n"
		    "about the app's environment on stdin/stdout" },
	{ .name = "run-serve",
	    .run_raw = run_serve_command,
	    .help = "(myapp-run@.service, as the app) run one command\n"
		    "asked for on the connection (stdin/stdout)" },
	{ .name = "logs-serve",
	    .run_cfg = logs_serve,
	    .help = "(myapp-logs@.service) answer one request for\n"
		    "the app's journal on stdin/stdout" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))
#define HELP_COLUMN 25 /* synopses this long or longer get a line alone */

static const struct command *
command_find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(name, commands[i].name) == 0)
			return &commands[i];
	return NULL;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: myapp-zdd [--config FILE] COMMAND [ARGS]\n"
	    "\n"
	    "commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		char synopsis[128];
		const char *line = commands[i].help;
		const char *first = synopsis;

		snprintf(synopsis, sizeof(synopsis), "%s%s%s", commands[i].name,
		    commands[i].args ? " " : "",
		    commands[i].args ? commands[i].args : "");
		if (strlen(synopsis) >= HELP_COLUMN) {
			fprintf(f, "  %s\n", synopsis);
			first = "";
		}
		while (*line != '\0') {
			int len = (int)strcspn(line, "\n");

			fprintf(f, "  %-*s %.*s\n", HELP_COLUMN - 1, first, len,
			    line);
			first = "";
			line += len + (line[len] == '\n');
		}
	}
	fprintf(f,
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
	if (sigaction(SIGPIPE, &sa, NULL) < 0 ||
	    sigaction(SIGHUP, &sa, NULL) < 0)
		return -errno;
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGINT, &sa, NULL) < 0 ||
	    sigaction(SIGTERM, &sa, NULL) < 0)
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
cmd_hook(const struct zdd_config *cfg, const struct invocation *inv)
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
			log_err(
			    "more than %d refs pushed at once", MAX_REF_LINES);
			return ZDD_EXIT_USAGE;
		}
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (refline_parse(line, &u) < 0) {
			log_err("unexpected line on stdin: '%.80s' (expected "
				"'<old-sha> <new-sha> <ref>' from git)",
			    line);
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
				snprintf(
				    old_sha, sizeof(old_sha), "%s", u.old_sha);
			}
		} else if (strncmp(u.ref, "refs/heads/", 11) == 0) {
			log_info(
			    "branch %s pushed, not deployed (deploy branch "
			    "is %s)",
			    u.ref + 11, cfg->branch);
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

	struct deploy_request rq = { .rev = deploy_sha,
		.branch = cfg->branch,
		.user = inv->user,
		.expect_old = old_sha };
	return deploy_run(cfg, &rq);
}

static int
cmd_deploy(const struct zdd_config *cfg, const struct invocation *inv)
{
	struct deploy_request rq = { .rev = inv->arg,
		.build_command = inv->option_value,
		.branch = inv->arg ? NULL : cfg->branch,
		.user = inv->user };

	return deploy_run(cfg, &rq);
}

static int
cmd_rollback(const struct zdd_config *cfg, const struct invocation *inv)
{
	return rollback_run(cfg, inv->arg, inv->user, inv->flag);
}

static int
cmd_restart(const struct zdd_config *cfg, const struct invocation *inv)
{
	return restart_run(cfg, inv->user);
}

static int
cmd_logs(const struct zdd_config *cfg, const struct invocation *inv)
{
	return logs_show(cfg, inv->arg, inv->option_value, inv->flag);
}

static int
bad_usage(const char *fmt, const char *arg)
{
	fputs("myapp-zdd: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\nTry 'myapp-zdd --help'.\n", stderr);
	return ZDD_EXIT_USAGE;
}

/*
 * The command's own arguments, by its entry in the table; an unknown
 * command (cmd NULL) takes none, so its first argument is what is named.
 */
static int
parse_command_args(
    const struct command *cmd, int argc, char *argv[], struct invocation *inv)
{
	size_t optlen = cmd && cmd->option ? strlen(cmd->option) : 0;

	for (int i = 0; i < argc; i++) {
		if (optlen > 0 && strcmp(argv[i], cmd->option) == 0 &&
		    i + 1 < argc) {
			inv->option_value = argv[++i];
		} else if (optlen > 0 &&
		    strncmp(argv[i], cmd->option, optlen) == 0 &&
		    argv[i][optlen] == '=') {
			inv->option_value = argv[i] + optlen + 1;
		} else if (cmd && cmd->flag &&
		    strcmp(argv[i], cmd->flag) == 0) {
			inv->flag = true;
		} else if (argv[i][0] == '-') {
			return bad_usage("unknown option '%s'", argv[i]);
		} else if (inv->arg == NULL && cmd && cmd->takes_arg) {
			inv->arg = argv[i];
		} else {
			return bad_usage("unexpected argument '%s'", argv[i]);
		}
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	const char *config_path = ZDD_DEFAULT_CONFIG;
	const struct command *cmd;
	struct invocation inv = { NULL, NULL, false, NULL };
	bool config_given = false;
	char user[ZDD_NAME_MAX + 16];
	struct zdd_config cfg;
	int i = 1, rc;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
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
	cmd = command_find(argv[i]);
	if (cmd != NULL && cmd->run_raw != NULL)
		return cmd->run_raw(config_path, argc - i - 1, argv + i + 1);
	rc = parse_command_args(cmd, argc - i - 1, argv + i + 1, &inv);
	if (rc != 0)
		return rc;
	if (cmd == NULL)
		return bad_usage("unknown command '%s'", argv[i]);
	if (inv.option_value != NULL &&
	    (inv.option_value[0] == '\0' ||
		strlen(inv.option_value) >= cmd->option_max))
		return bad_usage("%s: empty or too long", cmd->option);

	spawn_close_inherited_fds();
	config_defaults(&cfg);
	if (config_load(&cfg, config_path, config_given) < 0)
		return ZDD_EXIT_USAGE;
	invoker(user, sizeof(user));
	inv.user = user;
	if (privdrop(cfg.deploy_user) < 0)
		return ZDD_EXIT_USAGE;
	if (env_sanitize() < 0 || setup_signals() < 0)
		return ZDD_EXIT_FAILED;
	umask(022); /* releases must be readable by the app's dynamic user */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_err("cannot initialise libcurl");
		return ZDD_EXIT_FAILED;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	rc = cmd->run ? cmd->run(&cfg, &inv) : cmd->run_cfg(&cfg);
	curl_global_cleanup();
	return rc;
}
