/**
 * Verification benchmark (issue 12, target 6): `npm run bench:verify`.
 *   1. `stele verify --dir` of a 10M-entry log (built once in process and cached, build.ts), as a
 *      child process, timed end to end: entries/s. Beside it, in the same run, the raw limit of
 *      that work: read every entry bundle and SHA-256 each leaf (RFC 6962 leaf hash), one thread,
 *      no tree, no tile comparison.
 *   2. Inclusion proofs over HTTP (`GET /v1/proofs/inclusion?index=`, no credentials, as a monitor
 *      asks): a fresh `stele serve` filled over HTTP for a few seconds, then closed-loop clients
 *      asking for proofs of random entries: proofs/s and per-request latency.
 * Writes its own `<!-- bench:verify -->` section of BENCHMARKS.md (with a `targets:` comment
 * `npm run bench` reads back) and prints the targets.
 *
 * Knobs: BENCH_VERIFY_ENTRIES (10,000,000; 1,000,000 with BENCH_QUICK=1), BENCH_REPEATS (3; 1 quick),
 * BENCH_PROOF_SECONDS (10), BENCH_PROOF_CLIENTS (8).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { leafHash } from '../../src/tlog/hash.js';
import { decodeBundle, tileFilePath } from '../../src/tlog/tile.js';
import { cleanupNow, installCleanupHandlers } from '../ingest/cleanup.js';
import { throughput } from '../ingest/http-load.js';
import { loadNow, machine } from '../ingest/report.js';
import { CLI, machineBusySeconds, type SteleServer, startStele } from '../ingest/server.js';
import { fmtInt, fmtMs, median, percentileSorted, sleep, sortedCopy } from '../ingest/stats.js';
import type { TargetLine } from '../ingest/targets.js';
import { buildLog } from './build.js';

const quick = process.env.BENCH_QUICK === '1';
const ENTRIES = Number(process.env.BENCH_VERIFY_ENTRIES ?? (quick ? 1_000_000 : 10_000_000));
const REPEATS = Number(process.env.BENCH_REPEATS ?? (quick ? 1 : 3));
const PROOF_S = Number(process.env.BENCH_PROOF_SECONDS ?? (quick ? 4 : 10));
const PROOF_CLIENTS = Number(process.env.BENCH_PROOF_CLIENTS ?? 8);
const FILL_S = quick ? 3 : 8;
const OUT = fileURLToPath(new URL('../../../BENCHMARKS.md', import.meta.url));

export const TARGET_VERIFY_EPS = 300_000;
export const TARGET_PROOFS = 20_000;
export const TARGET_PROOF_P99_MS = 5;

const log = (s: string) => process.stderr.write(`${s}\n`);

function verifyOnce(dir: string): { seconds: number; ok: boolean; out: string } {
  const t0 = performance.now();
  let out = '';
  let ok = true;
  try {
    out = execFileSync(process.execPath, [CLI, 'verify', '--dir', dir, '--json'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    ok = false;
    out = String((err as { stdout?: string }).stdout ?? err);
  }
  return { seconds: (performance.now() - t0) / 1000, ok: ok && /"ok":\s*true/.test(out), out: out.trim().slice(0, 300) };
}

/** Raw limit: read each entry bundle and hash each leaf, for at most `limitS` seconds. */
function rawLeafHashing(dir: string, size: number, limitS: number): number {
  const root = join(dir, 'log');
  const t0 = performance.now();
  let n = 0;
  const bundles = Math.floor(size / 256);
  for (let b = 0; b < bundles; b++) {
    for (const leaf of decodeBundle(readFileSync(join(root, tileFilePath('entries', b, 256))), 256)) {
      leafHash(leaf);
      n++;
    }
    if ((b & 63) === 0 && performance.now() - t0 > limitS * 1000) break;
  }
  return n / ((performance.now() - t0) / 1000);
}

interface ProofRun {
  proofsPerSec: number;
  ok: number;
  failures: number;
  firstFailure: string | null;
  p50: number;
  p99: number;
  p999: number;
  logSize: number;
  /** CPU cores the server, and everything else on the machine but it and this process, used meanwhile. */
  serverCores: number;
  otherCores: number;
}

function get(agent: http.Agent, srv: SteleServer, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ agent, host: srv.host, port: srv.port, method: 'GET', path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function proofs(srv: SteleServer, seconds: number, clients: number): Promise<ProofRun> {
  const health = (await (await fetch(`http://${srv.host}:${srv.port}/healthz`)).json()) as { checkpoint_size: number };
  const size = health.checkpoint_size;
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const lat: number[] = [];
  let failures = 0;
  let firstFailure: string | null = null;
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const warmEnd = performance.now() + 1000;
  const end = warmEnd + seconds * 1000;
  let cpu0 = { server: Number.NaN, machine: Number.NaN, self: process.cpuUsage() };
  const mark = setTimeout(() => {
    cpu0 = { server: srv.cpuSeconds(), machine: machineBusySeconds(), self: process.cpuUsage() };
  }, 1000);
  const loop = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      const r = await get(agent, srv, `/v1/proofs/inclusion?index=${Math.floor(rand() * size)}`).catch((e: Error) => ({
        status: 0,
        body: e.message,
      }));
      const t1 = performance.now();
      if (t0 < warmEnd) continue;
      if (r.status === 200) lat.push(t1 - t0);
      else {
        failures++;
        firstFailure ??= `HTTP ${r.status}: ${r.body.slice(0, 200)}`;
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, loop));
  clearTimeout(mark);
  const server = srv.cpuSeconds() - cpu0.server;
  const self = process.cpuUsage(cpu0.self);
  const other = machineBusySeconds() - cpu0.machine - server - (self.user + self.system) / 1e6;
  agent.destroy();
  const s = sortedCopy(lat);
  return {
    proofsPerSec: lat.length / seconds,
    ok: lat.length,
    failures,
    firstFailure,
    p50: percentileSorted(s, 50),
    p99: percentileSorted(s, 99),
    p999: percentileSorted(s, 99.9),
    logSize: size,
    serverCores: server / seconds,
    otherCores: Math.max(0, other / seconds),
  };
}

async function indexCaughtUp(srv: SteleServer, limitS: number): Promise<void> {
  const t0 = performance.now();
  const h = (await (await fetch(`http://${srv.host}:${srv.port}/healthz`)).json()) as { size: number };
  while ((performance.now() - t0) / 1000 < limitS) {
    const r = await fetch(`http://${srv.host}:${srv.port}/v1/events?limit=1`, {
      headers: { authorization: `Bearer ${srv.token}` },
    });
    const b = (await r.json()) as { indexed_through?: number };
    if ((b.indexed_through ?? 0) >= h.size) return;
    await sleep(250);
  }
}

function du(dir: string): string {
  try {
    return execFileSync('du', ['-sh', dir], { encoding: 'utf8' }).split('\t')[0] ?? '?';
  } catch {
    return '?';
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  installCleanupHandlers();
  const m = machine();
  log(`stele verify bench: ${m.nproc} CPUs, node ${m.node}, ${m.commit}; ${fmtInt(ENTRIES)} entries, ${REPEATS} repeats`);

  const built = await buildLog(ENTRIES, log);
  log(
    built.cached
      ? `log of ${fmtInt(built.size)} entries from the cache (${built.dir}; built in ${built.buildS.toFixed(0)} s)`
      : `built a log of ${fmtInt(built.size)} entries in ${built.buildS.toFixed(0)} s (${fmtInt(built.size / built.buildS)} entries/s)`,
  );
  const size = du(built.dir);

  const verify: { eps: number; seconds: number; ok: boolean; out: string }[] = [];
  const raw: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const v = verifyOnce(built.dir);
    verify.push({ ...v, eps: built.size / v.seconds });
    log(
      `[${i + 1}/${REPEATS}] stele verify: ${v.seconds.toFixed(1)} s, ${fmtInt(built.size / v.seconds)} entries/s, ${v.ok ? 'OK' : `FAILED ${v.out}`}`,
    );
    const r = rawLeafHashing(built.dir, built.size, quick ? 3 : 8);
    raw.push(r);
    log(`[${i + 1}/${REPEATS}] raw read + leaf hash: ${fmtInt(r)} entries/s`);
  }

  const proofRuns: ProofRun[] = [];
  let fill = 0;
  {
    const srv = await startStele();
    try {
      const t = await throughput(srv, { clients: 4, batch: 1000, withIds: true, warmupMs: 0, durationMs: FILL_S * 1000 });
      fill = t.acked;
      await indexCaughtUp(srv, 60);
      await sleep(1500); // a checkpoint covering everything
      for (let i = 0; i < REPEATS; i++) {
        const p = await proofs(srv, PROOF_S, PROOF_CLIENTS);
        proofRuns.push(p);
        log(
          `[${i + 1}/${REPEATS}] inclusion proofs (log of ${fmtInt(p.logSize)}): ${fmtInt(p.proofsPerSec)}/s, p50 ${fmtMs(p.p50)} p99 ${fmtMs(p.p99)} ms, ` +
            `server ${p.serverCores.toFixed(2)} cores, other ${p.otherCores.toFixed(2)}, failures ${p.failures}${p.firstFailure ? ` (${p.firstFailure})` : ''}`,
        );
      }
    } finally {
      await srv.stop();
    }
  }

  const vEps = median(verify.map((v) => v.eps));
  const rawEps = median(raw);
  const pps = median(proofRuns.map((p) => p.proofsPerSec));
  const p99 = median(proofRuns.map((p) => p.p99));
  const pFail = proofRuns.reduce((a, p) => a + p.failures, 0);
  const allOk = verify.every((v) => v.ok);
  const targets: TargetLine[] = [
    {
      target: `6. \`stele verify\` of a ${fmtInt(built.size)}-entry log ≥ ${fmtInt(TARGET_VERIFY_EPS)} entries/s`,
      measured: `${fmtInt(vEps)} entries/s (${median(verify.map((v) => v.seconds)).toFixed(1)} s${allOk ? '' : ', verification FAILED'}; raw read + leaf hash ${fmtInt(rawEps)}/s)`,
      met: allOk && vEps >= TARGET_VERIFY_EPS,
    },
    {
      target: `6. inclusion proofs over HTTP ≥ ${fmtInt(TARGET_PROOFS)}/s`,
      measured: `${fmtInt(pps)} proofs/s (${PROOF_CLIENTS} clients, log of ${fmtInt(proofRuns[0]?.logSize ?? 0)})`,
      met: pps >= TARGET_PROOFS && pFail === 0,
    },
    {
      target: `6. inclusion proof p99 ≤ ${TARGET_PROOF_P99_MS} ms`,
      measured: `p99 ${fmtMs(p99)} ms (p50 ${fmtMs(median(proofRuns.map((p) => p.p50)))}), ${pFail} failed`,
      met: p99 <= TARGET_PROOF_P99_MS && pFail === 0,
    },
  ];

  const o: string[] = [];
  const p = (...l: string[]) => o.push(...l);
  p('<!-- bench:verify -->', '## Verification (issue 12, target 6)', '');
  p(
    `Generated by \`npm run bench:verify\` (\`bench/verify/\`) on ${m.date}, Stele at ${m.commit}, ${m.nproc} CPUs (${m.model}), ` +
      `Node ${m.node}; load at start ${m.load}, at end ${loadNow()}; took ${Math.round((performance.now() - started) / 1000)} s. Medians of ${REPEATS}.`,
    '',
  );
  p('| target | measured (median) | |', '|---|---|:---:|');
  for (const t of targets) p(`| ${t.target} | ${t.measured} | ${t.met ? 'met' : '**not met**'} |`);
  p('');
  p(
    `- **The log.** ${fmtInt(built.size)} entries of ${Math.round(built.leafBytes)} bytes in Stele's leaf format, ${size} on disk. ` +
      'Appending that many over HTTP would take far too long, so it is built in process by the integrator `stele serve` uses ' +
      '(`src/log/integrator.ts` with `FsLogStorage`: the same entry bundles, tiles and signed checkpoint) in a directory made by `stele init`, ' +
      `and cached in \`bench/.cache/\` keyed by version. The build took ${built.buildS.toFixed(0)} s (${fmtInt(built.size / built.buildS)} entries/s)` +
      `${built.cached ? ' when it was made; this run reused it' : ' in this run'}.`,
  );
  p(
    '- **`stele verify --dir`** runs as a child process, timed from spawn to exit (Node start-up included): it reads every entry bundle, ' +
      'rebuilds every tile and compares it with the stored one, and checks the signed checkpoint. ' +
      `Runs: ${verify.map((v) => `${v.seconds.toFixed(1)} s`).join(', ')}.`,
  );
  p(
    `- **Raw limit** (same run, in process, one thread): read each entry bundle and SHA-256 each leaf, nothing else: ${raw.map(fmtInt).join(', ')} entries/s. ` +
      `\`stele verify\` runs at ${(vEps / rawEps).toFixed(2)}× that.`,
  );
  p(
    `- **Inclusion proofs**: a fresh \`stele serve\` filled over HTTP for ${FILL_S} s (${fmtInt(fill)} events), index caught up, then ${PROOF_CLIENTS} ` +
      `closed-loop keep-alive clients without credentials (as monitors ask) requesting \`GET /v1/proofs/inclusion?index=<random>\` ` +
      `(size: the latest checkpoint) for ${PROOF_S} s after 1 s of warm-up; latency per request. Runs: ` +
      proofRuns
        .map(
          (x) =>
            `${fmtInt(x.proofsPerSec)}/s p99 ${fmtMs(x.p99)} ms, server ${x.serverCores.toFixed(2)} cores ` +
            `(${fmtInt((x.serverCores / x.proofsPerSec) * 1e6)} µs a proof), other processes ${x.otherCores.toFixed(2)} cores`,
        )
        .join('; ') +
      '. The load generator shares the 2 cores with the server; "other processes" is everything else on the machine (the noise).',
  );
  const firstFail = proofRuns.find((x) => x.firstFailure)?.firstFailure;
  if (firstFail) p(`- First proof failure: \`${firstFail}\``);
  p('', `<!-- targets: ${JSON.stringify(targets)} -->`, '<!-- /bench:verify -->');
  const sectionText = o.join('\n');

  const md = existsSync(OUT) ? readFileSync(OUT, 'utf8') : '# Benchmarks\n';
  const re = /<!-- bench:verify -->[\s\S]*?<!-- \/bench:verify -->/;
  writeFileSync(OUT, re.test(md) ? md.replace(re, sectionText) : `${md.trimEnd()}\n\n${sectionText}\n`);
  process.stdout.write(`${sectionText}\n`);
  log(`\nwrote the bench:verify section of ${OUT}`);
}

main().then(
  () => {
    cleanupNow();
    process.exit(0);
  },
  (err: unknown) => {
    log(`bench:verify failed: ${(err as Error).stack ?? String(err)}`);
    cleanupNow();
    process.exit(1);
  },
);
