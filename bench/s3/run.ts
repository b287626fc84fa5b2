/**
 * The S3 mirror's upload rate (issue 14): `npm run bench:s3 [-- --entries N] [--repeats R]`
 * (default 200,000 entries, 3 repeats; needs Debian's ceph-mon, ceph-osd and radosgw, as root).
 *
 * A real S3 with Object Lock (Ceph RGW on memstore, test/helpers/rgw.ts) on this machine, and a
 * log of N entries built as bench:verify builds it (v3 sealed leaves). In one run, each repeat:
 *   1. Stele's mirror (src/storage/s3/mirror.ts) copying the whole log into an empty Object Lock
 *      bucket: reads, hashing, HEAD-free PUTs with COMPLIANCE retention, partial sweeps, checkpoint;
 *   2. the raw limit: the same objects PUT by the same SDK with the same parallelism (8), no reads
 *      and no checks, into an Object Lock bucket with the same retention, and into a plain bucket
 *      (what the lock costs the gateway);
 *   3. the embedded default: the same tiles and bundles written to a data directory by the fs
 *      driver (write, link, syncfs), as `stele serve` stores them.
 * Medians of the repeats, in entries/s and objects/s; the machine is shared with the gateway, so
 * the ratios are what to compare. Rewrites the `<!-- bench:s3 -->` section of BENCHMARKS.md.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { readVerifierKey } from '../../src/app/datadir.js';
import { quietAwsSdk } from '../../src/core/config/env.js';
import type { TileData } from '../../src/log/storage.js';
import { FsLogStorage } from '../../src/storage/fs/log-storage.js';
import { DirTileSource } from '../../src/storage/fs/tile-source.js';
import { Bucket } from '../../src/storage/s3/bucket.js';
import { LogMirror } from '../../src/storage/s3/mirror.js';
import { newVerifier } from '../../src/tlog/note.js';
import { tileFilePath, tilesBetween } from '../../src/tlog/tile.js';
import { Rgw, rgwProblem } from '../../test/helpers/rgw.js';
import { cleanup } from '../../test/helpers/stele.js';
import { machine } from '../ingest/report.js';
import { fmtInt, fmtRatio, median, percentileSorted, sortedCopy } from '../ingest/stats.js';
import { numberOption, writeSection } from '../section.js';
import { buildLog } from '../verify/build.js';

const log = (s: string) => process.stderr.write(`${s}\n`);
const args = process.argv.slice(2);
const ENTRIES = numberOption('--entries', 200_000);
const REPEATS = numberOption('--repeats', 3);
const CONCURRENCY = 8;
const DAY = 86_400_000;

interface Run {
  seconds: number;
  objects: number;
  bytes: number;
  /** PUT latencies (ms), for the raw runs. */
  latencies?: number[];
}

/** Every object of the log (full and partial tiles and bundles at the log's size, and the checkpoint). */
async function objectsOf(dir: string, size: number): Promise<{ path: string; data: Buffer; t: TileData | null }[]> {
  const src = new DirTileSource(join(dir, 'log'));
  const out: { path: string; data: Buffer; t: TileData | null }[] = [];
  for (const t of tilesBetween(0, size)) {
    const data = await src.readTile(t.level, t.index, t.width);
    if (!data) throw new Error(`the built log lacks ${tileFilePath(t.level, t.index, t.width)}`);
    out.push({ path: `log/${tileFilePath(t.level, t.index, t.width)}`, data, t: { ...t, data } });
  }
  out.push({ path: 'log/checkpoint', data: readFileSync(join(dir, 'log', 'checkpoint')), t: null });
  return out;
}

async function rawPut(s3: S3Client, bucket: string, objs: { path: string; data: Buffer }[], lock: boolean): Promise<Run> {
  const latencies: number[] = [];
  let next = 0;
  let bytes = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < objs.length; i = next++) {
        const o = objs[i] as { path: string; data: Buffer };
        const t = performance.now();
        await s3.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: o.path,
            Body: o.data,
            ...(lock ? { ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: new Date(Date.now() + DAY) } : {}),
          }),
        );
        latencies.push(performance.now() - t);
        bytes += o.data.length;
      }
    }),
  );
  return { seconds: (performance.now() - t0) / 1000, objects: objs.length, bytes, latencies };
}

async function main(): Promise<void> {
  const problem = rgwProblem();
  if (problem) throw new Error(`bench:s3 needs Ceph RGW: ${problem}`);
  const m = machine();
  log(`bench:s3: ${m.nproc} CPUs, ${m.model}, node ${m.node}, ${m.commit}; ${fmtInt(ENTRIES)} entries, ${REPEATS} repeats`);
  const built = await buildLog(ENTRIES, log);
  const size = built.size;
  const objs = await objectsOf(built.dir, size);
  const full = objs.filter((o) => o.t && o.t.width === 256).length;
  const totalBytes = objs.reduce((n, o) => n + o.data.length, 0);
  log(
    `log of ${fmtInt(size)} entries: ${fmtInt(objs.length)} objects (${fmtInt(full)} full), ${(totalBytes / 2 ** 20).toFixed(1)} MiB`,
  );
  const verifier = newVerifier(readVerifierKey(built.dir));

  const rgw = await Rgw.start();
  // The mirror finds its credentials where it would in production: the environment.
  Object.assign(process.env, rgw.env);
  quietAwsSdk();
  const s3 = rgw.client();
  const mirror: Run[] = [];
  const rawLock: Run[] = [];
  const rawPlain: Run[] = [];
  const local: Run[] = [];
  try {
    for (let r = 0; r < REPEATS; r++) {
      // A fresh bucket each time: the mirror copies into an empty one, as on its first start.
      const b = `mirror-${r}`;
      await s3.send(new CreateBucketCommand({ Bucket: b, ObjectLockEnabledForBucket: true }));
      const bucket = new Bucket({ bucket: b, prefix: '' }, { endpoint: rgw.endpoint, region: 'us-east-1' });
      const lm = new LogMirror(new DirTileSource(join(built.dir, 'log')), bucket, verifier, { retainMs: DAY, legalHold: false });
      const t0 = performance.now();
      const got = await lm.step();
      if (got !== size) throw new Error(`the mirror copied ${got} entries, not ${size}`);
      mirror.push({ seconds: (performance.now() - t0) / 1000, objects: objs.length, bytes: totalBytes });
      bucket.close();
      log(`[${r + 1}/${REPEATS}] Stele mirror: ${fmtInt(size / (mirror.at(-1) as Run).seconds)} entries/s`);

      await s3.send(new CreateBucketCommand({ Bucket: `raw-lock-${r}`, ObjectLockEnabledForBucket: true }));
      rawLock.push(await rawPut(s3, `raw-lock-${r}`, objs, true));
      log(`[${r + 1}/${REPEATS}] raw PUT, Object Lock: ${fmtInt(objs.length / (rawLock.at(-1) as Run).seconds)} objects/s`);
      await s3.send(new CreateBucketCommand({ Bucket: `raw-plain-${r}` }));
      rawPlain.push(await rawPut(s3, `raw-plain-${r}`, objs, false));
      log(`[${r + 1}/${REPEATS}] raw PUT, plain bucket: ${fmtInt(objs.length / (rawPlain.at(-1) as Run).seconds)} objects/s`);

      const dir = mkdtempSync(join(built.dir, '..', 'bench-s3-local-'));
      try {
        const fsStore = new FsLogStorage(dir);
        await fsStore.open();
        const t1 = performance.now();
        await fsStore.writeTiles(objs.flatMap((o) => (o.t ? [o.t] : [])));
        await fsStore.syncTiles(size);
        local.push({ seconds: (performance.now() - t1) / 1000, objects: objs.length - 1, bytes: totalBytes });
        await fsStore.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      log(`[${r + 1}/${REPEATS}] embedded (fs driver): ${fmtInt(size / (local.at(-1) as Run).seconds)} entries/s`);
    }
  } finally {
    s3.destroy();
    await rgw.stop();
    await cleanup();
  }

  const eps = (xs: Run[]) => median(xs.map((x) => size / x.seconds));
  const ops = (xs: Run[]) => median(xs.map((x) => x.objects / x.seconds));
  const mibs = (xs: Run[]) => median(xs.map((x) => x.bytes / 2 ** 20 / x.seconds));
  const lat = (xs: Run[], p: number) => median(xs.map((x) => percentileSorted(sortedCopy(x.latencies ?? []), p)));
  const row = (name: string, xs: Run[]) =>
    `| ${name} | ${xs.map((x) => fmtInt(size / x.seconds)).join(' / ')} | **${fmtInt(eps(xs))}** | ${fmtInt(ops(xs))} | ${mibs(xs).toFixed(1)} |`;
  const md = `<!-- bench:s3 -->
## S3 mirror upload rate (\`npm run bench:s3\`)

${m.date.slice(0, 10)}, ${m.nproc} CPUs (${m.model}), ${m.memGiB} GiB, node ${m.node}, commit ${m.commit}. A log of
${fmtInt(size)} entries (v3 sealed leaves, built as bench:verify builds it): ${fmtInt(objs.length)} objects
(${fmtInt(full)} full tiles and bundles), ${(totalBytes / 2 ** 20).toFixed(1)} MiB. The S3 is Ceph RGW 16 on
memstore on the same 2 cores (test/helpers/rgw.ts); ${CONCURRENCY} PUTs in flight everywhere. ${REPEATS} repeats, median in bold.

| copy of the whole log | entries/s (each repeat) | median | objects/s | MiB/s |
| --- | --- | ---: | ---: | ---: |
${row('Stele mirror → Object Lock bucket (COMPLIANCE)', mirror)}
${row('raw PUTs of the same objects → Object Lock bucket (COMPLIANCE)', rawLock)}
${row('raw PUTs of the same objects → plain bucket', rawPlain)}
${row('embedded default: fs driver writes the same tiles (write, link, syncfs)', local)}

- Stele's mirror / raw Object Lock PUTs: **${fmtRatio(eps(mirror) / eps(rawLock))}** (the mirror also lists the
  bucket, reads and re-encodes each tile, checks the bucket's checkpoint, and writes and deletes partials); Object Lock / plain bucket:
  ${fmtRatio(eps(rawLock) / eps(rawPlain))}; mirror / embedded: ${fmtRatio(eps(mirror) / eps(local))}.
- Raw PUT latency into the Object Lock bucket: p50 ${lat(rawLock, 50).toFixed(1)} ms, p99 ${lat(rawLock, 99).toFixed(1)} ms
  (plain: p50 ${lat(rawPlain, 50).toFixed(1)} ms, p99 ${lat(rawPlain, 99).toFixed(1)} ms). Where the time goes: the gateway's
  per-object work (RGW and the OSD share the 2 cores with the client), not bytes: an object is
  ${fmtInt(totalBytes / objs.length)} bytes on average. The first repeat runs on a gateway that is still creating its pools.
- A mirror copying ${fmtInt(eps(mirror))} entries/s keeps up with any ingest rate below that, and catches up
  after an outage at (that rate − the ingest rate).
<!-- /bench:s3 -->
`;
  process.stdout.write(md);
  if (!args.includes('--no-write')) writeSection('s3', md);
}

main().catch((err: unknown) => {
  log(`bench:s3 failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
