import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { initDataDir } from '../app/datadir.js';
import { openStele, type Stele } from '../app/stele.js';
import { parseCheckpoint } from '../tlog/checkpoint.js';
import { leafHash } from '../tlog/hash.js';
import { newVerifier, openNote } from '../tlog/note.js';
import { verifyConsistency, verifyInclusion } from '../tlog/proof.js';
import { buildServer } from './app.js';

const event = (extra: Record<string, unknown> = {}) => ({
  actor: { id: 'alice@example.com', type: 'human' },
  action: 'emacs.package.install',
  source: { kind: 'emacs', host: 'laptop', agent: 'stele.el', version: '0.1' },
  resource: { type: 'package', id: 'magit' },
  outcome: 'success',
  data: { version: '3.3.0', archive: 'melpa' },
  ...extra,
});

let dir: string;
let stele: Stele;
let app: FastifyInstance;
let token: string;
const auth = () => ({ authorization: `Bearer ${token}` });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'stele-api-'));
  token = (await initDataDir(dir, 'test.example/log')).token as string;
  stele = await openStele(dir, { checkpointIntervalMs: 20 });
  app = await buildServer(stele);
});

after(async () => {
  await app.close();
  await stele.close();
  rmSync(dir, { recursive: true, force: true });
});

const post = (payload: string | Buffer, headers: Record<string, string> = {}, url = '/v1/events') =>
  app.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/json', ...auth(), ...headers } });

describe('POST /v1/events', () => {
  test('accepts one event, an array, and NDJSON, answering indices in request order', async () => {
    const start = stele.log.size;
    const one = await post(JSON.stringify(event()));
    assert.equal(one.statusCode, 200, one.body);
    assert.deepEqual(
      one.json().entries.map((e: { index: number }) => e.index),
      [start],
    );
    const arr = await post(JSON.stringify([event(), event(), event()]));
    assert.deepEqual(
      arr.json().entries.map((e: { index: number }) => e.index),
      [start + 1, start + 2, start + 3],
    );
    const nd = await post(`${JSON.stringify(event())}\n\n${JSON.stringify(event())}\n`, {
      'content-type': 'application/x-ndjson',
    });
    assert.equal(nd.statusCode, 200, nd.body);
    assert.deepEqual(
      nd.json().entries.map((e: { index: number }) => e.index),
      [start + 4, start + 5],
    );
  });

  test('assigns an id and time when absent, and records the ingest principal', async () => {
    const res = await post(JSON.stringify(event()));
    const { id, index } = res.json().entries[0];
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const entry = (await app.inject({ url: `/v1/entries/${index}`, headers: auth() })).json();
    assert.equal(entry.event.id, id);
    assert.match(entry.event.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.match(entry.record.received, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.deepEqual(entry.ingest, { principal: 'admin', method: 'apikey' });
    assert.equal(entry.record.ingest, undefined, 'a sealed leaf names nobody in the clear');
    assert.equal(entry.record.v, 3);
    assert.equal(entry.record.compression, 'zstd-leaf-1');
    assert.equal(entry.event.actor.verified, false);
    // Sealed at rest: the record carries the data key id and ciphertext, not the event.
    assert.equal(entry.record.event, undefined);
    assert.match(entry.record.key, /^[A-Za-z0-9_-]{22}$/);
    assert.ok(!Buffer.from(entry.leaf, 'base64').toString().includes(id), 'the leaf does not contain the event in the clear');
    const anonymous = (await app.inject({ url: `/v1/entries/${index}` })).json();
    assert.equal(anonymous.event, undefined, 'no decrypted event without a token');
    assert.equal(entry.leaf_hash, leafHash(Buffer.from(entry.leaf, 'base64')).toString('base64'));
  });

  test('a repeated id returns its first index, also within one request', async () => {
    const id = '0b9f6c1e-8a7d-4c3b-9e2f-1a2b3c4d5e6f';
    const first = (await post(JSON.stringify(event({ id })))).json().entries[0].index;
    const size = stele.log.size;
    const again = await post(JSON.stringify([event({ id }), event({ id: id.toUpperCase() })]));
    assert.deepEqual(
      again.json().entries.map((e: { index: number }) => e.index),
      [first, first],
    );
    assert.equal(stele.log.size, size);
    const id2 = '1b9f6c1e-8a7d-4c3b-9e2f-1a2b3c4d5e6f';
    const twice = (await post(JSON.stringify([event({ id: id2 }), event({ id: id2 })]))).json().entries;
    assert.equal(twice[0].index, twice[1].index);
    assert.equal(stele.log.size, size + 1);
  });

  test('?wait=checkpoint returns a signed checkpoint and inclusion proofs that verify', async () => {
    const res = await post(JSON.stringify([event(), event(), event()]), {}, '/v1/events?wait=checkpoint');
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    const verifier = newVerifier(stele.vkey);
    const cp = parseCheckpoint(openNote(body.checkpoint, [verifier]).text);
    for (const e of body.entries) {
      const leaf = await stele.log.entry(e.index);
      verifyInclusion(
        leafHash(leaf),
        e.index,
        cp.size,
        e.proof.map((p: string) => Buffer.from(p, 'base64')),
        cp.root,
      );
    }
  });
});

describe('reading', () => {
  test('inclusion and consistency proofs verify against signed checkpoints', async () => {
    await post(JSON.stringify(Array.from({ length: 300 }, () => event())), {}, '/v1/events?wait=checkpoint');
    const verifier = newVerifier(stele.vkey);
    const cpNote = (await app.inject({ url: '/log/checkpoint' })).body;
    const cp = parseCheckpoint(openNote(cpNote, [verifier]).text);
    for (const index of [0, 1, 150, cp.size - 1]) {
      const r = (await app.inject({ url: `/v1/proofs/inclusion?index=${index}` })).json();
      assert.equal(r.size, cp.size);
      verifyInclusion(
        Buffer.from(r.leaf_hash, 'base64'),
        index,
        cp.size,
        r.proof.map((p: string) => Buffer.from(p, 'base64')),
        cp.root,
      );
    }
    const oldNote = cpNote;
    await post(JSON.stringify(Array.from({ length: 50 }, () => event())), {}, '/v1/events?wait=checkpoint');
    const newNote = (await app.inject({ url: '/log/checkpoint' })).body;
    const next = parseCheckpoint(openNote(newNote, [verifier]).text);
    const c = (await app.inject({ url: `/v1/proofs/consistency?from=${cp.size}` })).json();
    assert.equal(c.to, next.size);
    verifyConsistency(
      cp.size,
      next.size,
      c.proof.map((p: string) => Buffer.from(p, 'base64')),
      parseCheckpoint(openNote(oldNote, [verifier]).text).root,
      next.root,
    );
  });

  test('serves the C2SP read API with its content types and caching', async () => {
    const cp = await app.inject({ url: '/log/checkpoint' });
    assert.equal(cp.headers['content-type'], 'text/plain; charset=utf-8');
    assert.match(String(cp.headers['cache-control']), /no-cache|max-age=[0-5]\b/);
    const tile = await app.inject({ url: '/log/tile/0/000' });
    assert.equal(tile.statusCode, 200);
    assert.equal(tile.headers['content-type'], 'application/octet-stream');
    assert.equal(tile.rawPayload.length, 8192);
    assert.match(String(tile.headers['cache-control']), /immutable/);
    const bundle = await app.inject({ url: '/log/tile/entries/000' });
    assert.equal(bundle.statusCode, 200);
    const gz = await app.inject({ url: '/log/tile/entries/000', headers: { 'accept-encoding': 'gzip, identity' } });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.deepEqual(gunzipSync(gz.rawPayload), bundle.rawPayload);
    // Sealed leaves are mostly base64 ciphertext (6 bits of entropy a byte): about a quarter goes.
    assert.ok(gz.rawPayload.length < bundle.rawPayload.length * 0.85, 'entry bundles compress');
    assert.equal((await app.inject({ url: '/log/tile/0/0000' })).statusCode, 400);
    assert.equal((await app.inject({ url: '/log/tile/0/x999/999' })).statusCode, 404);
  });

  test('an entry is readable right after its append is acknowledged', async () => {
    const slow = await openSteleWithSlowCheckpoints();
    try {
      const res = await slow.app.inject({
        method: 'POST',
        url: '/v1/events',
        payload: JSON.stringify(event()),
        headers: { 'content-type': 'application/json', authorization: `Bearer ${slow.token}` },
      });
      const { index } = res.json().entries[0];
      assert.equal(slow.stele.log.checkpoint.size, 0);
      const entry = await slow.app.inject({ url: `/v1/entries/${index}` });
      assert.equal(entry.statusCode, 200);
    } finally {
      await slow.close();
    }
  });

  test('search says how far the index got; after=<index> reads your write; an index not appended is 404', async () => {
    const res = await post(JSON.stringify(event({ action: 'test.read.own' })));
    const { index } = res.json().entries[0];
    const found = await app.inject({
      url: `/v1/events?q=${encodeURIComponent('action:test.read.own')}&after=${index}`,
      headers: auth(),
    });
    assert.equal(found.statusCode, 200, found.body);
    const page = found.json();
    assert.ok(page.indexed_through > index, `indexed_through ${page.indexed_through}`);
    assert.ok(page.hits.some((h: { index: number }) => h.index === index));
    const ahead = await app.inject({ url: `/v1/events?after=${stele.log.size + 10}`, headers: auth() });
    assert.equal(ahead.statusCode, 404, ahead.body);
    assert.equal(ahead.json().error.code, 'not_found');
    const bad = await app.inject({ url: '/v1/events?after=-1', headers: auth() });
    assert.equal(bad.statusCode, 400, bad.body);
  });

  test('publishes the event schema and an OpenAPI document', async () => {
    const s = await app.inject({ url: '/v1/schema/event' });
    assert.equal(s.statusCode, 200);
    assert.equal(s.json().title, 'Stele event');
    const o = await app.inject({ url: '/openapi.json' });
    assert.equal(o.statusCode, 200);
    const doc = o.json();
    assert.equal(doc.openapi, '3.1.0');
    for (const p of ['/v1/events', '/v1/entries/{index}', '/v1/proofs/inclusion', '/v1/proofs/consistency', '/log/checkpoint']) {
      assert.ok(doc.paths[p], `OpenAPI documents ${p}`);
    }
    const h = (await app.inject({ url: '/healthz' })).json();
    assert.equal(h.status, 'ok');
  });
});

describe('bad input gets a clear 4xx with a JSON error and stores nothing', () => {
  const deep = `{"actor":{"id":"a","type":"human"},"action":"a.b","source":{"kind":"k"},"outcome":"success","data":{"x":${'['.repeat(100000)}${']'.repeat(100000)}}}`;
  const cases: [string, () => Promise<{ statusCode: number; body: string }>, number, RegExp][] = [
    ['malformed JSON', () => post('{"actor": '), 400, /not valid JSON/],
    [
      'malformed NDJSON line',
      () => post(`${JSON.stringify(event())}\n{oops}\n`, { 'content-type': 'application/x-ndjson' }),
      400,
      /line 2/,
    ],
    ['empty body', () => post(''), 400, /empty/],
    ['wrong type', () => post(JSON.stringify(event({ outcome: 42 }))), 400, /outcome/],
    ['bad enum', () => post(JSON.stringify(event({ actor: { id: 'a', type: 'robot' } }))), 400, /actor\/type/],
    [
      'missing field',
      () => post(JSON.stringify({ actor: { id: 'a', type: 'human' }, source: { kind: 'x' }, outcome: 'success' })),
      400,
      /action/,
    ],
    [
      'a bad event in a batch refuses the batch',
      () => post(JSON.stringify([event(), event({ action: 'NoDots' })])),
      400,
      /event 1/,
    ],
    [
      'client claims verified',
      () => post(JSON.stringify(event({ actor: { id: 'a', type: 'human', verified: true } }))),
      400,
      /verified/,
    ],
    [
      'invalid UTF-8',
      () => post(Buffer.concat([Buffer.from('{"actor":{"id":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}}')])),
      400,
      /UTF-8/,
    ],
    ['deep nesting', () => post(deep), 400, /deep|nesting|depth/i],
    ['leaf over 65,535 bytes', () => post(JSON.stringify(event({ data: { blob: 'x'.repeat(70000) } }))), 413, /65535/],
    ['body over the limit', () => post(JSON.stringify(event({ data: { blob: 'x'.repeat(17 * 1024 * 1024) } }))), 413, /limit/],
    ['unsupported content type', () => post('hello', { 'content-type': 'text/plain' }), 415, /application\/json/],
    [
      'a protobuf body (only the OTLP route takes one)',
      () => post('hello', { 'content-type': 'application/x-protobuf' }),
      415,
      /application\/json/,
    ],
    [
      'no token',
      () =>
        app.inject({
          method: 'POST',
          url: '/v1/events',
          payload: JSON.stringify(event()),
          headers: { 'content-type': 'application/json' },
        }),
      401,
      /bearer token/,
    ],
    [
      'no token: refused before the body is read, whatever it is',
      () =>
        app.inject({
          method: 'POST',
          url: '/v1/events',
          payload: 'x'.repeat(17 * 1024 * 1024),
          headers: { 'content-type': 'text/plain' },
        }),
      401,
      /bearer token/,
    ],
    [
      'an integer a double cannot hold',
      () => post(JSON.stringify(event({ data: { n: '__BIG__' } })).replace('"__BIG__"', '9007199254740993')),
      400,
      /^\/data\/n is the integer 9007199254740993, beyond/,
    ],
    ['wrong token', () => post(JSON.stringify(event()), { authorization: 'Bearer stele_nope' }), 401, /not valid/],
    ['malformed Authorization', () => post(JSON.stringify(event()), { authorization: 'Basic abc' }), 401, /Bearer/],
  ];
  for (const [name, send, status, message] of cases) {
    test(name, async () => {
      const size = stele.log.size;
      const res = await send();
      assert.equal(res.statusCode, status, res.body.slice(0, 300));
      const body = JSON.parse(res.body) as { error: { code: string; message: string } };
      assert.equal(typeof body.error.code, 'string');
      assert.match(body.error.message, message);
      assert.equal(stele.log.size, size, 'nothing was stored');
    });
  }

  test('bad read parameters are 400/404 with JSON errors', async () => {
    for (const [url, status] of [
      ['/v1/entries/-1', 400],
      ['/v1/entries/abc', 400],
      ['/v1/entries/999999999', 404],
      ['/v1/proofs/inclusion', 400],
      ['/v1/proofs/inclusion?index=5&size=999999999', 400],
      ['/v1/proofs/consistency?from=10&to=5', 400],
      ['/nope', 404],
    ] as const) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, status, `${url}: ${res.body}`);
      assert.equal(typeof res.json().error.message, 'string');
    }
  });
});

async function openSteleWithSlowCheckpoints() {
  const d = mkdtempSync(join(tmpdir(), 'stele-api-slow-'));
  const t = (await initDataDir(d, 'slow.example/log')).token as string;
  const s = await openStele(d, { checkpointIntervalMs: 60_000 });
  const a = await buildServer(s);
  return {
    stele: s,
    app: a,
    token: t,
    async close() {
      await a.close();
      await s.close();
      rmSync(d, { recursive: true, force: true });
    },
  };
}
