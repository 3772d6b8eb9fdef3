/*
 * pre-receive stdin: one "<old-sha> <new-sha> <ref>" line per updated
 * ref.  Parsed strictly; anything else is refused rather than guessed.
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "zdd.h"

bool
sha_valid(const char *sha)
{
	size_t len = strlen(sha);

	if (len != 40 && len != 64)
		return false;
	for (; *sha != '\0'; sha++)
		if (!isdigit((unsigned char)*sha) &&
		    !(*sha >= 'a' && *sha <= 'f'))
			return false;
	return true;
}

bool
sha_is_zero(const char *sha)
{
	return sha[0] != '\0' && strspn(sha, "0") == strlen(sha);
}

static int
take_field(const char **p, char *out, size_t n, char sep)
{
	const char *end = strchr(*p, sep);
	size_t len;

	if (end == NULL)
		end = *p + strlen(*p);
	len = (size_t)(end - *p);
	if (len == 0 || len >= n)
		return -EINVAL;
	memcpy(out, *p, len);
	out[len] = '\0';
	*p = *end ? end + 1 : end;
	return 0;
}

int
refline_parse(const char *line, struct ref_update *u)
{
	const char *p = line;
	size_t len;

	memset(u, 0, sizeof(*u));
	if (take_field(&p, u->old_sha, sizeof(u->old_sha), ' ') < 0 ||
	    take_field(&p, u->new_sha, sizeof(u->new_sha), ' ') < 0 ||
	    take_field(&p, u->ref, sizeof(u->ref), '\n') < 0)
		return -EINVAL;
	if (*p != '\0' || !sha_valid(u->old_sha) || !sha_valid(u->new_sha) ||
	    strlen(u->old_sha) != strlen(u->new_sha))
		return -EINVAL;
	len = strlen(u->ref);
	if (strncmp(u->ref, "refs/", 5) != 0 || strchr(u->ref, ' ') ||
	    u->ref[len - 1] == '/')
		return -EINVAL;
	return 0;
}
