/*
 * `myapp-zdd env-serve` (myapp-env@.service, root, no capabilities): one
 * request from the deploy user on myapp-env.socket (group deploy,
 * Accept=yes) about the app's environment file, which is root's (0600)
 * so that a build, which runs as the deploy user, cannot read it.
 *
 * Request (stdin, up to EOF): a verb line, then one argument per line:
 *   list                   the variables, KEY=VALUE as systemd reads them
 *   set\nK=V\n...          set them
 *   unset\nK\n...          remove them
 *   revert\nTOKEN          undo the set/unset that answered TOKEN, if the
 *                          file is still the one it wrote
 * Answer (stdout): the listing, then one status line: "ok", "unchanged",
 * "changed TOKEN", "reverted" or "error: REASON". Values are never logged.
 *
 * The file is the one beside the engine's configuration (/etc/myapp-zdd,
 * root's directory: nothing here follows a path the deploy user can
 * change). An edit is written whole to a new file and renamed over the
 * old one, which stays as .env.previous for revert.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "zdd.h"

#define ENV_NAME "env"
#define ENV_NEW ".env.new"
#define ENV_PREVIOUS ".env.previous"
#define REQUEST_TIMEOUT_MS 10000
#define LOCK_TRIES 100 /* of 100 ms */

static int
request_read(char **text, char *why, size_t whylen)
{
	struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
	size_t len = 0, cap = APPENV_FILE_MAX + 2;
	char *buf = malloc(cap);

	if (buf == NULL)
		return -ENOMEM;
	for (;;) {
		ssize_t r;
		int rc = poll(&p, 1, REQUEST_TIMEOUT_MS);

		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0) {
			snprintf(why, whylen, "no whole request within %d s",
			    REQUEST_TIMEOUT_MS / 1000);
			free(buf);
			return -ETIMEDOUT;
		}
		r = read(STDIN_FILENO, buf + len, cap - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(why, whylen, "cannot read the request: %s",
			    strerror(errno));
			free(buf);
			return -EIO;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len >= cap - 1) {
			snprintf(why, whylen, "request larger than %zu bytes",
			    APPENV_FILE_MAX);
			free(buf);
			return -EFBIG;
		}
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		snprintf(why, whylen, "request holds a NUL byte");
		free(buf);
		return -EINVAL;
	}
	*text = buf;
	return 0;
}

/* Splits text into its lines in place (the last newline optional). */
static size_t
request_lines(char *text, char **lines, size_t max)
{
	size_t n = 0;
	char *p = text;

	while (*p != '\0' && n < max) {
		char *nl = strchr(p, '\n');

		lines[n++] = p;
		if (nl == NULL)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	return *p != '\0' && n == max ? max + 1 : n;
}

/* The file's text ("" when there is none), bounded. */
static int
env_read(int dirfd, char **text, bool *exists, char *why, size_t whylen)
{
	int fd = openat(dirfd, ENV_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	size_t len = 0;
	struct stat st;
	char *buf = NULL;
	int rc = 0;

	*exists = fd >= 0;
	if (fd < 0 && errno == ENOENT) {
		*text = strdup("");
		return *text ? 0 : -ENOMEM;
	}
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(why, whylen, "cannot open the environment file: %s",
		    strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)APPENV_FILE_MAX) {
		rc = -EINVAL;
		snprintf(why, whylen,
		    "the environment file is not a regular file of at most "
		    "%zu bytes",
		    APPENV_FILE_MAX);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	while (len < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -errno : -EIO;
			snprintf(why, whylen,
			    "cannot read the environment file: %s",
			    strerror(-rc));
			goto out;
		}
		len += (size_t)r;
	}
	buf[len] = '\0';
	*text = buf;
	buf = NULL;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int
env_token(int dirfd, char *out, size_t n)
{
	struct stat st;

	if (fstatat(dirfd, ENV_NAME, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	snprintf(out, n, "%llu.%lld.%ld", (unsigned long long)st.st_ino,
	    (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
	return 0;
}

/* Writes text as the new file; the old one becomes .env.previous. */
static int
env_replace(int dirfd, const char *text, bool existed, char *why, size_t whylen)
{
	int fd, rc = 0;

	if (unlinkat(dirfd, ENV_NEW, 0) < 0 && errno != ENOENT)
		return -errno;
	fd = openat(dirfd, ENV_NEW,
	    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = fd_write_all(fd, text, strlen(text));
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc < 0)
		goto fail;
	if (unlinkat(dirfd, ENV_PREVIOUS, 0) < 0 && errno != ENOENT) {
		rc = -errno;
		goto fail;
	}
	if (existed) {
		if (linkat(dirfd, ENV_NAME, dirfd, ENV_PREVIOUS, 0) < 0)
			rc = -errno;
	} else {
		fd = openat(dirfd, ENV_PREVIOUS,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 || close(fd) < 0)
			rc = -errno;
	}
	if (rc == 0 && renameat(dirfd, ENV_NEW, dirfd, ENV_NAME) < 0)
		rc = -errno;
	if (rc == 0 && fsync(dirfd) < 0)
		rc = -errno;
	if (rc == 0)
		return 0;
fail:
	snprintf(why, whylen, "cannot write the environment file: %s",
	    strerror(-rc));
	unlinkat(dirfd, ENV_NEW, 0);
	return rc;
}

static int
env_revert(int dirfd, const char *token, char *why, size_t whylen)
{
	char now[64];

	if (env_token(dirfd, now, sizeof(now)) < 0 || strcmp(now, token) != 0) {
		snprintf(why, whylen,
		    "the environment file changed since: not reverted");
		return -ESTALE;
	}
	if (renameat(dirfd, ENV_PREVIOUS, dirfd, ENV_NAME) < 0 ||
	    fsync(dirfd) < 0) {
		snprintf(why, whylen, "cannot put the previous file back: %s",
		    strerror(errno));
		return -errno;
	}
	return 0;
}

static void
env_list(const char *text)
{
	static char key[APPENV_KEY_MAX + 2], value[APPENV_VALUE_MAX + 2];

	for (const char *p = text; *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		if (appenv_line_parse(
			p, n, key, sizeof(key), value, sizeof(value)) == 0)
			printf("%s=%s\n", key, value);
		p += n + (nl != NULL);
	}
}

static int
lock_dir(int dirfd)
{
	for (int i = 0; i < LOCK_TRIES; i++) {
		struct timespec ts = { 0, 100000000L };

		if (flock(dirfd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK)
			return -errno;
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

/* Who asked, for the journal: the peer of the connection. */
static long
peer_uid(void)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(STDIN_FILENO, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -1;
	return (long)cred.uid;
}

/* The names of args, for the journal: never their values. */
static void
log_names(const char *verb, char *const *args, size_t n)
{
	char names[512] = "";
	size_t len = 0;

	for (size_t i = 0; i < n && len < sizeof(names) - 1; i++) {
		int w = snprintf(names + len, sizeof(names) - len, " %.*s",
		    (int)strcspn(args[i], "="), args[i]);

		if (w < 0)
			break;
		len += (size_t)w;
	}
	/* stderr is the journal here (stdout is the client) */
	log_err("env-serve: %s%s (uid %ld)", verb, names, peer_uid());
}

int
appenv_serve_command(const char *config_path, int argc, char *argv[])
{
	static char *lines[APPENV_VARS_MAX + 2];
	char dir[ZDD_PATH_MAX], why[ZDD_WHY_MAX] = "", token[64];
	char *request = NULL, *old = NULL, *text = NULL;
	int dirfd = -1, rc = ZDD_EXIT_USAGE;
	bool existed = false, changed = false;
	const char *verb;
	size_t n;

	(void)argv;
	if (argc != 0 || strlen(config_path) >= sizeof(dir)) {
		snprintf(why, sizeof(why), "env-serve takes no arguments");
		goto out;
	}
	if (request_read(&request, why, sizeof(why)) < 0)
		goto out;
	n = request_lines(request, lines, APPENV_VARS_MAX + 1);
	if (n == 0 || n > APPENV_VARS_MAX + 1) {
		snprintf(why, sizeof(why),
		    "expected a verb and at most %d "
		    "arguments",
		    APPENV_VARS_MAX);
		goto out;
	}
	verb = lines[0];
	if (!((strcmp(verb, "list") == 0 && n == 1) ||
		((strcmp(verb, "set") == 0 || strcmp(verb, "unset") == 0) &&
		    appenv_args_check(verb[0] == 's', lines + 1, n - 1, why,
			sizeof(why)) == 0) ||
		(strcmp(verb, "revert") == 0 && n == 2))) {
		if (why[0] == '\0')
			snprintf(why, sizeof(why),
			    "expected list, set K=V..., unset K... or revert "
			    "TOKEN");
		goto out;
	}
	memcpy(dir, config_path, strlen(config_path) + 1);
	dirfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0 || lock_dir(dirfd) < 0) {
		snprintf(why, sizeof(why), "cannot lock %s: %s", dir,
		    strerror(errno));
		rc = ZDD_EXIT_FAILED;
		goto out;
	}
	rc = ZDD_EXIT_FAILED;
	if (strcmp(verb, "revert") == 0) {
		log_names(verb, NULL, 0);
		if (env_revert(dirfd, lines[1], why, sizeof(why)) == 0) {
			printf("reverted\n");
			rc = ZDD_EXIT_OK;
		}
		goto out;
	}
	if (env_read(dirfd, &old, &existed, why, sizeof(why)) < 0 ||
	    old == NULL)
		goto out;
	if (strcmp(verb, "list") == 0) {
		log_names(verb, NULL, 0);
		env_list(old);
		printf("ok\n");
		rc = ZDD_EXIT_OK;
		goto out;
	}
	log_names(verb, lines + 1, n - 1);
	if (appenv_edit(old, verb[0] == 's' ? lines + 1 : NULL,
		verb[0] == 's' ? n - 1 : 0, verb[0] == 'u' ? lines + 1 : NULL,
		verb[0] == 'u' ? n - 1 : 0, &text, &changed, why,
		sizeof(why)) < 0)
		goto out;
	if (!changed) {
		printf("unchanged\n");
		rc = ZDD_EXIT_OK;
		goto out;
	}
	if (env_replace(dirfd, text, existed, why, sizeof(why)) < 0 ||
	    env_token(dirfd, token, sizeof(token)) < 0)
		goto out;
	printf("changed %s\n", token);
	rc = ZDD_EXIT_OK;
out:
	if (rc != ZDD_EXIT_OK) {
		if (why[0] == '\0')
			snprintf(why, sizeof(why), "failed");
		printf("error: %s\n", why);
		log_err("env-serve: refused or failed: %s", why);
	}
	fflush(stdout);
	free(request);
	free(old);
	free(text);
	if (dirfd >= 0)
		close(dirfd);
	return rc;
}
