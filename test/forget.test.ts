/**
 * Issue 3 end to end, in process over the HTTP API: search and pagination, reindex, evidence
 * bundles, retention expiry, legal holds and erasure — with every proof still verifying and the
 * forgotten plaintext gone from every file of the data directory.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { initDataDir } from '../src/app/datadir.js';
import { runRetention } from '../src/app/forget.js';
import { SERVER } from '../src/app/self-event.js';
import { openStele, type Stele } from '../src/app/stele.js';
import { verifyBundle } from '../src/export/bundle.js';
import { buildServer } from '../src/server/app.js';
import { DirTileSource } from '../src/storage/fs/tile-source.js';
import { openEmbedded } from '../src/storage/open.js';
import { newVerifier } from '../src/tlog/note.js';
import { verifyLog } from '../src/tlog/verify.js';
import { cleanup, filesContaining, tempDir } from './helpers/stele.js';

let dir: string;
let stele: Stele;
let app: FastifyInstance;
let token: string;

const ev = (action: string, actor: string, extra: Record<string, unknown> = {}) => ({
  actor: { id: actor, type: 'human' },
  action,
  source: { kind: action.split('.')[0] },
  outcome: 'success',
  ...extra,
});

async function post(path: string, body?: unknown) {
  const res = await app.inject({
    method: 'POST',
    url: path,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });
  return { status: res.statusCode, json: res.json() };
}

async function get(path: string) {
  const res = await app.inject({ url: path, headers: { authorization: `Bearer ${token}` } });
  return {
    status: res.statusCode,
    json: res.statusCode < 300 && String(res.headers['content-type']).includes('json') ? res.json() : undefined,
    res,
  };
}

async function search(
  q: string,
  extra = '',
): Promise<{ hits: { index: number; event: { data?: { n?: number } } }[]; next?: number; total?: number }> {
  const r = await get(`/v1/events?q=${encodeURIComponent(q)}${extra}`);
  assert.equal(r.status, 200, r.res.body);
  // indexed_through moves with the log (each search is itself logged): compared answers leave it out.
  const { indexed_through: _, ...page } = r.json;
  return page;
}

/** Files of the data directory whose bytes contain `marker`, case-insensitively. */
const filesWith = (marker: string) => filesContaining(dir, marker);

async function proofsStillVerify(): Promise<void> {
  await stele.log.waitForCheckpoint(stele.log.size);
  const r = await verifyLog(new DirTileSource(join(dir, 'log')), newVerifier(stele.vkey));
  assert.equal(r.checkpoint.size, stele.log.checkpoint.size);
}

/** Restarts with the query store deleted: opening rebuilds it from the log and the key store (as `stele reindex` does). */
async function reopenWithoutIndex(): Promise<void> {
  await app.close();
  await stele.close();
  await openEmbedded({ driver: 'fs', dir }).dropQueryStore();
  stele = await openStele(dir, { checkpointIntervalMs: 10 });
  app = await buildServer(stele);
}

before(async () => {
  dir = join(tempDir('stele-forget-'), 'data');
  token = (await initDataDir(dir, 'forget.test/log')).token as string;
  stele = await openStele(dir, { checkpointIntervalMs: 10 });
  app = await buildServer(stele);
});

after(async () => {
  await app.close();
  await stele.close();
  await cleanup();
});

describe('search', () => {
  test('each hit carries its index, is newest first, and is provable', async () => {
    const r = await post('/v1/events', [
      ev('emacs.package.install', 'alice', { data: { file: 'init.el' } }),
      ev('emacs.package.install', 'alice', { outcome: 'failure', data: { file: 'early-init.el' } }),
      ev('git.commit', 'bob', { data: { message: 'fix init.el loading' } }),
    ]);
    assert.equal(r.status, 200);
    const idx = (r.json.entries as { index: number }[]).map((e) => e.index);
    // Visible right after the acknowledgement.
    const hits = (await search('actor:alice action:emacs.package.*')).hits.map((h) => h.index);
    assert.deepEqual(hits, [idx[1], idx[0]]);
    // A phrase: "early-init.el" holds the words init and el side by side too.
    assert.deepEqual(
      (await search('"init.el" -actor:bob')).hits.map((h) => h.index),
      [idx[1], idx[0]],
    );
    assert.deepEqual(
      (await search('"early-init" OR "loading"')).hits.map((h) => h.index),
      [idx[2], idx[1]],
    );
    assert.deepEqual(
      (await search('outcome:failure OR source:git')).hits.map((h) => h.index),
      [idx[2], idx[1]],
    );
    await stele.log.waitForCheckpoint((idx[2] as number) + 1);
    const proof = await get(`/v1/proofs/inclusion?index=${idx[2]}`);
    assert.equal(proof.status, 200);
  });

  test('a bad query is refused with the offending token and its position', async () => {
    const r = await get(`/v1/events?q=${encodeURIComponent('actor:alice actr:bob')}`);
    assert.equal(r.res.statusCode, 400);
    const e = r.res.json().error;
    assert.equal(e.code, 'bad_query');
    assert.equal(e.position, 12);
    assert.match(e.message, /unknown field "actr" at column 13/);
  });

  test('pagination is stable while appends continue', async () => {
    const batch = (from: number) => Array.from({ length: 40 }, (_, i) => ev('ci.job.run', 'ci-bot', { data: { n: from + i } }));
    await post('/v1/events', batch(0));
    const seen: number[] = [];
    let cursor: number | undefined;
    let round = 0;
    for (;;) {
      const page = await search('action:ci.job.run', `&limit=7${cursor === undefined ? '' : `&cursor=${cursor}`}`);
      seen.push(...page.hits.map((h) => h.event.data?.n as number));
      await post('/v1/events', batch(1000 + 40 * round++)); // newer entries arrive between pages
      if (page.next === undefined) break;
      cursor = page.next;
    }
    assert.deepEqual(
      seen,
      Array.from({ length: 40 }, (_, i) => 39 - i),
      'every entry of the first batch exactly once, newest first, none of the later ones',
    );
  });
});

describe('export', () => {
  test('an evidence bundle verifies offline and is rejected when altered', async () => {
    const res = await app.inject({
      url: '/v1/export?format=bundle&q=actor%3Aalice',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.statusCode, 200);
    const lines = res.body.split('\n').filter(Boolean);
    const report = await verifyBundle(lines, { vkey: stele.vkey });
    assert.equal(report.count, 2);
    assert.equal(report.trusted, true);
    const altered = lines.map((l) => l.replace('"file":"init.el"', '"file":"evil.el"'));
    assert.notDeepEqual(altered, lines);
    await assert.rejects(verifyBundle(altered, { vkey: stele.vkey }), /does not match/);
  });

  test('JSON Lines and CSV stream every match', async () => {
    const jsonl = await app.inject({ url: '/v1/export?q=action%3Aci.job.run', headers: { authorization: `Bearer ${token}` } });
    assert.equal(jsonl.body.trim().split('\n').length, (await search('action:ci.job.run', '&count=true&limit=1')).total);
    const csv = await app.inject({ url: '/v1/export?format=csv&q=actor%3Abob', headers: { authorization: `Bearer ${token}` } });
    assert.match(csv.body, /^index,time,received,id,actor/);
    assert.equal(csv.body.trim().split('\r\n').length, 2);
  });
});

describe('reindex', () => {
  test('rebuilding the query store from the log and keys gives the same answers', async () => {
    // Without the log's own events: each of these searches appends a stele.access.search record.
    const queries = ['', 'actor:alice', '"init.el"', 'action:ci.* outcome:success', 'tier:compliance'].map((q) =>
      `${q} -source:stele`.trim(),
    );
    const live = [];
    for (const q of queries) live.push(await search(q, '&limit=1000&count=true'));
    await reopenWithoutIndex();
    for (const [i, q] of queries.entries()) assert.deepEqual(await search(q, '&limit=1000&count=true'), live[i], q);
  });
});

describe('forgetting', () => {
  const DAY = 86_400_000;
  /** The entry retention expired, and the stele.retention.run entry that did. */
  const expiry = { index: -1, run: -1 };
  /** A search hit without its receipt time (which the tests cannot know). */
  const place = (h: Record<string, unknown> | undefined) => {
    const { received, ...rest } = h ?? {};
    assert.match(String(received), /^\d{4}-/);
    return rest;
  };

  test('retention expires a tier after its keep: 410 expired, gone from search, disk and reindex, proofs intact', async () => {
    const r = await post('/v1/events', [
      ev('k8s.configmaps.update', 'kube-admin', {
        resource: { type: 'configmap', id: 'Expiremarker7731' },
        data: { note: 'Expiremarker7731' },
      }),
      ev('emacs.config.save', 'alice', { data: { note: 'Keepmarker7731' } }),
    ]);
    const [op, kept] = (r.json.entries as { index: number }[]).map((e) => e.index);
    await stele.index.whenIndexed(Math.max(op as number, kept as number) + 1, 60_000); // both in the query store
    assert.ok(filesWith('Expiremarker7731').length > 0, 'the marker is in the query store before expiry');

    // Now is today: nothing is 90 days old yet.
    assert.equal((await post('/v1/retention/run')).json.expiredKeys, 0);
    // 91 days on, the operational tier's day key goes; compliance keeps everything.
    const run = await stele.exclusive(() => runRetention(stele.forget, SERVER, Date.now() + 91 * DAY));
    assert.ok(run.expiredKeys >= 1);
    assert.ok(run.expired.every((e) => e.tier === 'operational'));

    const gone = await get(`/v1/entries/${op}`);
    assert.equal(gone.res.statusCode, 410);
    assert.equal(gone.res.json().error.code, 'expired');
    assert.equal((await get(`/v1/entries/${kept}`)).status, 200);
    assert.equal((await search('Expiremarker7731')).hits.length, 0);
    assert.equal((await search('Keepmarker7731')).hits.length, 1);
    assert.deepEqual(filesWith('Expiremarker7731'), []);
    await proofsStillVerify();
    const proof = await app.inject({ url: `/v1/proofs/inclusion?index=${op}` });
    assert.equal(proof.statusCode, 200, 'an expired entry can still be proven');
    // The run is itself in the log.
    assert.ok((await search('action:stele.retention.run')).hits.length >= 2);
    // The entry is a gap, not an omission: found by its place, linked to the run.
    Object.assign(expiry, { index: op, run: run.event });
    const [gap] = (await search(`index:${op}`)).hits as unknown as Record<string, unknown>[];
    assert.deepEqual(place(gap), { index: op, tier: 'operational', state: 'expired', erasure: run.event });
  });

  test('a legal hold blocks erasure and expiry until released; erasure then forgets the subject everywhere', async () => {
    const r = await post('/v1/events', [
      ev('emacs.file.save', 'dana', {
        subject: 'erin@example.com',
        resource: { type: 'file', id: 'Erasemarker9182' },
        data: { note: 'Erasemarker9182' },
      }),
      ev('emacs.file.save', 'dana', { data: { note: 'Staymarker9182' } }),
    ]);
    const [about, other] = (r.json.entries as { index: number }[]).map((e) => e.index);
    await stele.index.whenIndexed(Math.max(about as number, other as number) + 1, 60_000);
    assert.ok(filesWith('Erasemarker9182').length > 0);

    const hold = await post('/v1/holds', { subject: 'erin@example.com', reason: 'litigation 2026-17' });
    assert.equal(hold.status, 201);
    const refused = await post('/v1/erasures', { subject: 'erin@example.com', reason: 'GDPR request 5' });
    assert.equal(refused.status, 409);
    assert.equal(refused.json.error.code, 'held');
    assert.equal((await get(`/v1/entries/${about}`)).status, 200, 'nothing was erased');

    // A hold on the tier also keeps it past its keep.
    const tierHold = await post('/v1/holds', { tier: 'compliance', reason: 'audit' });
    const held = await stele.exclusive(() =>
      runRetention({ ...stele.forget, policy: () => shortCompliance(stele) }, SERVER, Date.now() + 5 * DAY),
    );
    assert.ok(held.held.length > 0 && held.expiredKeys === 0, 'held keys are not expired');
    assert.equal((await post(`/v1/holds/${tierHold.json.id}/release`, { reason: 'audit done' })).status, 200);

    assert.equal((await post(`/v1/holds/${hold.json.id}/release`, { reason: 'case closed' })).status, 200);
    const erased = await post('/v1/erasures', { subject: 'erin@example.com', reason: 'GDPR request 5' });
    assert.equal(erased.status, 200, JSON.stringify(erased.json));
    assert.equal(erased.json.entries, 1);

    const e = await get(`/v1/entries/${about}`);
    assert.equal(e.res.statusCode, 410);
    assert.equal(e.res.json().error.code, 'erased');
    assert.equal((await get(`/v1/entries/${other}`)).status, 200);
    assert.equal((await search('Erasemarker9182')).hits.length, 0);
    assert.equal((await search('subject:erin@example.com')).hits.length, 0);
    assert.deepEqual(filesWith('Erasemarker9182'), []);
    assert.deepEqual(filesWith('erin@example.com'), []);
    await proofsStillVerify();
    const record = await search(`action:stele.erasure index:${erased.json.event}`);
    assert.equal(record.hits.length, 1, 'the erasure is recorded');

    const gapOf = async (i: number) => place((await search(`index:${i}`)).hits[0] as unknown as Record<string, unknown>);
    const erasedGap = { index: about, tier: 'compliance', state: 'erased', erasure: erased.json.event };
    assert.deepEqual(await gapOf(about as number), erasedGap);

    // Nor does a rebuilt index bring it back; it rebuilds the same gaps.
    await reopenWithoutIndex();
    assert.deepEqual(await gapOf(about as number), erasedGap);
    assert.deepEqual(await gapOf(expiry.index), {
      index: expiry.index,
      tier: 'operational',
      state: 'expired',
      erasure: expiry.run,
    });
    assert.equal((await search('Erasemarker9182')).hits.length, 0);
    assert.equal((await search('Staymarker9182')).hits.length, 1);
    assert.deepEqual(filesWith('Erasemarker9182'), []);
  });
});

/** The loaded policy with compliance kept only one day (for the hold test). */
function shortCompliance(s: Stele) {
  return {
    ...s.policy,
    retention: {
      ...s.policy.retention,
      tiers: s.policy.retention.tiers.map((t) => (t.name === 'compliance' ? { ...t, keepMs: DAY_MS } : t)),
    },
  };
}
const DAY_MS = 86_400_000;
