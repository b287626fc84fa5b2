/**
 * Ingest benchmark: `npm run bench` (builds, then runs this file). In one run:
 *   1. Stele over HTTP (`stele serve` child, fresh data dir): durable appends/s, 4 clients posting
 *      1000-event batches, with client ids (headline) and with server-assigned ids;
 *   2. single-event latency, open loop at 1,000 events/s;
 *   3. the raw limit: SHA-256 + write + fdatasync per 1000-leaf batch, in process;
 *   4. hypercore appending the same leaves in the same batches, in process;
 *   5. sustained load (issue 12 target 3), sustain.ts, on one server: the closed-loop throughput load
 *      for 30 s (the peak, where the index falls behind), then paced steps of 20 s ×1.2 to find the
 *      highest rate at which the index keeps up, then BENCH_SUSTAIN_SECONDS at that rate; RSS and
 *      index lag sampled every second, and read-your-writes probes (target 4);
 *   6. a CPU profile of the server under load when Stele misses its targets;
 *   7. the cost of alert rules (issue 15): run 1's load on a server with rules (alerts.ts), in each repetition.
 * Prints every target of issue 12 with met / not met (targets.ts; targets 2 and 6 are read from the
 * `bench:index` and `bench:verify` sections their own scripts write) and writes BENCHMARKS.md at the
 * repository root, keeping the other benches' sections.
 *
 * Knobs (environment): BENCH_REPEATS (3), BENCH_HTTP_SECONDS (10), BENCH_SUSTAIN_SECONDS (60; 15 with
 * BENCH_QUICK; 0 skips it), BENCH_QUICK=1 (short smoke run), BENCH_PROFILE=always|never|auto (auto).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { alertsThroughput } from './alerts.js';
import { cleanupNow, installCleanupHandlers, removeDir, tempDir } from './cleanup.js';
import { makeBody, makeLeafBatches, rng } from './events.js';
import { openLoopLatency, type ThroughputResult, throughput } from './http-load.js';
import { hypercoreAppend, hypercoreVersion } from './hypercore.js';
import { hypercoreSyncCalls } from './hypercore-fsync.js';
import { summariseProfiles, type ThreadKind, threadKind } from './profile.js';
import { rawAppend, withNoise } from './raw.js';
import { type Config, loadNow, machine, type Profile, type Results, report, TARGET_EPS, TARGET_VS_HYPERCORE } from './report.js';
import { startBare, startStele } from './server.js';
import { fmtInt, fmtMs, median, sleep } from './stats.js';
import { findHeldRate, sustain } from './sustain.js';
import { targetLines, targetsText } from './targets.js';

const quick = process.env.BENCH_QUICK === '1';
const REPEATS = Number(process.env.BENCH_REPEATS ?? (quick ? 1 : 3));
const HTTP_S = Number(process.env.BENCH_HTTP_SECONDS ?? (quick ? 3 : 10));
const SUSTAIN_S = Number(process.env.BENCH_SUSTAIN_SECONDS ?? (quick ? 15 : 60));
/** The closed-loop peak run before the held-rate search, and each paced step of that search. */
const PEAK_S = quick ? 10 : 30;
const STEP_S = quick ? 8 : 20;
const CFG: Config = {
  clients: 4,
  batch: 1000,
  httpWarmupMs: quick ? 1000 : 2000,
  httpMs: HTTP_S * 1000,
  noIdMs: Math.max(2000, Math.round((HTTP_S * 1000) / 2)),
  localWarmupMs: 500,
  localMs: quick ? 1500 : 3000,
  latencyRate: 1000,
  latencyWarmupMs: 1000,
  latencyMs: quick ? 3000 : 10_000,
  profileWarmupMs: 1000,
  profileMs: quick ? 3000 : 6000,
  bareMs: quick ? 2000 : 4000,
};
const PROFILE = process.env.BENCH_PROFILE ?? 'auto';
const OUT = fileURLToPath(new URL('../../../BENCHMARKS.md', import.meta.url));

const log = (s: string) => process.stderr.write(`${s}\n`);

/** Sections other benchmarks keep in BENCHMARKS.md (between `<!-- bench:NAME -->` markers): this run rewrites only its own text. */
function otherSections(): string {
  if (!existsSync(OUT)) return '';
  const blocks = readFileSync(OUT, 'utf8').match(/<!-- bench:([a-z-]+) -->[\s\S]*?<!-- \/bench:\1 -->/g) ?? [];
  return blocks.map((b) => `\n${b}\n`).join('');
}

async function steleThroughput(withIds: boolean, ms: number): Promise<ThroughputResult> {
  const srv = await startStele();
  try {
    return await throughput(srv, { clients: CFG.clients, batch: CFG.batch, withIds, warmupMs: CFG.httpWarmupMs, durationMs: ms });
  } finally {
    await srv.stop();
  }
}

async function profileStele(): Promise<Profile> {
  const profDir = tempDir('cpuprof');
  try {
    const srv = await startStele({ cpuProfDir: profDir });
    let r: ThroughputResult;
    try {
      r = await throughput(srv, {
        clients: CFG.clients,
        batch: CFG.batch,
        withIds: true,
        warmupMs: CFG.profileWarmupMs,
        durationMs: CFG.profileMs,
      });
    } finally {
      await srv.stop(); // SIGTERM: serve.ts closes and exits, and --cpu-prof writes the profiles
    }
    // One file per thread: CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile; thread 0 is main.
    // The others are told apart by what they ran: ingest workers, the integrator or the index thread.
    const files = readdirSync(profDir)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => join(profDir, f));
    const tid = (f: string) => Number(f.split('.').at(-3));
    const main = files.filter((f) => tid(f) === 0);
    if (main.length === 0) throw new Error('the server wrote no main-thread .cpuprofile (did it exit cleanly on SIGTERM?)');
    const kinds = files.filter((f) => tid(f) !== 0).map((f) => ({ f, kind: threadKind(f) }));
    const of = (k: ThreadKind, topN: number) => {
      const fs = kinds.filter((x) => x.kind === k).map((x) => x.f);
      return fs.length ? summariseProfiles(fs, topN, r.window) : null;
    };
    return {
      main: summariseProfiles(main, 20, r.window),
      ingest: of('ingest', 15),
      integrator: of('integrator', 15),
      index: of('index', 15),
      other: of('other', 10),
      eps: r.eventsPerSec,
      serverCores: r.serverCores,
      clientCores: r.clientCores,
      otherCores: r.otherCores,
    };
  } finally {
    removeDir(profDir);
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  installCleanupHandlers();
  const m = machine();
  log(`stele ingest bench: ${m.nproc} CPUs (${m.model}), ${m.memGiB} GiB, node ${m.node}, ${m.commit}; load ${m.load}`);
  log(`repeats ${REPEATS}, HTTP ${CFG.httpWarmupMs / 1000}+${CFG.httpMs / 1000} s, ${quick ? 'QUICK' : 'full'} mode`);

  const leaves = makeLeafBatches(0x1eaf, 8, CFG.batch);
  const sample = makeBody(rng(0x5e1e + 1), CFG.batch, true);
  const r: Results = {
    withId: [],
    noId: [],
    alerts: [],
    raw: [],
    hyper: [],
    latency: null,
    sustain: null,
    sustainPeak: null,
    heldSteps: [],
    targets: [],
    profile: null,
    hypercoreVersion: hypercoreVersion(),
    hypercoreSync: null,
    bare: null,
    endLoad: '',
    elapsedS: 0,
    eventBytes: Math.round(sample.buf.length / CFG.batch),
    leafBytes: Math.round(leaves.flat().reduce((a, b) => a + b.length, 0) / (leaves.length * CFG.batch)),
  };
  log(`event ~${r.eventBytes} B JSON, leaf ~${r.leafBytes} B`);

  for (let i = 0; i < REPEATS; i++) {
    const a = await steleThroughput(true, CFG.httpMs);
    r.withId.push(a);
    log(
      `[${i + 1}/${REPEATS}] stele HTTP (client ids): ${fmtInt(a.eventsPerSec)} ev/s, server ${a.serverCores.toFixed(2)} cores, ` +
        `other processes ${a.otherCores.toFixed(2)} cores, failures ${a.failures}${a.firstFailure ? ` (${a.firstFailure})` : ''}`,
    );
    const b = await steleThroughput(false, CFG.noIdMs);
    r.noId.push(b);
    log(`[${i + 1}/${REPEATS}] stele HTTP (server ids): ${fmtInt(b.eventsPerSec)} ev/s, failures ${b.failures}`);
    const al = await alertsThroughput({
      clients: CFG.clients,
      batch: CFG.batch,
      withIds: true,
      warmupMs: CFG.httpWarmupMs,
      durationMs: CFG.httpMs,
    });
    r.alerts.push(al);
    log(
      `[${i + 1}/${REPEATS}] stele HTTP with alert rules: ${fmtInt(al.throughput.eventsPerSec)} ev/s, failures ${al.throughput.failures}; ` +
        `rules ${(al.matchUs + al.countUs).toFixed(2)} µs CPU an entry against the server's ${al.serverUsPerEvent.toFixed(1)} an event; ` +
        `the server counted ${al.evaluationS.toFixed(2)} s of its ${al.serverCpuS.toFixed(1)} CPU s`,
    );
    const c = await withNoise(() => rawAppend(leaves, CFG.localWarmupMs, CFG.localMs));
    r.raw.push(c);
    log(`[${i + 1}/${REPEATS}] raw SHA-256+write+fdatasync: ${fmtInt(c.eventsPerSec)} ev/s (batch ${fmtMs(c.batchMs)} ms)`);
    const d = await withNoise(() => hypercoreAppend(leaves, CFG.localWarmupMs, CFG.localMs));
    r.hyper.push(d);
    log(`[${i + 1}/${REPEATS}] hypercore: ${fmtInt(d.eventsPerSec)} ev/s (batch ${fmtMs(d.batchMs)} ms)`);
    await sleep(200);
  }

  {
    const bare = await startBare();
    try {
      const t = await throughput(bare, {
        clients: CFG.clients,
        batch: CFG.batch,
        withIds: true,
        warmupMs: 1000,
        durationMs: CFG.bareMs,
      });
      const l = await openLoopLatency(bare, { rate: CFG.latencyRate, warmupMs: CFG.latencyWarmupMs, durationMs: CFG.bareMs });
      r.bare = { throughput: t, latency: l };
      log(
        `bare node:http reference: ${fmtInt(t.eventsPerSec)} ev/s (${t.serverCores.toFixed(2)} cores); @${l.rate}/s p50 ${fmtMs(l.p50)} p99 ${fmtMs(l.p99)} ms, ${l.serverCores.toFixed(2)} cores`,
      );
    } finally {
      await bare.stop();
    }
  }

  r.hypercoreSync = hypercoreSyncCalls();
  log(
    r.hypercoreSync
      ? `hypercore under strace: ${r.hypercoreSync.total} fsync-family calls during ${r.hypercoreSync.appends} appends of ${r.hypercoreSync.batch}`
      : 'hypercore fsync check skipped (no usable strace)',
  );

  {
    const srv = await startStele();
    try {
      r.latency = await openLoopLatency(srv, { rate: CFG.latencyRate, warmupMs: CFG.latencyWarmupMs, durationMs: CFG.latencyMs });
    } finally {
      await srv.stop();
    }
    const l = r.latency;
    log(
      `latency @${l.rate}/s: p50 ${fmtMs(l.p50)} p90 ${fmtMs(l.p90)} p99 ${fmtMs(l.p99)} p99.9 ${fmtMs(l.p999)} max ${fmtMs(l.max)} ms, failures ${l.failures}`,
    );
  }

  if (SUSTAIN_S > 0) {
    const srv = await startStele();
    try {
      const base = { clients: CFG.clients, batch: CFG.batch, warmupMs: CFG.httpWarmupMs, catchUpLimitS: 300, log };
      log(`peak: closed-loop load for ${PEAK_S} s (RSS and index lag every second, read-your-writes probes)...`);
      r.sustainPeak = await sustain(srv, { ...base, seconds: PEAK_S });
      const p = r.sustainPeak;
      log(
        `peak: ${fmtInt(p.ingestRate)} ev/s, indexed ${fmtInt(p.indexRate)}/s, index ${p.endLagS.toFixed(2)} s behind at the end`,
      );
      // The ladder starts at what the index managed under the peak load (it gets more CPU at less).
      const start = Math.max(2000, Math.round(p.indexRate / 500) * 500);
      log(`held rate: paced steps of ${STEP_S} s from ${fmtInt(start)} ev/s, ×1.2 while the index keeps up...`);
      r.heldSteps = await findHeldRate(srv, { ...base, start, stepS: STEP_S, maxSteps: 8 });
      const held = r.heldSteps.filter((x) => x.held).at(-1);
      const rate = held?.rate ?? start;
      log(`sustained: ${SUSTAIN_S} s at ${fmtInt(rate)} ev/s (RSS and index lag every second, read-your-writes probes)...`);
      r.sustain = await sustain(srv, { ...base, seconds: SUSTAIN_S, rate });
    } finally {
      await srv.stop();
    }
    const s = r.sustain;
    log(
      `sustained: ${fmtInt(s.ingestRate)} ev/s, index lag at end ${s.endLagS.toFixed(2)} s (max ${s.maxLagS.toFixed(2)} s), ` +
        `RSS ${s.rssStartMiB.toFixed(0)}/${s.rssMidMiB.toFixed(0)}/${s.rssEndMiB.toFixed(0)} MiB, slope ${s.rssSlopeMiBPerMin.toFixed(1)} MiB/min`,
    );
  }

  const stele = median(r.withId.map((x) => x.eventsPerSec));
  const hyper = median(r.hyper.map((x) => x.eventsPerSec));
  const previous = existsSync(OUT) ? readFileSync(OUT, 'utf8') : '';
  r.targets = targetLines({
    stele,
    raw: median(r.raw.map((x) => x.eventsPerSec)),
    hyper,
    hypercoreVersion: r.hypercoreVersion,
    sustain: r.sustain,
    latency: r.latency,
    previous,
  });
  const short = stele < TARGET_EPS || stele < TARGET_VS_HYPERCORE * hyper;
  if (PROFILE === 'always' || (PROFILE === 'auto' && short)) {
    log(`profiling the server (${short ? 'targets not met' : 'BENCH_PROFILE=always'})...`);
    r.profile = await profileStele();
  }

  r.endLoad = loadNow();
  r.elapsedS = (performance.now() - started) / 1000;
  const md = report(m, CFG, r);
  writeFileSync(OUT, md + otherSections());
  process.stdout.write(md);
  process.stdout.write(`\nIssue 12 targets:\n${targetsText(r.targets)}\n`);
  log(`\nwrote ${OUT}`);
}

main().then(
  () => {
    cleanupNow();
    process.exit(0);
  },
  (err: unknown) => {
    log(`bench failed: ${(err as Error).stack ?? String(err)}`);
    cleanupNow();
    process.exit(1);
  },
);
