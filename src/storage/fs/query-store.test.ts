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

test('coded values are kept once with a count of their rows; the last row to go takes its value with it', async () => {
  const path = join(dir, 'terms.db');
  const store = new SqliteQueryStore(path);
  const row = (idx: number, actor: string, host: string, key: string) => ({
    row: {
      idx,
      id: `e-${idx}`,
      time: 1_700_000_000_000_000 + idx,
      received: 1_700_000_000_000_000 + idx,
      actor,
      actor_type: 'human',
      on_behalf_of: null,
      verified: 1,
      action: 'hr.profile.update',
      source: 'hr',
      host,
      resource_type: null,
      resource_id: null,
      outcome: 'success',
      subject: null,
      tier: 'standard',
      key_id: key,
      principal: 'apikey:hr',
    },
    text: 'update',
  });
  await store.insert({
    rows: [
      row(0, 'zoe@acme.test', 'shared-host', 'k-zoe'),
      row(1, 'zoe@acme.test', 'zoe-laptop', 'k-zoe'),
      row(2, 'ann', 'shared-host', 'k-ann'),
    ],
    upto: 3,
  });
  const terms = () => {
    const db = new Database(path, { readonly: true });
    try {
      return Object.fromEntries(
        (db.prepare('SELECT value, refs FROM terms').all() as { value: string; refs: number }[]).map((t) => [t.value, t.refs]),
      );
    } finally {
      db.close();
    }
  };
  const before = terms();
  assert.equal(before['zoe@acme.test'], 2);
  assert.equal(before['shared-host'], 2);
  assert.equal(before['hr.profile.update'], 3);
  // The rows read back with their values, not their numbers.
  const hits = await store.search({ root: null, nowMs: 0 }, { limit: 10, order: 'asc' });
  assert.deepEqual(
    hits.map((m) => (m.kind === 'entry' ? [m.row.actor, m.row.host, m.row.key_id] : [])),
    [
      ['zoe@acme.test', 'shared-host', 'k-zoe'],
      ['zoe@acme.test', 'zoe-laptop', 'k-zoe'],
      ['ann', 'shared-host', 'k-ann'],
    ],
  );
  assert.equal(await store.deleteByKeys(['k-zoe'], () => 'erased'), 2);
  const after = terms();
  for (const gone of ['zoe@acme.test', 'zoe-laptop', 'k-zoe']) assert.equal(after[gone], undefined, gone);
  assert.equal(after['shared-host'], 1);
  assert.equal(after['hr.profile.update'], 1);
  assert.deepEqual(await store.keysOfActors(['ann', 'zoe@acme.test']), ['k-ann']);
  // A value used again after it went gets a term again.
  await store.insert({ rows: [row(3, 'zoe@acme.test', 'zoe-laptop', 'k-zoe2')], upto: 4 });
  assert.equal(terms()['zoe@acme.test'], 1);
  await store.close();
});
