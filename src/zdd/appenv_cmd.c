/*
 * `myapp-zdd env` (and `ssh deploy@HOST config ...`): the app's
 * environment, for the deploy user, through myapp-env.socket (see
 * appenv_serve.c: the file is root's).
 *
 *   env list                          KEY=VALUE, every variable
 *   env get KEY                       one value (exit 1: not set)
 *   env set [--no-restart] K=V...     set them, then restart
 *   env unset [--no-restart] K...     remove them, then restart
 *
 * A change is applied by `myapp-zdd restart` (the handover: a new instance
 * starts with the new environment, the old one drains). When that fails,
 * nothing live changed, and the file is put back as it was, so that the
 * next restart or boot does not start what just failed.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdd.h"

#define ANSWER_TIMEOUT_MS 20000
#define ANSWER_MAX ((size_t)APPENV_FILE_MAX * 2 + 256)

/* Sends VERB and its arguments, one per line; the whole answer in *out. */
static int
ask(const struct zdd_config *cfg, const char *verb, char *const *args,
    size_t nargs, char **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pollfd p = { .events = POLLIN };
	size_t len = 0;
	char *buf = NULL;
	int fd, rc;

	if (app_socket_path(cfg, "env", sa.sun_path, sizeof(sa.sun_path)) < 0)
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		goto out;
	}
	rc = fd_write_all(fd, verb, strlen(verb));
	for (size_t i = 0; i < nargs && rc == 0; i++) {
		rc = fd_write_all(fd, "\n", 1);
		if (rc == 0)
			rc = fd_write_all(fd, args[i], strlen(args[i]));
	}
	if (rc == 0)
		rc = fd_write_all(fd, "\n", 1);
	if (rc == 0 && shutdown(fd, SHUT_WR) < 0)
		rc = -errno;
	buf = malloc(ANSWER_MAX + 1);
	if (rc == 0 && buf == NULL)
		rc = -ENOMEM;
	p.fd = fd;
	while (rc == 0) {
		ssize_t r;
		int prc = poll(&p, 1, ANSWER_TIMEOUT_MS);

		if (prc < 0 && errno == EINTR)
			continue;
		if (prc <= 0) {
			rc = prc < 0 ? -errno : -ETIMEDOUT;
			break;
		}
		r = read(fd, buf + len, ANSWER_MAX - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			rc = -errno;
		else if (r == 0)
			break;
		else if ((len += (size_t)r) >= ANSWER_MAX)
			rc = -EFBIG;
	}
	if (rc == 0) {
		buf[len] = '\0';
		*out = buf;
		buf = NULL;
	}
out:
	free(buf);
	close(fd);
	return rc;
}

/* The answer's last line (its status), cut off from the lines before. */
static char *
answer_status(char *answer)
{
	static char none[] = "";
	size_t n;
	char *nl;

	if (answer == NULL)
		return none;
	n = strlen(answer);
	if (n > 0 && answer[n - 1] == '\n')
		answer[--n] = '\0';
	nl = strrchr(answer, '\n');
	if (nl == NULL)
		return answer;
	*nl = '\0';
	return nl + 1;
}

static int
restart_self(const char *config_path)
{
	struct spawn_opts o = { .in_fd = -1, .out_fd = -1, .err_fd = -1 };
	char self[PATH_MAX];
	char *argv[5];
	int status;

	if (spawn_self_argv(config_path, "restart", self, sizeof(self), argv) <
	    0)
		return -errno;
	fflush(stdout);
	if (spawn_run(argv, &o, &status) < 0)
		return -ECHILD;
	return WIFEXITED(status) ? WEXITSTATUS(status) : ZDD_EXIT_FAILED;
}

static int
usage(void)
{
	log_err(
	    "usage: myapp-zdd env list | get KEY | "
	    "set [--no-restart] KEY=VALUE... | unset [--no-restart] KEY...");
	return ZDD_EXIT_USAGE;
}

/* list and get: what the server lists, all of it or one value. */
static int
env_show(const char *answer, const char *key)
{
	size_t k = key ? strlen(key) : 0;

	if (key == NULL) {
		if (answer[0] != '\0')
			printf("%s\n", answer);
		return ZDD_EXIT_OK;
	}
	for (const char *p = answer; *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		if (n > k && strncmp(p, key, k) == 0 && p[k] == '=') {
			printf("%.*s\n", (int)(n - k - 1), p + k + 1);
			return ZDD_EXIT_OK;
		}
		p += n + (nl != NULL);
	}
	return ZDD_EXIT_FAILED;
}

/* set/unset answered "changed TOKEN": restart, or put the file back. */
static int
env_apply(const struct zdd_config *cfg, const char *config_path,
    const char *token, bool restart)
{
	char *answer = NULL;
	char *args[] = { (char *)token };
	const char *status;
	int rc;

	if (!restart) {
		log_info("environment changed; it applies at the next deploy "
			 "or 'restart'");
		return ZDD_EXIT_OK;
	}
	log_info("environment changed; restarting the app onto it");
	rc = restart_self(config_path);
	if (rc == ZDD_EXIT_OK)
		return ZDD_EXIT_OK;
	/* answer_status cuts the answer: read the status once */
	status = ask(cfg, "revert", args, 1, &answer) == 0
	    ? answer_status(answer)
	    : "no answer";
	if (strcmp(status, "reverted") == 0)
		log_err("the restart failed: the environment is back as it "
			"was, and the app runs as before");
	else
		log_err("the restart failed, and the environment could not "
			"be put back (%s): the file keeps the change; the app "
			"runs as before",
		    status);
	free(answer);
	return ZDD_EXIT_FAILED;
}

int
appenv_command(const char *config_path, int argc, char *argv[])
{
	const char *verb = argc > 0 && argv[0] != NULL ? argv[0] : "";
	char why[ZDD_WHY_MAX], socket_name[ZDD_PATH_MAX + ZDD_NAME_MAX + 16];
	bool restart = true, edit;
	char *answer = NULL, *status;
	struct zdd_config cfg;
	int first = 1, rc;

	edit = strcmp(verb, "set") == 0 || strcmp(verb, "unset") == 0;
	if (edit && argc > 1 && argv[1] != NULL &&
	    strcmp(argv[1], "--no-restart") == 0) {
		restart = false;
		first = 2;
	}
	if (!(strcmp(verb, "list") == 0 && argc == 1) &&
	    !(strcmp(verb, "get") == 0 && argc == 2) && !edit)
		return usage();
	if (edit &&
	    appenv_args_check(verb[0] == 's', argv + first,
		(size_t)(argc - first), why, sizeof(why)) < 0) {
		log_err("env %s: %s", verb, why);
		return ZDD_EXIT_USAGE;
	}
	if (strcmp(verb, "get") == 0 &&
	    !appenv_key_valid(argv[1], why, sizeof(why))) {
		log_err("env get: %s", why);
		return ZDD_EXIT_USAGE;
	}
	config_defaults(&cfg);
	if (config_load(&cfg, config_path, false) < 0)
		return ZDD_EXIT_USAGE;
	rc = ask(&cfg, edit ? verb : "list", edit ? argv + first : NULL,
	    edit ? (size_t)(argc - first) : 0, &answer);
	if (rc == 0 && answer == NULL)
		rc = -EIO;
	if (rc < 0) {
		errno = -rc;
		app_socket_path(&cfg, "env", socket_name, sizeof(socket_name));
		log_err("cannot reach %s (is %s-env.socket running?): %m",
		    socket_name, cfg.app);
		return ZDD_EXIT_FAILED;
	}
	status = answer_status(answer);
	if (strncmp(status, "error: ", 7) == 0) {
		log_err("env %s: %s", verb, status + 7);
		rc = ZDD_EXIT_FAILED;
	} else if (!edit && strcmp(status, "ok") == 0) {
		rc = env_show(status == answer ? "" : answer,
		    verb[0] == 'g' ? argv[1] : NULL);
	} else if (edit && strcmp(status, "unchanged") == 0) {
		log_info("environment unchanged: nothing to restart");
		rc = ZDD_EXIT_OK;
	} else if (edit && strncmp(status, "changed ", 8) == 0) {
		rc = env_apply(&cfg, config_path, status + 8, restart);
	} else {
		log_err("env %s: unexpected answer '%.80s'", verb, status);
		rc = ZDD_EXIT_FAILED;
	}
	free(answer);
	return rc;
}
