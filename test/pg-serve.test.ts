/**
 * `stele serve --postgres [--tiles s3://…]`: several nodes serve one log kept in one real
 * PostgreSQL, over HTTP. Any node takes appends, reads, searches (reading its writes through
 * another node's index), API keys and erasures; exactly one integrates and indexes at a time; and
 * `kill -9` of random nodes, the integrator's included, under load from several clients, loses no
 * acknowledged event and never forks or rolls back the checkpoint. With the tiles in an S3 bucket
 * with Object Lock (Ceph RGW), the log then verifies from the bucket's HTTP endpoint. Skipped
 * without PostgreSQL (and RGW), except under CI=true.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, DeleteObjectCommand, ListObjectVersionsCommand, PutBucketPolicyCommand } from '@aws-sdk/client-s3';
import { HttpTileSource } from '../src/log/http-tile-source.js';
import { parseCheckpoint } from '../src/tlog/checkpoint.js';
import { newVerifier, openNote } from '../src/tlog/note.js';
import { verifyLog } from '../src/tlog/verify.js';
import { Postgres, pgProblem } from './helpers/postgres.js';
import { rng } from './helpers/prng.js';
import { Rgw, rgwProblem } from './helpers/rgw.js';
import {
  type Appended,
  appendHttp,
  cleanup,
  type DataDir,
  eventually,
  getJson,
  getText,
  initDir,
  makeEvent,
  requestJson,
  runStele,
  SteleServer,
  sleep,
} from './helpers/stele.js';

const problem = pgProblem();
if (problem !== null && process.env.CI === 'true')
  test('stele serve --postgres', () => assert.fail(`CI must run it: ${problem}`));

interface Health {
  size: number;
  checkpoint_size: number;
  integrator?: boolean;
}

const health = (n: SteleServer) => getJson<Health>(`${n.url}/healthz`);

/**
 * Four clients append through random live nodes (retrying a batch on another node until it is
 * acknowledged) while `rounds` times a node is killed with SIGKILL (every other time the
 * integrator's) and started again; then every acknowledged event must be at its index, the log must
 * verify from `tilesUrl` (default: a node's /log/), and extend every checkpoint any node showed.
 */
async function killUnderLoad(
  data: DataDir,
  nodes: SteleServer[],
  start: () => Promise<SteleServer>,
  rounds: number,
  tilesUrl?: string,
): Promise<void> {
  const random = rng(4471);
  const acked = new Map<string, number>();
  const seen = new Set<string>();
  let stop = false;
  const live = () => nodes.filter((n) => n.running && n.url);
  const client = async (c: number) => {
    let n = 0;
    while (!stop) {
      const batch = Array.from({ length: 10 }, () => makeEvent(randomUUID(), n++));
      // Retried (on any node) until acknowledged: the ids make a retry idempotent.
      for (;;) {
        const to = live()[Math.floor(random() * live().length)];
        if (!to) {
          await sleep(50);
          continue;
        }
        try {
          for (const a of await appendHttp(to.url, data.token, batch, 'array', 10_000)) {
            const before = acked.get(a.id);
            assert.ok(before === undefined || before === a.index, `a retried id keeps its index (client ${c})`);
            acked.set(a.id, a.index);
          }
          break;
        } catch {
          await sleep(50);
        }
      }
      // Load the nodes, not flood them: the index must catch up within the test's time.
      await sleep(20);
    }
  };
  const watcher = async () => {
    while (!stop) {
      const n = live()[0];
      if (n) seen.add(await getText(`${n.url}/log/checkpoint`, 5_000).catch(() => ''));
      await sleep(100);
    }
  };
  const load = [client(0), client(1), client(2), client(3), watcher()];
  let killedIntegrator = 0;
  for (let round = 0; round < rounds; round++) {
    await sleep(1500);
    const hs = await Promise.all(nodes.map((n) => health(n).catch(() => null)));
    // Every other round the integrator's node; else any.
    const at = round % 2 === 0 ? hs.findIndex((h) => h?.integrator) : Math.floor(random() * nodes.length);
    const victim = nodes[Math.max(at, 0)] as SteleServer;
    if (hs[nodes.indexOf(victim)]?.integrator) killedIntegrator++;
    await victim.kill();
    await sleep(300);
    nodes[nodes.indexOf(victim)] = await start();
  }
  stop = true;
  await Promise.all(load);
  assert.ok(killedIntegrator >= Math.floor(rounds / 3), `the integrator's node was killed ${killedIntegrator} times`);
  assert.ok(acked.size > 500, `${acked.size} events acknowledged`);

  // Everything acknowledged is in the log at the index it was given.
  const vkey = newVerifier(data.vkey);
  const lastAcked = Math.max(...acked.values());
  let final = '';
  await eventually('the checkpoint covers every acknowledged event', async () => {
    final = await getText(`${nodes[0]?.url}/log/checkpoint`);
    return parseCheckpoint(openNote(final, [vkey]).text).size > lastAcked;
  });
  // The integrator's node indexes what the load left behind (the search waits a bounded time).
  await eventually(
    'the index reaches the last acknowledged event',
    async () => (await requestJson(`${nodes[1]?.url}/v1/events?q=&after=${lastAcked}&limit=1`, 'GET', data.token)).status === 200,
    300_000,
  );
  const byIndex = new Map<number, string>();
  let cursor: number | undefined;
  for (;;) {
    const page = await getJson<{ hits: { index: number; event: { id: string } }[]; next?: number }>(
      `${nodes[1]?.url}/v1/events?q=${encodeURIComponent('action:e2e.test.append')}&after=${lastAcked}&limit=1000&order=asc${cursor === undefined ? '' : `&cursor=${cursor}`}`,
      60_000,
      data.token,
    );
    for (const h of page.hits) byIndex.set(h.index, h.event.id);
    if (page.next === undefined) break;
    cursor = page.next;
  }
  for (const [id, index] of acked) assert.equal(byIndex.get(index), id, `acknowledged ${id} is at ${index}`);

  // The whole log verifies, and extends every checkpoint any node showed (no fork, no rollback).
  const tiles = new HttpTileSource(tilesUrl ?? `${nodes[2]?.url}/log`);
  await verifyLog(tiles, vkey);
  seen.delete('');
  const bySize = new Map<number, string>();
  for (const note of seen) {
    const size = parseCheckpoint(openNote(note, [vkey]).text).size;
    const other = bySize.get(size);
    assert.ok(other === undefined || other === note, `two checkpoints of size ${size}: a fork`);
    bySize.set(size, note);
    await verifyLog(tiles, vkey, { since: note, resume: true });
  }
  assert.ok(bySize.size > rounds, `${bySize.size} checkpoints were seen`);
}

describe('stele serve --postgres', { skip: problem ?? false, timeout: 600_000 }, () => {
  let pg: Postgres;
  let url: string;
  let data: DataDir;
  const start = (extra: string[] = []) =>
    SteleServer.start(data.dir, {
      checkpointIntervalMs: 50,
      env: { STELE_POSTGRES_URL: url },
      args: ['--validate-interval', '2s', ...extra],
      readyTimeoutMs: 60_000,
    });
  let nodes: SteleServer[] = [];

  before(async () => {
    pg = await Postgres.start();
    url = pg.createDb('stele');
    data = await initDir('pg.test/log');
    // Three nodes from one data directory (its keys are copied to every node in a deployment).
    nodes = await Promise.all([start(), start(), start()]);
  });
  after(async () => {
    for (const n of nodes) await n.kill();
    await pg?.stop();
    await cleanup();
  });

  test('three nodes serve one log: appends on any node, reads and searches on every node', async () => {
    await eventually('one node integrates', async () => {
      const hs = await Promise.all(nodes.map(health));
      return hs.filter((h) => h.integrator).length === 1;
    });
    const acked: Appended[][] = [];
    for (const [i, n] of nodes.entries())
      acked.push(
        await appendHttp(
          n.url,
          data.token,
          Array.from({ length: 10 }, (_, k) => makeEvent(randomUUID(), i * 10 + k)),
        ),
      );
    const all = acked.flat();
    assert.equal(new Set(all.map((a) => a.index)).size, 30, 'every event its own index');
    const last = Math.max(...all.map((a) => a.index));

    for (const [i, n] of nodes.entries()) {
      // Read your writes on a node that did not take them: the integrator's node indexes them all.
      const r = await getJson<{ hits: { event: { id: string } }[]; indexed_through: number }>(
        `${n.url}/v1/events?q=${encodeURIComponent('action:e2e.test.append')}&after=${last}&limit=100`,
        30_000,
        data.token,
      );
      assert.equal(r.hits.length, 30, `node ${i} finds every event`);
      assert.ok(r.indexed_through > last);
      const other = acked[(i + 1) % 3]?.[0] as Appended;
      const e = await getJson<{ event: { id: string } }>(`${n.url}/v1/entries/${other.index}`, 30_000, data.token);
      assert.equal(e.event.id, other.id, `node ${i} reads an entry appended on another`);
    }

    // One checkpoint for all.
    await eventually('every node serves the same checkpoint', async () => {
      const cps = await Promise.all(nodes.map((n) => getText(`${n.url}/log/checkpoint`)));
      return new Set(cps).size === 1 && parseCheckpoint(openNote(cps[0] as string, [newVerifier(data.vkey)]).text).size > last;
    });
    const v = await runStele(['verify', '--url', nodes[2]?.url as string, '--vkey', data.vkey]);
    assert.equal(v.code, 0, v.output);
  });

  test('an API key made on one node works on every node, and its revocation too', async () => {
    const [a, b, c] = nodes as [SteleServer, SteleServer, SteleServer];
    const made = await requestJson(`${a.url}/v1/keys`, 'POST', data.token, { name: 'ci-writer', roles: ['writer'] });
    assert.equal(made.status, 201, made.text);
    const key = made.body.key as string;
    const append = (n: SteleServer) =>
      appendHttp(n.url, key, [makeEvent()]).then(
        () => 200,
        (err: { status?: number }) => err.status ?? 0,
      );
    await eventually('the new key is accepted on node b', async () => (await append(b)) === 200, 10_000);
    // The same name made at once on another node is refused: one active key per name.
    const twice = await requestJson(`${c.url}/v1/keys`, 'POST', data.token, { name: 'ci-writer', roles: ['writer'] });
    assert.equal(twice.status, 409, twice.text);
    const revoked = await requestJson(`${c.url}/v1/keys/ci-writer/revoke`, 'POST', data.token, { reason: 'rotated' });
    assert.equal(revoked.status, 200, revoked.text);
    await eventually('the revoked key is refused on node b', async () => (await append(b)) === 401, 10_000);
    assert.equal(await append(a), 401);
  });

  test('an erasure on one node is honoured at once by every node, and leaves no plaintext in the tables', async () => {
    const [a, b, c] = nodes as [SteleServer, SteleServer, SteleServer];
    const [about] = await appendHttp(a.url, data.token, [
      { ...makeEvent(), subject: 'erin@example.com', data: { note: 'Pgerasemarker4471' } },
    ]);
    const entry = `/v1/entries/${(about as Appended).index}`;
    // Node b reads it first, so its caches hold the data key.
    const read = await requestJson(`${b.url}${entry}`, 'GET', data.token);
    assert.equal(read.status, 200, read.text);
    const hits = await getJson<{ hits: unknown[] }>(
      `${b.url}/v1/events?q=Pgerasemarker4471&after=${(about as Appended).index}`,
      30_000,
      data.token,
    );
    assert.equal(hits.hits.length, 1);

    const erased = await requestJson(`${c.url}/v1/erasures`, 'POST', data.token, {
      subject: 'erin@example.com',
      reason: 'GDPR request 12',
    });
    assert.equal(erased.status, 200, erased.text);
    await eventually(
      'node b refuses the erased entry',
      async () => {
        const r = await requestJson(`${b.url}${entry}`, 'GET', data.token);
        return r.status === 410;
      },
      5_000,
    );
    for (const n of nodes) {
      const r = await getJson<{ hits: unknown[] }>(`${n.url}/v1/events?q=Pgerasemarker4471`, 30_000, data.token);
      assert.equal(r.hits.length, 0, 'no node finds its words');
    }
    const stored = pg.tableBytes('stele');
    assert.equal(stored.includes('Pgerasemarker4471'), false, 'no table file holds its words');
    assert.equal(stored.includes('erin@example.com'), false, 'nor its subject');
  });

  test('kill -9 of random nodes (the integrator too) under load loses nothing, never forks or rolls back', async () => {
    await killUnderLoad(data, nodes, start, 6);
  });
});

const s3Problem = problem ?? rgwProblem();
if (s3Problem !== null && process.env.CI === 'true')
  test('stele serve --postgres --tiles s3://…', () => assert.fail(`CI must run it: ${s3Problem}`));

describe('stele serve --postgres --tiles s3://…', { skip: s3Problem ?? false, timeout: 600_000 }, () => {
  let pg: Postgres;
  let rgw: Rgw;
  let data: DataDir;
  let nodes: SteleServer[] = [];
  let env: Record<string, string>;
  // Ceph RGW 16 keeps no retention past 2038 (the policy's forever would be 100 years): see the last test.
  const start = () =>
    SteleServer.start(data.dir, {
      checkpointIntervalMs: 50,
      env,
      args: ['--tiles', 's3://tiles/audit', '--s3-retain', '30d'],
      readyTimeoutMs: 60_000,
    });

  before(async () => {
    [pg, rgw] = await Promise.all([Postgres.start(), Rgw.start()]);
    const s3 = rgw.client();
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'plain' }));
      await s3.send(new CreateBucketCommand({ Bucket: 'tiles', ObjectLockEnabledForBucket: true }));
      await s3.send(new CreateBucketCommand({ Bucket: 'y2038', ObjectLockEnabledForBucket: true }));
      // Anyone may read: the bucket is the log's static tlog-tiles endpoint. Listing too: without
      // it S3 answers a missing key (a partial tile deleted once full) 403 rather than 404.
      await s3.send(
        new PutBucketPolicyCommand({
          Bucket: 'tiles',
          Policy: JSON.stringify({
            Version: '2012-10-17',
            Statement: [
              { Effect: 'Allow', Principal: '*', Action: ['s3:GetObject'], Resource: ['arn:aws:s3:::tiles/*'] },
              { Effect: 'Allow', Principal: '*', Action: ['s3:ListBucket'], Resource: ['arn:aws:s3:::tiles'] },
            ],
          }),
        }),
      );
    } finally {
      s3.destroy();
    }
    env = { ...rgw.env, STELE_POSTGRES_URL: pg.createDb('stele') };
    data = await initDir('pg-s3.test/log');
  });
  after(async () => {
    for (const n of nodes) await n.kill();
    await pg?.stop();
    await rgw?.stop();
    await cleanup();
  });

  test('a bucket without Object Lock is refused before the server starts', async () => {
    const other = await initDir('pg-s3.test/plain');
    const r = await runStele(['serve', '--dir', other.dir, '--listen', '127.0.0.1:0', '--tiles', 's3://plain'], 60_000, env);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--tiles s3:\/\/plain: the bucket has no Object Lock/);
  });

  test('three nodes keep their tiles in the bucket; kill -9 under load; the log verifies from the bucket', async () => {
    nodes = await Promise.all([start(), start(), start()]);
    await killUnderLoad(data, nodes, start, 3, `${rgw.endpoint}/tiles/audit/log`);
    // What the bucket holds is locked: a full tile cannot be deleted.
    const s3 = rgw.client();
    try {
      const listed = await s3.send(new ListObjectVersionsCommand({ Bucket: 'tiles', Prefix: 'audit/log/tile/0/000' }));
      const locked = listed.Versions?.find((v) => v.Key === 'audit/log/tile/0/000');
      assert.ok(locked?.VersionId, 'the first full tile is in the bucket');
      await assert.rejects(
        s3.send(new DeleteObjectCommand({ Bucket: 'tiles', Key: 'audit/log/tile/0/000', VersionId: locked.VersionId })),
        (err: { name?: string }) => err.name === 'AccessDenied',
      );
    } finally {
      s3.destroy();
    }
    const v = await runStele(['verify', '--url', `${rgw.endpoint}/tiles/audit`, '--vkey', data.vkey]);
    assert.equal(v.code, 0, v.output);
  });

  test('a store that does not keep the lock asked for is caught: no checkpoint covers tiles it left unlocked', async () => {
    const other = await initDir('pg-s3.test/y2038');
    const own = { ...env, STELE_POSTGRES_URL: pg.createDb('y2038') };
    // The starter policy keeps a tier forever: 100 years, which RGW 16 wraps to a date in the past.
    const node = await SteleServer.start(other.dir, { checkpointIntervalMs: 50, env: own, args: ['--tiles', 's3://y2038'] });
    nodes.push(node);
    const acked = await appendHttp(
      node.url,
      other.token,
      Array.from({ length: 300 }, () => makeEvent()),
    );
    assert.equal(acked.length, 300, 'appends are still acknowledged (the write-ahead log is in PostgreSQL)');
    await eventually('the server says why', async () => /did not keep the lock asked for/.test(node.output), 30_000);
    const cp = await getText(`${node.url}/log/checkpoint`);
    assert.ok(
      parseCheckpoint(openNote(cp, [newVerifier(other.vkey)]).text).size < 256,
      'no checkpoint covers the first full tile',
    );
  });
});
