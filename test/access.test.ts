/**
 * Verified identity, policy and audited access, end to end: a real OpenID provider (oidc-provider)
 * and a real `stele serve` with a policy that trusts it. Tokens come from the client-credentials
 * grant and the device authorization grant (RFC 8628, as the Emacs client obtains them); forged
 * tokens are refused and recorded; roles decide who may append, vouch, read, search and export; the
 * log records every access; policies reload (and bad ones are refused).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Idp, startIdp } from './helpers/idp.js';
import { cleanup, type DataDir, initDir, type JsonAnswer, requestJson, runStele, SteleServer, sleep } from './helpers/stele.js';

const ALL = '[append, read, search, export, erase, hold, admin]';

function policyYaml(idp: Idp, extraRoles = ''): string {
  return `version: 1
identity:
  issuers:
    - issuer: ${idp.issuer}
      audience: ${idp.audience}
      require: { tid: ${idp.tenant} }
roles:
  admin:    { members: ["group:sre"], actions: ${ALL}, vouch: ["*"] }
  auditor:  { members: ["group:audit"], actions: [read, search, export], tiers: [compliance] }
  developer: { members: ["group:dev"], actions: [append] }
  pipeline: { members: ["service:${idp.clients.service.id}"], actions: [append] }
  writer:   { actions: [append], vouch: ["*"] }
  k8s:      { actions: [append], vouch: ["k8s.*"] }
${extraRoles}retention:
  default: compliance
  tiers:
    - name: operational
      keep: 90d
      match: { actions: ["k8s.*"] }
    - name: compliance
      keep: forever
`;
}

let idp: Idp;
let data: DataDir;
let server: SteleServer;

const call = (method: string, path: string, token?: string, body?: unknown): Promise<JsonAnswer> =>
  requestJson(`${server.url}${path}`, method, token, body);

const errorOf = (a: JsonAnswer) => a.body.error as { code: string; message: string; reason?: string };

function event(actor: Record<string, unknown>, action = 'emacs.file.save', extra: Record<string, unknown> = {}) {
  return {
    id: randomUUID(),
    actor,
    action,
    source: { kind: action.split('.')[0] as string, host: 'laptop' },
    resource: { type: 'file', id: `/home/x/${randomUUID()}` },
    outcome: 'success',
    ...extra,
  };
}

async function append(token: string, ev: unknown): Promise<JsonAnswer> {
  return call('POST', '/v1/events', token, ev);
}

async function eventAt(index: number): Promise<Record<string, unknown>> {
  const r = await call('GET', `/v1/entries/${index}`, data.token);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.event as Record<string, unknown>;
}

async function search(token: string, q: string, limit = 1000): Promise<JsonAnswer> {
  return call('GET', `/v1/events?q=${encodeURIComponent(q)}&limit=${limit}`, token);
}

type Hit = {
  index: number;
  tier: string;
  event: { action: string; actor: Record<string, unknown>; data?: Record<string, unknown> };
};
const hitsOf = (a: JsonAnswer) => a.body.hits as Hit[];

before(async () => {
  idp = await startIdp({
    users: [
      { email: 'alice@acme.test', groups: ['dev'] },
      { email: 'root@acme.test', groups: ['sre'] },
      { email: 'audrey@acme.test', groups: ['audit'] },
    ],
  });
  data = await initDir('access.test/log');
  writeFileSync(join(data.dir, 'stele.policy.yaml'), policyYaml(idp));
  server = await SteleServer.start(data.dir, { checkpointIntervalMs: 20 });
});

after(async () => {
  await cleanup();
  await idp?.close();
});

describe('identity', () => {
  test('a device-flow user appends as a verified human; other actors are refused unless vouched for', async () => {
    const token = await idp.deviceFlowToken({ email: 'alice@acme.test', groups: ['dev'] });
    const ok = await append(token, event({ id: 'alice@acme.test', type: 'human' }));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const index = (ok.body.entries as { index: number }[])[0]?.index as number;
    const e = await eventAt(index);
    assert.deepEqual(e.actor, { id: 'alice@acme.test', issuer: idp.issuer, type: 'human', verified: true });
    // Who wrote it is sealed with the event: shown to a reader, not in the public leaf.
    const rec = (await call('GET', `/v1/entries/${index}`)).body.record as { ingest: unknown };
    assert.equal(rec.ingest, undefined);
    const read = await call('GET', `/v1/entries/${index}`, data.token);
    assert.deepEqual(read.body.ingest, { principal: 'alice@acme.test', method: 'oidc' });

    // An AI agent acting for her: the human behind it is the token's.
    const ai = await append(
      token,
      event({ id: 'gptel', type: 'ai_agent', on_behalf_of: 'alice@acme.test' }, 'emacs.ai.response'),
    );
    assert.equal(ai.status, 200, JSON.stringify(ai.body));
    const aiEvent = await eventAt((ai.body.entries as { index: number }[])[0]?.index as number);
    assert.deepEqual(aiEvent.actor, {
      id: 'gptel',
      issuer: idp.issuer,
      on_behalf_of: 'alice@acme.test',
      type: 'ai_agent',
      verified: true,
    });

    // Someone else as actor, or an agent on someone else's behalf: developers may not vouch.
    for (const actor of [
      { id: 'bob@acme.test', type: 'human' },
      { id: 'gptel', type: 'ai_agent', on_behalf_of: 'bob@acme.test' },
    ]) {
      const r = await append(token, event(actor));
      assert.equal(r.status, 403, JSON.stringify(r.body));
      assert.match(errorOf(r).message, /vouch/);
    }
    // And nobody can claim verified.
    const claimed = await append(token, event({ id: 'alice@acme.test', type: 'human', verified: true }));
    assert.equal(claimed.status, 400);
    assert.match(errorOf(claimed).message, /verified is set by the server/);
  });

  test('a client-credentials service appends as itself, verified; a vouching key records claimed actors unverified', async () => {
    const token = await idp.clientCredentialsToken();
    const svc = idp.clients.service.id;
    const ok = await append(token, event({ id: svc, type: 'service' }, 'ci.deploy'));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const e = await eventAt((ok.body.entries as { index: number }[])[0]?.index as number);
    assert.deepEqual(e.actor, { id: svc, issuer: idp.issuer, type: 'service', verified: true });

    // An API key with the k8s role may vouch for k8s.* actors only.
    const made = await call('POST', '/v1/keys', data.token, { name: 'k8s-webhook', roles: ['k8s'] });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const key = made.body.key as string;
    const k8s = await append(key, event({ id: 'alice@acme.test', type: 'human' }, 'k8s.pods.delete'));
    assert.equal(k8s.status, 200, JSON.stringify(k8s.body));
    const ke = await eventAt((k8s.body.entries as { index: number }[])[0]?.index as number);
    assert.deepEqual(ke.actor, { id: 'alice@acme.test', type: 'human', verified: false });
    const emacs = await append(key, event({ id: 'alice@acme.test', type: 'human' }, 'emacs.file.save'));
    assert.equal(emacs.status, 403);
    assert.match(errorOf(emacs).message, /vouch/);
  });

  test('an API key restricted to actions appends nothing else; a revoked key is refused', async () => {
    const made = await call('POST', '/v1/keys', data.token, { name: 'git-hooks', roles: ['writer'], actions: ['git.*'] });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const key = made.body.key as string;
    assert.equal((await append(key, event({ id: 'x', type: 'service' }, 'git.commit'))).status, 200);
    const other = await append(key, event({ id: 'x', type: 'service' }, 'k8s.pods.delete'));
    assert.equal(other.status, 403);
    assert.match(errorOf(other).message, /may only append actions git\.\*/);

    const unknownRole = await call('POST', '/v1/keys', data.token, { name: 'x', roles: ['nope'] });
    assert.equal(unknownRole.status, 400);
    assert.match(errorOf(unknownRole).message, /no role "nope"/);

    const revoked = await call('POST', '/v1/keys/git-hooks/revoke', data.token, { reason: 'rotated' });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    const after = await append(key, event({ id: 'x', type: 'service' }, 'git.commit'));
    assert.equal(after.status, 401);
    assert.equal(errorOf(after).reason, 'revoked_key');
    const listed = await call('GET', '/v1/keys?all=true', data.token);
    const git = (listed.body.keys as { name: string; revoked?: { reason: string } }[]).find((k) => k.name === 'git-hooks');
    assert.equal(git?.revoked?.reason, 'rotated');
    assert.ok(!JSON.stringify(listed.body).includes(key), 'listings never show a key');
  });

  test('forged and broken tokens: each refused with 401 and a precise reason, and recorded as a denied access', async () => {
    const other = await startIdp({ tenant: 'acme' }); // a real IdP this server does not trust
    try {
      const cases: [string, string, RegExp][] = [
        ['alg none', await idp.forge.algNone(), /unsigned|none/i],
        ['HS256 with the public key', await idp.forge.hs256WithPublicKey(), /HS256|algorithm/i],
        ['wrong signing key', await idp.forge.foreignKey(), /signature/i],
        ['expired', await idp.forge.expired(), /expired/i],
        ['not yet valid', await idp.forge.notYetValid(), /not valid before|not yet valid/i],
        ['wrong issuer', await idp.forge.wrongIssuer('https://evil.example'), /issuer/i],
        ['untrusted IdP', await other.deviceFlowToken({ email: 'mallory@acme.test' }), /issuer/i],
        ['wrong audience', await idp.forge.wrongAudience('another-app'), /audience/i],
        ['missing claim', await idp.forge.withoutClaims('tid'), /tid/],
        ['another tenant', await idp.forge.otherTenant('globex'), /tid/],
        ['unknown API key', 'stele_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', /API key/],
        ['garbage', 'not-a-token', /neither/],
      ];
      const reasons = new Set<string>();
      for (const [name, token, message] of cases) {
        const r = await append(token, event({ id: 'mallory@acme.test', type: 'human' }));
        assert.equal(r.status, 401, `${name}: ${JSON.stringify(r.body)}`);
        assert.match(errorOf(r).message, message, name);
        reasons.add(errorOf(r).reason as string);
      }
      // The denials reach the log within the coalescing window.
      let recorded = new Set<string>();
      for (let i = 0; i < 50 && [...reasons].some((r) => !recorded.has(r)); i++) {
        await sleep(200);
        const found = hitsOf(await search(data.token, 'action:stele.access.denied'));
        recorded = new Set(found.map((h) => h.event.data?.reason as string));
      }
      assert.deepEqual(
        [...reasons].filter((r) => !recorded.has(r)),
        [],
        'every refusal reason is in the log',
      );
    } finally {
      await other.close();
    }
  });
});

describe('policy', () => {
  test('auditors search and export only the compliance tier; operational entries are refused; every access is recorded', async () => {
    const root = await idp.deviceFlowToken({ email: 'root@acme.test', groups: ['sre'] });
    await append(root, event({ id: 'root@acme.test', type: 'human' }, 'k8s.secrets.get'));
    const auditor = await idp.deviceFlowToken({ email: 'audrey@acme.test', groups: ['audit'] });

    const all = hitsOf(await search(root, ''));
    assert.ok(all.some((h) => h.tier === 'operational') && all.some((h) => h.tier === 'compliance'));
    const seen = hitsOf(await search(auditor, ''));
    assert.ok(seen.length > 0);
    assert.deepEqual([...new Set(seen.map((h) => h.tier))], ['compliance']);

    const op = all.find((h) => h.tier === 'operational') as Hit;
    const refused = await call('GET', `/v1/entries/${op.index}`, auditor);
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    const comp = seen[0] as Hit;
    assert.equal((await call('GET', `/v1/entries/${comp.index}`, auditor)).status, 200);

    const exp = await fetch(`${server.url}/v1/export?format=jsonl`, { headers: { authorization: `Bearer ${auditor}` } });
    assert.equal(exp.status, 200);
    const lines = (await exp.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { tier: string });
    assert.ok(lines.length > 0 && lines.every((l) => l.tier === 'compliance'));

    // Developers may not search at all.
    const dev = await idp.deviceFlowToken({ email: 'alice@acme.test', groups: ['dev'] });
    const no = await search(dev, '');
    assert.equal(no.status, 403, JSON.stringify(no.body));

    const audit = hitsOf(await search(root, 'actor:audrey@acme.test action:stele.access.*'));
    const actions = new Set(audit.map((h) => h.event.action));
    for (const a of ['stele.access.search', 'stele.access.read', 'stele.access.export', 'stele.access.export.end']) {
      assert.ok(actions.has(a), `${a} recorded (have ${[...actions].join(', ')})`);
    }
    const s = audit.find((h) => h.event.action === 'stele.access.search') as Hit;
    assert.equal(s.event.actor.verified, true);
    assert.equal(s.event.data?.query, '');
    assert.equal(s.event.data?.results, seen.length);
  });

  test('a summary counts every match the asker may see, and nothing of a tier they may not', async () => {
    const root = await idp.deviceFlowToken({ email: 'root@acme.test', groups: ['sre'] });
    const auditor = await idp.deviceFlowToken({ email: 'audrey@acme.test', groups: ['audit'] });
    const actor = { id: `sum-${randomUUID()}@acme.test`, type: 'human' };
    const batch = [
      ...Array.from({ length: 70 }, () => event(actor, 'emacs.file.save')),
      ...Array.from({ length: 5 }, () => event(actor, 'emacs.file.save', { outcome: 'failure' })),
      ...Array.from({ length: 30 }, () => event(actor, 'k8s.pods.delete')),
    ];
    const r = await call('POST', '/v1/events', data.token, batch);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    type Summary = {
      entries: number;
      histogram: { origin: string; width_ms: number; counts: number[] } | null;
      facets: Record<string, { values: { value: string; count: number }[]; other: number; distinct: number }>;
    };
    const summary = async (token: string, q: string, extra = '') => {
      const a = await call('GET', `/v1/events/summary?q=${encodeURIComponent(q)}${extra}`, token);
      assert.equal(a.status, 200, JSON.stringify(a.body));
      // indexed_through moves with the log (each summary is itself logged): compared answers leave it out.
      const { indexed_through: _, ...s } = a.body;
      return s as unknown as Summary;
    };
    const mine = `actor:${actor.id}`;
    const all = await summary(root, mine);
    assert.equal(all.entries, 105);
    assert.equal(
      all.histogram?.counts.reduce((a, b) => a + b, 0),
      105,
    );
    assert.ok((all.histogram?.counts.length ?? 0) <= 60);
    assert.deepEqual(all.facets.tier?.values, [
      { value: 'compliance', count: 75 },
      { value: 'operational', count: 30 },
    ]);
    assert.deepEqual(all.facets.outcome?.values, [
      { value: 'success', count: 100 },
      { value: 'failure', count: 5 },
    ]);
    assert.deepEqual(all.facets.actor, { values: [{ value: actor.id, count: 105 }], other: 0, distinct: 1 });
    const top1 = await summary(root, mine, '&top=1&buckets=1');
    assert.deepEqual(top1.facets.action, { values: [{ value: 'emacs.file.save', count: 75 }], other: 30, distinct: 2 });
    assert.deepEqual(top1.histogram?.counts, [105]);

    // The auditor sees the compliance tier only: the operational entries are not counted anywhere.
    const seen = await summary(auditor, mine);
    assert.equal(seen.entries, 75);
    assert.deepEqual(seen.facets.tier?.values, [{ value: 'compliance', count: 75 }]);
    assert.ok(!seen.facets.action?.values.some((v) => v.value.startsWith('k8s.')));
    assert.deepEqual(await summary(auditor, `${mine} action:k8s.*`), await summary(auditor, 'actor:nobody-at-all'));

    // Refusals: a bad query, bad parameters, no credential, a role without search.
    const bad = await call('GET', `/v1/events/summary?q=${encodeURIComponent('actor:(')}`, root);
    assert.equal(bad.status, 400);
    assert.equal(errorOf(bad).code, 'bad_query');
    assert.equal((await call('GET', '/v1/events/summary?buckets=0', root)).status, 400);
    assert.equal((await call('GET', '/v1/events/summary?top=1000', root)).status, 400);
    assert.equal((await call('GET', '/v1/events/summary')).status, 401);
    const dev = await idp.deviceFlowToken({ email: 'alice@acme.test', groups: ['dev'] });
    assert.equal((await call('GET', '/v1/events/summary', dev)).status, 403);

    // Recorded as a search, with whom it was about hashed as in any search's record.
    const audit = hitsOf(await search(root, 'actor:audrey@acme.test action:stele.access.search'));
    const recs = audit.filter((h) => h.event.data?.summary === true);
    const rec = recs.find((h) => h.event.data?.results === 75);
    assert.ok(rec, `the summary was recorded (${recs.length} summaries)`);
    assert.match(String(rec.event.data?.query), /^actor:#h:[0-9a-f]+$/);
  });

  test('a reload with a broken policy is refused and recorded, the old one stays; a good one is recorded with its hash', async () => {
    const path = join(data.dir, 'stele.policy.yaml');
    writeFileSync(path, `${policyYaml(idp)}  - oops: [\n`);
    const bad = await call('POST', '/v1/policy/reload', data.token);
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    assert.match(errorOf(bad).message, /old one stays/);
    // Still enforcing the old one: a developer still cannot search.
    const dev = await idp.deviceFlowToken({ email: 'alice@acme.test', groups: ['dev'] });
    assert.equal((await search(dev, '')).status, 403);

    // The new policy lets developers search.
    writeFileSync(path, policyYaml(idp, '  readers: { members: ["group:dev"], actions: [search] }\n'));
    const good = await call('POST', '/v1/policy/reload', data.token);
    assert.equal(good.status, 200, JSON.stringify(good.body));
    assert.equal((await search(dev, '')).status, 200);

    const loads = hitsOf(await search(data.token, 'action:stele.policy.*'));
    const kinds = loads.map((h) => `${h.event.action}:${h.event.data?.reason ?? ''}`);
    assert.ok(kinds.includes('stele.policy.load:start'), kinds.join());
    assert.ok(kinds.includes('stele.policy.refused:'), kinds.join());
    const reload = loads.find((h) => h.event.data?.reason === 'reload') as Hit;
    assert.equal(reload.event.data?.sha256, good.body.sha256);
    assert.equal(reload.event.actor.id, 'admin');
  });

  test('a flood of refused tokens is throttled without slowing or refusing legitimate requests', async () => {
    const bad = await idp.forge.expired();
    const legit = await idp.deviceFlowToken({ email: 'alice@acme.test', groups: ['dev'] });
    const flood = Array.from({ length: 200 }, () => append(bad, event({ id: 'x', type: 'human' })));
    const mine = Array.from({ length: 20 }, () => append(legit, event({ id: 'alice@acme.test', type: 'human' })));
    const [floodR, mineR] = await Promise.all([Promise.all(flood), Promise.all(mine)]);
    assert.deepEqual(
      mineR.map((r) => r.status),
      mineR.map(() => 200),
    );
    const statuses = new Set(floodR.map((r) => r.status));
    assert.deepEqual([...statuses].sort(), [401, 429]);
    // At most the limit (60 a minute) are checked and refused; the rest are throttled, even the
    // ones that were in flight together past the check at the door.
    assert.ok(floodR.filter((r) => r.status === 401).length <= 60);
  });
});

describe('rate limits', () => {
  test('each principal has its own budget: one over it gets 429 with Retry-After, another is still served', async () => {
    const d = await initDir('ratelimit.test/log');
    const srv = await SteleServer.start(d.dir, { args: ['--rate-limit', '5'] });
    try {
      const made = await fetch(`${srv.url}/v1/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'busy', roles: ['writer'] }),
      });
      const busy = ((await made.json()) as { key: string }).key;
      const statuses: number[] = [];
      let retryAfter: string | null = null;
      // Reads count; appends do not (they get backpressure instead: test/server-limits.test.ts).
      for (let i = 0; i < 7; i++) {
        const r = await fetch(`${srv.url}/v1/schema/event`, { headers: { authorization: `Bearer ${busy}` } });
        statuses.push(r.status);
        if (r.status === 429) retryAfter = r.headers.get('retry-after');
        await r.arrayBuffer();
      }
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
      assert.ok(Number(retryAfter) > 0, `Retry-After: ${retryAfter}`);
      // The admin key used one request (creating the key): it still has four.
      const other = await fetch(`${srv.url}/v1/keys`, { headers: { authorization: `Bearer ${d.token}` } });
      assert.equal(other.status, 200);
    } finally {
      await srv.stop();
    }
  });
});

describe('command line', () => {
  test('stele keys create/list/revoke and stele policy reload; SIGHUP reloads too', async () => {
    const api = ['--url', server.url, '--token', data.token];
    const made = await runStele(['keys', 'create', ...api, '--name', 'ci-bot', '--role', 'writer', '--action', 'ci.*']);
    assert.equal(made.code, 0, made.output);
    const key = made.stdout.trim();
    assert.match(key, /^stele_[A-Za-z0-9_-]{43}$/);
    assert.match(made.stderr, /only time it is shown/);
    assert.equal((await append(key, event({ id: 'ci-bot', type: 'service' }, 'ci.job.run'))).status, 200);

    const list = await runStele(['keys', 'list', ...api]);
    assert.equal(list.code, 0, list.output);
    assert.match(list.stdout, /^ci-bot {2}id [0-9a-f]{12} {2}roles writer {2}\(actions ci\.\*\)/m);
    assert.ok(!list.stdout.includes(key));
    const bad = await runStele(['keys', 'create', ...api, '--name', 'x', '--role', 'superuser']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /no role "superuser" in the policy/);
    const revoked = await runStele(['keys', 'revoke', ...api, 'ci-bot', '--reason', 'rotating']);
    assert.equal(revoked.code, 0, revoked.output);
    assert.equal((await append(key, event({ id: 'ci-bot', type: 'service' }, 'ci.job.run'))).status, 401);

    const schema = await runStele(['policy', 'schema']);
    assert.equal(schema.code, 0, schema.output);
    const served = await (await fetch(`${server.url}/v1/schema/policy`)).json();
    assert.deepEqual(JSON.parse(schema.stdout), served);
    assert.deepEqual(Object.keys((served as { properties: object }).properties).sort(), [
      'alerts',
      'identity',
      'retention',
      'roles',
      'version',
    ]);

    const reload = await runStele(['policy', 'reload', ...api]);
    assert.equal(reload.code, 0, reload.output);
    assert.match(reload.stdout, /in force; recorded as entry \d+/);

    const before = hitsOf(await search(data.token, 'action:stele.policy.load actor:stele')).length;
    server.proc.kill('SIGHUP');
    let after = before;
    for (let i = 0; i < 50 && after === before; i++) {
      await sleep(100);
      after = hitsOf(await search(data.token, 'action:stele.policy.load actor:stele')).length;
    }
    assert.equal(after, before + 1, 'SIGHUP appended a stele.policy.load by the server');
    const listed = hitsOf(await search(data.token, 'action:stele.access.list'));
    assert.ok(
      listed.some((h) => h.event.data?.what === 'keys' && h.event.actor.id === 'admin'),
      'listing the keys is recorded',
    );
    const keyEvents = hitsOf(await search(data.token, 'action:stele.key.*')).map(
      (h) => `${h.event.action}:${h.event.data?.name}`,
    );
    assert.ok(keyEvents.includes('stele.key.create:ci-bot') && keyEvents.includes('stele.key.revoke:ci-bot'), keyEvents.join());
  });
});
