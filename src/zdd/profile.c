/*
 * Sandbox profiles.  The strict profile (systemd/sandbox.conf) is what an
 * app gets unless the admin grants more (SANDBOX_GRANTS, asked by
 * `dpkg-reconfigure myapp-zdd`; provision writes the units' drop-in from
 * it): "jit" (MemoryDenyWriteExecute=no: Node.js, the JVM, PyPy, LuaJIT
 * map W+X memory) and "network" (outbound TCP/UDP: a database, DNS, an
 * API).  A release declares what it needs in app.json myapp-zdd.needs; a
 * push that needs more than is granted is refused, naming the setting.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "zdd.h"

#define ANALYZE_TIMEOUT_S 30
#define ANALYZE_OUT_MAX (64 * 1024)

/* "", "jit", "network", "jit,network" (either order, once each). */
int
grants_parse(const char *text, unsigned *grants)
{
	char buf[32], *save = NULL;

	*grants = 0;
	if (strlen(text) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", text);
	if (buf[0] == '\0')
		return 0;
	if (buf[0] == ',' || buf[strlen(buf) - 1] == ',' || strstr(buf, ",,"))
		return -EINVAL;
	for (char *t = strtok_r(buf, ",", &save); t != NULL;
	     t = strtok_r(NULL, ",", &save)) {
		unsigned bit;

		if (needs_parse(t, &bit) < 0 || (*grants & bit))
			return -EINVAL;
		*grants |= bit;
	}
	return 0;
}

/*
 * The profile line for the push ("jit (granted by SANDBOX_GRANTS; …)"),
 * or -EPERM and why when the release needs more than is granted.
 */
int
profile_check(const struct zdd_config *cfg, unsigned needs, char *line,
    size_t n, char *why, size_t whylen)
{
	char granted[32], needed[32], missing[32];
	unsigned grants;

	if (grants_parse(cfg->sandbox_grants, &grants) < 0) {
		snprintf(why, whylen, "SANDBOX_GRANTS is not valid");
		return -EINVAL;
	}
	needs_format(grants, granted, sizeof(granted));
	needs_format(needs, needed, sizeof(needed));
	if (needs & ~grants) {
		char setting[32];

		needs_format(needs & ~grants, missing, sizeof(missing));
		needs_format(needs | grants, setting, sizeof(setting));
		for (char *p = setting; (p = strchr(p, '+')) != NULL;)
			*p = ',';
		snprintf(why, whylen,
		    "app.json needs the sandbox to allow %s, but SANDBOX_GRANTS "
		    "allows %s: an admin grants it with `dpkg-reconfigure "
		    "myapp-zdd` (SANDBOX_GRANTS=%s)",
		    missing, grants ? granted : "nothing beyond strict",
		    setting);
		return -EPERM;
	}
	if (grants == needs)
		snprintf(line, n, "%s (%s)", granted,
		    needs ? "app.json myapp-zdd.needs, granted by "
			    "SANDBOX_GRANTS"
			  : "the default: the app declares no needs");
	else
		snprintf(line, n,
		    "%s (granted by SANDBOX_GRANTS; the app needs %s: the "
		    "units run what is granted)",
		    granted, needed);
	return 0;
}

/* "1.0 OK" from systemd-analyze security UNIT; -errno when unknown. */
int
profile_exposure(
    const struct zdd_config *cfg, const char *unit, char *out, size_t n)
{
	char *argv[] = { (char *)cfg->systemd_analyze, "security", "--no-pager",
		(char *)unit, NULL };
	struct spawn_opts o = { .in_fd = -1,
		.out_fd = -1,
		.err_fd = -1,
		.timeout_s = ANALYZE_TIMEOUT_S };
	static char text[ANALYZE_OUT_MAX];
	const char *mark = "Overall exposure level for ";
	char *at, *colon;
	int status, rc;

	rc = spawn_capture(argv, &o, text, sizeof(text), &status);
	if (rc < 0)
		return rc;
	at = strstr(text, mark);
	if (!spawn_ok(status) || at == NULL ||
	    (colon = strchr(at, ':')) == NULL)
		return -EIO;
	colon++;
	while (*colon == ' ')
		colon++;
	/* "0.6 SAFE" and no more: the rest is a face (an emoji in UTF-8) */
	{
		size_t num = strcspn(colon, " \n"), word = 0;

		if (colon[num] == ' ')
			word = strcspn(colon + num + 1, " \n\033");
		snprintf(
		    out, n, "%.*s", (int)(num + (word ? word + 1 : 0)), colon);
	}
	return 0;
}
