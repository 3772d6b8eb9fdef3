/* Strict JSON parsing of the note body through json-c. */
#include "json_body.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#ifndef JSON_TOKENER_VALIDATE_UTF8
#define JSON_TOKENER_VALIDATE_UTF8 0 /* older json-c: no UTF-8 check */
#endif

#define BODY_MAX_DEPTH 8 /* a note is one flat object */

/*
 * json-c 0.17+ in strict mode refuses every byte >= 0x80 inside a string (a
 * signed-char comparison; trixie's 0.18 has it), so UTF-8 text would be
 * refused. Strictness is about the structure, where such bytes are never
 * valid anyway: check the structure strictly on a copy with those bytes
 * masked as ASCII, and take the text from a second, UTF-8-validating parse.
 */
static bool
has_high_bytes(const char *body, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)body[i] >= 0x80)
			return true;
	return false;
}

static int
strict_structure_ok(const char *body, size_t len)
{
	struct json_tokener *tok;
	struct json_object *root;
	char *masked;
	int ok;

	masked = malloc(len);
	if (!masked)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		masked[i] = body[i];
		if ((unsigned char)body[i] >= 0x80)
			masked[i] = 'x';
	}
	tok = json_tokener_new_ex(BODY_MAX_DEPTH);
	if (!tok) {
		free(masked);
		return -ENOMEM;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	root = json_tokener_parse_ex(tok, masked, (int)len);
	ok = root && json_tokener_get_error(tok) == json_tokener_success;
	json_object_put(root);
	json_tokener_free(tok);
	free(masked);
	return ok ? 0 : -EINVAL;
}

int
json_body_note_text(const char *body, size_t len, char **text, size_t *text_len,
    const char **why)
{
	struct json_tokener *tok = NULL;
	struct json_object *root = NULL, *field = NULL;
	const char *value;
	int value_len;
	int ret = -EINVAL;

	*text = NULL;
	*text_len = 0;
	*why = "malformed JSON";
	if (len == 0 || len > (size_t)INT32_MAX) {
		*why = len == 0 ? "empty body" : "body too large";
		return -EINVAL;
	}
	tok = json_tokener_new_ex(BODY_MAX_DEPTH);
	if (!tok) {
		*why = "out of memory";
		return -ENOMEM;
	}
	if (has_high_bytes(body, len)) {
		ret = strict_structure_ok(body, len);
		if (ret < 0) {
			if (ret == -ENOMEM)
				*why = "out of memory";
			goto out;
		}
		ret = -EINVAL;
		json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
	} else {
		json_tokener_set_flags(
		    tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	}
	root = json_tokener_parse_ex(tok, body, (int)len);
	if (!root || json_tokener_get_error(tok) != json_tokener_success)
		goto out;
	/* Only whitespace may follow the object. */
	for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
		if (!strchr(" \t\r\n", body[i]))
			goto out;
	if (!json_object_is_type(root, json_type_object)) {
		*why = "body must be a JSON object";
		goto out;
	}
	if (!json_object_object_get_ex(root, "text", &field)) {
		*why = "missing field: text";
		goto out;
	}
	if (!json_object_is_type(field, json_type_string)) {
		*why = "field text must be a string";
		goto out;
	}
	value = json_object_get_string(field);
	value_len = json_object_get_string_len(field);
	if (value_len <= 0) {
		*why = "field text must not be empty";
		goto out;
	}
	if (memchr(value, '\0', (size_t)value_len)) {
		*why = "field text must not contain NUL";
		goto out;
	}
	*text = strndup(value, (size_t)value_len);
	if (!*text) {
		*why = "out of memory";
		ret = -ENOMEM;
		goto out;
	}
	*text_len = (size_t)value_len;
	*why = NULL;
	ret = 0;
out:
	json_object_put(root);
	json_tokener_free(tok);
	return ret;
}
