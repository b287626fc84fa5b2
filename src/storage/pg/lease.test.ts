/**
 * The integrator lease against a real PostgreSQL: one holder at a time, freed on release, at once
 * when the holding process is killed (SIGKILL), and its holder told when the connection is cut.
 * Skipped without PostgreSQL, except under CI=true.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Postgres, pgProblem } from '../../../test/helpers/postgres.js';
import { cleanup, sleep } from '../../../test/helpers/stele.js';
import { PgLease } from './lease.js';

const problem = pgProblem();
if (problem !== null && process.env.CI === 'true') test('PostgreSQL lease', () => assert.fail(`CI must run it: ${problem}`));

const LEASE_JS = fileURLToPath(new URL('./lease.js', import.meta.url));

describe('PostgreSQL lease', { skip: problem ?? false, timeout: 120_000 }, () => {
  let pg: Postgres;
  let url: string;
  before(async () => {
    pg = await Postgres.start();
    url = pg.createDb('lease');
  });
  after(async () => {
    await pg?.stop();
    await cleanup();
  });

  test('one holder at a time per name; released, it goes to the next', async () => {
    const a = await PgLease.tryTake(url, 'log-a');
    assert.ok(a?.held);
    assert.equal(await PgLease.tryTake(url, 'log-a'), null, 'a second holder is refused');
    const other = await PgLease.tryTake(url, 'log-b');
    assert.ok(other, 'another name is another lease');
    await a.release();
    assert.equal(a.held, false);
    const b = await PgLease.tryTake(url, 'log-a');
    assert.ok(b?.held);
    await b.release();
    await other.release();
  });

  test('a holder killed with SIGKILL frees the lease at once', async () => {
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { PgLease } = await import(${JSON.stringify(LEASE_JS)});
         const l = await PgLease.tryTake(${JSON.stringify(url)}, 'log-k');
         console.log(l ? 'held' : 'refused');
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const said = await new Promise<string>((resolve) => child.stdout?.once('data', (d: Buffer) => resolve(d.toString().trim())));
    assert.equal(said, 'held');
    assert.equal(await PgLease.tryTake(url, 'log-k'), null, 'held by the child');
    child.kill('SIGKILL');
    const deadline = Date.now() + 10_000;
    let mine: PgLease | null = null;
    while (!mine) {
      assert.ok(Date.now() < deadline, 'the lease was not freed within 10 s of the kill');
      await sleep(50);
      mine = await PgLease.tryTake(url, 'log-k');
    }
    await mine.release();
  });

  test('a holder whose connection is cut is told, and the lease is free for another', async () => {
    const a = (await PgLease.tryTake(url, 'log-c', { heartbeatMs: 100 })) as PgLease;
    const lost = new Promise<Error>((resolve) => a.onLost(resolve));
    const admin = new (await import('pg')).default.Client({ connectionString: url });
    await admin.connect();
    await admin.query(
      "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = hashtext('log-c')::oid AND pid <> pg_backend_pid()",
    );
    await admin.end();
    const err = await lost;
    assert.ok(err instanceof Error);
    assert.equal(a.held, false);
    const b = await PgLease.tryTake(url, 'log-c');
    assert.ok(b);
    await b.release();
  });
});
