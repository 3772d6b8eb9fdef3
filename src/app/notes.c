/* Notes storage. Durability: WAL with synchronous=FULL fsyncs the WAL at every
 * COMMIT, so a note acknowledged after its commit survives a crash or power
 * loss. Throughput: fsync is the cost, so one writer thread takes every insert
 * queued meanwhile and commits them together (group commit); each request is
 * answered only after the commit that holds its row. Two processes (old and
 * new release) may write the same file: BEGIN IMMEDIATE takes the write lock
 * up front and a busy timeout plus retry keeps "database is locked" away from
 * clients. */
#include "notes.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <sqlite3.h>

#include "clock.h"

#define BUSY_TIMEOUT_MS 5000 /* per attempt, inside SQLite */
#define WRITE_RETRY_MS 20000 /* overall, below the unit's 30 s stop timeout */
#define READERS_MAX 16

struct reader {
	sqlite3 *db;
	sqlite3_stmt *get;
	sqlite3_stmt *list;
	int in_use;
};

struct notes {
	char *path;
	sqlite3 *wdb;
	sqlite3_stmt *insert;
	pthread_t writer;
	int writer_started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct note_write *head, *tail;
	int stopping;
	pthread_mutex_t readers_lock;
	pthread_cond_t reader_free;
	struct reader readers[READERS_MAX];
	atomic_int fail_commits;
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS notes ("
    " id INTEGER PRIMARY KEY,"
    " text TEXT NOT NULL,"
    " created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))";

static void
sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
		.tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int
is_busy(int rc)
{
	return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

/* sqlite3_exec, retried while another process holds a lock. */
static int
exec_retry(sqlite3 *db, const char *sql,
    int (*cb)(void *, int, char **, char **), void *arg)
{
	int64_t deadline = monotonic_ms() + WRITE_RETRY_MS;

	for (;;) {
		int rc = sqlite3_exec(db, sql, cb, arg, NULL);
		if (!is_busy(rc) || monotonic_ms() > deadline)
			return rc;
		sleep_ms(5);
	}
}

/*
 * While old and new release overlap, two processes' writers take turns on
 * the write lock; a commit holds it for about one fsync. SQLite's own busy
 * timeout sleeps 1, 2, 5, 10, 15 … 100 ms between tries, so a writer that
 * found the lock taken may sleep long after it is free again. Poll in short
 * steps instead (50 us doubling to 1 ms), for as long as the timeout allows.
 * (Measured: no difference in the handover's POST p99 on a quiet machine;
 * it bounds the wait where the default's sleeps would not.)
 */
static int
busy_wait(void *arg, int tries)
{
	static const long step_us[] = { 50, 100, 200, 400, 800 };
	long us = tries < (int)(sizeof(step_us) / sizeof(step_us[0]))
	    ? step_us[tries]
	    : 1000;
	struct timespec ts = { 0, us * 1000 };

	(void)arg;
	/* tries 0..4 sleep 1.55 ms in all, then 1 ms each: BUSY_TIMEOUT_MS */
	if (tries >= 5 + BUSY_TIMEOUT_MS)
		return 0;
	nanosleep(&ts, NULL);
	return 1;
}

static int
check_wal(void *arg, int ncol, char **vals, char **names)
{
	(void)names;
	*(int *)arg = ncol == 1 && vals[0] && strcmp(vals[0], "wal") == 0;
	return 0;
}

static int
open_db(const char *path, sqlite3 **out)
{
	sqlite3 *db = NULL;
	int is_wal = 0;
	int rc;

	rc = sqlite3_open_v2(path, &db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	    NULL);
	if (rc != SQLITE_OK) {
		fprintf(stderr, "myapp: cannot open database %s: %s\n", path,
		    db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_handler(db, busy_wait, NULL);
	rc = exec_retry(db, "PRAGMA journal_mode=WAL", check_wal, &is_wal);
	if (rc != SQLITE_OK || !is_wal) {
		fprintf(stderr, "myapp: cannot put %s in WAL mode: %s\n", path,
		    sqlite3_errmsg(db));
		goto fail;
	}
	rc = exec_retry(db, "PRAGMA synchronous=FULL", NULL, NULL);
	if (rc != SQLITE_OK) {
		fprintf(stderr,
		    "myapp: cannot set synchronous=FULL on %s: %s\n", path,
		    sqlite3_errmsg(db));
		goto fail;
	}
	*out = db;
	return 0;
fail:
	sqlite3_close(db);
	return -EIO;
}

static int
prepare(sqlite3 *db, const char *sql, sqlite3_stmt **stmt)
{
	int rc = sqlite3_prepare_v3(
	    db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL);

	if (rc != SQLITE_OK) {
		fprintf(stderr, "myapp: cannot prepare \"%s\": %s\n", sql,
		    sqlite3_errmsg(db));
		return -EIO;
	}
	return 0;
}

/* Returns 0 or -EIO; on failure the transaction is rolled back whole. */
static int
commit_batch(struct notes *n, struct note_write *batch)
{
	int rc;

	rc = exec_retry(n->wdb, "BEGIN IMMEDIATE", NULL, NULL);
	if (rc != SQLITE_OK) {
		fprintf(stderr, "myapp: cannot begin a write transaction: %s\n",
		    sqlite3_errmsg(n->wdb));
		return is_busy(rc) ? -EBUSY : -EIO;
	}
	for (struct note_write *w = batch; w; w = w->next) {
		sqlite3_reset(n->insert);
		if (sqlite3_bind_text(n->insert, 1, w->text, (int)w->text_len,
			SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_step(n->insert) != SQLITE_DONE) {
			fprintf(stderr, "myapp: cannot insert note: %s\n",
			    sqlite3_errmsg(n->wdb));
			goto rollback;
		}
		w->id = sqlite3_last_insert_rowid(n->wdb);
	}
	sqlite3_reset(n->insert);
	sqlite3_clear_bindings(n->insert);
	if (atomic_load(&n->fail_commits))
		goto rollback;
	rc = exec_retry(n->wdb, "COMMIT", NULL, NULL);
	if (rc != SQLITE_OK) {
		fprintf(stderr, "myapp: cannot commit notes: %s\n",
		    sqlite3_errmsg(n->wdb));
		goto rollback;
	}
	return 0;
rollback:
	sqlite3_reset(n->insert);
	sqlite3_clear_bindings(n->insert);
	if (sqlite3_get_autocommit(n->wdb) == 0)
		sqlite3_exec(n->wdb, "ROLLBACK", NULL, NULL, NULL);
	return -EIO;
}

static void *
writer_main(void *arg)
{
	struct notes *n = arg;

	for (;;) {
		struct note_write *batch, *next;
		int result;

		pthread_mutex_lock(&n->lock);
		while (!n->head && !n->stopping)
			pthread_cond_wait(&n->wake, &n->lock);
		batch = n->head;
		n->head = n->tail = NULL;
		pthread_mutex_unlock(&n->lock);
		if (!batch)
			break; /* stopping and nothing left */
		result = commit_batch(n, batch);
		for (struct note_write *w = batch; w; w = next) {
			next =
			    w->next; /* w belongs to its owner once done() ran */
			w->result = result;
			if (result < 0)
				w->id = 0;
			w->done(w);
		}
	}
	return NULL;
}

int
notes_open(struct notes **out, const char *state_dir)
{
	struct notes *n;
	int ret = -ENOMEM;

	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->wake, NULL);
	pthread_mutex_init(&n->readers_lock, NULL);
	pthread_cond_init(&n->reader_free, NULL);
	if (asprintf(&n->path, "%s/%s", state_dir, NOTES_DB_NAME) < 0) {
		n->path = NULL;
		goto fail;
	}
	ret = open_db(n->path, &n->wdb);
	if (ret < 0)
		goto fail;
	ret = -EIO;
	if (exec_retry(n->wdb, schema_sql, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr,
		    "myapp: cannot create the notes table in %s: %s\n", n->path,
		    sqlite3_errmsg(n->wdb));
		goto fail;
	}
	ret =
	    prepare(n->wdb, "INSERT INTO notes(text) VALUES (?1)", &n->insert);
	if (ret < 0)
		goto fail;
	ret = -pthread_create(&n->writer, NULL, writer_main, n);
	if (ret < 0) {
		fprintf(stderr, "myapp: cannot start the notes writer: %s\n",
		    strerror(-ret));
		goto fail;
	}
	n->writer_started = 1;
	*out = n;
	return 0;
fail:
	notes_close(n);
	return ret;
}

void
notes_close(struct notes *n)
{
	if (!n)
		return;
	if (n->writer_started) {
		pthread_mutex_lock(&n->lock);
		n->stopping = 1;
		pthread_cond_signal(&n->wake);
		pthread_mutex_unlock(&n->lock);
		pthread_join(n->writer, NULL);
	}
	for (int i = 0; i < READERS_MAX; i++) {
		sqlite3_finalize(n->readers[i].get);
		sqlite3_finalize(n->readers[i].list);
		sqlite3_close(n->readers[i].db);
	}
	sqlite3_finalize(n->insert);
	sqlite3_close(n->wdb);
	pthread_cond_destroy(&n->reader_free);
	pthread_mutex_destroy(&n->readers_lock);
	pthread_cond_destroy(&n->wake);
	pthread_mutex_destroy(&n->lock);
	free(n->path);
	free(n);
}

int
notes_submit(struct notes *n, struct note_write *w)
{
	if (!w->done || !w->text)
		return -EINVAL;
	w->next = NULL;
	w->id = 0;
	w->result = 0;
	pthread_mutex_lock(&n->lock);
	if (n->stopping) {
		pthread_mutex_unlock(&n->lock);
		return -ESHUTDOWN;
	}
	if (n->tail)
		n->tail->next = w;
	else
		n->head = w;
	n->tail = w;
	pthread_cond_signal(&n->wake);
	pthread_mutex_unlock(&n->lock);
	return 0;
}

struct insert_waiter {
	struct note_write w;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int finished;
};

static void
insert_waiter_done(struct note_write *w)
{
	struct insert_waiter *iw = w->arg;

	pthread_mutex_lock(&iw->lock);
	iw->finished = 1;
	pthread_cond_signal(&iw->cond);
	pthread_mutex_unlock(&iw->lock);
}

int64_t
notes_insert_wait(struct notes *n, const char *text, size_t text_len)
{
	struct insert_waiter iw = { .finished = 0 };
	int ret;

	iw.w.text = text;
	iw.w.text_len = text_len;
	iw.w.done = insert_waiter_done;
	iw.w.arg = &iw;
	pthread_mutex_init(&iw.lock, NULL);
	pthread_cond_init(&iw.cond, NULL);
	ret = notes_submit(n, &iw.w);
	if (ret == 0) {
		pthread_mutex_lock(&iw.lock);
		while (!iw.finished)
			pthread_cond_wait(&iw.cond, &iw.lock);
		pthread_mutex_unlock(&iw.lock);
		ret = iw.w.result;
	}
	pthread_cond_destroy(&iw.cond);
	pthread_mutex_destroy(&iw.lock);
	return ret < 0 ? ret : iw.w.id;
}

/* Readers: a small pool of connections, one user at a time each; WAL lets
 * them read while the writer commits. */
static int
reader_open(struct notes *n, struct reader *r)
{
	int ret = open_db(n->path, &r->db);

	if (ret < 0)
		return ret;
	if (prepare(r->db,
		"SELECT id, text, created_at FROM notes WHERE id = ?1",
		&r->get) < 0 ||
	    prepare(r->db,
		"SELECT id, text, created_at FROM notes WHERE id <= ?2 ORDER BY id DESC LIMIT ?1",
		&r->list) < 0) {
		sqlite3_finalize(r->get);
		sqlite3_close(r->db);
		memset(r, 0, sizeof(*r));
		return -EIO;
	}
	return 0;
}

static struct reader *
reader_get(struct notes *n)
{
	struct reader *found = NULL;

	pthread_mutex_lock(&n->readers_lock);
	while (!found) {
		struct reader *unopened = NULL;

		for (int i = 0; i < READERS_MAX && !found; i++) {
			if (n->readers[i].db && !n->readers[i].in_use)
				found = &n->readers[i];
			else if (!n->readers[i].db && !unopened)
				unopened = &n->readers[i];
		}
		if (!found && unopened) {
			if (reader_open(n, unopened) < 0)
				break;
			found = unopened;
		}
		if (!found)
			pthread_cond_wait(&n->reader_free, &n->readers_lock);
	}
	if (found)
		found->in_use = 1;
	pthread_mutex_unlock(&n->readers_lock);
	return found;
}

static void
reader_put(struct notes *n, struct reader *r)
{
	pthread_mutex_lock(&n->readers_lock);
	r->in_use = 0;
	pthread_cond_signal(&n->reader_free);
	pthread_mutex_unlock(&n->readers_lock);
}

static struct json_object *
row_to_json(sqlite3_stmt *stmt)
{
	struct json_object *obj = json_object_new_object();
	const char *text = (const char *)sqlite3_column_text(stmt, 1);
	const char *created = (const char *)sqlite3_column_text(stmt, 2);

	if (!obj)
		return NULL;
	if (json_object_object_add(obj, "id",
		json_object_new_int64(sqlite3_column_int64(stmt, 0))) < 0 ||
	    json_object_object_add(obj, "text",
		json_object_new_string_len(
		    text ? text : "", sqlite3_column_bytes(stmt, 1))) < 0 ||
	    json_object_object_add(obj, "created_at",
		json_object_new_string(created ? created : "")) < 0) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

/* Step a read statement, retrying the rare SQLITE_BUSY of WAL readers. */
static int
step_retry(sqlite3_stmt *stmt)
{
	int64_t deadline = monotonic_ms() + WRITE_RETRY_MS;

	for (;;) {
		int rc = sqlite3_step(stmt);
		if (!is_busy(rc) || monotonic_ms() > deadline)
			return rc;
		sqlite3_reset(stmt);
		sleep_ms(5);
	}
}

int
notes_get(struct notes *n, int64_t id, struct json_object **out)
{
	struct reader *r = reader_get(n);
	int ret = -EIO;
	int rc;

	*out = NULL;
	if (!r)
		return -EIO;
	sqlite3_bind_int64(r->get, 1, id);
	rc = step_retry(r->get);
	if (rc == SQLITE_ROW) {
		*out = row_to_json(r->get);
		ret = *out ? 0 : -ENOMEM;
	} else if (rc == SQLITE_DONE) {
		ret = -ENOENT;
	} else {
		fprintf(stderr, "myapp: cannot read note %lld: %s\n",
		    (long long)id, sqlite3_errmsg(r->db));
	}
	sqlite3_reset(r->get);
	reader_put(n, r);
	return ret;
}

/* The most JSON text json-c prints for a string of len bytes, quotes
 * included: '"', '\\' and '/' take 2 bytes, control bytes up to 6
 * ("\u00XX"), anything else 1 (json-c copies UTF-8 as it is). */
static size_t
json_string_max(const unsigned char *s, size_t len)
{
	size_t out = 2;

	for (size_t i = 0; i < len; i++)
		out += s[i] < 0x20                                 ? 6
		    : (s[i] == '"' || s[i] == '\\' || s[i] == '/') ? 2
								   : 1;
	return out;
}

/* The most JSON text of row_to_json(stmt) with its separator in an array:
 * {"id":N,"text":"...","created_at":"..."} and a comma. */
static size_t
row_json_max(sqlite3_stmt *stmt)
{
	static const char frame[] = "{\"id\":,\"text\":,\"created_at\":},";
	const unsigned char *text = sqlite3_column_text(stmt, 1);
	const unsigned char *created = sqlite3_column_text(stmt, 2);

	return sizeof(frame) - 1 + 20 /* digits of an int64 and its sign */ +
	    json_string_max(
		text, text ? (size_t)sqlite3_column_bytes(stmt, 1) : 0) +
	    json_string_max(
		created, created ? (size_t)sqlite3_column_bytes(stmt, 2) : 0);
}

int
notes_list(struct notes *n, int limit, int64_t before, size_t max_bytes,
    struct json_object **out, int64_t *next)
{
	struct json_object *arr = NULL;
	struct reader *r;
	size_t used = 2; /* [] */
	int64_t last_id = 0;
	int ret = -EIO;
	int rc;

	*out = NULL;
	*next = 0;
	if (limit < 0 || limit > NOTES_LIST_MAX || before < 0 ||
	    max_bytes < used)
		return -EINVAL;
	arr = json_object_new_array();
	if (!arr)
		return -ENOMEM;
	r = reader_get(n);
	if (!r)
		goto out;
	sqlite3_bind_int(r->list, 1, limit);
	sqlite3_bind_int64(r->list, 2, before > 0 ? before - 1 : INT64_MAX);
	while ((rc = step_retry(r->list)) == SQLITE_ROW) {
		struct json_object *row;
		size_t size = row_json_max(r->list);

		/* Over the budget: stop, unless this is the first note (then the
		 * list holds it alone rather than never listing it). */
		if (last_id != 0 && size > max_bytes - used) {
			*next = last_id;
			rc = SQLITE_DONE;
			break;
		}
		row = row_to_json(r->list);
		if (!row || json_object_array_add(arr, row) < 0) {
			json_object_put(row);
			ret = -ENOMEM;
			goto out_reset;
		}
		used = size > max_bytes - used ? max_bytes : used + size;
		last_id = sqlite3_column_int64(r->list, 0);
	}
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "myapp: cannot list notes: %s\n",
		    sqlite3_errmsg(r->db));
		goto out_reset;
	}
	*out = arr;
	arr = NULL;
	ret = 0;
out_reset:
	sqlite3_reset(r->list);
	reader_put(n, r);
out:
	json_object_put(arr);
	return ret;
}

void
notes_fail_commits(struct notes *n, int fail)
{
	atomic_store(&n->fail_commits, fail);
}
