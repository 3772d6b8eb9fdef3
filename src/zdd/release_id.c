/* Release ids: UTC YYYYmmddHHMMSS-<sha7>, so they sort by time. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "zdd.h"

#define ID_TIME_LEN 14
#define ID_SHA_LEN 7
#define ID_LEN (ID_TIME_LEN + 1 + ID_SHA_LEN)

int
release_id_make(time_t t, const char *sha, char *out, size_t n)
{
	struct tm tm;
	char stamp[ID_TIME_LEN + 1];

	if (strlen(sha) < ID_SHA_LEN || n < ID_LEN + 1 ||
	    gmtime_r(&t, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm) != ID_TIME_LEN)
		return -EINVAL;
	for (int i = 0; i < ID_SHA_LEN; i++)
		if (!isxdigit((unsigned char)sha[i]))
			return -EINVAL;
	snprintf(out, n, "%s-%.*s", stamp, ID_SHA_LEN, sha);
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

bool
release_id_valid(const char *id)
{
	if (strlen(id) != ID_LEN || id[ID_TIME_LEN] != '-')
		return false;
	for (int i = 0; i < ID_LEN; i++) {
		if (i == ID_TIME_LEN)
			continue;
		if (i < ID_TIME_LEN ? !isdigit((unsigned char)id[i])
				    : !(isdigit((unsigned char)id[i]) ||
					  (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	}
	return true;
}

/* Is releases/<entry> free?  Negative when its path does not fit. */
static int
entry_free(const char *app_root, const char *entry)
{
	char path[ZDD_RELEASE_PATH_MAX];
	int rc;

	rc = release_path(app_root, entry, NULL, path, sizeof(path));
	if (rc < 0)
		return rc;
	return !path_exists(path);
}

/*
 * Two deploys in the same second (same commit redeployed, or a very fast
 * build) must not collide: step the time forward until the id is free.
 * Ids stay sortable; we run under the deploy lock, so this is race-free.
 */
int
release_id_pick(const char *app_root, const char *sha, char *out, size_t n,
    char *why, size_t whylen)
{
	char tmpname[ZDD_ID_MAX + 8];
	time_t t = time(NULL);
	int rc;

	for (int tries = 0; tries < 600; tries++, t++) {
		if (release_id_make(t, sha, out, n) < 0) {
			snprintf(why, whylen,
			    "cannot make a release id of "
			    "'%.7s'",
			    sha);
			return -EINVAL;
		}
		snprintf(tmpname, sizeof(tmpname), "%s.tmp", out);
		if ((rc = entry_free(app_root, out)) < 0 ||
		    (rc == 1 && (rc = entry_free(app_root, tmpname)) < 0)) {
			snprintf(why, whylen,
			    "release path too long "
			    "(APP_ROOT)");
			return rc;
		}
		if (rc == 1)
			return 0;
	}
	snprintf(why, whylen, "cannot find a free release id for %.7s", sha);
	return -EEXIST;
}
