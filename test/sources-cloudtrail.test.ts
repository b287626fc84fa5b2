/**
 * AWS CloudTrail end to end: EventBridge events through `POST /v1/sources/cloudtrail`, and
 * `stele import cloudtrail` of an S3-like tree of gzipped log files (with a digest file and
 * malformed records) into a real `stele serve`, resumed after the importer is killed and after the
 * server fails mid-way; then one search across Kubernetes and AWS.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { cloudtrailEvent } from '../src/sources/cloudtrail.js';
import { CLI, cleanup, type DataDir, initDir, runStele, SteleServer, sleep, tempDir } from './helpers/stele.js';

/** Parsed JSON of fixtures and answers, read freely by the assertions. */
// biome-ignore lint/suspicious/noExplicitAny: free-form JSON in tests
type Loose = any;

const FIXTURES = new URL('../../test/fixtures/cloudtrail/', import.meta.url);
const names = readdirSync(FIXTURES);
const raw = (name: string) => readFileSync(new URL(name, FIXTURES));
const fixture = (name: string): Loose => JSON.parse(raw(name).toString('utf8'));
const LOG = names.find((f) => /_CloudTrail_eu-west-1_.*\.json$/.test(f)) as string;
const MALFORMED = names.find((f) => f.includes('malformedRecords')) as string;
const DIGEST = names.find((f) => f.includes('CloudTrail-Digest')) as string;
const ACCOUNT = '123456789012';

const POLICY = `version: 1
roles:
  admin: { actions: [append, read, search, export, erase, hold, admin], vouch: ["*"] }
  writer: { actions: [append], vouch: ["*"] }
  k8s: { members: ["key:k8s-webhook"], actions: [append], vouch: ["k8s.*"] }
  aws: { members: ["key:cloudtrail"], actions: [append], vouch: ["aws.*"] }
`;

let data: DataDir;
let server: SteleServer;
let awsKey: string;

async function call(method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; body: Loose }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {} };
}
const size = async (): Promise<number> => (await call('GET', '/healthz')).body.size;
/** A search that sees every entry appended before it (after=: read your writes; 503 index_behind retried). */
async function search(q: string): Promise<Loose> {
  const last = (await size()) - 1;
  for (let tries = 0; ; tries++) {
    const r = await call('GET', `/v1/events?q=${encodeURIComponent(q)}&limit=1000&count=true&after=${last}`, data.token);
    if (r.status !== 503 || tries === 10) return r.body;
  }
}
const countOf = async (q: string): Promise<number> => (await search(q)).total;

before(async () => {
  data = await initDir('cloudtrail.test/log');
  writeFileSync(join(data.dir, 'stele.policy.yaml'), POLICY);
  server = await SteleServer.start(data.dir, { checkpointIntervalMs: 20 });
  const r = await call('POST', '/v1/keys', data.token, {
    name: 'cloudtrail',
    roles: ['aws'],
    sources: ['cloudtrail'],
    actions: ['aws.*'],
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  awsKey = r.body.key;
});

after(cleanup);

test('EventBridge events (one, or a list) are stored once durable, idempotent by eventID', async () => {
  const n = await size();
  const one = await call('POST', '/v1/sources/cloudtrail', awsKey, fixture('eventbridge-api-call.json'));
  assert.equal(one.status, 200, JSON.stringify(one.body));
  const batch = await call('POST', '/v1/sources/cloudtrail', awsKey, fixture('eventbridge-batch.json'));
  assert.equal(batch.status, 200, JSON.stringify(batch.body));
  assert.equal(batch.body.entries.length, 2);
  assert.equal(await size(), n + 3);
  const again = await call('POST', '/v1/sources/cloudtrail', awsKey, fixture('eventbridge-batch.json'));
  assert.deepEqual(again.body.entries, batch.body.entries);
  assert.equal(await size(), n + 3);

  const got = await call('GET', `/v1/entries/${one.body.entries[0].index}`, data.token);
  assert.deepEqual(got.body.ingest, { principal: 'cloudtrail', method: 'apikey' });
  const ev = got.body.event;
  assert.equal(ev.action, 'aws.s3.delete-bucket-policy');
  assert.equal(ev.actor.id, 'alice@example.com');
  assert.equal(ev.actor.verified, false);
  assert.deepEqual(ev.source, { kind: 'cloudtrail', host: ACCOUNT, agent: 'eventbridge', version: '1.09' });
  assert.equal(ev.data.requestParameters.bucketName, 'payments-exports');
});

test('malformed bodies and records get a precise 400 and store nothing', async () => {
  const good = fixture('eventbridge-api-call.json');
  const badRecord = { ...good, detail: { ...good.detail, eventID: randomUUID(), userIdentity: 'alice' } };
  const cases: [unknown, RegExp][] = [
    [
      fixture('eventbridge-not-cloudtrail.json'),
      /^detail-type: "EC2 Instance State-change Notification" is not a CloudTrail event/,
    ],
    [
      [{ ...good, detail: { ...good.detail, eventID: randomUUID() } }, badRecord],
      /^\[1\]\.detail\.userIdentity: must be an object, not a string$/,
    ],
    [fixture(MALFORMED), /^Records\[1\]\.eventTime: must be an RFC 3339 time/],
    [{ hello: 'world' }, /^the body must be an EventBridge event/],
    ['[{"detail-type":', /^the request body is not valid JSON/],
  ];
  for (const [body, message] of cases) {
    const n = await size();
    const r = await call('POST', '/v1/sources/cloudtrail', awsKey, body);
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(r.body.error.message, message);
    assert.equal(await size(), n);
  }
});

/** An S3-like tree (AWSLogs/<account>/CloudTrail/<region>/<y>/<m>/<d>/) of gzipped log files. */
function writeTree(root: string, files: { name: string; records: unknown[] }[]): string {
  const day = join(root, 'AWSLogs', ACCOUNT, 'CloudTrail', 'eu-west-1', '2026', '03', '02');
  mkdirSync(day, { recursive: true });
  for (const f of files) writeFileSync(join(day, f.name), gzipSync(JSON.stringify({ Records: f.records })));
  return root;
}

/** `count` files of `per` records, copies of the fixture's records with fresh eventIDs. */
function synthetic(tag: string, count: number, per: number): { name: string; records: Loose[] }[] {
  const base = fixture(LOG).Records as Loose[];
  return Array.from({ length: count }, (_, i) => ({
    name: `${ACCOUNT}_CloudTrail_eu-west-1_20260302T02${String(i % 60).padStart(2, '0')}Z_${tag}${String(i).padStart(4, '0')}.json.gz`,
    records: Array.from({ length: per }, (_, j) => ({ ...base[(i * per + j) % base.length], eventID: randomUUID() })),
  }));
}

const journalLines = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean).length : 0);

test('stele import cloudtrail: gzipped files found recursively, digests skipped, malformed records reported; a rerun skips everything', async () => {
  const root = tempDir('stele-ct-import-');
  writeTree(root, [
    { name: LOG.replace(/\.json$/, '.json.gz'), records: fixture(LOG).Records },
    { name: MALFORMED.replace(/\.json$/, '.json.gz'), records: fixture(MALFORMED).Records },
  ]);
  const digestDir = join(root, 'AWSLogs', ACCOUNT, 'CloudTrail-Digest', 'eu-west-1', '2026', '03', '02');
  mkdirSync(digestDir, { recursive: true });
  writeFileSync(join(digestDir, DIGEST.replace(/\.json$/, '.json.gz')), gzipSync(raw(DIGEST)));
  const state = join(root, 'journal.jsonl');
  const records = fixture(LOG).Records.length;

  const before = await countOf('source:cloudtrail');
  const args = ['import', 'cloudtrail', root, '--url', server.url, '--token', awsKey, '--state', state];
  const r = await runStele(args);
  assert.equal(r.code, 1, r.output);
  assert.match(r.stderr, /malformedRecords\.json\.gz: Records\[1\]\.eventTime: must be an RFC 3339 time/);
  assert.match(r.stderr, /malformedRecords\.json\.gz: Records\[2\]\.userIdentity: must be an object, not a string/);
  assert.match(r.stderr, /2 malformed records and 0 unreadable files were left out/);
  assert.match(r.stdout, new RegExp(`^imported ${records + 2} events from 2 files into`));
  // the log file's record that EventBridge delivered before is the same event: stored once
  assert.equal(await countOf('source:cloudtrail'), before + records + 2 - 1);

  const again = await runStele([...args, '--json']);
  assert.equal(again.code, 0, again.output);
  const summary = JSON.parse(again.stdout);
  assert.equal(summary.skipped_files, 2);
  assert.equal(summary.events, 0);
  assert.equal(summary.digest_files, 1);
  assert.equal(await countOf('source:cloudtrail'), before + records + 2 - 1);

  // --force sends everything again: harmless, the ids are the eventIDs
  const forced = await runStele([...args, '--force', '--json']);
  assert.equal(forced.code, 1);
  assert.equal(JSON.parse(forced.stdout).events, records + 2);
  assert.equal(await countOf('source:cloudtrail'), before + records + 2 - 1);
});

/** Forwards to the server, each answer delayed; after `failAfter` requests it answers 503 instead. */
function proxy(
  target: () => string,
  o: { delayMs?: number; failAfter?: number },
): Promise<{ url: string; server: Server; requests: () => number }> {
  let n = 0;
  const srv = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      n++;
      if (o.failAfter !== undefined && n > o.failAfter) {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'unavailable', message: 'the log is down for maintenance' } }));
        return;
      }
      try {
        if (o.delayMs) await sleep(o.delayMs);
        const r = await fetch(`${target()}${req.url}`, {
          method: req.method ?? 'GET',
          headers: {
            authorization: String(req.headers.authorization ?? ''),
            'content-type': String(req.headers['content-type'] ?? ''),
          },
          ...(chunks.length ? { body: Buffer.concat(chunks) } : {}),
        });
        res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
        res.end(Buffer.from(await r.arrayBuffer()));
      } catch {
        res.destroy();
      }
    });
  });
  return new Promise((resolve) =>
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address() as { port: number };
      resolve({ url: `http://127.0.0.1:${a.port}`, server: srv, requests: () => n });
    }),
  );
}

test('an import killed mid-way (kill -9) resumes: finished files are skipped, the interrupted one resent, nothing stored twice', async () => {
  const files = synthetic('kill', 60, 25);
  const root = writeTree(tempDir('stele-ct-kill-'), files);
  const state = join(root, 'journal.jsonl');
  const before = await countOf('source:cloudtrail');
  const slow = await proxy(() => server.url, { delayMs: 40 });
  const args = (url: string) => [
    'import',
    'cloudtrail',
    root,
    '--url',
    url,
    '--token',
    awsKey,
    '--state',
    state,
    '--batch',
    '30',
  ];
  const child: ChildProcess = spawn(process.execPath, [CLI, ...args(slow.url)], { stdio: 'ignore' });
  const exited = new Promise((r) => child.on('exit', r));
  const deadline = Date.now() + 60_000;
  while (journalLines(state) < 8 && Date.now() < deadline) await sleep(10);
  child.kill('SIGKILL');
  await exited;
  slow.server.close();
  const done = journalLines(state);
  assert.ok(done >= 8 && done < files.length, `${done} files were journalled before the kill`);

  const r = await runStele([...args(server.url), '--json']);
  assert.equal(r.code, 0, r.output);
  const summary = JSON.parse(r.stdout);
  assert.equal(summary.skipped_files, done);
  assert.equal(summary.imported_files, files.length - done);
  assert.equal(journalLines(state), files.length);
  assert.equal(await countOf('source:cloudtrail'), before + files.length * 25);
});

test('an import whose server fails mid-way stops with a clear message and resumes on the next run', async () => {
  const files = synthetic('fail', 30, 20);
  const root = writeTree(tempDir('stele-ct-fail-'), files);
  const state = join(root, 'journal.jsonl');
  const before = await countOf('source:cloudtrail');
  const flaky = await proxy(() => server.url, { failAfter: 5 });
  const args = (url: string) => [
    'import',
    'cloudtrail',
    root,
    '--url',
    url,
    '--token',
    awsKey,
    '--state',
    state,
    '--batch',
    '40',
  ];
  const r1 = await runStele([...args(flaky.url), '--retries', '1']);
  flaky.server.close();
  assert.equal(r1.code, 1, r1.output);
  assert.match(r1.stderr, /503: the log is down for maintenance/);
  assert.match(r1.stderr, /(\d+) of 30 files were imported; run the same command again to resume/);
  const done = journalLines(state);
  assert.ok(done >= 8 && done <= 10, `${done} files journalled after 5 accepted batches of 2 files`);
  assert.equal(await countOf('source:cloudtrail'), before + 5 * 40);

  const r2 = await runStele([...args(server.url), '--json']);
  assert.equal(r2.code, 0, r2.output);
  assert.equal(JSON.parse(r2.stdout).skipped_files, done);
  assert.equal(await countOf('source:cloudtrail'), before + 30 * 20);
});

test('one search answers "what did alice do everywhere between 02:00 and 03:00": Kubernetes and AWS', async () => {
  const k8s = JSON.parse(readFileSync(new URL('../../test/fixtures/kubernetes/eventlist-rbac.json', import.meta.url), 'utf8'));
  const r = await call('POST', '/v1/sources/kubernetes/prod-eu-1', data.token, k8s);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const hits = (await search('actor:alice@example.com since:2026-03-02T02:00:00Z until:2026-03-02T03:00:00Z')).hits as {
    event: { action: string; source: { kind: string } };
  }[];
  const actions = new Set(hits.map((h) => h.event.action));
  for (const a of [
    'k8s.clusterrolebindings.create',
    'k8s.secrets.get',
    'aws.s3.put-bucket-policy',
    'aws.iam.create-user',
    'aws.s3.delete-bucket-policy',
    'aws.signin.user-authentication',
  ]) {
    assert.ok(actions.has(a), `${a} in ${[...actions].join(', ')}`);
  }
  assert.deepEqual(new Set(hits.map((h) => h.event.source.kind)), new Set(['kubernetes', 'cloudtrail']));
  const denied = (await search('actor:alice@example.com outcome:denied action:aws.*')).hits;
  assert.ok(denied.every((h: { event: { action: string } }) => h.event.action === 'aws.iam.create-user'));
});

test('a key that may not vouch for aws.* actors is refused with 403 naming the record', async () => {
  const r = await call('POST', '/v1/keys', data.token, { name: 'k8s-webhook', roles: ['k8s'] });
  const k8sKey = r.body.key as string;
  const refused = await call('POST', '/v1/sources/cloudtrail', k8sKey, fixture('eventbridge-batch.json'));
  assert.equal(refused.status, 403, JSON.stringify(refused.body));
  assert.match(
    refused.body.error.message,
    /^\[0\]\.detail: actor "alice@example\.com" is not API key "k8s-webhook", and the policy does not let API key "k8s-webhook" vouch for other actors of aws\.iam\.create-user events$/,
  );
  assert.equal((await call('POST', '/v1/sources/cloudtrail', undefined, fixture('eventbridge-batch.json'))).status, 401);
});

test('cloudtrailEvent is the one mapping: the CLI and the route store the same event for the same record', () => {
  const rec = fixture(LOG).Records[0];
  const a = cloudtrailEvent(rec, 'x', { agent: 'cloudtrail' });
  const b = cloudtrailEvent(rec, 'y', { agent: 'eventbridge' });
  assert.equal(a.id, b.id);
  assert.deepEqual({ ...a, source: null }, { ...b, source: null });
});
