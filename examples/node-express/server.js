'use strict';
// The guide's app: Express on the socket systemd passes (fd 3), else on
// $PORT. Notes in SQLite in the state directory, in the same table as the
// reference C app's (so they survive a change of app), made by the release
// command (migrate.js). Two processes share the socket (app.json formation). Ready when /healthz
// answers (no sd_notify). On SIGTERM: stop accepting, close idle keep-alive
// connections, answer what is in flight with `Connection: close`, exit 0.
//
// express and sqlite3 are Debian's (node-express, node-sqlite3): Debian's
// node finds them in /usr/share/nodejs and /usr/lib/*/nodejs.
const fs = require('fs');
const path = require('path');
const express = require('express');
const sqlite3 = require('sqlite3');

const readFirst = (file) => {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (e) {
    return 'unknown';
  }
};
const RELEASE = process.env.ZDD_RELEASE || readFirst('RELEASE');
const REVISION = readFirst('REVISION');
const STATE = (process.env.STATE_DIRECTORY || '.').split(':')[0];
const startedAt = new Date();
let requests = 0;
let stopping = false;

const db = new sqlite3.Database(path.join(STATE, 'notes.db'));
db.configure('busyTimeout', 30000);
db.serialize(() => {
  db.run('PRAGMA journal_mode=WAL');
  // A commit is on disk before its callback runs: a 201 is a durable write.
  db.run('PRAGMA synchronous=FULL');
  // The table is the release command's (migrate.js), made before this
  // release started.
});

const app = express();
app.disable('x-powered-by');
app.disable('etag');

// Once stopping, every answer closes its connection (set when the head is
// written, so a request that was in flight at SIGTERM gets it too).
app.use((req, res, next) => {
  requests++;
  const writeHead = res.writeHead;
  res.writeHead = function (...args) {
    if (stopping) res.setHeader('Connection', 'close');
    return writeHead.apply(this, args);
  };
  next();
});

app.get('/', (req, res) => {
  res.type('text/plain').send(`node-express example, release ${RELEASE}\n`);
});

app.get('/healthz', (req, res) => {
  res.status(stopping ? 503 : 200)
    .json({status: stopping ? 'draining' : 'ok', pid: process.pid, release: RELEASE});
});

app.get('/api/status', (req, res) => {
  res.json({
    status: stopping ? 'draining' : 'ok',
    app: 'node-express',
    pid: process.pid,
    release: RELEASE,
    revision: REVISION,
    started_at: startedAt.toISOString(),
    uptime: Math.floor((Date.now() - startedAt) / 1000),
    now: new Date().toISOString(),
    requests,
  });
});

// GET /slow?ms=N: answers after N ms (at most 10 s): a request in flight.
app.get('/slow', (req, res) => {
  const ms = Math.min(Number.parseInt(req.query.ms, 10) || 2000, 10000);
  setTimeout(() => res.json({status: 'ok', slow: ms, stopping}), ms);
});

const positive = (s) => (/^[1-9][0-9]{0,17}$/.test(s || '') ? Number(s) : null);

app.get('/api/notes/:id', (req, res) => {
  const id = positive(req.params.id);
  if (id === null) return res.status(404).json({error: 'no such note'});
  db.get('SELECT id, text, created_at FROM notes WHERE id = ?', [id], (err, row) => {
    if (err) return res.status(500).json({error: 'storage failure'});
    if (!row) return res.status(404).json({error: 'no such note'});
    res.json(row);
  });
});

app.get('/api/notes', (req, res) => {
  const limit = req.query.limit === undefined ? 20 : positive(req.query.limit);
  const before = req.query.before === undefined ? null : positive(req.query.before);
  if (limit === null || limit > 1000) {
    return res.status(400).json({error: 'limit must be an integer from 1 to 1000'});
  }
  if (req.query.before !== undefined && before === null) {
    return res.status(400).json({error: 'before must be a note id (a positive integer)'});
  }
  const sql = before === null
    ? 'SELECT id, text, created_at FROM notes ORDER BY id DESC LIMIT ?'
    : 'SELECT id, text, created_at FROM notes WHERE id < ? ORDER BY id DESC LIMIT ?';
  db.all(sql, before === null ? [limit] : [before, limit], (err, rows) => {
    if (err) return res.status(500).json({error: 'storage failure'});
    res.json({notes: rows, truncated: false});
  });
});

app.post('/api/notes', (req, res, next) => {
  if (!req.is('application/json')) {
    return res.status(415).json({error: 'Content-Type must be application/json'});
  }
  next();
}, express.json({limit: '64kb', strict: true}), (req, res) => {
  const text = req.body && req.body.text;
  if (typeof text !== 'string') return res.status(400).json({error: 'expected {"text": "..."}'});
  db.run('INSERT INTO notes(text) VALUES (?)', [text], function (err) {
    if (err) return res.status(500).json({error: 'storage failure'});
    res.status(201).json({id: this.lastID});
  });
});

app.use((req, res) => res.status(404).json({error: 'not found'}));
// Bad JSON, a body too large: express's status, our shape.
app.use((err, req, res, next) => {
  res.status(err.status || 500).json({error: err.status ? err.message : 'internal error'});
});

const server = app.listen(process.env.LISTEN_FDS ? {fd: 3} : {port: Number(process.env.PORT) || 3000});
// Longer than nginx's upstream keepalive_timeout (500 ms): the proxy closes
// an idle connection first, never the app under a request on its way.
server.keepAliveTimeout = 5000;
server.headersTimeout = 10000;

process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  // Busy connections close after their answer (Connection: close). Idle
  // keep-alive ones are closed only after 1 s: nginx drops an idle upstream
  // connection after 500 ms (its keepalive_timeout), so by then none has a
  // request on its way that our close would reset (a POST nginx must not
  // resend: a 502). Closing them at once lost 5-7 POSTs in 20 handovers at
  // 500 req/s; with the linger, 0 (docs/benchmark.md). Node 18 leaves idle
  // connections open on close(), 19+ closes them itself: both after 1 s.
  setTimeout(() => {
    server.close(() => db.close(() => process.exit(0)));
    if (server.closeIdleConnections) server.closeIdleConnections();
  }, 1000);
  setTimeout(() => {
    if (server.closeAllConnections) server.closeAllConnections();
    process.exit(0);
  }, 20000).unref();
});
