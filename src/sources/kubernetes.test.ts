/**
 * The Kubernetes audit mapping, from the EventLists in test/fixtures/kubernetes (written from the
 * upstream audit.k8s.io/v1 types: every stage and level, non-resource URLs, impersonation, RBAC and
 * admission denials, failed authentication, service accounts and nodes).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { SteleError } from '../core/errors.js';
import { normalizeEvent, validateEvent } from '../event/normalize.js';
import { buildSealedLeaf, MAX_LEAF_BYTES, nowMicros } from '../event/record.js';
import { SEAL_OVERHEAD } from '../keys/seal.js';
import { clip, MAX_EVENT_BYTES } from './fit.js';
import { derivedId } from './ids.js';
import { K8S_STAGES, k8sEventId, kubernetesEvents } from './kubernetes.js';

/** Parsed JSON of fixtures and answers, read freely by the assertions. */
// biome-ignore lint/suspicious/noExplicitAny: free-form JSON in tests
type Loose = any;

const DIR = new URL('../../../test/fixtures/kubernetes/', import.meta.url);
const load = (name: string): Record<string, unknown> => JSON.parse(readFileSync(new URL(name, DIR), 'utf8'));
const fixtures = readdirSync(DIR).filter((f) => f.endsWith('.json') && !f.includes('malformed'));
const opts = { cluster: 'prod-eu-1' };
type Ev = Record<string, Loose>;
const map = (body: unknown) => kubernetesEvents(body, opts) as Ev[];
const list = (...items: unknown[]) => ({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items });

/** The bytes of the event as a sealed leaf (the larger form), with a long principal name. */
function sealedSize(e: Ev): number {
  validateEvent(e);
  const n = normalizeEvent(e, nowMicros());
  const leaf = buildSealedLeaf(n, { principal: 'p'.repeat(200), method: 'apikey' }, nowMicros(), 'k'.repeat(64), (plain) =>
    Buffer.alloc(plain.length + SEAL_OVERHEAD),
  );
  return leaf.length;
}

test('every fixture maps to valid events that fit a sealed leaf, one per audit event, in order', () => {
  assert.ok(fixtures.length >= 6);
  for (const f of fixtures) {
    const body = load(f);
    const events = map(body);
    const items = (body.items as unknown[] | undefined) ?? [body];
    assert.equal(events.length, items.length, f);
    for (const [i, e] of events.entries()) {
      assert.ok(sealedSize(e) <= MAX_LEAF_BYTES, `${f} item ${i}`);
      assert.equal(e.source.kind, 'kubernetes');
      assert.equal(e.source.host, 'prod-eu-1');
      assert.equal(e.source.agent, 'kube-apiserver');
      const item = items[i] as Ev;
      assert.equal(e.id, k8sEventId(item.auditID, item.stage, item.requestReceivedTimestamp), `${f} item ${i}`);
      assert.equal(e.time, item.requestReceivedTimestamp);
      // data is the audit event itself, minus kind/apiVersion
      const { kind: _k, apiVersion: _a, ...rest } = item;
      assert.deepEqual(e.data, rest, `${f} item ${i}`);
    }
  }
});

test('actions, resources, actors and outcomes of the fixtures', () => {
  const rows = fixtures.flatMap((f) =>
    map(load(f)).map((e) => [
      e.action,
      e.resource.type,
      e.resource.id,
      e.actor.id,
      e.actor.type,
      e.actor.on_behalf_of,
      e.outcome,
    ]),
  );
  const has = (row: unknown[]) =>
    assert.ok(
      rows.some((r) => JSON.stringify(r) === JSON.stringify(row)),
      JSON.stringify(row),
    );
  // resources, subresources, API groups, collections
  has(['k8s.configmaps.update', 'configmaps', 'payments/app-config', 'alice@example.com', 'human', undefined, 'success']);
  has([
    'k8s.pods.watch',
    'pods',
    'payments/*',
    'system:serviceaccount:argocd:argocd-application-controller',
    'service',
    undefined,
    'success',
  ]);
  has([
    'k8s.pods.exec.create',
    'pods',
    'payments/payments-api-7d9c6b5f4-x2k8p',
    'alice@example.com',
    'human',
    undefined,
    'success',
  ]);
  has([
    'k8s.deployments.scale.patch',
    'deployments.apps',
    'payments/payments-api',
    'alice@example.com',
    'human',
    undefined,
    'success',
  ]);
  has([
    'k8s.clusterrolebindings.create',
    'clusterrolebindings.rbac.authorization.k8s.io',
    'ci-deployer-admin',
    'alice@example.com',
    'human',
    undefined,
    'success',
  ]);
  has([
    'k8s.pods.status.patch',
    'pods',
    'payments/payments-api-7d9c6b5f4-x2k8p',
    'system:node:ip-10-0-1-23.eu-west-1.compute.internal',
    'service',
    undefined,
    'success',
  ]);
  // a Panic is a failure; a 404 too
  has([
    'k8s.invoices.get',
    'invoices.billing.example.com',
    'payments/inv-2026-0301',
    'alice@example.com',
    'human',
    undefined,
    'failure',
  ]);
  has([
    'k8s.deployments.get',
    'deployments.apps',
    'payments/payments-worker',
    'alice@example.com',
    'human',
    undefined,
    'failure',
  ]);
  // RBAC denials (forbid), an admission denial (403 after an RBAC allow), failed authentication (401)
  has(['k8s.secrets.list', 'secrets', 'kube-system/*', 'system:serviceaccount:ci:deployer', 'service', undefined, 'denied']);
  has(['k8s.namespaces.delete', 'namespaces', 'production', 'bob@example.com', 'human', undefined, 'denied']);
  has(['k8s.pods.create', 'pods', 'payments/debug', 'alice@example.com', 'human', undefined, 'denied']);
  has(['k8s.secrets.list', 'secrets', 'kube-system/*', 'system:unauthenticated', 'service', undefined, 'denied']);
  // impersonation: the authenticated user is the actor, the impersonated one on_behalf_of
  has(['k8s.pods.list', 'pods', 'staging/*', 'alice@example.com', 'human', 'bob@example.com', 'success']);
  has([
    'k8s.deployments.patch',
    'deployments.apps',
    'tenant-a/web',
    'system:serviceaccount:argocd:argocd-application-controller',
    'service',
    'system:serviceaccount:tenant-a:deployer',
    'success',
  ]);
  has(['k8s.secrets.list', 'secrets', 'kube-system/*', 'carol@example.com', 'human', undefined, 'denied']);
  // non-resource URLs: the path without the query string
  has(['k8s.nonresource.get', 'nonresource', '/livez', 'system:anonymous', 'service', undefined, 'success']);
  has(['k8s.nonresource.get', 'nonresource', '/version', 'alice@example.com', 'human', undefined, 'success']);
  has([
    'k8s.nonresource.get',
    'nonresource',
    '/logs/kube-apiserver.log',
    'system:serviceaccount:ci:deployer',
    'service',
    undefined,
    'denied',
  ]);
});

test('every stage of a request is its own event; a retry maps to the same ids', () => {
  const body = load('eventlist-stages.json');
  const events = map(body);
  const update = events.filter((e) => e.data.auditID === '0d2e6a4c-9b1f-4f3e-8a57-3c6b2d1e9f70');
  assert.deepEqual(
    update.map((e) => e.data.stage),
    ['RequestReceived', 'ResponseComplete'],
  );
  assert.notEqual(update[0]?.id, update[1]?.id);
  assert.deepEqual(
    map(body).map((e) => e.id),
    events.map((e) => e.id),
  );
  assert.deepEqual(new Set(fixtures.flatMap((f) => map(load(f)).map((e) => e.data.stage))), new Set(K8S_STAGES));
  assert.deepEqual(
    new Set(fixtures.flatMap((f) => map(load(f)).map((e) => e.data.level))),
    new Set(['Metadata', 'Request', 'RequestResponse']),
  );
  // Before a response there is no outcome yet: RequestReceived maps to success, without a reason.
  assert.equal(update[0]?.outcome, 'success');
  assert.equal(update[0]?.reason, undefined);
});

test('ids: auditID, stage and requestReceivedTimestamp, so a client reusing an Audit-ID cannot hide a request as a repeat', () => {
  assert.equal(k8sEventId('a1b2c3', 'ResponseComplete', 't'), derivedId('k8s.audit', 'a1b2c3:ResponseComplete:t'));
  const [item] = load('eventlist-rbac.json').items as Ev[];
  const again = { ...item, requestReceivedTimestamp: '2026-03-02T02:59:00.000001Z', verb: 'delete' };
  const [a, b] = map(list(item, again));
  assert.notEqual(a?.id, b?.id);
});

test('reasons: the response message for failures and denials, else the authorizer reason; none for successes', () => {
  const all = fixtures.flatMap((f) => map(load(f)));
  for (const e of all) {
    if (e.outcome === 'success') assert.equal(e.reason, undefined);
    else assert.ok(typeof e.reason === 'string' && e.reason.length > 0, JSON.stringify(e.data.responseStatus));
  }
  const panic = all.find((e) => e.data.stage === 'Panic');
  assert.equal(panic?.reason, "APIServer panic'd: runtime error: invalid memory address or nil pointer dereference");
  const forbid = { ...(load('eventlist-denied.json').items as Ev[])[0], responseStatus: undefined };
  // decision=forbid is denied even without a response status
  assert.equal(map(list(forbid))[0]?.outcome, 'denied');
});

test('request and response bodies are kept when present; oversized or too deep ones are dropped with a note', () => {
  const [rbac] = map(load('eventlist-rbac.json'));
  assert.equal(rbac?.data.requestObject.kind, 'ClusterRoleBinding');
  assert.equal(rbac?.data.responseObject.metadata.uid, '7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d');
  assert.equal(rbac?.data.truncated, undefined);
  const [meta] = map(load('event-single.json'));
  assert.equal(meta?.data.responseObject, undefined);

  const [base] = load('eventlist-rbac.json').items as Ev[];
  const items = Array.from({ length: 2000 }, (_, i) => ({ metadata: { name: `cm-${i}` }, data: { v: 'x'.repeat(100) } }));
  const big = { ...base, responseObject: { kind: 'ConfigMapList', items } };
  let deep: unknown = { leaf: true };
  for (let i = 0; i < 40; i++) deep = { nested: deep };
  const tooDeep = { ...base, auditID: 'deep-1', requestObject: deep };
  const [e1, e2] = map(list(big, tooDeep));
  assert.equal(e1?.data.responseObject, undefined);
  assert.equal(e1?.data.requestObject.kind, 'ClusterRoleBinding');
  assert.deepEqual(
    e1?.data.truncated.map((t: Ev) => [t.field, t.reason]),
    [['responseObject', 'size']],
  );
  assert.ok(e1?.data.truncated[0].bytes > 200_000);
  assert.deepEqual(
    e2?.data.truncated.map((t: Ev) => [t.field, t.reason]),
    [['requestObject', 'depth']],
  );
  for (const e of [e1, e2]) assert.ok(sealedSize(e as Ev) <= MAX_LEAF_BYTES);
});

test('values a client controls are bounded, never refused: long names, odd resources and verbs, huge headers', () => {
  const [base] = load('eventlist-denied.json').items as Ev[];
  const hostile = {
    ...base,
    auditID: 'x'.repeat(5000), // the Audit-ID header
    requestURI: `/api/v1/namespaces/${'n'.repeat(3000)}/Pods.Evil/${'y'.repeat(10_000)}?${'q'.repeat(100_000)}`,
    verb: 'PROPFIND',
    user: { username: `${'u'.repeat(300)}@example.com`, groups: ['system:authenticated'] },
    sourceIPs: Array.from({ length: 20_000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`),
    userAgent: 'ua'.repeat(1000),
    objectRef: {
      resource: 'Pods.Evil',
      namespace: 'n'.repeat(3000),
      name: 'y'.repeat(10_000),
      subresource: '../../etc',
      apiVersion: 'v1',
    },
    annotations: { 'example.com/huge': 'a'.repeat(60_000) },
  };
  const [e] = map(list(hostile));
  assert.ok(e);
  assert.equal(e.action, 'k8s.pods_evil.x_etc.propfind');
  assert.equal(e.resource.id.length, 2048);
  assert.equal(e.actor.id.length, 256);
  assert.match(e.actor.id, /^u+…#[0-9a-f]{12}$/);
  assert.ok(JSON.stringify(e).length <= MAX_EVENT_BYTES);
  assert.ok(e.data.truncated.some((t: Ev) => t.field === '*'));
  assert.ok(sealedSize(e) <= MAX_LEAF_BYTES);
  // distinct long values stay distinct after clipping
  assert.notEqual(clip(`${'a'.repeat(300)}1`, 256), clip(`${'a'.repeat(300)}2`, 256));
  // clipping never splits a surrogate pair
  const emoji = clip('😀'.repeat(200), 256);
  validateEvent({ actor: { id: emoji, type: 'human' }, action: 'k8s.x.get', source: { kind: 'kubernetes' }, outcome: 'success' });
});

test('structural problems refuse the whole body with the item and field named', () => {
  const good = (load('eventlist-rbac.json').items as Ev[])[2] as Ev;
  const cases: [unknown, RegExp][] = [
    [load('eventlist-malformed.json'), /^items\[1\]\.objectRef: must be an object, not a string$/],
    [[good], /must be an audit\.k8s\.io\/v1 EventList \(a JSON object\), not a list/],
    [{ ...list(good), kind: 'PodList' }, /^kind must be EventList \(or Event\), got "PodList"$/],
    [
      { ...list(good), apiVersion: 'audit.k8s.io/v1beta1' },
      /^apiVersion must be audit\.k8s\.io\/v1, got "audit\.k8s\.io\/v1beta1" \(run the API server with --audit-webhook-version/,
    ],
    [{ ...list(good), items: { a: 1 } }, /^items: must be a list of events, not an object$/],
    [list(good, 'oops'), /^items\[1\]: must be an object \(an audit\.k8s\.io\/v1 Event\), not a string$/],
    [list(good, { ...good, stage: undefined }), /^items\[1\]\.stage: is required$/],
    [
      list(good, { ...good, stage: 'Done' }),
      /^items\[1\]\.stage: must be one of RequestReceived, ResponseStarted, ResponseComplete, Panic, got "Done"$/,
    ],
    [
      list(good, { ...good, level: 'None' }),
      /^items\[1\]\.level: must be one of Metadata, Request, RequestResponse, got "None"$/,
    ],
    [list(good, { ...good, verb: 7 }), /^items\[1\]\.verb: must be a string, not a number$/],
    [list(good, { ...good, auditID: '' }), /^items\[1\]\.auditID: must not be empty$/],
    [list(good, { ...good, user: undefined }), /^items\[1\]\.user: is required/],
    [
      list(good, { ...good, user: { username: 'a', groups: ['x', 3] } }),
      /^items\[1\]\.user\.groups\[1\]: must be a string, not a number$/,
    ],
    [
      list(good, { ...good, user: { username: 'a', extra: { k: 'v' } } }),
      /^items\[1\]\.user\.extra\.k: must be a list of strings, not a string$/,
    ],
    [list(good, { ...good, impersonatedUser: 'bob' }), /^items\[1\]\.impersonatedUser: must be an object, not a string$/],
    [
      list(good, { ...good, objectRef: { resource: ['pods'] } }),
      /^items\[1\]\.objectRef\.resource: must be a string, not a list$/,
    ],
    [
      list(good, { ...good, responseStatus: { code: '200' } }),
      /^items\[1\]\.responseStatus\.code: must be an integer, not a string$/,
    ],
    [
      list(good, { ...good, requestReceivedTimestamp: 'yesterday' }),
      /^items\[1\]\.requestReceivedTimestamp: must be an RFC 3339 time/,
    ],
    [list(good, { ...good, annotations: { a: 1 } }), /^items\[1\]\.annotations\["a"\]: must be a string, not a number$/],
    [list(good, { ...good, sourceIPs: '10.0.0.1' }), /^items\[1\]\.sourceIPs: must be a list of strings, not a string$/],
    [{ ...good, kind: 'Event', apiVersion: 'audit.k8s.io/v1', verb: null }, /^event\.verb: is required$/],
  ];
  for (const [body, message] of cases) {
    assert.throws(
      () => map(body),
      (e: unknown) => e instanceof SteleError && e.status === 400 && e.code === 'invalid_source_event' && message.test(e.message),
      `${message}`,
    );
  }
});

test('null optional fields (unset Go pointers and times) are absent; an empty EventList maps to nothing', () => {
  const good = (load('eventlist-rbac.json').items as Ev[])[2] as Ev;
  const [e] = map(
    list({ ...good, impersonatedUser: null, requestReceivedTimestamp: null, objectRef: null, responseStatus: null }),
  );
  assert.equal(e?.time, good.stageTimestamp);
  assert.equal(e?.action, 'k8s.nonresource.get');
  assert.equal(e?.actor.on_behalf_of, undefined);
  assert.equal('impersonatedUser' in (e?.data ?? {}), false);
  assert.deepEqual(map(list()), []);
  assert.deepEqual(map({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: null }), []);
});
