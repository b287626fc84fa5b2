/**
 * The query store cut into partitions (`--query-partition`), end to end against `stele serve` with
 * partitions of 50 entries: a search pages across them in both orders with the results and cursors
 * of one store, an erasure scrubs every partition that held the subject, a restart keeps them, and
 * a restart with another size rebuilds them from the log with the same answers.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SCHEMA_VERSION } from '../src/storage/fs/query-schema.js';
import { cleanup, type DataDir, filesContaining, initDir, type JsonAnswer, requestJson, SteleServer } from './helpers/stele.js';

const EVENTS = 240;
const BATCH = 23; // batches cross partition boundaries
const SUBJECT = 'pat.partition@acme.test';
/** Only the erased events carry these: a full-text word and a resource id prefix. */
const SECRET_WORD = 'zqpatsecret';
const SECRET_RESOURCE = 'patres-';
const QUERY = 'action:e2e.part.append';

let data: DataDir;
let server: SteleServer;
const indices: number[] = []; // of event n, by n

const call = (path: string, method = 'GET', body?: unknown): Promise<JsonAnswer> =>
  requestJson(`${server.url}${path}`, method, data.token, body);

const erased = (n: number) => n % 4 === 1;
const event = (n: number) => ({
  id: randomUUID(),
  actor: { id: `dev-${n % 5}@acme.test`, type: 'human' },
  action: 'e2e.part.append',
  source: { kind: 'e2e', host: 'laptop' },
  outcome: 'success',
  ...(erased(n)
    ? { subject: SUBJECT, resource: { type: 'doc', id: `${SECRET_RESOURCE}${n}` }, data: { note: `${SECRET_WORD} pq${n}zx` } }
    : { resource: { type: 'doc', id: `doc-${n}` }, data: { note: `pq${n}zx` } }),
});

type Hit = { index: number; state?: string; event?: unknown };

/** Every page of `q` (`limit` a page) in `order`: the hits in the order served, each as index + state. */
async function walk(q: string, order: 'asc' | 'desc', limit: number): Promise<string[]> {
  const out: string[] = [];
  let cursor: number | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const r = await call(
      `/v1/events?q=${encodeURIComponent(q)}&order=${order}&limit=${limit}${cursor === undefined ? '' : `&cursor=${cursor}`}`,
    );
    assert.equal(r.status, 200, r.text);
    const hits = r.body.hits as Hit[];
    assert.ok(hits.length <= limit);
    for (const h of hits) out.push(`${h.index}:${h.state ?? (h.event ? 'event' : '?')}`);
    if (r.body.next === undefined) return out;
    cursor = r.body.next as number;
  }
  assert.fail('too many pages');
}

/** Waits until the query store has indexed entry `index` (read your writes). */
async function indexed(index: number): Promise<void> {
  for (let i = 0; i < 120; i++) {
    const r = await call(`/v1/events?q=id:none&after=${index}`);
    if (r.status === 200) return;
    assert.equal(r.status, 503, r.text);
  }
  assert.fail(`entry ${index} never became searchable`);
}

const partitionFiles = () =>
  readdirSync(join(data.dir, 'index', 'query'))
    .filter((f) => f.endsWith('.db'))
    .sort();

before(async () => {
  data = await initDir('query-partitions.test/log');
  server = await SteleServer.start(data.dir, { checkpointIntervalMs: 20, args: ['--query-partition', '50'] });
  for (let n = 0; n < EVENTS; n += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, EVENTS - n) }, (_, k) => event(n + k));
    const r = await call('/v1/events', 'POST', batch);
    assert.equal(r.status, 200, r.text);
    for (const e of r.body.entries as { index: number }[]) indices.push(e.index);
  }
  await indexed(indices.at(-1) as number);
  // Nothing else wrote meanwhile, so the index range of the appends holds them alone.
  assert.deepEqual(
    indices,
    Array.from({ length: EVENTS }, (_, n) => (indices[0] as number) + n),
  );
});

after(async () => {
  await server?.stop();
  await cleanup();
});

/**
 * What a walk must serve: of QUERY, every event, or after the erasure the others (a gap matches no
 * field); of the index range of the appends, every entry, the erased as gaps.
 */
const expected = (order: 'asc' | 'desc', after: 'before' | 'erased' | 'range') => {
  const all = indices.flatMap((index, n) => {
    if (!erased(n) || after === 'before') return [`${index}:event`];
    return after === 'range' ? [`${index}:erased`] : [];
  });
  return order === 'asc' ? all : all.reverse();
};
const RANGE = () => `index:${indices[0]}..${indices.at(-1)}`;

test('the store is cut into files of 50 entries, and the size is recorded', () => {
  const files = partitionFiles();
  assert.ok(files.length >= Math.ceil((indices.at(-1) as number) / 50), files.join(' '));
  for (const f of files) assert.equal(Number(/^p(\d+)\.db$/.exec(f)?.[1]) % 50, 0, f);
  assert.equal(readFileSync(join(data.dir, 'index', 'query', 'PARTITION'), 'utf8'), `50 ${SCHEMA_VERSION}\n`);
});

test('a search pages across partitions in both orders, as one store would', async () => {
  for (const limit of [7, 50, 200])
    for (const order of ['asc', 'desc'] as const) assert.deepEqual(await walk(QUERY, order, limit), expected(order, 'before'));
  const total = await call(`/v1/events?q=${encodeURIComponent(QUERY)}&count=true&limit=1`);
  assert.equal(total.body.total, EVENTS);
  // One word, one entry, wherever its partition.
  for (const n of [0, 77, 139, EVENTS - 1]) assert.deepEqual(await walk(`pq${n}zx`, 'desc', 10), [`${indices[n]}:event`]);
});

test('an erasure scrubs the subject from every partition that held it', async () => {
  const index = join(data.dir, 'index');
  assert.ok(filesContaining(data.dir, SECRET_RESOURCE, index).length > 1, 'more than one partition holds the subject');
  const r = await call('/v1/erasures', 'POST', { subject: SUBJECT, reason: 'request' });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(filesContaining(data.dir, SECRET_RESOURCE), []);
  assert.deepEqual(filesContaining(data.dir, SECRET_WORD), []);
  for (const order of ['asc', 'desc'] as const) {
    assert.deepEqual(await walk(QUERY, order, 9), expected(order, 'erased'));
    assert.deepEqual(await walk(RANGE(), order, 9), expected(order, 'range'));
  }
  assert.deepEqual(await walk(SECRET_WORD, 'desc', 10), []);
});

test('a restart keeps the partitions; one with another size rebuilds them from the log, with the same answers', async () => {
  const files = partitionFiles();
  await server.stop();
  server = await SteleServer.start(data.dir, { checkpointIntervalMs: 20, args: ['--query-partition', '50'] });
  assert.deepEqual(partitionFiles().slice(0, files.length), files);
  assert.deepEqual(await walk(RANGE(), 'desc', 13), expected('desc', 'range'));

  await server.stop();
  server = await SteleServer.start(data.dir, { checkpointIntervalMs: 20, args: ['--query-partition', '64'] });
  await indexed(indices.at(-1) as number);
  assert.equal(readFileSync(join(data.dir, 'index', 'query', 'PARTITION'), 'utf8'), `64 ${SCHEMA_VERSION}\n`);
  for (const f of partitionFiles()) assert.equal(Number(/^p(\d+)\.db$/.exec(f)?.[1]) % 64, 0, f);
  for (const order of ['asc', 'desc'] as const) {
    assert.deepEqual(await walk(QUERY, order, 11), expected(order, 'erased'));
    assert.deepEqual(await walk(RANGE(), order, 11), expected(order, 'range'));
  }
  assert.deepEqual(filesContaining(data.dir, SECRET_RESOURCE), []);
});
