/* Release identity: which release and revision this process serves. */
#ifndef MYAPP_IDENTITY_H
#define MYAPP_IDENTITY_H

#include <stddef.h>

#define IDENTITY_MAX 128

struct identity {
	char release[IDENTITY_MAX];
	char revision[IDENTITY_MAX];
};

/* From ZDD_RELEASE / ZDD_REVISION, else the RELEASE / REVISION files in
 * dir, else "unknown". Never fails. */
void identity_load(struct identity *id, const char *dir);

/* Copy one value, keeping only printable ASCII up to the first line end;
 * "unknown" when nothing is left. Exposed for tests. */
void identity_clean(
    char *dst, size_t dst_size, const char *src, size_t src_len);

#endif
