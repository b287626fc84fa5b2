/**
 * The conformance suites of the state stores (data keys, legal holds, API keys) on every driver:
 * the fs driver in a fresh temporary data directory each time, the in-memory classes, and the
 * PostgreSQL driver in a fresh database of a throwaway server (test/helpers/postgres.ts) each
 * time. Without PostgreSQL its suites are skipped, except under CI=true where that is a failure.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Postgres, pgProblem } from '../../test/helpers/postgres.js';
import { cleanup } from '../../test/helpers/stele.js';
import { apiKeyRecordsConformance } from './conformance/apikeys.js';
import type { Driver } from './conformance/driver.js';
import { holdRecordsConformance } from './conformance/holds.js';
import { keyRecordsConformance } from './conformance/keys.js';
import { FsBackend } from './fs/backend.js';
import { MemoryApiKeyRecords } from './memory/apikeys.js';
import { MemoryHoldRecords } from './memory/holds.js';
import { MemoryKeyRecords } from './memory/keys.js';
import { PgApiKeyRecords } from './pg/apikeys.js';
import { PgDatabase } from './pg/database.js';
import { PgHoldRecords } from './pg/holds.js';
import { PgKeyRecords } from './pg/keys.js';

const root = mkdtempSync(join(tmpdir(), 'stele-state-'));
after(() => rmSync(root, { recursive: true, force: true }));

/**
 * The fs driver's store `pick` chooses: a fresh data directory each open(); reopen() closes the
 * store and opens it again from the same directory; stored() is every file of that directory.
 */
function fsDriver<R>(pick: (b: FsBackend) => R): Driver<R> & { same(): FsBackend } {
  let backend = new FsBackend(mkdtempSync(join(root, 'd-')));
  const files = (dir: string): Buffer[] =>
    readdirSync(dir).flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? files(p) : [readFileSync(p)];
    });
  const same = () => new FsBackend(backend.dir);
  return {
    open: () => {
      backend = new FsBackend(mkdtempSync(join(root, 'd-')));
      return pick(backend);
    },
    reopen: async (r) => {
      await (r as { close?(): Promise<void> }).close?.();
      return pick(same());
    },
    stored: () => Buffer.concat(files(backend.dir)),
    same,
  };
}

const keys = fsDriver((b) => b.keys());
keyRecordsConformance('fs', { ...keys, reader: () => keys.same().keys({ readonly: true }) });
keyRecordsConformance('memory', {
  open: () => new MemoryKeyRecords(),
  reader: (r) => (r as MemoryKeyRecords).reader(),
});

holdRecordsConformance(
  'fs',
  fsDriver((b) => b.holds()),
);
holdRecordsConformance('memory', { open: () => new MemoryHoldRecords() });

apiKeyRecordsConformance(
  'fs',
  fsDriver((b) => b.apiKeys()),
);
apiKeyRecordsConformance('memory', { open: () => new MemoryApiKeyRecords() });

const pgSkip = pgProblem();
if (pgSkip !== null && process.env.CI === 'true')
  test('PostgreSQL state stores', () => assert.fail(`CI must run them: ${pgSkip}`));
if (pgSkip === null) {
  let server: Promise<Postgres> | undefined;
  let started: Postgres | undefined;
  const pools: PgDatabase[] = [];
  after(async () => {
    for (const p of pools) await p.close();
    await (await server)?.stop();
    await cleanup();
  });
  let n = 0;
  /** The store `pick` chooses, on a fresh database each open(); reopen() connects to it again. */
  const pgDriver = <R>(pick: (db: PgDatabase) => R): Driver<R> & { same(): Promise<PgDatabase> } => {
    let name = '';
    let url = '';
    const connect = async () => {
      const db = await PgDatabase.open(url);
      pools.push(db);
      return db;
    };
    return {
      open: async () => {
        server ??= Postgres.start();
        const s = await server;
        started = s;
        name = `state${++n}`;
        url = s.createDb(name);
        return pick(await connect());
      },
      reopen: async (r) => {
        await (r as { close?(): Promise<void> }).close?.();
        return pick(await connect());
      },
      // open() (which the suite awaits first) has started the server.
      stored: () => (started as Postgres).tableBytes(name),
      same: connect,
    };
  };
  const pgKeys = pgDriver((db) => new PgKeyRecords(db));
  keyRecordsConformance('postgres', { ...pgKeys, reader: async () => new PgKeyRecords(await pgKeys.same(), true) });
  holdRecordsConformance(
    'postgres',
    pgDriver((db) => new PgHoldRecords(db)),
  );
  apiKeyRecordsConformance(
    'postgres',
    pgDriver((db) => new PgApiKeyRecords(db)),
  );
}
