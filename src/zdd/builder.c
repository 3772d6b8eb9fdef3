/*
 * Which build a release gets, and why: the command given to `deploy
 * --build-command`, else app.json's myapp-zdd.build, else the
 * BUILD_COMMAND setting, else by detection from the release's files (the
 * way Heroku's and Dokku's buildpacks detect):
 *
 *   Makefile                        make
 *   package.json                    npm ci (lockfile) or npm install,
 *                                   production only; npm run build when
 *                                   declared (then the dev dependencies
 *                                   are installed first and pruned after)
 *   requirements.txt, pyproject.toml  a virtualenv .venv in the release
 *   go.mod                          go build -o bin/ ./...
 *
 * The build's caches live in the build unit's cache directory
 * (builder_env), so a redeploy does not fetch everything again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "zdd.h"

#define PACKAGE_JSON_SIZE_MAX ((size_t)1024 * 1024)

static bool
has(const char *dir, const char *name)
{
	char path[ZDD_RELEASE_PATH_MAX + 32];
	int len = snprintf(path, sizeof(path), "%s/%s", dir, name);

	return len > 0 && (size_t)len < sizeof(path) && access(path, F_OK) == 0;
}

static bool
nonempty_object(json_object *root, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(root, key, &v) &&
	    json_object_is_type(v, json_type_object) &&
	    json_object_object_length(v) > 0;
}

static int
plan_npm(const char *dir, struct build_plan *p, char *why, size_t whylen)
{
	char path[ZDD_RELEASE_PATH_MAX + 32], *text = NULL;
	json_object *root, *scripts, *build;
	bool deps, dev, has_build, lock;
	int rc;

	snprintf(path, sizeof(path), "%s/package.json", dir);
	rc = file_read_bounded(path, PACKAGE_JSON_SIZE_MAX, &text, why, whylen);
	if (rc < 0)
		return rc;
	root = json_tokener_parse(text);
	free(text);
	if (root == NULL || !json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		snprintf(
		    why, whylen, "package.json is not a valid JSON object");
		return -EINVAL;
	}
	deps = nonempty_object(root, "dependencies");
	dev = nonempty_object(root, "devDependencies");
	has_build = json_object_object_get_ex(root, "scripts", &scripts) &&
	    json_object_is_type(scripts, json_type_object) &&
	    json_object_object_get_ex(scripts, "build", &build);
	json_object_put(root);
	lock = has(dir, "package-lock.json") || has(dir, "npm-shrinkwrap.json");
	snprintf(p->name, sizeof(p->name), "npm");
	if (!deps && !has_build) {
		snprintf(p->name, sizeof(p->name), "none");
		snprintf(p->why, sizeof(p->why),
		    "package.json declares no dependencies and no build "
		    "script: nothing to install");
		p->command[0] = '\0';
		return 0;
	}
	if (has_build)
		snprintf(p->command, sizeof(p->command),
		    "npm %s --no-audit --no-fund && npm run build && "
		    "npm prune --omit=dev --no-audit --no-fund",
		    lock ? "ci" : "install");
	else
		snprintf(p->command, sizeof(p->command),
		    "npm %s --omit=dev --no-audit --no-fund",
		    lock ? "ci" : "install");
	snprintf(p->why, sizeof(p->why), "package.json%s%s",
	    lock ? " with a lockfile" : ", no lockfile",
	    has_build ? ", a build script" : (dev ? ", production only" : ""));
	return 0;
}

int
builder_plan(const char *dir, const char *given, const char *given_why,
    struct build_plan *p, char *why, size_t whylen)
{
	memset(p, 0, sizeof(*p));
	if (given != NULL && given[0] != '\0') {
		snprintf(p->name, sizeof(p->name), "command");
		snprintf(p->why, sizeof(p->why), "%s", given_why);
		if (strlen(given) >= sizeof(p->command)) {
			snprintf(why, whylen, "the build command is too long");
			return -EINVAL;
		}
		snprintf(p->command, sizeof(p->command), "%s", given);
		return 0;
	}
	if (has(dir, "Makefile") || has(dir, "makefile") ||
	    has(dir, "GNUmakefile")) {
		snprintf(p->name, sizeof(p->name), "make");
		snprintf(p->why, sizeof(p->why), "a Makefile");
		snprintf(p->command, sizeof(p->command), "make");
		return 0;
	}
	if (has(dir, "package.json"))
		return plan_npm(dir, p, why, whylen);
	if (has(dir, "requirements.txt") || has(dir, "pyproject.toml")) {
		bool req = has(dir, "requirements.txt");

		snprintf(p->name, sizeof(p->name), "python");
		snprintf(p->why, sizeof(p->why),
		    "%s: a virtualenv in .venv (with the system's packages)",
		    req ? "requirements.txt" : "pyproject.toml");
		snprintf(p->command, sizeof(p->command),
		    "python3 -m venv --system-site-packages .venv && "
		    ".venv/bin/pip install --disable-pip-version-check "
		    "--no-input %s",
		    req ? "-r requirements.txt" : ".");
		return 0;
	}
	if (has(dir, "go.mod")) {
		snprintf(p->name, sizeof(p->name), "go");
		snprintf(p->why, sizeof(p->why), "go.mod");
		snprintf(p->command, sizeof(p->command),
		    "mkdir -p bin && go build -o bin/ ./...");
		return 0;
	}
	snprintf(p->name, sizeof(p->name), "none");
	snprintf(p->why, sizeof(p->why),
	    "no Makefile, package.json, requirements.txt, pyproject.toml or "
	    "go.mod: nothing to build");
	return 0;
}

/*
 * The caches under cache_dir (the build unit's CacheDirectory=), as "K=V"
 * strings into env[0..n) (static storage: one build per process).
 * Returns how many were set.
 */
size_t
builder_env(const char *cache_dir, char **env, size_t n)
{
	static const char *const vars[][2] = {
		{ "npm_config_cache", "npm" },
		{ "PIP_CACHE_DIR", "pip" },
		{ "GOCACHE", "go-build" },
		{ "GOMODCACHE", "go-mod" },
		{ "GOPATH", "go" },
		{ "XDG_CACHE_HOME", "xdg" },
	};
	static char buf[sizeof(vars) / sizeof(vars[0])][ZDD_PATH_MAX + 64];
	size_t i, used = 0;

	if (n == 0)
		return 0;
	if (cache_dir == NULL || cache_dir[0] != '/' ||
	    strlen(cache_dir) >= ZDD_PATH_MAX) {
		env[0] = NULL;
		return 0;
	}
	for (i = 0; i < sizeof(vars) / sizeof(vars[0]) && used + 1 < n; i++) {
		snprintf(buf[i], sizeof(buf[i]), "%s=%s/%s", vars[i][0],
		    cache_dir, vars[i][1]);
		env[used++] = buf[i];
	}
	/* A go.mod asking for a newer Go must not download a toolchain. */
	if (used + 1 < n)
		env[used++] = "GOTOOLCHAIN=local";
	env[used] = NULL;
	return used;
}
