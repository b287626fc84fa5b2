/**
 * The data directory is owner-only (issue 11, point 5, "Files"): `stele init` into an existing
 * 0755 directory, a server appending, checkpointing and indexing, and `stele append --local`
 * leave no group or other permission bit anywhere in the tree (WAL, state, query store with its
 * -wal/-shm, key store, tiles, checkpoint, journals, lock); a directory opened up afterwards is
 * closed again on the next open.
 */
import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { appendHttp, cleanup, makeEvent, runStele, SteleServer, tempDir } from './helpers/stele.js';

after(cleanup);

/** Every path under `dir` (and `dir`) whose mode gives group or others any permission. */
function loose(dir: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = lstatSync(p);
    if (st.isSymbolicLink()) return;
    if (st.mode & 0o077) out.push(`${p} ${(st.mode & 0o777).toString(8)}`);
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n));
  };
  walk(dir);
  return out;
}

function count(dir: string): number {
  let n = 0;
  const walk = (p: string) => {
    n++;
    if (lstatSync(p).isDirectory()) for (const f of readdirSync(p)) walk(join(p, f));
  };
  walk(dir);
  return n;
}

test('init into an existing 0755 directory, serve, append, search, append --local: nothing is readable by others', async () => {
  const dir = join(tempDir(), 'data');
  mkdirSync(dir);
  chmodSync(dir, 0o755);
  const init = await runStele(['init', '--dir', dir, '--json']);
  assert.equal(init.code, 0, init.output);
  const token = JSON.parse(init.stdout).token as string;
  assert.deepEqual(loose(dir), [], 'after init');

  const server = await SteleServer.start(dir, { checkpointIntervalMs: 20 });
  const events = Array.from({ length: 300 }, (_, i) => ({ ...makeEvent(undefined, i), subject: `s${i % 3}@example.com` }));
  await appendHttp(server.url, token, events);
  const res = await fetch(`${server.url}/v1/events?wait=checkpoint`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(makeEvent()),
  });
  assert.equal(res.status, 200);
  const search = await fetch(`${server.url}/v1/events?q=action:e2e.*&count=true`, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(search.status, 200);
  assert.deepEqual(loose(dir), [], 'while serving (LOCK, WAL, SQLite -wal/-shm present)');
  await server.stop();
  const local = await runStele(['append', '--local', '--dir', dir, JSON.stringify(makeEvent())]);
  assert.equal(local.code, 0, local.output);
  assert.ok(count(dir) > 20, 'the tree holds tiles, WAL, state, index and keys');
  assert.deepEqual(loose(dir), [], 'after serving and a local append');
});

test('a data directory opened up to others is closed again on the next open, with a warning', async () => {
  const dir = join(tempDir(), 'data');
  assert.equal((await runStele(['init', '--dir', dir])).code, 0);
  assert.equal((await runStele(['append', '--local', '--dir', dir, JSON.stringify(makeEvent())])).code, 0);
  const open = (p: string) => {
    const st = lstatSync(p);
    chmodSync(p, st.isDirectory() ? 0o755 : 0o644);
    if (st.isDirectory()) for (const n of readdirSync(p)) open(join(p, n));
  };
  open(dir);
  assert.ok(loose(dir).length > 10);
  const r = await runStele(['append', '--local', '--dir', dir, JSON.stringify(makeEvent())]);
  assert.equal(r.code, 0, r.output);
  assert.match(r.stderr, /was readable by other users; removed group and other permissions/);
  assert.deepEqual(loose(dir), []);
});
