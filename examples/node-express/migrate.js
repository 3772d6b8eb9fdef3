'use strict';
// The release command (Procfile "release:"): run once per deploy, after the
// build and before the new release starts, with the app's user, environment
// and state directory. It creates the notes table (the reference app's, so
// notes survive a change of app) and records the schema version. The live
// release still serves while it runs: a migration here only adds.
const path = require('path');
const sqlite3 = require('sqlite3');

const STATE = (process.env.STATE_DIRECTORY || '.').split(':')[0];
const RELEASE = process.env.ZDD_RELEASE || 'unknown';
const SCHEMA_VERSION = 1;

const db = new sqlite3.Database(path.join(STATE, 'notes.db'));
db.configure('busyTimeout', 30000);
const failed = (err) => {
  if (!err) return false;
  console.error(`migrate: ${err.message}`);
  process.exitCode = 1;
  return true;
};
db.serialize(() => {
  db.run('PRAGMA journal_mode=WAL', failed);
  db.run("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL," +
    " created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))", failed);
  db.run('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,' +
    ' release TEXT NOT NULL,' +
    " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))", failed);
  db.run('INSERT OR IGNORE INTO schema_migrations (version, release) VALUES (?, ?)',
    [SCHEMA_VERSION, RELEASE], failed);
  db.get('SELECT release FROM schema_migrations WHERE version = ?', [SCHEMA_VERSION], (err, row) => {
    if (failed(err)) return;
    console.log(`migrate: notes table ready, schema version ${SCHEMA_VERSION} ` +
      `(applied by release ${row.release}), run by release ${RELEASE}`);
  });
});
db.close(failed);
