/* Notes storage: SQLite in WAL mode with synchronous=FULL, one writer thread
 * that commits every pending insert in one transaction (group commit). */
#ifndef MYAPP_NOTES_H
#define MYAPP_NOTES_H

#include <stddef.h>
#include <stdint.h>

struct json_object;
struct notes;

#define NOTES_LIST_MAX 1000 /* upper bound of ?limit= */
#define NOTES_DB_NAME "notes.db"

/* One pending insert. The caller owns it until done() runs (on the writer
 * thread); after done() the writer never touches it again. */
struct note_write {
	const char *text;
	size_t text_len;
	int64_t id; /* set before done() when result == 0 */
	int result; /* 0 or a negative errno */
	void (*done)(struct note_write *w);
	void *arg;
	struct note_write *next; /* the writer's queue */
};

int notes_open(struct notes **out, const char *state_dir);
/* Stops the writer after it finished every queued insert. */
void notes_close(struct notes *n);

/* Queue an insert; done() runs once it is durably committed (or failed). */
int notes_submit(struct notes *n, struct note_write *w);
/* Queue and wait; returns the id (> 0) or a negative errno. */
int64_t notes_insert_wait(struct notes *n, const char *text, size_t text_len);

/* *out: {"id":N,"text":"...","created_at":"..."}; -ENOENT when absent. */
int notes_get(struct notes *n, int64_t id, struct json_object **out);
/* *out: array of notes, newest first, with ids below before (0: no bound),
 * at most limit of them and at most max_bytes as JSON text (counted as json-c
 * prints the array at worst: every control byte escaped); a first note
 * larger than max_bytes on its own is listed alone, so every note can be
 * listed. *next: 0 when the list holds every note asked for; else the id to
 * pass as before for the rest (notes were left out for max_bytes). */
int notes_list(struct notes *n, int limit, int64_t before, size_t max_bytes,
    struct json_object **out, int64_t *next);

/* Failure injection for tests: every commit fails with -EIO while set. */
void notes_fail_commits(struct notes *n, int fail);

#endif
