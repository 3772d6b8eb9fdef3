/*
 * Deploy history: one JSON object per line in APP_ROOT/deploys.jsonl,
 * appended with a single write(2) on an O_APPEND fd so lines never
 * interleave. Read back for two facts: which release ran the last release
 * command (a rollback behind it crosses a migration), and which release
 * last started a worker type (status).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "zdd.h"

#define HISTORY_LINE_MAX 16384 /* a line is < 8 KiB: reason and steps */

static int
add_string(json_object *o, const char *key, const char *value)
{
	json_object *v;

	if (value == NULL)
		return json_object_object_add(o, key, NULL);
	v = json_object_new_string(value);
	if (v == NULL)
		return -1;
	return json_object_object_add(o, key, v);
}

/* Milliseconds: with the steps' durations they place each step on the
 * same clock as a load client's request log. */
static int
add_time(json_object *o, const char *key, const struct timespec *t)
{
	char buf[48];
	struct tm tm;
	size_t n;

	if (gmtime_r(&t->tv_sec, &tm) == NULL ||
	    (n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm)) == 0)
		return -1;
	snprintf(buf + n, sizeof(buf) - n, ".%03ldZ", t->tv_nsec / 1000000);
	return add_string(o, key, buf);
}

int
history_format(const struct deploy_record *r, char **line)
{
	json_object *o, *steps;
	const char *text;
	int bad = 0;

	*line = NULL;
	o = json_object_new_object();
	steps = json_object_new_object();
	if (o == NULL || steps == NULL) {
		json_object_put(o);
		json_object_put(steps);
		return -ENOMEM;
	}
	bad |= add_string(o, "action", r->action);
	bad |= add_string(o, "id", r->id);
	bad |= add_string(o, "revision", r->revision);
	bad |= add_string(o, "branch", r->branch);
	bad |= add_string(o, "user", r->user);
	bad |= add_time(o, "started", &r->started);
	bad |= add_time(o, "finished", &r->finished);
	bad |= add_string(o, "result", r->result);
	bad |= add_string(o, "failed_step", r->failed_step);
	bad |= add_string(o, "reason", r->reason);
	bad |= add_string(o, "release_command", r->release_command);
	bad |=
	    add_string(o, "release_command_result", r->release_command_result);
	if (r->workers != NULL && r->workers->n > 0) {
		json_object *w = json_object_new_object();

		for (size_t i = 0; w != NULL && i < r->workers->n; i++)
			bad |= add_string(
			    w, r->workers->w[i].type, r->workers->w[i].result);
		if (w == NULL || json_object_object_add(o, "workers", w) < 0) {
			json_object_put(w);
			bad = 1;
		}
	}
	for (size_t i = 0; i < r->nsteps && i < ZDD_STEPS_MAX; i++) {
		/* milliseconds are enough and keep the line short */
		char num[32];
		json_object *v;

		snprintf(num, sizeof(num), "%.3f", r->steps[i].seconds);
		v = json_object_new_double_s(r->steps[i].seconds, num);

		if (v == NULL ||
		    json_object_object_add(steps, r->steps[i].name, v) < 0)
			bad = 1;
	}
	if (json_object_object_add(o, "seconds", steps) < 0) {
		json_object_put(steps);
		bad = 1;
	}
	text = bad
	    ? NULL
	    : json_object_to_json_string_ext(
		  o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (text != NULL && asprintf(line, "%s\n", text) < 0)
		*line = NULL;
	json_object_put(o);
	return *line ? 0 : -ENOMEM;
}

int
history_append(const char *app_root, const struct deploy_record *r)
{
	char path[ZDD_PATH_MAX + 32];
	char *line;
	ssize_t len;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/deploys.jsonl", app_root);
	rc = history_format(r, &line);
	if (rc < 0) {
		log_err("cannot record the deploy in %s: out of memory", path);
		return rc;
	}
	fd = open(
	    path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		rc = -errno;
		log_err("cannot record the deploy in %s: %m", path);
		free(line);
		return rc;
	}
	len = (ssize_t)strlen(line);
	if (write(fd, line, (size_t)len) != len) {
		rc = errno ? -errno : -EIO;
		log_err("cannot record the deploy in %s: %m", path);
	}
	if (close(fd) < 0 && rc == 0) {
		rc = -errno;
		log_err("cannot record the deploy in %s: %m", path);
	}
	free(line);
	return rc;
}

/* A history line's id when KEY (a top-level key, or "workers" and a
 * type) is VALUE. */
struct history_match {
	const char *key, *type, *value;
	char *id;
	size_t n;
};

static void
line_match(const char *line, const struct history_match *m)
{
	json_object *o = json_tokener_parse(line), *v, *idv;

	if (o != NULL && json_object_object_get_ex(o, m->key, &v) &&
	    (m->type == NULL || json_object_object_get_ex(v, m->type, &v)) &&
	    json_object_is_type(v, json_type_string) &&
	    strcmp(json_object_get_string(v), m->value) == 0 &&
	    json_object_object_get_ex(o, "id", &idv) &&
	    json_object_is_type(idv, json_type_string) &&
	    release_id_valid(json_object_get_string(idv)))
		snprintf(m->id, m->n, "%s", json_object_get_string(idv));
	json_object_put(o);
}

/* The id of the last line that matches m ("" when none). */
static int
history_last(const char *app_root, const struct history_match *m)
{
	char path[ZDD_PATH_MAX + 32], line[HISTORY_LINE_MAX];
	FILE *f;
	int rc = 0;

	m->id[0] = '\0';
	snprintf(path, sizeof(path), "%s/deploys.jsonl", app_root);
	f = fopen(path, "re");
	if (f == NULL)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t len = strlen(line);

		if (len > 0 && line[len - 1] != '\n' && !feof(f)) {
			/* longer than any line we write: skip the rest */
			int c;

			while ((c = fgetc(f)) != EOF && c != '\n')
				;
			continue;
		}
		line_match(line, m);
	}
	if (ferror(f))
		rc = -EIO;
	fclose(f);
	return rc;
}

int
history_last_release_command(const char *app_root, char *id, size_t n)
{
	return history_last(app_root,
	    &(struct history_match){ .key = "release_command_result",
		.value = "ok",
		.id = id,
		.n = n });
}

int
history_last_worker_start(
    const char *app_root, const char *type, char *id, size_t n)
{
	return history_last(app_root,
	    &(struct history_match){ .key = "workers",
		.type = type,
		.value = "running",
		.id = id,
		.n = n });
}
