import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { SCHEMA_VERSION } from './query-schema.js';
import { SqliteQueryStore } from './query-store.js';

const dir = mkdtempSync(join(tmpdir(), 'stele-qs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a store of an older schema version is replaced by an empty one, so the server re-indexes it from the log', async () => {
  const path = join(dir, 'old.db');
  const old = new Database(path);
  old.exec(
    "CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) STRICT; INSERT INTO meta VALUES ('schema', '3'), ('upto', '1234');",
  );
  old.exec('CREATE TABLE entries (idx INTEGER PRIMARY KEY, id TEXT NOT NULL); CREATE INDEX entries_id ON entries (id);');
  old.close();
  const store = new SqliteQueryStore(path);
  assert.equal(await store.upto(), 0);
  await store.close();
  const db = new Database(path, { readonly: true });
  assert.equal((db.prepare("SELECT v FROM meta WHERE k = 'schema'").get() as { v: string }).v, String(SCHEMA_VERSION));
  const indexes = (
    db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'entries_%' ORDER BY name").all() as {
      name: string;
    }[]
  ).map((r) => r.name);
  assert.deepEqual(indexes, ['entries_actor', 'entries_key', 'entries_outcome', 'entries_time']);
  db.close();
});
