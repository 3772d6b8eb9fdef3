"""Flask under gunicorn, for myapp-zdd: notes in SQLite in the state
directory, in the same table as the reference C app's (so notes survive a
change of app).

gunicorn does the socket work: it serves every socket systemd passes
(LISTEN_FDS, when LISTEN_PID is its own), else --bind or $PORT; it tells
systemd READY=1 when NOTIFY_SOCKET is set; on SIGTERM it stops accepting and
lets each worker finish its request (the sync worker answers every request
with `Connection: close`) within --graceful-timeout.
"""
import json
import os
import sqlite3
import time
from datetime import datetime, timezone

from flask import Flask, jsonify, request


def read_first(name):
    try:
        with open(name) as f:
            return f.read().strip()
    except OSError:
        return "unknown"


RELEASE = os.environ.get("ZDD_RELEASE") or read_first("RELEASE")
REVISION = read_first("REVISION")
STATE = os.environ.get("STATE_DIRECTORY", ".").split(":")[0]
DB = os.path.join(STATE, "notes.db")
SCHEMA = ("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL,"
          " created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))")
STARTED = time.time()

app = Flask(__name__)


def db():
    # Autocommit: each INSERT is its own transaction, on disk (synchronous=FULL)
    # before execute() returns, so a 201 is a durable write.
    conn = sqlite3.connect(DB, timeout=30, isolation_level=None)
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def init_db():
    conn = db()
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(SCHEMA)
    finally:
        conn.close()


init_db()


def utc(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@app.get("/")
def index():
    return "python-gunicorn example, release %s\n" % RELEASE, 200, {"Content-Type": "text/plain"}


@app.get("/healthz")
def healthz():
    return jsonify(status="ok", pid=os.getpid(), release=RELEASE)


@app.get("/api/status")
def status():
    now = time.time()
    return jsonify(status="ok", app="python-gunicorn", pid=os.getpid(), release=RELEASE,
                   revision=REVISION, started_at=utc(STARTED), uptime=int(now - STARTED),
                   now=utc(now))


@app.get("/slow")
def slow():
    """Answers after ?ms= milliseconds (at most 10 s): a request in flight."""
    try:
        ms = min(int(request.args.get("ms", "2000")), 10000)
    except ValueError:
        ms = 2000
    time.sleep(max(ms, 0) / 1000.0)
    return jsonify(status="ok", slow=ms)


def positive(s):
    return int(s) if s and s.isdigit() and s[0] != "0" and len(s) <= 18 else None


@app.get("/api/notes/<note_id>")
def note_get(note_id):
    n = positive(note_id)
    if n is None:
        return jsonify(error="no such note"), 404
    conn = db()
    try:
        row = conn.execute("SELECT id, text, created_at FROM notes WHERE id = ?", (n,)).fetchone()
    finally:
        conn.close()
    if row is None:
        return jsonify(error="no such note"), 404
    return jsonify(id=row[0], text=row[1], created_at=row[2])


@app.get("/api/notes")
def note_list():
    limit = positive(request.args.get("limit", "20"))
    if limit is None or limit > 1000:
        return jsonify(error="limit must be an integer from 1 to 1000"), 400
    before = request.args.get("before")
    if before is not None and positive(before) is None:
        return jsonify(error="before must be a note id (a positive integer)"), 400
    conn = db()
    try:
        if before is None:
            rows = conn.execute("SELECT id, text, created_at FROM notes ORDER BY id DESC LIMIT ?",
                                (limit,)).fetchall()
        else:
            rows = conn.execute("SELECT id, text, created_at FROM notes WHERE id < ?"
                                " ORDER BY id DESC LIMIT ?", (positive(before), limit)).fetchall()
    finally:
        conn.close()
    return jsonify(notes=[{"id": r[0], "text": r[1], "created_at": r[2]} for r in rows],
                   truncated=False)


@app.post("/api/notes")
def note_post():
    if request.mimetype != "application/json":
        return jsonify(error="Content-Type must be application/json"), 415
    if (request.content_length or 0) > 65536:
        return jsonify(error="body too large"), 413
    try:
        text = json.loads(request.get_data())["text"]
    except (ValueError, KeyError, TypeError):
        text = None
    if not isinstance(text, str):
        return jsonify(error='expected {"text": "..."}'), 400
    conn = db()
    try:
        note_id = conn.execute("INSERT INTO notes(text) VALUES (?)", (text,)).lastrowid
    finally:
        conn.close()
    return jsonify(id=note_id), 201


@app.errorhandler(404)
def not_found(e):
    return jsonify(error="not found"), 404


@app.errorhandler(405)
def not_allowed(e):
    return jsonify(error="method not allowed"), 405
