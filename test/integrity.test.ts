/**
 * Integrity of what is written, end to end against a real `stele serve` (issue 11, point 5): a
 * repeated id with other content is refused (409, naming the first index) while an exact retry
 * gets its first index back; `stele.*` actions and the `stele` source kind are the server's own,
 * refused from every client path (POST /v1/events, source adapters, `stele append`, and
 * `stele append --local`) while the server's self-audit events still pass.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { kubernetesEvents } from '../src/sources/kubernetes.js';
import { cleanup, type DataDir, initDir, runStele, SteleServer } from './helpers/stele.js';

// biome-ignore lint/suspicious/noExplicitAny: free-form JSON in tests
type Loose = any;

const POLICY = `version: 1
roles:
  admin: { actions: [append, read, search, export, erase, hold, admin], vouch: ["*"] }
  git: { members: ["key:git-hooks"], actions: [append], vouch: ["git.*"] }
  k8s: { members: ["key:k8s-webhook"], actions: [append], vouch: ["k8s.*"] }
  writer: { members: ["key:writer"], actions: [append], vouch: ["*"] }
`;

let data: DataDir;
let server: SteleServer;
const keys: Record<string, string> = {};

async function call(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: Loose }> {
  const res = await fetch(new URL(path, server.url), {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}
const size = async (): Promise<number> => (await call('GET', '/healthz', data.token)).body.size;

before(async () => {
  data = await initDir('integrity.test/log');
  writeFileSync(join(data.dir, 'stele.policy.yaml'), POLICY);
  server = await SteleServer.start(data.dir, { checkpointIntervalMs: 20 });
  for (const [name, extra] of [
    ['git-hooks', { roles: ['git'], sources: ['git'] }],
    ['k8s-webhook', { roles: ['k8s'], sources: ['kubernetes'], actions: ['k8s.*'] }],
    ['writer', { roles: ['writer'] }],
  ] as const) {
    const r = await call('POST', '/v1/keys', data.token, { name, ...extra });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    keys[name] = r.body.key;
  }
});

after(cleanup);

const fixture = (name: string): Loose =>
  JSON.parse(readFileSync(new URL(`../../test/fixtures/kubernetes/${name}`, import.meta.url), 'utf8'));

test('a git-only key squatting the id of a Kubernetes audit event: the real event is refused 409 naming the index; exact retries keep the first index', async () => {
  const audit = fixture('event-single.json');
  const [real] = kubernetesEvents(audit, { cluster: 'prod-eu-1' });
  const squat = {
    id: real?.id,
    actor: { id: 'mallory@example.com', type: 'human' },
    action: 'git.push',
    source: { kind: 'git' },
    outcome: 'success',
  }; // no time: the server fills it in, and a retry must still match
  const first = await call('POST', '/v1/events', keys['git-hooks'] as string, squat);
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const index = first.body.entries[0].index as number;

  const before = await size();
  const hook = await call('POST', '/v1/sources/kubernetes/prod-eu-1', keys['k8s-webhook'] as string, audit);
  assert.equal(hook.status, 409, JSON.stringify(hook.body));
  assert.equal(hook.body.error.code, 'id_conflict');
  assert.match(
    hook.body.error.message,
    new RegExp(`id ${real?.id} is already in the log at index ${index}, with different content`),
  );
  assert.equal(hook.body.error.index, index);
  assert.equal(await size(), before, 'nothing was appended');

  // The squatter's exact retry (a new received time, a new defaulted time): the first index.
  await new Promise((r) => setTimeout(r, 5));
  const retry = await call('POST', '/v1/events', keys['git-hooks'] as string, squat);
  assert.equal(retry.status, 200, JSON.stringify(retry.body));
  assert.equal(retry.body.entries[0].index, index);
  // The same event through another key allowed to write it (two delivery paths): stored once.
  const other = await call('POST', '/v1/events', keys.writer as string, squat);
  assert.equal(other.status, 200, JSON.stringify(other.body));
  assert.equal(other.body.entries[0].index, index);
  assert.equal(await size(), before);
  // `actor.verified` is part of the event: an action another key vouched for, sent again by the
  // actor itself (which makes it verified), is not the same event.
  const vouched = { ...squat, id: crypto.randomUUID(), actor: { id: 'git-hooks', type: 'service' } };
  const v = await call('POST', '/v1/events', keys.writer as string, vouched);
  assert.equal(v.status, 200, JSON.stringify(v.body));
  const own = await call('POST', '/v1/events', keys['git-hooks'] as string, vouched);
  assert.equal(own.status, 409, JSON.stringify(own.body));
  assert.equal(own.body.error.index, v.body.entries[0].index);

  // A genuine webhook retry of a batch that got in: the same indices, nothing stored twice.
  const rbac = fixture('eventlist-rbac.json');
  const a = await call('POST', '/v1/sources/kubernetes/prod-eu-1', keys['k8s-webhook'] as string, rbac);
  assert.equal(a.status, 200, JSON.stringify(a.body));
  const grown = await size();
  const b = await call('POST', '/v1/sources/kubernetes/prod-eu-1', keys['k8s-webhook'] as string, rbac);
  assert.deepEqual(b.body.entries, a.body.entries);
  assert.equal(await size(), grown);
});

test('two events with one id and different content in one request: 409 naming both positions, nothing stored', async () => {
  const id = crypto.randomUUID();
  const ev = (n: number) => ({
    id,
    actor: { id: 'ci', type: 'service' },
    action: 'ci.run',
    source: { kind: 'ci' },
    outcome: 'success',
    data: { n },
  });
  const before = await size();
  const r = await call('POST', '/v1/events', keys.writer as string, [ev(1), ev(2)]);
  assert.equal(r.status, 409, JSON.stringify(r.body));
  assert.match(r.body.error.message, /event 1: id \S+ is also the id of event 0 of this request, with different content/);
  assert.equal(await size(), before);
  // The same event twice in one request is one entry.
  const same = await call('POST', '/v1/events', keys.writer as string, [ev(1), ev(1)]);
  assert.equal(same.status, 200, JSON.stringify(same.body));
  assert.equal(same.body.entries[0].index, same.body.entries[1].index);
  assert.equal(await size(), before + 1);
});

test('stele.* actions and the stele source kind are refused from clients; the server still writes its own', async () => {
  const before = await size();
  const forged = {
    actor: { id: 'writer', type: 'service' },
    action: 'stele.erasure',
    source: { kind: 'ops' },
    outcome: 'success',
    data: { subject_hash: 'x' },
  };
  for (const [what, ev] of [
    ['action', forged],
    ['action, upper case', { ...forged, action: 'Stele.erasure' }],
    ['source kind', { ...forged, action: 'ops.note', source: { kind: 'stele' } }],
    ['source kind, spelled differently', { ...forged, action: 'ops.note', source: { kind: ' Stele' } }],
  ] as const) {
    const r = await call('POST', '/v1/events', keys.writer as string, ev);
    if (r.status === 400 && what === 'action, upper case') continue; // the schema may refuse it first
    assert.equal(r.status, 403, `${what}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, 'reserved', what);
    assert.match(r.body.error.message, /reserved/);
  }
  // The admin's own token is a client too.
  const admin = await call('POST', '/v1/events', data.token, [{ ...forged, action: 'ops.ok' }, forged]);
  assert.equal(admin.status, 403);
  assert.match(admin.body.error.message, /^event 1: action "stele.erasure" is reserved/);

  // A source adapter: OTLP lets a record name its action and source kind; not these.
  const otlp = (attrs: [string, string][]) => ({
    resourceLogs: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'ops' } }] },
        scopeLogs: [
          {
            logRecords: [
              {
                timeUnixNano: '1764662400123456789',
                eventName: 'ops.note',
                attributes: attrs.map(([key, v]) => ({ key, value: { stringValue: v } })),
              },
            ],
          },
        ],
      },
    ],
  });
  for (const attrs of [[['stele.action', 'stele.erasure']], [['stele.source.kind', 'stele']]] as [string, string][][]) {
    const r = await call('POST', '/v1/sources/otlp/v1/logs', keys.writer as string, otlp(attrs));
    assert.equal(r.status, 403, `OTLP ${JSON.stringify(attrs)}: ${JSON.stringify(r.body)}`);
    assert.match(JSON.stringify(r.body), /reserved/);
  }
  const fine = await call('POST', '/v1/sources/otlp/v1/logs', keys.writer as string, otlp([]));
  assert.equal(fine.status, 200, JSON.stringify(fine.body));

  // `stele append` through the API, and --local straight into a data directory.
  const cli = await runStele(['append', '--url', server.url, '--token', data.token, JSON.stringify(forged)]);
  assert.notEqual(cli.code, 0);
  assert.match(cli.output, /action "stele.erasure" is reserved/);
  // Nothing the clients sent was appended (but the one fine OTLP record); what is new is the
  // server's record of the refusals.
  const now = await size();
  for (let i = before; i < now; i++) {
    const e = (await call('GET', `/v1/entries/${i}`, data.token)).body.event;
    if (e.action === 'ops.note' && e.source.kind === 'otlp') continue; // the fine OTLP record
    assert.equal(e.action, 'stele.access.denied', JSON.stringify(e));
  }

  // The server's own self-audit events still pass: creating a key records one.
  const r = await call('POST', '/v1/keys', data.token, { name: 'later', roles: ['writer'] });
  assert.equal(r.status, 201);
  assert.ok((await size()) > before);
});

test('stele append --local refuses reserved names too', async () => {
  const local = await initDir('integrity.test/local');
  const r = await runStele([
    'append',
    '--local',
    '--dir',
    local.dir,
    JSON.stringify({ actor: { id: 'op', type: 'human' }, action: 'stele.hold.add', source: { kind: 'ops' }, outcome: 'success' }),
  ]);
  assert.notEqual(r.code, 0);
  assert.match(r.output, /action "stele.hold.add" is reserved/);
  const ok = await runStele([
    'append',
    '--local',
    '--dir',
    local.dir,
    JSON.stringify({ actor: { id: 'op', type: 'human' }, action: 'ops.note', source: { kind: 'ops' }, outcome: 'success' }),
  ]);
  assert.equal(ok.code, 0, ok.output);
});

test('a large request (prepared on an ingest worker) retried exactly keeps its indices; one changed event in it is a 409', async () => {
  const events = Array.from({ length: 20 }, (_, i) => ({
    id: crypto.randomUUID(),
    actor: { id: 'ci', type: 'service' },
    action: 'ci.run',
    source: { kind: 'ci', agent: 'runner' },
    outcome: 'success',
    data: { n: i, pad: 'x'.repeat(400) },
  }));
  assert.ok(JSON.stringify(events).length > 8192, 'past the size prepared inline');
  const a = await call('POST', '/v1/events', keys.writer as string, events);
  assert.equal(a.status, 200, JSON.stringify(a.body));
  const grown = await size();
  const b = await call('POST', '/v1/events', keys.writer as string, events);
  assert.deepEqual(b.body.entries, a.body.entries);
  const changed = events.map((e, i) => (i === 7 ? { ...e, outcome: 'failure' } : e));
  const c = await call('POST', '/v1/events', keys.writer as string, changed);
  assert.equal(c.status, 409, JSON.stringify(c.body));
  assert.match(c.body.error.message, new RegExp(`^event 7: id \\S+ is already in the log at index ${a.body.entries[7].index}`));
  assert.equal(await size(), grown);
});
