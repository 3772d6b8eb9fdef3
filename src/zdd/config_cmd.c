/*
 * `myapp-zdd config`: the settings' defaults and checks for the package's
 * scripts (provision/, the maintainer scripts), so that they ask the engine
 * instead of repeating them.
 *
 *   config defaults [engine|site]  KEY=default, every setting (or the
 *                              engine's file's, or server.conf's)
 *   config keys [engine|site]  their names, one a line
 *   config list                KEY=value as the files make it
 *   config get KEY             one value
 *   config check               the files hold only valid values
 *   config check KEY=VALUE...  these values are valid
 *
 * The files: the engine's (--config, default /etc/myapp-zdd/myapp-zdd.conf)
 * and server.conf beside it; both may be missing (defaults then). Run by
 * root before the deploy user exists: no privilege drop, nothing written.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include "zdd.h"

static int
load_both(struct zdd_config *cfg, const char *config_path)
{
	char dir[ZDD_PATH_MAX], site[ZDD_PATH_MAX + 16];
	int rc;

	if (strlen(config_path) >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, config_path, strlen(config_path) + 1);
	snprintf(site, sizeof(site), "%s/server.conf", dirname(dir));
	config_defaults(cfg);
	rc = config_load(cfg, config_path, false);
	if (config_load(cfg, site, false) < 0)
		rc = -EINVAL;
	return rc;
}

static int
print_value(const struct zdd_config *cfg, size_t i)
{
	char value[ZDD_LINE_MAX];

	if (config_value(cfg, i, value, sizeof(value)) < 0)
		return -ENAMETOOLONG;
	printf("%s=%s\n", config_key(i), value);
	return 0;
}

static int
check_pairs(int argc, char *argv[])
{
	struct zdd_config scratch;
	int rc = ZDD_EXIT_OK;

	config_defaults(&scratch);
	for (int i = 0; i < argc; i++) {
		char key[ZDD_NAME_MAX + 1];
		const char *eq = strchr(argv[i], '=');

		if (eq == NULL || eq == argv[i] ||
		    (size_t)(eq - argv[i]) >= sizeof(key)) {
			log_err("config check: expected KEY=VALUE, got '%s'",
			    argv[i]);
			return ZDD_EXIT_USAGE;
		}
		memcpy(key, argv[i], (size_t)(eq - argv[i]));
		key[eq - argv[i]] = '\0';
		if (!config_known(key)) {
			log_err("config check: unknown setting %s", key);
			rc = ZDD_EXIT_USAGE;
		} else if (config_set(&scratch, key, eq + 1, "setting") < 0) {
			rc = ZDD_EXIT_USAGE;
		}
	}
	return rc;
}

/* "", "engine" or "site": which keys; -1 for another word. */
static int
which_keys(int argc, char *argv[])
{
	if (argc == 1)
		return 0;
	if (argc == 2 && strcmp(argv[1], "engine") == 0)
		return 1;
	if (argc == 2 && strcmp(argv[1], "site") == 0)
		return 2;
	return -1;
}

static bool
key_wanted(size_t i, int which)
{
	return which == 0 || (which == 2) == config_key_is_site(i);
}

int
config_command(const char *config_path, int argc, char *argv[])
{
	const char *what = argc > 0 ? argv[0] : "";
	struct zdd_config cfg;
	int which = which_keys(argc, argv);

	if ((strcmp(what, "defaults") == 0 || strcmp(what, "keys") == 0) &&
	    which >= 0) {
		for (size_t i = 0; i < config_nkeys(); i++) {
			if (!key_wanted(i, which))
				continue;
			if (what[0] == 'k')
				printf("%s\n", config_key(i));
			else
				printf("%s=%s\n", config_key(i),
				    config_key_default(i));
		}
		return ZDD_EXIT_OK;
	}
	if (strcmp(what, "check") == 0 && argc > 1)
		return check_pairs(argc - 1, argv + 1);
	if ((strcmp(what, "list") == 0 || strcmp(what, "check") == 0) &&
	    argc == 1) {
		if (load_both(&cfg, config_path) < 0)
			return ZDD_EXIT_USAGE;
		if (what[0] == 'c')
			return ZDD_EXIT_OK;
		for (size_t i = 0; i < config_nkeys(); i++)
			if (print_value(&cfg, i) < 0)
				return ZDD_EXIT_FAILED;
		return ZDD_EXIT_OK;
	}
	if (strcmp(what, "get") == 0 && argc == 2) {
		if (!config_known(argv[1])) {
			log_err("config get: unknown setting %s", argv[1]);
			return ZDD_EXIT_USAGE;
		}
		if (load_both(&cfg, config_path) < 0)
			return ZDD_EXIT_USAGE;
		for (size_t i = 0; i < config_nkeys(); i++)
			if (strcmp(config_key(i), argv[1]) == 0) {
				char value[ZDD_LINE_MAX];

				if (config_value(
					&cfg, i, value, sizeof(value)) < 0)
					return ZDD_EXIT_FAILED;
				printf("%s\n", value);
			}
		return ZDD_EXIT_OK;
	}
	fprintf(stderr,
	    "usage: myapp-zdd [--config FILE] config "
	    "defaults|keys [engine|site], list, check, get KEY, "
	    "check KEY=VALUE...\n");
	return ZDD_EXIT_USAGE;
}
