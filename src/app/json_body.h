/* The note request body: {"text": "..."}. */
#ifndef MYAPP_JSON_BODY_H
#define MYAPP_JSON_BODY_H

#include <stddef.h>

/* Parse body; on success *text is a malloc'd copy (NUL-terminated, may hold
 * no NUL inside) and *text_len its length. On failure returns a negative errno
 * and sets *why to a static message for the client. */
int json_body_note_text(const char *body, size_t len, char **text,
    size_t *text_len, const char **why);

#endif
