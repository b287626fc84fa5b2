/**
 * Issue 11 (reading), end to end against `stele serve`: what a search, an export or a refused read
 * tells about entries the asker may not see (nothing: counts and cursors cover only visible
 * entries, refusals name only the index), and erased entries shown as the gaps they are — in
 * search, the CLI, JSONL and CSV exports and evidence bundles, and the same after `stele reindex`.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { verifyBundle } from '../src/export/bundle.js';
import { cleanup, type DataDir, initDir, type JsonAnswer, requestJson, runStele, SteleServer } from './helpers/stele.js';

const POLICY = `version: 1
roles:
  admin:   { actions: [append, read, search, export, erase, hold, admin], vouch: ["*"] }
  auditor: { actions: [read, search, export], tiers: [compliance] }
retention:
  default: compliance
  tiers:
    - name: operational
      keep: 90d
      match: { actions: ["k8s.*"] }
    - name: compliance
      keep: forever
`;

// Auditors see the compliance tier, except HR's entries.
const CEDAR = `@id("no-hr-for-auditors")
forbid(principal in Stele::Role::"auditor", action, resource is Stele::Entry)
when { resource.action like "hr.*" };
`;

let data: DataDir;
let server: SteleServer;
let auditor: string;

const call = (path: string, token: string, init: { method?: string; body?: unknown } = {}): Promise<JsonAnswer> =>
  requestJson(`${server.url}${path}`, init.method, token, init.body);

interface Page {
  hits: Record<string, unknown>[];
  next?: number;
  total?: number;
}

async function search(token: string, q: string, extra = ''): Promise<Page> {
  const r = await call(`/v1/events?q=${encodeURIComponent(q)}${extra}`, token);
  assert.equal(r.status, 200, r.text);
  // indexed_through moves with the log (each search is itself logged): compared answers leave it out.
  const { indexed_through: _, ...page } = r.body as unknown as Page & { indexed_through: number };
  return page;
}

const ev = (action: string, extra: Record<string, unknown> = {}) => ({
  id: randomUUID(),
  actor: { id: 'dana@example.com', type: 'human' },
  action,
  source: { kind: action.split('.')[0] },
  outcome: 'success',
  ...extra,
});

async function append(events: unknown[]): Promise<number[]> {
  const r = await call('/v1/events', data.token, { method: 'POST', body: events });
  assert.equal(r.status, 200, r.text);
  return (r.body.entries as { index: number }[]).map((e) => e.index);
}

before(async () => {
  data = await initDir('reading.test/log');
  writeFileSync(join(data.dir, 'stele.policy.yaml'), POLICY);
  writeFileSync(join(data.dir, 'stele.cedar'), CEDAR);
  server = await SteleServer.start(data.dir, { checkpointIntervalMs: 20 });
  const made = await runStele([
    'keys',
    'create',
    '--url',
    server.url,
    '--token',
    data.token,
    '--name',
    'audit',
    '--role',
    'auditor',
  ]);
  assert.equal(made.code, 0, made.output);
  auditor = made.stdout.trim();
});

after(async () => {
  await server?.stop();
  await cleanup();
});

describe('counts and cursors cover only what the asker may see', () => {
  test('a word found only in a hidden entry answers exactly as a word found nowhere', async () => {
    await append([ev('hr.salary.change', { resource: { type: 'employee', id: 'E-17' }, data: { note: 'salary-250000' } })]);
    await append(Array.from({ length: 5 }, (_, i) => ev('emacs.file.save', { data: { n: i } })));
    for (const extra of ['&count=true', '&count=true&limit=1', '&count=true&order=asc&limit=1']) {
      const hidden = await search(auditor, 'salary-250000', extra);
      const nothing = await search(auditor, 'nosuchword4711', extra);
      assert.deepEqual(hidden, { hits: [], total: 0 }, extra);
      assert.deepEqual(nothing, { hits: [], total: 0 }, extra);
    }
    // The admin sees it: the word is there.
    assert.equal((await search(data.token, 'salary-250000', '&count=true')).total, 1);
    // A count over everything counts only the auditor's entries.
    const all = await search(auditor, 'action:hr.* OR action:emacs.*', '&count=true&limit=1000');
    assert.equal(all.total, all.hits.length);
    assert.ok(all.hits.every((h) => !String((h.event as { action: string }).action).startsWith('hr.')));
  });

  test('a summary counts only what the asker may see: a hidden entry counts as nothing', async () => {
    const summary = async (token: string, q: string) => {
      const r = await call(`/v1/events/summary?q=${encodeURIComponent(q)}`, token);
      assert.equal(r.status, 200, r.text);
      const { indexed_through: _, ...s } = r.body as Record<string, unknown>;
      return s as { entries: number; facets: Record<string, { values: { value: string; count: number }[] }> };
    };
    const word = `bonus${randomUUID().slice(0, 8)}`;
    await append([ev('hr.bonus.grant', { data: { note: word } }), ev('emacs.file.save', { data: { note: 'x' } })]);
    // The hidden entry's word: the same answer as a word found nowhere.
    assert.deepEqual(await summary(auditor, word), await summary(auditor, 'nosuchword4711'));
    assert.equal((await summary(data.token, word)).entries, 1);
    const q = 'action:hr.* OR action:emacs.*';
    const seen = await summary(auditor, q);
    assert.equal(seen.entries, (await search(auditor, q, '&count=true&limit=1')).total);
    assert.ok(!seen.facets.action?.values.some((v) => v.value.startsWith('hr.')));
    assert.ok((await summary(data.token, q)).facets.action?.values.some((v) => v.value.startsWith('hr.')));
  });

  test('paging past a hidden entry never puts a cursor on it', async () => {
    const [a, hr, b, c] = await append([
      ev('emacs.file.save'),
      ev('hr.review.write', { data: { note: 'confidential' } }),
      ev('emacs.file.save'),
      ev('emacs.file.save'),
    ]);
    for (const order of ['desc', 'asc']) {
      const seen: number[] = [];
      const cursors: number[] = [];
      let cursor: number | undefined;
      for (let round = 0; round < 10; round++) {
        const page = await search(
          auditor,
          `index:${a}..${c}`,
          `&limit=1&order=${order}${cursor === undefined ? '' : `&cursor=${cursor}`}`,
        );
        seen.push(...page.hits.map((h) => h.index as number));
        if (page.next === undefined) break;
        cursors.push(page.next);
        cursor = page.next;
      }
      assert.deepEqual(seen, order === 'desc' ? [c, b, a] : [a, b, c], order);
      assert.ok(!cursors.includes(hr as number), `${order}: a cursor named the hidden entry ${hr}: ${cursors.join()}`);
    }
    // The admin pages through all four.
    assert.equal((await search(data.token, `index:${a}..${c}`, '&count=true')).total, 4);
  });

  test('an export holds only visible entries', async () => {
    const r = await call(`/v1/export?q=${encodeURIComponent('action:hr.* OR action:emacs.*')}`, auditor);
    assert.equal(r.status, 200);
    assert.ok(!r.text.includes('hr.'), 'no hidden entry exported');
    assert.ok(r.text.includes('emacs.file.save'));
  });
});

describe('refusals do not open the entry', () => {
  test('hidden by a forbid, by tier, or erased in a tier the asker cannot see: the same 403, naming only the index', async () => {
    const [hr, k8s] = await append([
      ev('hr.salary.change', { data: { note: 'salary-990000' } }),
      ev('k8s.pods.delete', { resource: { type: 'pod', id: 'web-1' } }),
    ]);
    const [k8sErased] = await append([ev('k8s.secrets.get', { subject: 'olga@example.com' })]);
    const erased = await call('/v1/erasures', data.token, {
      method: 'POST',
      body: { subject: 'olga@example.com', reason: 'test' },
    });
    assert.equal(erased.status, 200, erased.text);
    const messages: string[] = [];
    for (const i of [hr, k8s, k8sErased] as number[]) {
      const r = await call(`/v1/entries/${i}`, auditor);
      assert.equal(r.status, 403, r.text);
      const e = r.body.error as { code: string; message: string };
      assert.equal(e.code, 'forbidden');
      messages.push(e.message.replace(String(i), '<i>'));
      assert.doesNotMatch(r.text, /hr\.|salary|k8s|secrets|pods|erased|expired/i);
    }
    assert.equal(new Set(messages).size, 1, messages.join(' | '));
    // Nor does a search show the gap of an entry of a tier the auditor may not see.
    assert.deepEqual(await search(auditor, `index:${k8sErased}`, '&count=true'), { hits: [], total: 0 });
    assert.equal((await search(data.token, `index:${k8sErased}`)).hits[0]?.state, 'erased');
    // The record of the refusals keeps no content of the entries either.
    const denied = await call(`/v1/export?q=${encodeURIComponent('action:stele.access.denied')}`, data.token);
    assert.doesNotMatch(denied.text, /hr\.salary|salary-990000/);
  });
});

describe('erased entries are gaps, not omissions', () => {
  let first: number;
  let last: number;
  let erasedIndex: number;
  let erasure: number;

  before(async () => {
    const idx = await append([
      ev('emacs.file.save', { data: { note: 'Before4242' } }),
      ev('emacs.file.save', { subject: 'erin@example.com', data: { note: 'Erasemarker4242' } }),
      ev('emacs.file.save', { data: { note: 'After4242' } }),
    ]);
    [first, erasedIndex, last] = idx as [number, number, number];
    const r = await call('/v1/erasures', data.token, {
      method: 'POST',
      body: { subject: 'erin@example.com', reason: 'GDPR art. 17' },
    });
    assert.equal(r.status, 200, r.text);
    erasure = r.body.event as number;
  });

  const gap = () => ({ index: erasedIndex, tier: 'compliance', state: 'erased', erasure });

  test('search shows the gap for place queries only, with nothing of the event', async () => {
    for (const token of [data.token, auditor]) {
      const page = await search(token, `index:${first}..${last}`, '&count=true');
      assert.deepEqual(
        page.hits.map((h) => h.index),
        [last, erasedIndex, first],
      );
      assert.equal(page.total, 3);
      const g = page.hits[1] as Record<string, unknown>;
      const leaf = (await (await fetch(`${server.url}/v1/entries/${erasedIndex}`)).json()) as { record: { received: string } };
      assert.equal(g.received, leaf.record.received, "the leaf's receipt time");
      const { received: _r, ...rest } = g;
      assert.deepEqual(rest, gap(), 'index, received, tier, state, erasure: nothing else');
    }
    // Queries that test content never match a gap, not even through NOT.
    for (const q of [
      'Erasemarker4242',
      'actor:dana@example.com',
      '-actor:nobody',
      'subject:erin@example.com',
      'action:emacs.*',
    ]) {
      const page = await search(data.token, `index:${first}..${last} ${q}`);
      assert.ok(!page.hits.some((h) => h.index === erasedIndex), q);
    }
    assert.equal((await search(data.token, `tier:compliance index:${erasedIndex}`)).hits.length, 1);
    const r = await call(`/v1/entries/${erasedIndex}`, auditor);
    assert.equal(r.status, 410, r.text);
    assert.equal((r.body.error as { code: string }).code, 'erased');
  });

  test('`stele search` prints the gap', async () => {
    const r = await runStele(['search', '--url', server.url, '--token', data.token, `index:${first}..${last}`]);
    assert.equal(r.code, 0, r.output);
    assert.match(r.stdout, new RegExp(`^#${erasedIndex} .*erased by #${erasure}.*\\[compliance\\]$`, 'm'));
  });

  test('JSONL, CSV and bundle exports carry the gap', async () => {
    const q = encodeURIComponent(`index:${first}..${last}`);
    const jsonl = await call(`/v1/export?q=${q}`, data.token);
    const lines = jsonl.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      lines.map((l) => l.index),
      [first, erasedIndex, last],
    );
    const { received: _r, ...rest } = lines[1] as Record<string, unknown>;
    assert.deepEqual(rest, gap());

    const csv = await call(`/v1/export?format=csv&q=${q}`, data.token);
    const rows = csv.text.trim().split('\r\n');
    const header = (rows[0] as string).split(',');
    const row = (rows[2] as string).split(',');
    const cell = (c: string) => row[header.indexOf(c)];
    assert.deepEqual(['index', 'tier', 'state', 'erasure', 'action', 'actor'].map(cell), [
      String(erasedIndex),
      'compliance',
      'erased',
      String(erasure),
      '',
      '',
    ]);

    const bundle = await call(`/v1/export?format=bundle&q=${q}`, data.token);
    const blines = bundle.text.split('\n').filter(Boolean);
    const report = await verifyBundle(blines, { vkey: data.vkey });
    assert.equal(report.count, 3);
    assert.equal(report.gaps, 1);
    const g = JSON.parse(blines[2] as string) as Record<string, unknown>;
    assert.deepEqual(Object.keys(g).sort(), ['erasure', 'index', 'leaf', 'proof', 'state', 'type']);
    assert.equal(g.type, 'gap');
    assert.doesNotMatch(bundle.text, /Erasemarker4242/);
  });

  test('stele reindex rebuilds the same gaps', async () => {
    const q = `index:${first}..${last}`;
    const live = await search(data.token, q, '&count=true');
    await server.stop();
    rmSync(join(data.dir, 'index'), { recursive: true, force: true });
    const r = await runStele(['reindex', '--dir', data.dir]);
    assert.equal(r.code, 0, r.output);
    assert.match(r.stdout, /readable, \d+ expired or erased/);
    server = await SteleServer.start(data.dir, { checkpointIntervalMs: 20 });
    assert.deepEqual(await search(data.token, q, '&count=true'), live);
  });
});
