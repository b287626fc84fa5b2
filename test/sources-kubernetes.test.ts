/**
 * The Kubernetes audit webhook end to end: a real `stele serve`, the realistic EventLists of
 * test/fixtures/kubernetes POSTed as the API server's webhook backend sends them, authenticated by
 * an API key (role k8s) and, over mutual TLS, by a client certificate (cert:kube-apiserver).
 * Checks durability (kill -9 after the answer), idempotency (a resent batch gets the same indices
 * and stores nothing), all-or-nothing refusal of malformed payloads with precise messages, the
 * webhook's default 400-event batch, bounded bodies, permissions, and that one search finds it all.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { kubernetesEvents } from '../src/sources/kubernetes.js';
import { cleanup, type DataDir, initDir, SteleServer, tempDir } from './helpers/stele.js';

/** Parsed JSON of fixtures and answers, read freely by the assertions. */
// biome-ignore lint/suspicious/noExplicitAny: free-form JSON in tests
type Loose = any;

const FIXTURES = new URL('../../test/fixtures/kubernetes/', import.meta.url);
const fixture = (name: string): Record<string, Loose> => JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8'));
const GOOD = readdirSync(FIXTURES).filter((f) => f.endsWith('.json') && !f.includes('malformed'));
const list = (...items: unknown[]) => ({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items });

const POLICY = `version: 1
roles:
  admin: { actions: [append, read, search, export, erase, hold, admin], vouch: ["*"] }
  writer: { actions: [append], vouch: ["*"] }
  k8s: { members: ["key:k8s-webhook", "cert:kube-apiserver"], actions: [append], vouch: ["k8s.*"] }
`;

interface Answer {
  status: number;
  body: Loose;
}
interface Tls {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** One HTTP(S) request; the body is JSON unless given as a string. */
function call(
  base: string,
  method: string,
  path: string,
  o: { token?: string; body?: unknown; type?: string; tls?: Tls } = {},
): Promise<Answer> {
  const url = new URL(path, base);
  const headers: Record<string, string> = {};
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  let payload: string | undefined;
  if (o.body !== undefined) {
    payload = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
    headers['content-type'] = o.type ?? 'application/json';
  }
  const parse = (status: number, text: string): Answer => {
    try {
      return { status, body: JSON.parse(text) };
    } catch {
      return { status, body: { text } };
    }
  };
  if (!o.tls) {
    return fetch(url, { method, headers, ...(payload !== undefined ? { body: payload } : {}) }).then(async (r) =>
      parse(r.status, await r.text()),
    );
  }
  const tls = o.tls;
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, ca: tls.ca, ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}) }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        text += d;
      });
      res.on('end', () => resolve(parse(res.statusCode ?? 0, text)));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

let data: DataDir;
let server: SteleServer;
let webhookKey: string;
const webhook = (body: unknown, path = '/v1/sources/kubernetes/prod-eu-1', token = webhookKey) =>
  call(server.url, 'POST', path, { token, body });
const size = async (): Promise<number> => (await call(server.url, 'GET', '/healthz')).body.size;
const search = async (q: string) =>
  (await call(server.url, 'GET', `/v1/events?q=${encodeURIComponent(q)}&limit=1000&count=true`, { token: data.token })).body;

async function createKey(name: string, roles: string[], extra: Record<string, unknown> = {}): Promise<string> {
  const r = await call(server.url, 'POST', '/v1/keys', { token: data.token, body: { name, roles, ...extra } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.key as string;
}

before(async () => {
  data = await initDir('k8s.test/log');
  writeFileSync(join(data.dir, 'stele.policy.yaml'), POLICY);
  server = await SteleServer.start(data.dir, { checkpointIntervalMs: 20 });
  // as docs/sources/kubernetes.md says: stele keys create --name k8s-webhook --role k8s --source kubernetes --action 'k8s.*'
  webhookKey = await createKey('k8s-webhook', ['k8s'], { sources: ['kubernetes'], actions: ['k8s.*'] });
});

after(cleanup);

test('the webhook batches are stored once durable, as the key vouching for the users, and survive kill -9', async () => {
  const before = await size();
  let total = 0;
  const acked: { id: string; index: number }[] = [];
  for (const f of GOOD) {
    const body = fixture(f);
    const r = await webhook(body);
    assert.equal(r.status, 200, `${f}: ${JSON.stringify(r.body)}`);
    const expected = kubernetesEvents(body, { cluster: 'prod-eu-1' });
    assert.deepEqual(
      r.body.entries.map((e: { id: string }) => e.id),
      expected.map((e) => e.id),
    );
    total += expected.length;
    acked.push(...r.body.entries);
  }
  assert.equal(await size(), before + total);
  assert.equal(new Set(acked.map((e) => e.index)).size, total);

  await server.kill(); // acknowledged means durable
  server = await SteleServer.start(data.dir, { checkpointIntervalMs: 20 });
  // every acknowledged entry is there (the restart itself appends its stele.policy.load event)
  assert.ok((await size()) >= before + total);
  for (const e of [acked[0], acked.at(-1)]) {
    const got = await call(server.url, 'GET', `/v1/entries/${e?.index}`, { token: data.token });
    assert.equal(got.body.event.id, e?.id);
  }

  const [first] = (await webhook(fixture('eventlist-rbac.json'))).body.entries;
  const got = await call(server.url, 'GET', `/v1/entries/${first.index}`, { token: data.token });
  assert.equal(got.status, 200, JSON.stringify(got.body));
  assert.deepEqual(got.body.ingest, { principal: 'k8s-webhook', method: 'apikey' });
  const ev = got.body.event;
  assert.deepEqual(ev.actor, { id: 'alice@example.com', type: 'human', verified: false });
  assert.equal(ev.action, 'k8s.clusterrolebindings.create');
  assert.deepEqual(ev.source, { kind: 'kubernetes', host: 'prod-eu-1', agent: 'kube-apiserver' });
  assert.deepEqual(ev.resource, { type: 'clusterrolebindings.rbac.authorization.k8s.io', id: 'ci-deployer-admin' });
  assert.equal(ev.time, '2026-03-02T02:47:12.300114Z');
  assert.equal(ev.data.requestObject.roleRef.name, 'cluster-admin');
  assert.equal(ev.data.annotations['authorization.k8s.io/decision'], 'allow');
});

test('a resent batch (a webhook retry) answers the same indices and stores nothing', async () => {
  const body = fixture('eventlist-stages.json');
  const a = await webhook(body);
  const n = await size();
  const b = await webhook(body);
  assert.equal(b.status, 200);
  assert.deepEqual(b.body.entries, a.body.entries);
  assert.equal(await size(), n);
});

test('malformed payloads get a precise 400 and store nothing, however many good events came with them', async () => {
  const good = fixture('eventlist-rbac.json').items as Record<string, Loose>[];
  const fresh = good.map((it, i) => ({ ...it, auditID: `e2e-fresh-${i}` }));
  const bad = { ...good[0], auditID: 'e2e-bad', user: { username: 'mallory', groups: 'admins' } };
  const lone = { ...good[2], auditID: 'e2e-lone', requestObject: { note: '\ud800' } };
  const cases: [unknown, number, RegExp, string?][] = [
    [fixture('eventlist-malformed.json'), 400, /^items\[1\]\.objectRef: must be an object, not a string$/],
    [list(...fresh, bad), 400, /^items\[3\]\.user\.groups: must be a list of strings, not a string$/],
    [list(fresh[0], fresh[1], lone), 400, /^items\[2\]: \/data\/requestObject\/note contains a lone UTF-16 surrogate/],
    [
      { ...list(...fresh), apiVersion: 'audit.k8s.io/v1beta1' },
      400,
      /^apiVersion must be audit\.k8s\.io\/v1, got "audit\.k8s\.io\/v1beta1"/,
    ],
    [{ ...list(...fresh), kind: 'Status' }, 400, /^kind must be EventList \(or Event\), got "Status"$/],
    [fresh, 400, /must be an audit\.k8s\.io\/v1 EventList \(a JSON object\), not a list/],
    ['{"kind":"EventList","items":[', 400, /^the request body is not valid JSON/],
    ['', 400, /./],
  ];
  for (const [body, status, message] of cases) {
    const n = await size();
    const r = await webhook(body);
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.match(r.body.error.message, message);
    assert.equal(await size(), n, `nothing stored for ${message}`);
  }
  for (const e of kubernetesEvents(list(...fresh), { cluster: 'prod-eu-1' })) assert.equal((await search(`id:${e.id}`)).total, 0);
  // whatever the content type says (kubectl create --raw -f sends none), the body is JSON
  const asText = await call(server.url, 'POST', '/v1/sources/kubernetes', { token: webhookKey, body: '{}', type: 'text/plain' });
  assert.equal(asText.status, 400);
  assert.equal(asText.body.error.message, 'kind must be EventList (or Event), got null');
  const noType = await fetch(`${server.url}/v1/sources/kubernetes`, {
    method: 'POST',
    headers: { authorization: `Bearer ${webhookKey}` },
    body: new Uint8Array(Buffer.from('{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[]}')),
  });
  assert.equal(noType.status, 200, await noType.clone().text());
  assert.deepEqual(await noType.json(), { entries: [] });
  // …only on the source routes: elsewhere the content type still matters
  assert.equal((await call(server.url, 'POST', '/v1/events', { token: data.token, body: '{}', type: 'text/plain' })).status, 415);
});

test("the webhook's default batch of 400 events, with an oversized response body, is accepted whole", async () => {
  const [tpl] = fixture('eventlist-stages.json').items as Record<string, Loose>[];
  const items: Record<string, Loose>[] = Array.from({ length: 400 }, (_, i) => ({
    ...tpl,
    auditID: `batch400-${i}`,
    stage: 'ResponseComplete',
    responseStatus: { metadata: {}, code: 200 },
    requestReceivedTimestamp: `2026-03-02T02:30:${String(i % 60).padStart(2, '0')}.${String(i).padStart(6, '0')}Z`,
  }));
  items[7] = {
    ...items[7],
    level: 'RequestResponse',
    responseObject: { kind: 'ConfigMapList', items: Array(3000).fill({ data: { k: 'v'.repeat(64) } }) },
  };
  const n = await size();
  const started = Date.now();
  const r = await webhook(list(...items));
  const ms = Date.now() - started;
  assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 500));
  assert.equal(r.body.entries.length, 400);
  assert.equal(await size(), n + 400);
  const big = await call(server.url, 'GET', `/v1/entries/${r.body.entries[7].index}`, { token: data.token });
  assert.deepEqual(
    big.body.event.data.truncated.map((t: { field: string; reason: string }) => [t.field, t.reason]),
    [['responseObject', 'size']],
  );
  assert.ok(ms < 20_000, `400 events took ${ms} ms`);
});

test('the cluster comes from the path, else ?cluster=, else the principal; a bad name is refused', async () => {
  const [tpl] = fixture('eventlist-rbac.json').items as Record<string, Loose>[];
  const one = (id: string) => list({ ...tpl, auditID: id });
  const hostOf = async (r: Answer) =>
    (await call(server.url, 'GET', `/v1/entries/${r.body.entries[0].index}`, { token: data.token })).body.event.source.host;
  assert.equal(await hostOf(await webhook(one('c1'), '/v1/sources/kubernetes?cluster=staging-us-2')), 'staging-us-2');
  assert.equal(await hostOf(await webhook(one('c2'), '/v1/sources/kubernetes')), 'k8s-webhook');
  const bad = await webhook(one('c3'), '/v1/sources/kubernetes?cluster=has%20space');
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /cluster name must be 1 to 255 characters without spaces/);
  const single = await webhook(fixture('event-single.json'));
  assert.equal(single.status, 200);
  assert.equal(single.body.entries.length, 1);
});

test('one search answers "what did alice do in Kubernetes between 02:00 and 03:00"', async () => {
  const expected = new Set<string>(
    GOOD.flatMap((f) => kubernetesEvents(fixture(f), { cluster: 'prod-eu-1' }))
      .filter((e: Loose) => e.actor.id === 'alice@example.com')
      .map((e) => e.id as string),
  );
  const r = await search('actor:alice@example.com action:k8s.* since:2026-03-02T02:00:00Z until:2026-03-02T03:00:00Z');
  const got = new Set(r.hits.map((h: { event: { id: string } }) => h.event.id));
  for (const id of expected) assert.ok(got.has(id), id);
  const actions = new Set(r.hits.map((h: { event: { action: string } }) => h.event.action));
  for (const a of [
    'k8s.configmaps.update',
    'k8s.pods.exec.create',
    'k8s.clusterrolebindings.create',
    'k8s.secrets.get',
    'k8s.pods.list',
  ]) {
    assert.ok(actions.has(a), a);
  }
  const denied = await search('action:k8s.* outcome:denied since:2026-03-02T02:00:00Z until:2026-03-02T03:00:00Z');
  assert.ok(denied.total >= 6);
  const asBob = await search('on_behalf_of:bob@example.com');
  assert.deepEqual(
    asBob.hits.map((h: { event: { actor: { id: string } } }) => h.event.actor.id),
    ['alice@example.com'],
  );
});

test('without credentials 401; a key that may not append k8s.* events or vouch for others 403, naming the item', async () => {
  const body = fixture('eventlist-stages.json');
  const none = await webhook(body, undefined, '');
  assert.equal(none.status, 401);
  const gitOnly = await createKey('git-hooks', ['writer'], { actions: ['git.*'] });
  const r1 = await webhook(body, undefined, gitOnly);
  assert.equal(r1.status, 403);
  assert.match(
    r1.body.error.message,
    /^items\[0\]: API key "git-hooks" may only append actions git\.\*, not "k8s\.configmaps\.update"$/,
  );
  // a role that appends but may not vouch: the users are not the key
  writeFileSync(join(data.dir, 'stele.policy.yaml'), `${POLICY}  appender: { members: ["key:appender"], actions: [append] }\n`);
  const reload = await call(server.url, 'POST', '/v1/policy/reload', { token: data.token });
  assert.equal(reload.status, 200, JSON.stringify(reload.body));
  const appender = await createKey('appender', ['appender']);
  const r2 = await webhook(body, undefined, appender);
  assert.equal(r2.status, 403);
  assert.match(
    r2.body.error.message,
    /^items\[0\]: actor "alice@example\.com" is not API key "appender", and the policy does not let API key "appender" vouch/,
  );
});

// --- mutual TLS: the API server authenticates with a client certificate ---------------------

const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    if (process.env.CI === 'true') throw new Error('CI must run the mutual TLS test: openssl is not on PATH');
    return false;
  }
})();

test('over mutual TLS, the kube-apiserver certificate (cert:kube-apiserver) posts its EventList', {
  skip: hasOpenssl ? false : 'openssl is not installed',
}, async () => {
  const dir = tempDir('stele-k8s-tls-');
  const f = (n: string) => join(dir, n);
  const ossl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  ossl('req', '-x509', ...ec, '-days', '2', '-subj', '/CN=stele-test-ca', '-keyout', f('ca.key'), '-out', f('ca.pem'));
  ossl('req', '-x509', ...ec, '-days', '2', '-subj', '/CN=rogue-ca', '-keyout', f('rogue.key'), '-out', f('rogue.pem'));
  writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1\n');
  const leaf = (name: string, cn: string, ca: string, ext?: string) => {
    ossl('req', ...ec, '-subj', `/CN=${cn}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`));
    ossl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f(`${ca}.pem`),
      '-CAkey',
      f(`${ca}.key`),
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      f(`${name}.pem`),
      ...(ext ? ['-extfile', ext] : []),
    );
  };
  leaf('server', '127.0.0.1', 'ca', f('server.ext'));
  leaf('apiserver', 'kube-apiserver', 'ca');
  leaf('intruder', 'kube-apiserver', 'rogue');

  const tlsData = await initDir('k8s-tls.test/log');
  writeFileSync(join(tlsData.dir, 'stele.policy.yaml'), POLICY);
  const ca = readFileSync(f('ca.pem'));
  const tlsServer = await SteleServer.start(tlsData.dir, {
    args: ['--tls-cert', f('server.pem'), '--tls-key', f('server.key'), '--tls-client-ca', f('ca.pem')],
    healthy: async (url) => (await call(url, 'GET', '', { tls: { ca } })).status === 200,
  });
  const client = { ca, cert: readFileSync(f('apiserver.pem')), key: readFileSync(f('apiserver.key')) };
  const body = fixture('eventlist-denied.json');
  const r = await call(tlsServer.url, 'POST', '/v1/sources/kubernetes/prod-eu-1', { body, tls: client });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.entries.length, body.items.length);
  const e = await call(tlsServer.url, 'GET', `/v1/entries/${r.body.entries[2].index}`, { token: tlsData.token, tls: { ca } });
  assert.deepEqual(e.body.ingest, { principal: 'kube-apiserver', method: 'mtls' });
  assert.equal(e.body.event.action, 'k8s.namespaces.delete');
  assert.equal(e.body.event.outcome, 'denied');
  // the same certificate name from another CA is nobody
  const intruder = { ca, cert: readFileSync(f('intruder.pem')), key: readFileSync(f('intruder.key')) };
  const refused = await call(tlsServer.url, 'POST', '/v1/sources/kubernetes/prod-eu-1', { body, tls: intruder });
  assert.equal(refused.status, 401);
  await tlsServer.stop();
});

// --- deploy/kubernetes: the files the README tells operators to use -------------------------------

const DEPLOY = new URL('../../deploy/kubernetes/', import.meta.url);
const deployFile = (name: string): Loose => parseYaml(readFileSync(new URL(name, DEPLOY), 'utf8'));

test('deploy/kubernetes/audit-webhook-kubeconfig.yaml points at the webhook route, with certificate or token auth', () => {
  const kc = deployFile('audit-webhook-kubeconfig.yaml');
  assert.equal(kc.kind, 'Config');
  const server = new URL(kc.clusters[0].cluster.server);
  assert.match(server.pathname, /^\/v1\/sources\/kubernetes\/[^/\s]+$/);
  assert.equal(server.search, '', 'client-go drops query strings: the cluster goes in the path');
  const ctx = kc.contexts.find((c: Loose) => c.name === kc['current-context']);
  assert.ok(ctx, 'current-context names a context');
  const users = Object.fromEntries(kc.users.map((u: Loose) => [u.name, u.user]));
  assert.ok(users[ctx.context.user]['client-certificate'] && users[ctx.context.user]['client-key']);
  assert.ok(Object.values(users).some((u: Loose) => u.tokenFile));
});

/** The level kube-apiserver's policy checker gives a request: the first rule that matches (k8s.io/apiserver/pkg/audit/policy). */
function levelOf(
  policy: Loose,
  r: { user: string; groups?: string[]; verb: string; group?: string; resource?: string; subresource?: string; path?: string },
): string {
  const pathMatches = (specs: string[], path: string) =>
    specs.some((s) => s === '*' || s === path || (s.endsWith('*') && path.startsWith(s.slice(0, -1))));
  for (const rule of policy.rules as Loose[]) {
    if (rule.users && !rule.users.includes(r.user)) continue;
    if (rule.userGroups && !(r.groups ?? []).some((g) => rule.userGroups.includes(g))) continue;
    if (rule.verbs && !rule.verbs.includes(r.verb)) continue;
    if (rule.nonResourceURLs) {
      if (!r.path || !pathMatches(rule.nonResourceURLs, r.path)) continue;
    } else if (rule.resources) {
      if (r.path || r.resource === undefined) continue;
      const full = r.subresource ? `${r.resource}/${r.subresource}` : r.resource;
      const hit = (rule.resources as Loose[]).some(
        (gr) =>
          (gr.group ?? '') === (r.group ?? '') &&
          (!gr.resources ||
            gr.resources.some(
              (x: string) => x === '*' || x === full || (x === `${r.resource}/*` && r.subresource) || x === `*/${r.subresource}`,
            )),
      );
      if (!hit) continue;
    }
    return rule.level;
  }
  return 'None';
}

test('deploy/kubernetes/audit-policy.yaml: no bodies for secrets, full RBAC changes, no noise', () => {
  const p = deployFile('audit-policy.yaml');
  assert.equal(p.apiVersion, 'audit.k8s.io/v1');
  assert.equal(p.kind, 'Policy');
  assert.deepEqual(p.omitStages, ['RequestReceived']);
  const known = new Set([
    'level',
    'users',
    'userGroups',
    'verbs',
    'resources',
    'namespaces',
    'nonResourceURLs',
    'omitStages',
    'omitManagedFields',
  ]);
  for (const rule of p.rules as Loose[]) {
    for (const k of Object.keys(rule)) assert.ok(known.has(k), `unknown rule field ${k}`);
    assert.ok(['None', 'Metadata', 'Request', 'RequestResponse'].includes(rule.level));
    assert.ok(!(rule.resources && rule.nonResourceURLs), 'a rule is for resources or for non-resource URLs, not both');
  }
  const alice = { user: 'alice@example.com', groups: ['oidc:sre', 'system:authenticated'] };
  const cases: [Parameters<typeof levelOf>[1], string][] = [
    [{ ...alice, verb: 'get', resource: 'secrets' }, 'Metadata'],
    [{ ...alice, verb: 'update', resource: 'secrets' }, 'Metadata'],
    [{ ...alice, verb: 'update', resource: 'configmaps' }, 'Metadata'],
    [{ ...alice, verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings' }, 'RequestResponse'],
    [{ ...alice, verb: 'delete', group: 'rbac.authorization.k8s.io', resource: 'rolebindings' }, 'RequestResponse'],
    [
      { ...alice, verb: 'patch', group: 'admissionregistration.k8s.io', resource: 'validatingwebhookconfigurations' },
      'RequestResponse',
    ],
    [{ ...alice, verb: 'get', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' }, 'Metadata'],
    [{ ...alice, verb: 'create', resource: 'pods' }, 'Request'],
    [{ ...alice, verb: 'create', resource: 'pods', subresource: 'exec' }, 'Request'],
    [{ ...alice, verb: 'patch', group: 'apps', resource: 'deployments', subresource: 'scale' }, 'Request'],
    [{ ...alice, verb: 'list', resource: 'pods' }, 'Metadata'],
    [{ ...alice, verb: 'get', path: '/logs/kube-apiserver.log' }, 'Metadata'],
    [{ ...alice, verb: 'get', path: '/healthz' }, 'None'],
    [{ user: 'system:anonymous', groups: ['system:unauthenticated'], verb: 'get', path: '/livez' }, 'None'],
    [{ ...alice, verb: 'get', path: '/apis/apps/v1' }, 'None'],
    [{ user: 'system:kube-controller-manager', verb: 'update', group: 'coordination.k8s.io', resource: 'leases' }, 'None'],
    [{ user: 'system:kube-controller-manager', verb: 'watch', resource: 'pods' }, 'None'],
    [{ user: 'system:kube-controller-manager', verb: 'create', resource: 'pods' }, 'Request'],
    [
      { user: 'system:node:ip-10-0-1-23', groups: ['system:nodes'], verb: 'patch', resource: 'pods', subresource: 'status' },
      'Request',
    ],
    [{ user: 'system:node:ip-10-0-1-23', groups: ['system:nodes'], verb: 'get', resource: 'nodes' }, 'None'],
    [{ user: 'system:serviceaccount:argocd:argocd-application-controller', verb: 'watch', resource: 'pods' }, 'Metadata'],
    [{ ...alice, verb: 'create', resource: 'events' }, 'None'],
  ];
  for (const [req, level] of cases) assert.equal(levelOf(p, req), level, JSON.stringify(req));
});
