/**
 * Issue 11, end to end against `stele serve` with a real OpenID provider: erasure erases who a
 * person is, not only what they did. A user who sends an event about themselves with their own
 * OIDC token is named in no byte of the data directory, of the public log or of the unauthenticated
 * entry API after `stele erase` (and never in the clear in a leaf, even before); subjects and
 * actors match whichever Unicode spelling (NFC or NFD) wrote or names them; and erasing a subject
 * no event carries says so and is still recorded.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeLeaf } from '../src/event/record.js';
import { type Idp, startIdp } from './helpers/idp.js';
import {
  checkpointCovers,
  cleanup,
  type DataDir,
  filesContaining,
  initDir,
  type JsonAnswer,
  requestJson,
  runStele,
  SteleServer,
} from './helpers/stele.js';

const EMAIL = 'carolleafx@acme.test';
/** What must not survive: the local part, one full-text word unique to this test (the domain is shared by every user). */
const NEEDLE = 'carolleafx';

let idp: Idp;
let data: DataDir;
let server: SteleServer;
let carol: string;

const call = (method: string, path: string, token?: string, body?: unknown): Promise<JsonAnswer> =>
  requestJson(`${server.url}${path}`, method, token, body);

async function rawLeaf(index: number): Promise<Buffer> {
  const res = await fetch(`${server.url}/v1/entries/${index}`, { headers: { accept: 'application/octet-stream' } });
  assert.equal(res.status, 200);
  return Buffer.from(await res.arrayBuffer());
}

async function appendAs(token: string, events: unknown[]): Promise<number[]> {
  const r = await call('POST', '/v1/events', token, events);
  assert.equal(r.status, 200, r.text);
  return (r.body.entries as { index: number }[]).map((e) => e.index);
}

/** Files under `dir` (relative to the data directory) whose bytes contain `needle`, case-insensitively. */
const filesWith = (needle: string, dir = data.dir) => filesContaining(data.dir, needle, dir);

/** Also the UTF-8 of a non-ASCII needle, as files hold it. */
const utf8Latin1 = (s: string) => Buffer.from(s, 'utf8').toString('latin1');

const event = (actor: string, extra: Record<string, unknown> = {}) => ({
  id: randomUUID(),
  actor: { id: actor, type: 'human' },
  action: 'hr.profile.update',
  source: { kind: 'hr', host: 'laptop' },
  outcome: 'success',
  ...extra,
});

before(async () => {
  idp = await startIdp({ users: [{ email: EMAIL, groups: ['dev'] }] });
  data = await initDir('erasure-identity.test/log');
  writeFileSync(
    join(data.dir, 'stele.policy.yaml'),
    `version: 1
identity:
  issuers:
    - issuer: ${idp.issuer}
      audience: ${idp.audience}
      require: { tid: ${idp.tenant} }
roles:
  admin:     { actions: [append, read, search, export, erase, hold, admin], vouch: ["*"] }
  developer: { members: ["group:dev"], actions: [append] }
retention:
  default: compliance
  tiers:
    - name: compliance
      keep: forever
`,
  );
  server = await SteleServer.start(data.dir, { checkpointIntervalMs: 20 });
  carol = await idp.sign(
    idp.claims({ sub: 'carol-leaf-sub', email: EMAIL, email_verified: true, groups: ['dev'], jti: randomUUID() }),
  );
});

after(async () => {
  await cleanup();
  await idp?.close();
});

describe('erasure of a person who wrote about themselves', () => {
  test('their identifier is in no leaf before, and in no byte of the data directory or the public API after', async () => {
    const [index] = (await appendAs(carol, [
      event(EMAIL, {
        subject: EMAIL,
        resource: { type: 'profile', id: `profile-${NEEDLE}` },
        data: { note: `${NEEDLE} moved house` },
      }),
    ])) as [number];
    await checkpointCovers(server.url, index + 1);

    // Before the erasure: readable by whom policy allows, with who wrote it...
    const read = await call('GET', `/v1/entries/${index}`, data.token);
    assert.equal(read.status, 200, read.text);
    assert.deepEqual(read.body.ingest, { principal: EMAIL, method: 'oidc' });
    assert.equal((read.body.event as { actor: { verified: boolean } }).actor.verified, true);
    // ...but the leaf names nobody in the clear: not in the raw leaf, the public record, the
    // tiles and bundles, nor the write-ahead log.
    const leaf = await rawLeaf(index);
    assert.ok(!leaf.toString('latin1').toLowerCase().includes(NEEDLE), leaf.toString());
    assert.equal(leaf[0], 3, 'a v3 (binary) sealed leaf');
    assert.deepEqual(Object.keys(decodeLeaf(leaf)).sort(), ['compression', 'key', 'received', 'sealed', 'v']);
    const anonymous = await call('GET', `/v1/entries/${index}`);
    assert.equal(anonymous.status, 200);
    assert.ok(!anonymous.text.toLowerCase().includes(NEEDLE), anonymous.text);
    assert.equal(anonymous.body.ingest, undefined);
    assert.deepEqual(filesWith(NEEDLE, join(data.dir, 'log')), []);
    assert.deepEqual(filesWith(NEEDLE, join(data.dir, 'wal')), []);
    // The query store holds live entries' fields in the clear: this is what the grep must find gone.
    assert.ok(filesWith(NEEDLE, join(data.dir, 'index')).length > 0, 'the query store holds the entry before');

    const erase = await runStele([
      'erase',
      '--subject',
      EMAIL,
      '--reason',
      'GDPR art. 17',
      '--dir',
      data.dir,
      '--url',
      server.url,
    ]);
    assert.equal(erase.code, 0, erase.output);
    assert.match(erase.stdout, /^erased: 1 indexed entry under 1 data key can no longer be read; recorded as entry \d+/);
    await checkpointCovers(server.url, index + 2);

    // After: no byte of the data directory names them (log tiles and bundles, wal/, state/,
    // keys/, index/ with its full-text words), nor does the unauthenticated entry API.
    assert.deepEqual(filesWith(NEEDLE), []);
    const after = await call('GET', `/v1/entries/${index}`);
    assert.equal(after.status, 200);
    assert.ok(!after.text.toLowerCase().includes(NEEDLE), after.text);
    assert.ok(!(await rawLeaf(index)).toString('latin1').toLowerCase().includes(NEEDLE));
    const gone = await call('GET', `/v1/entries/${index}`, data.token);
    assert.equal(gone.status, 410, gone.text);
    assert.equal((gone.body.error as { code: string }).code, 'erased');
    const found = await call('GET', `/v1/events?q=${encodeURIComponent(NEEDLE)}`, data.token);
    assert.equal(found.status, 200, found.text);
    assert.ok(!JSON.stringify(found.body.hits).toLowerCase().includes(NEEDLE));
  });
});

describe('Unicode spellings (stored in NFC)', () => {
  const nfc = 'zoë.müller@acme.test'.normalize('NFC');
  const nfd = nfc.normalize('NFD');

  test('both spellings differ as bytes', () => {
    assert.notEqual(nfc, nfd);
  });

  test('a subject written in NFD is erased by its NFC spelling, and one written in NFC by its NFD spelling', async () => {
    for (const [written, erasedBy] of [
      [nfd, nfc],
      [`b-${nfc}`, `b-${nfd}`],
    ] as const) {
      const [index] = (await appendAs(data.token, [event('hr-bot', { subject: written })])) as [number];
      const stored = await call('GET', `/v1/entries/${index}`, data.token);
      assert.equal((stored.body.event as { subject: string }).subject, written.normalize('NFC'), 'stored in NFC');
      const r = await call('POST', '/v1/erasures', data.token, { subject: erasedBy, reason: 'request' });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.keys, 1, r.text);
      assert.equal(r.body.events, 1, r.text);
      const gone = await call('GET', `/v1/entries/${index}`, data.token);
      assert.equal(gone.status, 410, gone.text);
    }
  });

  test('a legal hold on one spelling blocks erasure by the other', async () => {
    const subject = `held-${nfd}`;
    await appendAs(data.token, [event('hr-bot', { subject })]);
    const hold = await call('POST', '/v1/holds', data.token, { subject, reason: 'litigation' });
    assert.equal(hold.status, 201, hold.text);
    const refused = await call('POST', '/v1/erasures', data.token, { subject: subject.normalize('NFC'), reason: 'request' });
    assert.equal(refused.status, 409, refused.text);
    assert.equal((refused.body.error as { code: string }).code, 'held');
  });

  test('actor: and subject: searches find both spellings', async () => {
    const actor = `ana-${nfc}`;
    const idx = await appendAs(data.token, [
      event(actor.normalize('NFD'), { subject: `s-${nfd}` }),
      event(actor, { subject: `s-${nfc}` }),
    ]);
    for (const q of [
      `actor:"${actor}"`,
      `actor:"${actor.normalize('NFD')}"`,
      `actor:ana-zo*`,
      `subject:"s-${nfd}"`,
      `subject:"s-${nfc}"`,
    ]) {
      const r = await call('GET', `/v1/events?q=${encodeURIComponent(q)}`, data.token);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(
        (r.body.hits as { index: number }[]).map((h) => h.index),
        [...idx].reverse(),
        q,
      );
    }
    // The NFD bytes were never stored (the query store holds the one NFC spelling).
    assert.deepEqual(filesWith(utf8Latin1(`ana-${nfd}`), join(data.dir, 'index')), []);
  });
});

describe('erasure of a subject no event carries', () => {
  test('says "no events carry this subject" (CLI and API) and still records the request', async () => {
    const cli = await runStele([
      'erase',
      '--subject',
      'nobody@acme.test',
      '--reason',
      'request 42',
      '--dir',
      data.dir,
      '--url',
      server.url,
    ]);
    assert.equal(cli.code, 0, cli.output);
    assert.match(cli.stdout, /^no events carry this subject\b.*; the request is recorded as entry (\d+)\n$/);
    const recorded = Number(/entry (\d+)/.exec(cli.stdout)?.[1]);
    const r = await call('GET', `/v1/entries/${recorded}`, data.token);
    assert.equal(r.status, 200, r.text);
    const e = r.body.event as { action: string; reason: string; data: Record<string, unknown> };
    assert.equal(e.action, 'stele.erasure');
    assert.equal(e.reason, 'request 42');
    assert.equal(e.data.keys, 0);
    assert.match(e.data.subject_hash as string, /^[0-9a-f]{32}$/);

    const api = await call('POST', '/v1/erasures', data.token, { subject: 'nobody-else@acme.test', reason: 'request 43' });
    assert.equal(api.status, 200, api.text);
    assert.equal(api.body.events, 0);
    assert.equal(api.body.keys, 0);
    assert.match(api.body.message as string, /^no events carry this subject/);
    assert.equal(typeof api.body.event, 'number');
  });
});
