/**
 * Issue 11, the log's own records, end to end against `stele serve`: searches, exports and refused
 * requests naming a person are recorded with the person only as a keyed hash, so after the person
 * is erased no stele.* record (decrypted, as an admin reads it) and no byte of the data directory
 * names them — while the trail of who searched stays. Refusals are recorded as outcome denied,
 * with attacker text clipped.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanup, type DataDir, filesContaining, initDir, runStele, SteleServer, sleep } from './helpers/stele.js';

const ALICE = 'alice@example.com';

let data: DataDir;
let server: SteleServer;

interface Hit {
  index: number;
  event: { action: string; actor: { id: string }; outcome: string; reason?: string; data?: Record<string, unknown> };
}

async function call(path: string, token?: string, init: { method?: string; body?: unknown } = {}) {
  const res = await fetch(`${server.url}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  return { status: res.status, text };
}

async function search(q: string, token = data.token): Promise<Hit[]> {
  const r = await call(`/v1/events?q=${encodeURIComponent(q)}&limit=1000`, token);
  assert.equal(r.status, 200, r.text);
  return (JSON.parse(r.text) as { hits: Hit[] }).hits;
}

/** Waits (generously) until `q` finds at least `n` entries: denials are written within a second. */
async function eventually(q: string, n: number): Promise<Hit[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const hits = await search(q);
    if (hits.length >= n || Date.now() > deadline) return hits;
    await sleep(200);
  }
}

/** Files of the data directory whose bytes contain `needle`. */
const filesWith = (needle: string) => filesContaining(data.dir, needle);

/** A JWT-shaped token (unsigned garbage signature) with the given claims. */
function fakeJwt(claims: Record<string, unknown>): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'RS256', typ: 'JWT', kid: 'k' })}.${b64(claims)}.${Buffer.from('sig').toString('base64url')}`;
}

before(async () => {
  data = await initDir('audit-privacy.test/log');
  server = await SteleServer.start(data.dir, { checkpointIntervalMs: 50, readyTimeoutMs: 60_000 });
});

after(async () => {
  if (server) await server.stop();
  await cleanup();
});

describe('the log records who searched, not whom', () => {
  let erasure: Hit;

  test('searches, exports and refusals naming alice; then alice is erased', async () => {
    const appended = await call('/v1/events', data.token, {
      method: 'POST',
      body: [
        {
          id: randomUUID(),
          actor: { id: ALICE, type: 'human' },
          subject: ALICE,
          action: 'emacs.file.save',
          source: { kind: 'emacs' },
          resource: { type: 'file', id: `/home/${ALICE}/notes.txt` },
          outcome: 'success',
        },
      ],
    });
    assert.equal(appended.status, 200, appended.text);

    for (const q of [`subject:${ALICE}`, `actor:${ALICE}`, ALICE, `"${ALICE}"`, `subject:"${ALICE}" OR resource:*alice*`]) {
      await search(q);
    }
    const exported = await call(`/v1/export?q=${encodeURIComponent(`actor:${ALICE}`)}`, data.token);
    assert.equal(exported.status, 200, exported.text);
    assert.ok(exported.text.includes(ALICE), 'the export itself carries the event');

    // A key that may not search (403), a bad token (401), and a token with an 8 KB issuer (401).
    const made = await call('/v1/keys', data.token, { method: 'POST', body: { name: 'appender', roles: ['writer'] } });
    assert.equal(made.status, 201, made.text);
    const writer = (JSON.parse(made.text) as { key: string }).key;
    assert.equal((await call(`/v1/events?q=${encodeURIComponent(`subject:${ALICE}`)}`, writer)).status, 403);
    assert.equal((await call(`/v1/events?q=${encodeURIComponent(ALICE)}&limit=5`, 'not-a-key')).status, 401);
    const longIss = `https://${'x'.repeat(8192)}.example/${ALICE}`;
    const forged = await call('/v1/events?q=x', fakeJwt({ iss: longIss, sub: ALICE, exp: 9_999_999_999 }));
    assert.equal(forged.status, 401, forged.text);
    assert.equal((await eventually('action:stele.access.denied', 3)).length >= 3, true, 'the refusals are recorded');

    // A reason naming the subject would outlive the erasure: refused, nothing erased.
    const naming = await call('/v1/erasures', data.token, {
      method: 'POST',
      body: { subject: ALICE, reason: `GDPR request from ${ALICE.toUpperCase()}` },
    });
    assert.equal(naming.status, 400, naming.text);
    assert.match(naming.text, /names the data subject/);
    assert.equal((await search(`subject:${ALICE}`)).length, 1, 'nothing was erased');

    const erased = await call('/v1/erasures', data.token, { method: 'POST', body: { subject: ALICE, reason: 'GDPR ticket 42' } });
    assert.equal(erased.status, 200, erased.text);
    const at = (JSON.parse(erased.text) as { event: number }).event;
    erasure = (await search(`action:stele.erasure index:${at}`))[0] as Hit;
    assert.ok(erasure, 'the erasure is recorded');
  });

  test('no stele.* record names alice; each query keeps her as the hash the erasure records', async () => {
    const records = await search('action:stele.*');
    const access = records.filter((h) => h.event.action.startsWith('stele.access.'));
    assert.ok(access.length >= 8, `${access.length} access records`);
    for (const h of records) assert.ok(!JSON.stringify(h.event).toLowerCase().includes('alice'), JSON.stringify(h.event));

    // Who searched stays; whom is the keyed hash, the erasure's subject_hash.
    const hash = erasure.event.data?.subject_hash as string;
    assert.match(hash, /^[0-9a-f]{32}$/);
    const queries = access.flatMap((h) => (typeof h.event.data?.query === 'string' ? [h.event.data.query] : []));
    assert.ok(queries.includes(`subject:#h:${hash}`), queries.join('\n'));
    assert.ok(queries.includes(`actor:#h:${hash}`), queries.join('\n'));
    assert.ok(queries.includes(`#h:${hash}`), 'free text: the hash of the lower-cased words');
    const searches = access.filter((h) => h.event.action === 'stele.access.search');
    assert.ok(
      searches.every((h) => h.event.actor.id === 'admin'),
      'the searcher is named',
    );
    const exports = access.filter((h) => h.event.action === 'stele.access.export');
    assert.deepEqual(
      exports.map((h) => h.event.data?.query),
      [`actor:#h:${hash}`],
    );

    // An auditor with the key store hashes a name to look for it (beside the running server).
    const hashed = await runStele(['subject-hash', '--dir', data.dir, '--json', ALICE, 'Bob']);
    assert.equal(hashed.code, 0, hashed.output);
    const [a, b] = JSON.parse(hashed.stdout) as { value: string; hash: string; text_hash: string }[];
    assert.equal(a?.hash, hash, "the erasure's subject_hash");
    assert.equal(a?.text_hash, hash, 'a lower-case name hashes alike as text');
    assert.notEqual(b?.hash, b?.text_hash, 'full text is hashed lower-cased');

    // The refused request keeps path, parameter names and the rewritten q.
    const denied = access.filter((h) => h.event.action === 'stele.access.denied');
    const requests = denied.flatMap((h) => (h.event.data?.requests as string[] | undefined) ?? []);
    assert.ok(requests.includes(`GET /v1/events?q=subject:#h:${hash}`), requests.join('\n'));
    assert.ok(requests.includes(`GET /v1/events?q=#h:${hash}&limit`), requests.join('\n'));
  });

  test('refusals are outcome denied, with attacker text clipped', async () => {
    const denied = await search('action:stele.access.denied outcome:denied');
    assert.ok(denied.length >= 3, `${denied.length} denied records`);
    assert.equal((await search('action:stele.access.denied outcome:success')).length, 0);
    const long = denied.find((h) => String(h.event.data?.message).includes('[clipped'));
    assert.ok(long, JSON.stringify(denied.map((h) => h.event.data?.message)));
    for (const h of denied) {
      assert.ok(JSON.stringify(h.event).length < 2000, `a denial record of ${JSON.stringify(h.event).length} characters`);
      assert.ok(String(h.event.reason ?? '').length < 260);
    }
  });

  test('no byte of the data directory names alice', async () => {
    // After a checkpoint, so the last appends are on disk too.
    await sleep(200);
    assert.deepEqual(filesWith(ALICE), []);
  });
});

describe('unencrypted tiers are public', () => {
  test('stele serve refuses a policy restricting a role to tiers beside an unencrypted tier', async () => {
    const other = await initDir('audit-privacy.test/public');
    writeFileSync(
      join(other.dir, 'stele.policy.yaml'),
      `version: 1
retention:
  default: compliance
  tiers:
    - { name: public, keep: forever, encrypt: false, match: { actions: ["ci.*"] } }
    - { name: compliance, keep: forever }
roles:
  admin: { actions: [append, read, search, export, erase, hold, admin] }
  auditor: { members: [group:audit], actions: [read, search], tiers: [compliance] }
`,
    );
    const r = await runStele(['serve', '--dir', other.dir, '--listen', '127.0.0.1:0'], 60_000);
    assert.notEqual(r.code, 0, r.output);
    assert.equal(r.signal, null, 'it exited by itself');
    assert.match(r.output, /role "auditor" restricts the tiers it reads, but tier "public" is unencrypted/);
  });
});
