/**
 * Several nodes appending to one log in PostgreSQL (src/log/shared-log.ts on the pg driver),
 * against a real server: three nodes append at once, exactly one integrates, every node sees the
 * same checkpoints, and the log verifies entry by entry; when the integrating node is killed
 * (SIGKILL, in a child process), another takes the lease over, recovers from the shared
 * write-ahead log, and nothing acknowledged is lost, forked or rolled back. Skipped without
 * PostgreSQL, except under CI=true.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Postgres, pgProblem } from '../../../test/helpers/postgres.js';
import { cleanup, sleep } from '../../../test/helpers/stele.js';
import type { SequencedEntry } from '../../log/storage.js';
import { generateKey, newVerifier } from '../../tlog/note.js';
import { verifyLog } from '../../tlog/verify.js';
import { PgDatabase } from './database.js';
import { openSharedNode } from './shared-node.js';
import { PgTileStore } from './tile-store.js';

const problem = pgProblem();
if (problem !== null && process.env.CI === 'true') test('PostgreSQL shared log', () => assert.fail(`CI must run it: ${problem}`));

const ORIGIN = 'shared.test/log';
const FAST = { checkpointIntervalMs: 20, pollMs: 20, leaseRetryMs: 100 };
const NODE_JS = fileURLToPath(new URL('./shared-node.js', import.meta.url));

const entry = (): SequencedEntry => {
  const id = randomUUID();
  return { id, leaf: Buffer.from(`leaf ${id}`), digest: Buffer.from(id.slice(0, 16)) };
};

describe('PostgreSQL shared log', { skip: problem ?? false, timeout: 180_000 }, () => {
  let pg: Postgres;
  let url: string;
  const key = generateKey(ORIGIN);
  const closers: (() => Promise<void>)[] = [];
  const node = async (schema: string) => {
    const n = await openSharedNode({ url, schema, origin: ORIGIN, skey: key.skey, vkey: key.vkey, log: FAST });
    closers.push(() => n.close());
    return n;
  };
  /** The log as the tile store holds it, checked by the verifier: returns its size. */
  const verified = async (schema: string) => {
    const db = await PgDatabase.open(url, { schema });
    try {
      return (await verifyLog(new PgTileStore(db), newVerifier(key.vkey))).checkpoint.size;
    } finally {
      await db.close();
    }
  };
  before(async () => {
    pg = await Postgres.start();
    url = pg.createDb('shared');
  });
  after(async () => {
    for (const c of closers) await c().catch(() => {});
    await pg?.stop();
    await cleanup();
  });

  test('three nodes append at once; one integrates; all see the same verified log', async () => {
    const nodes = [await node('a'), await node('a'), await node('a')];
    const acked = new Map<number, Buffer>();
    await Promise.all(
      nodes.flatMap((n) =>
        Array.from({ length: 3 }, async () => {
          for (let k = 0; k < 10; k++) {
            const batch = Array.from({ length: 50 }, entry);
            const got = await n.log.append(batch);
            got.forEach((i, j) => {
              acked.set(i, (batch[j] as SequencedEntry).leaf);
            });
          }
        }),
      ),
    );
    assert.equal(acked.size, 3 * 3 * 10 * 50);
    assert.equal(nodes.filter((n) => n.log.leader).length, 1, 'exactly one node integrates');
    for (const n of nodes) await n.log.waitForCheckpoint(acked.size, 30_000);
    const notes = new Set(nodes.map((n) => n.log.checkpoint.note));
    assert.ok(notes.size <= 2, 'the nodes see the same checkpoints (at most one behind by a poll)');
    assert.equal(await verified('a'), nodes[0]?.log.checkpoint.size);
    for (const [i, leaf] of acked)
      if (i % 37 === 0) assert.deepEqual(await (nodes[i % 3] as (typeof nodes)[number]).log.entry(i), leaf);
  });

  test('when the integrating node is killed, another takes over; nothing acknowledged is lost, forked or rolled back', async () => {
    // The first node, alone, takes the lease; it runs in a child process so it can be SIGKILLed.
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { openSharedNode } = await import(${JSON.stringify(NODE_JS)});
         const { randomUUID } = await import('node:crypto');
         const n = await openSharedNode(${JSON.stringify({ url, schema: 'b', origin: ORIGIN, skey: key.skey, vkey: key.vkey, log: { ...FAST, checkpointIntervalMs: 60_000 } })});
         console.log(JSON.stringify({ leader: n.log.leader }));
         for (;;) {
           const batch = Array.from({ length: 100 }, () => { const id = randomUUID(); return { id, leaf: Buffer.from('leaf ' + id), digest: Buffer.from(id.slice(0, 16)) }; });
           const got = await n.log.append(batch);
           console.log(JSON.stringify({ acked: got.map((i, j) => [i, batch[j].id]) }));
         }`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const acked = new Map<number, string>();
    let leader: boolean | undefined;
    let buf = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const m = JSON.parse(buf.slice(0, nl)) as { leader?: boolean; acked?: [number, string][] };
        buf = buf.slice(nl + 1);
        if (m.leader !== undefined) leader = m.leader;
        for (const [i, id] of m.acked ?? []) acked.set(i, id);
      }
    });
    const deadline = Date.now() + 30_000;
    while (acked.size < 2000) {
      assert.ok(Date.now() < deadline, 'the child appended too little');
      await sleep(20);
    }
    assert.equal(leader, true, 'the first node took the lease');
    // Its checkpoint interval is a minute: most of what it acknowledged is only in the write-ahead log.
    const before = await verified('b').catch(() => 0);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    let seen = 0;
    for (const i of acked.keys()) seen = Math.max(seen, i + 1);

    const [x, y] = [await node('b'), await node('b')];
    const t = Date.now() + 30_000;
    while (!x.log.leader && !y.log.leader) {
      assert.ok(Date.now() < t, 'no node took the lease over');
      await sleep(20);
    }
    const next = x.log.leader ? x : y;
    assert.ok(!(x.log.leader && y.log.leader), 'one integrator');
    await next.log.append([entry()]);
    const cp = await next.log.waitForCheckpoint(seen + 1, 30_000);
    assert.ok(cp.size >= before, 'no rollback');
    assert.ok((await verified('b')) >= seen + 1);
    // Every acknowledged entry is in the log, at the index it was acknowledged with.
    for (const [i, id] of acked) if (i % 101 === 0) assert.equal((await next.log.entry(i)).toString(), `leaf ${id}`);
  });

  test('three nodes under load, SIGKILLed at random (the integrator too) and restarted: nothing acknowledged is lost, no rollback', async (t) => {
    const schema = 'c';
    const script = `const { openSharedNode } = await import(${JSON.stringify(NODE_JS)});
      const { randomUUID } = await import('node:crypto');
      const n = await openSharedNode(${JSON.stringify({ url, schema, origin: ORIGIN, skey: key.skey, vkey: key.vkey, log: FAST })});
      setInterval(() => console.log(JSON.stringify({ leader: n.log.leader, checkpoint: n.log.checkpoint.size })), 100);
      for (;;) {
        const batch = Array.from({ length: 50 }, () => { const id = randomUUID(); return { id, leaf: Buffer.from('leaf ' + id), digest: Buffer.from(id.slice(0, 16)) }; });
        try {
          const got = await n.log.append(batch);
          console.log(JSON.stringify({ acked: got.map((i, j) => [i, batch[j].id]) }));
        } catch (err) { console.error(String(err)); }
      }`;
    const acked = new Map<number, string>();
    const lastCheckpoint = new Map<number, number>();
    let rollbacks = 0;
    let leaderKills = 0;
    const nodes: { proc: ReturnType<typeof spawn>; leader: boolean }[] = [];
    const startNode = (slot: number) => {
      const proc = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
      const node = { proc, leader: false };
      nodes[slot] = node;
      let buf = '';
      proc.stdout?.setEncoding('utf8').on('data', (d: string) => {
        buf += d;
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const m = JSON.parse(buf.slice(0, nl)) as { leader?: boolean; checkpoint?: number; acked?: [number, string][] };
          buf = buf.slice(nl + 1);
          if (m.leader !== undefined) node.leader = m.leader;
          if (m.checkpoint !== undefined) {
            if (m.checkpoint < (lastCheckpoint.get(proc.pid ?? 0) ?? 0)) rollbacks++;
            lastCheckpoint.set(proc.pid ?? 0, m.checkpoint);
          }
          for (const [i, id] of m.acked ?? []) {
            const had = acked.get(i);
            assert.ok(had === undefined || had === id, `index ${i} acknowledged for two ids`);
            acked.set(i, id);
          }
        }
      });
    };
    for (let slot = 0; slot < 3; slot++) startNode(slot);
    const end = Date.now() + 15_000;
    let kills = 0;
    while (Date.now() < end) {
      await sleep(1500);
      // Every other kill is the integrator's, when one is known.
      const leader = nodes.findIndex((n) => n.leader);
      const slot = kills % 2 === 0 && leader >= 0 ? leader : Math.floor(Math.random() * 3);
      if (slot === leader) leaderKills++;
      const victim = nodes[slot] as (typeof nodes)[number];
      victim.proc.kill('SIGKILL');
      await new Promise((r) => victim.proc.once('exit', r));
      kills++;
      startNode(slot);
    }
    for (const n of nodes) n.proc.kill('SIGKILL');
    await Promise.all(nodes.map((n) => new Promise((r) => (n.proc.exitCode !== null ? r(null) : n.proc.once('exit', r)))));
    assert.ok(kills >= 8 && leaderKills >= 3, `${kills} kills, ${leaderKills} of the integrator`);
    assert.ok(acked.size > 1000, `only ${acked.size} entries acknowledged`);
    assert.equal(rollbacks, 0, 'a node saw the checkpoint go back');
    t.diagnostic(`${kills} SIGKILLs (${leaderKills} of the integrator), ${acked.size} entries acknowledged`);

    // One node left: it takes the lease, integrates everything, and every acknowledged entry is where it was acknowledged.
    const last = await node(schema);
    let top = 0;
    for (const i of acked.keys()) top = Math.max(top, i + 1);
    const cp = await last.log.waitForCheckpoint(top, 60_000);
    assert.ok(cp.size >= top);
    assert.equal(await verified(schema), cp.size);
    for (const [i, id] of acked) assert.equal((await last.log.entry(i)).toString(), `leaf ${id}`, `entry ${i}`);
  });
});
