/**
 * `stele serve --mirror s3://bucket/prefix` against a real S3 with Object Lock (Ceph RGW, started
 * by test/helpers/rgw.ts): the bucket becomes a static tlog-tiles endpoint that `stele verify --url`
 * checks; locked tiles cannot be deleted or shortened through the S3 API, and an overwrite (a new
 * version, as S3 allows) is caught by verify and leaves the locked bytes readable; the mirror
 * catches up after the bucket was unreachable and after a crash, never rewrites a locked object,
 * and refuses a bucket that holds another log. Without Ceph the suite is skipped, except under
 * CI=true where that is a failure.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutBucketPolicyCommand,
  PutObjectCommand,
  PutObjectRetentionCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Outage, Rgw, rgwProblem } from './helpers/rgw.js';
import { appendHttp, cleanup, type DataDir, getJson, initDir, makeEvent, runStele, SteleServer, sleep } from './helpers/stele.js';

const problem = rgwProblem();
if (problem !== null && process.env.CI === 'true') {
  test('S3 mirror prerequisites', () => assert.fail(`CI must run the S3 mirror tests: ${problem}`));
}

const BUCKET = 'stele-mirror';
const PREFIX = 'acme/audit';

interface Health {
  checkpoint_size: number;
  mirror?: { size: number | null; ok: boolean; last_success: string | null };
}

/** S3's error name and HTTP status, from an SDK rejection. */
async function s3Refusal(p: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  try {
    await p;
  } catch (err) {
    const e = err as { name: string; Code?: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.Code ?? e.name, status: e.$metadata?.httpStatusCode };
  }
  assert.fail('S3 accepted the request');
}

describe('S3 mirror with Object Lock (Ceph RGW)', { skip: problem ?? false, timeout: 600_000 }, () => {
  let rgw: Rgw;
  let outage: Outage;
  let s3: S3Client;
  let data: DataDir;
  let server: SteleServer;
  const serverArgs = () => ['--mirror', `s3://${BUCKET}/${PREFIX}`, '--s3-retain', '1d', '--mirror-interval', '200ms'];
  const serverEnv = () => ({ ...rgw.env, STELE_S3_ENDPOINT: outage.endpoint });
  const bucketUrl = () => `${rgw.endpoint}/${BUCKET}/${PREFIX}`;
  const key = (path: string) => `${PREFIX}/log/${path}`;

  /** Waits until the bucket holds the server's checkpoint; returns its size. */
  async function caughtUp(s: SteleServer, timeoutMs = 60_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const h = await getJson<Health>(`${s.url}/healthz`);
      if (h.mirror?.ok && h.mirror.size === h.checkpoint_size) return h.checkpoint_size;
      if (Date.now() > deadline) throw new Error(`mirror did not catch up: ${JSON.stringify(h)}\n${s.output}`);
      await sleep(100);
    }
  }

  async function appendN(s: SteleServer, n: number): Promise<void> {
    for (let i = 0; i < n; i += 250) {
      await appendHttp(
        s.url,
        data.token,
        Array.from({ length: Math.min(250, n - i) }, (_, k) => makeEvent(undefined, i + k)),
      );
    }
  }

  async function verifyBucket(): Promise<{ code: number | null; output: string }> {
    return runStele(['verify', '--url', bucketUrl(), '--vkey', data.vkey]);
  }

  async function versions(): Promise<{ Key?: string; VersionId?: string }[]> {
    const out: { Key?: string; VersionId?: string }[] = [];
    let marker: { KeyMarker?: string; VersionIdMarker?: string } = {};
    for (;;) {
      const r = await s3.send(new ListObjectVersionsCommand({ Bucket: BUCKET, Prefix: `${PREFIX}/`, ...marker }));
      out.push(...(r.Versions ?? []));
      if (!r.IsTruncated) return out;
      marker = { KeyMarker: r.NextKeyMarker, VersionIdMarker: r.NextVersionIdMarker };
    }
  }

  before(async () => {
    rgw = await Rgw.start();
    outage = await Outage.start(rgw.endpoint);
    s3 = rgw.client();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET, ObjectLockEnabledForBucket: true }));
    // Anyone may read: the bucket is a public tlog-tiles endpoint (verify --url reads it anonymously).
    await s3.send(
      new PutBucketPolicyCommand({
        Bucket: BUCKET,
        Policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Principal: '*', Action: ['s3:GetObject'], Resource: [`arn:aws:s3:::${BUCKET}/*`] }],
        }),
      }),
    );
    data = await initDir('mirror.e2e.test/log');
    server = await SteleServer.start(data.dir, { args: serverArgs(), env: serverEnv() });
  });

  after(async () => {
    s3?.destroy();
    await outage?.close();
    await cleanup();
    await rgw?.stop();
  });

  test('the bucket is a tlog-tiles endpoint that stele verify --url checks', async () => {
    await appendN(server, 700);
    const size = await caughtUp(server);
    assert.ok(size >= 700);
    const v = await verifyBucket();
    assert.equal(v.code, 0, v.output);
    assert.match(v.output, new RegExp(`OK: .*${size} entries`));
    // The bucket's bytes are the data directory's: the first full bundle, and the checkpoint.
    const bundle = await fetch(`${bucketUrl()}/log/tile/entries/000`);
    assert.equal(bundle.status, 200);
    assert.deepEqual(Buffer.from(await bundle.arrayBuffer()), readFileSync(join(data.dir, 'log/tile/entries/000')));
    assert.match(bundle.headers.get('cache-control') ?? '', /immutable/);
  });

  test('a locked tile cannot be deleted or its lock shortened; an overwrite is caught by verify and the locked bytes stay', async () => {
    const path = key('tile/entries/000');
    const mine = readFileSync(join(data.dir, 'log/tile/entries/000'));
    const [locked] = (await versions()).filter((v) => v.Key === path);
    assert.ok(locked?.VersionId, 'the full bundle is in the bucket');
    const del = await s3Refusal(s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: path, VersionId: locked.VersionId })));
    assert.deepEqual([del.name, del.status], ['AccessDenied', 403]);
    const shorten = await s3Refusal(
      s3.send(
        new PutObjectRetentionCommand({
          Bucket: BUCKET,
          Key: path,
          VersionId: locked.VersionId,
          Retention: { Mode: 'COMPLIANCE', RetainUntilDate: new Date(Date.now() + 60_000) },
        }),
      ),
    );
    assert.deepEqual([shorten.name, shorten.status], ['AccessDenied', 403]);
    const governance = await s3Refusal(
      s3.send(
        new PutObjectRetentionCommand({
          Bucket: BUCKET,
          Key: path,
          VersionId: locked.VersionId,
          Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date(Date.now() + 2 * 86_400_000) },
          BypassGovernanceRetention: true,
        }),
      ),
    );
    assert.equal(governance.status, 403);

    // S3 lets anyone with write access add a newer version; the locked one is untouched beneath it.
    const forged = Buffer.from(mine);
    forged[10] = (forged[10] as number) ^ 1;
    const put = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: path, Body: forged }));
    const bad = await verifyBucket();
    assert.notEqual(bad.code, 0, 'verify must catch the forged bundle');
    assert.match(bad.output, /verification FAILED/);
    const original = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: path, VersionId: locked.VersionId }));
    assert.deepEqual(Buffer.from((await original.Body?.transformToByteArray()) ?? []), mine);
    // The forgery was not locked: removing it brings the locked bytes back to the top.
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: path, VersionId: put.VersionId }));
    const good = await verifyBucket();
    assert.equal(good.code, 0, good.output);
  });

  test('the mirror catches up after the bucket was unreachable, and never writes a locked object twice', async () => {
    outage.cut();
    await appendN(server, 600);
    const deadline = Date.now() + 30_000;
    let h = await getJson<Health>(`${server.url}/healthz`);
    while (h.mirror?.ok !== false) {
      if (Date.now() > deadline) throw new Error(`the mirror never noticed the outage: ${JSON.stringify(h)}`);
      await sleep(100);
      h = await getJson<Health>(`${server.url}/healthz`);
    }
    assert.ok((h.mirror.size ?? 0) < h.checkpoint_size, 'the bucket is behind during the outage');
    outage.restore();
    const size = await caughtUp(server, 120_000);
    assert.ok(size >= 1300);
    const v = await verifyBucket();
    assert.equal(v.code, 0, v.output);
    const all = await versions();
    const full = all.filter((x) => x.Key?.includes('/tile/') && !x.Key.includes('.p/'));
    // One version per full tile: 5 bundles and 5 level-0 tiles at 1,300 entries (the forged version was deleted).
    assert.equal(new Set(full.map((x) => x.Key)).size, full.length, 'a full tile was written twice');
    assert.ok(full.length >= 10);
    // Partials replaced by a wider tile were deleted: what is left is at most the current right edge.
    // Partials go once their tile is full in the bucket (readers of an older checkpoint then read the
    // full tile's prefix); a PUT whose answer the outage cut is listed and cleaned up too.
    const partials = all.filter((x) => x.Key?.includes('.p/')).map((x) => x.Key as string);
    const fullKeys = new Set(full.map((x) => x.Key));
    const stale = partials.filter((k) => fullKeys.has(k.replace(/\.p\/\d+$/, '')));
    assert.deepEqual(stale, [], 'no partial of a full tile is left');
    assert.equal(new Set(partials).size, partials.length, 'one version of each partial');
  });

  test('after a crash the mirror resumes from the bucket, and a bucket holding another log is refused', async () => {
    await server.kill();
    server = await SteleServer.start(data.dir, { args: serverArgs(), env: serverEnv() });
    await appendN(server, 300);
    const size = await caughtUp(server);
    assert.equal((await verifyBucket()).code, 0);

    // Another log pointed at the same bucket and prefix: refused, and the bucket is left alone.
    const other = await initDir('other.e2e.test/log');
    const intruder = await SteleServer.start(other.dir, { args: serverArgs(), env: serverEnv() });
    await appendHttp(intruder.url, other.token, [makeEvent()]);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const h = await getJson<Health>(`${intruder.url}/healthz`);
      if (h.mirror?.ok === false) break;
      if (Date.now() > deadline) throw new Error(`the intruder's mirror did not fail: ${JSON.stringify(h)}`);
      await sleep(100);
    }
    await intruder.stop();
    assert.match(
      intruder.output,
      /s3:\/\/stele-mirror\/acme\/audit\/log\/checkpoint is not this log's \(another log's mirror\?\).*mirror failed/,
    );
    const remote = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key('checkpoint') }));
    assert.match((await remote.Body?.transformToString()) ?? '', new RegExp(`^mirror\\.e2e\\.test/log\\n${size}\\n`));
  });

  test('after a copy cut short the mirror compares the full tiles past the bucket checkpoint; --s3-legal-hold holds what it writes', async () => {
    // The bucket falls behind by more than a bundle, then the server stops.
    outage.cut();
    await appendN(server, 300);
    await server.stop();
    outage.restore();
    const local = Number(readFileSync(join(data.dir, 'log/checkpoint'), 'utf8').split('\n')[1]);
    const remote = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key('checkpoint') }));
    const behind = Number(((await remote.Body?.transformToString()) ?? '').split('\n')[1]);
    const bundle = Math.floor(local / 256) - 1; // full locally, past the bucket's checkpoint
    assert.ok((bundle + 1) * 256 > behind, `bundle ${bundle} is full in the log (${local}) but not in the bucket (${behind})`);
    // A full bundle in that gap, as a copy cut short would leave one, but with other bytes.
    const path = key(`tile/entries/${String(bundle).padStart(3, '0')}`);
    const forged = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: path, Body: Buffer.from('not a bundle') }));
    server = await SteleServer.start(data.dir, { args: [...serverArgs(), '--s3-legal-hold', 'on'], env: serverEnv() });
    const deadline = Date.now() + 120_000;
    while (!/holds other bytes than this log's full tile; a locked object is never rewritten/.test(server.output)) {
      if (Date.now() > deadline) throw new Error(`the mirror did not refuse the forged tile:\n${server.output}`);
      await sleep(100);
    }
    // Taking the forgery away lets the mirror go on; what it writes now is under a legal hold too.
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: path, VersionId: forged.VersionId }));
    await caughtUp(server, 120_000);
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: path }));
    assert.equal(head.ObjectLockMode, 'COMPLIANCE');
    assert.equal(head.ObjectLockLegalHoldStatus, 'ON');
    assert.ok((head.ObjectLockRetainUntilDate?.getTime() ?? 0) > Date.now() + 86_400_000 - 3_600_000);
    assert.equal((await verifyBucket()).code, 0);
  });

  test('a bucket without Object Lock is refused before the server starts', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'stele-plain' }));
    const other = await initDir();
    const r = await runStele(
      ['serve', '--dir', other.dir, '--listen', '127.0.0.1:0', '--mirror', 's3://stele-plain'],
      60_000,
      serverEnv(),
    );
    assert.notEqual(r.code, 0);
    assert.match(r.output, /--mirror s3:\/\/stele-plain: the bucket has no Object Lock/);
  });
});
