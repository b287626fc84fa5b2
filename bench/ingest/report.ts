/**
 * BENCHMARKS.md from one run's results: machine, workload, tables, an interpretation computed from
 * the numbers, and (when profiled) where the server's CPU time goes with suggestions.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { type AlertRun, BENCH_ALERT_RULES } from './alerts.js';
import { where } from './code-refs.js';
import type { LatencyResult, ThroughputResult } from './http-load.js';
import type { SyncCheck } from './hypercore-fsync.js';
import type { FnTime, ProfileSummary } from './profile.js';
import type { AppendRun } from './raw.js';
import { fmtInt, fmtMs, fmtRatio, median } from './stats.js';

import { type HeldStep, STEP_LAG_S, type SustainResult } from './sustain.js';
import { TARGET_EPS, TARGET_VS_HYPERCORE, TARGET_VS_RAW, type TargetLine, targetsMarkdown } from './targets.js';

export { TARGET_EPS, TARGET_VS_HYPERCORE };

export interface Config {
  clients: number;
  batch: number;
  httpWarmupMs: number;
  httpMs: number;
  noIdMs: number;
  localWarmupMs: number;
  localMs: number;
  latencyRate: number;
  latencyWarmupMs: number;
  latencyMs: number;
  profileWarmupMs: number;
  profileMs: number;
  bareMs: number;
}

/** The profiled run: one summary per kind of server thread (threads of a kind summed). */
export interface Profile {
  /** HTTP, sequencer, WAL, id index, hand-offs to the other threads. */
  main: ProfileSummary;
  /** Ingest worker threads: parse, validate, canonicalize. */
  ingest: ProfileSummary | null;
  /** The integrator thread: leaf/node hashing, tiles, bundles, tile files, checkpoints, syncs. */
  integrator: ProfileSummary | null;
  /** The index thread: index notes or leaves into the query store (SQLite), searches. */
  index?: ProfileSummary | null;
  /** Worker threads that ran none of these (none expected). */
  other: ProfileSummary | null;
  eps: number;
  serverCores: number;
  clientCores: number;
  otherCores: number;
}

export interface Results {
  withId: ThroughputResult[];
  noId: ThroughputResult[];
  /** Issue 15: the headline load on a server with alert rules, one per repetition. */
  alerts: AlertRun[];
  raw: AppendRun[];
  hyper: AppendRun[];
  latency: LatencyResult | null;
  /** Issue 12 targets 3 and 4: sustained load at the held rate with RSS and index lag, read your writes (null: not run). */
  sustain: SustainResult | null;
  /** The closed-loop peak run before the held-rate search (null: not run). */
  sustainPeak: SustainResult | null;
  /** The paced steps that found the held rate. */
  heldSteps: HeldStep[];
  /** Every target of issue 12, met or not (targets.ts). */
  targets: TargetLine[];
  profile: Profile | null;
  eventBytes: number;
  leafBytes: number;
  hypercoreVersion: string;
  /** fsync-family calls hypercore made during appends, counted with strace (null: not measured). */
  hypercoreSync: SyncCheck | null;
  /** The bare node:http reference server under the same two loads (one run each). */
  bare: { throughput: ThroughputResult; latency: LatencyResult } | null;
  /** Wall time of the whole benchmark run, seconds. */
  elapsedS: number;
  /** Load average and CPU/IO pressure when the run ended. */
  endLoad: string;
}

function sh(cmd: string, args: string[], cwd?: string): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], cwd }).trim();
  } catch {
    return 'n/a';
  }
}

/** "cpu some 12.3 %, io some 4.5 %" (10 s averages of Linux PSI), or '' without PSI. */
export function pressure(): string {
  const one = (r: string) => {
    try {
      return /^some avg10=([\d.]+)/m.exec(readFileSync(`/proc/pressure/${r}`, 'utf8'))?.[1] ?? null;
    } catch {
      return null;
    }
  };
  const cpu = one('cpu');
  const io = one('io');
  return cpu === null ? '' : `CPU pressure (some, avg10) ${cpu} %, IO pressure ${io ?? 'n/a'} %`;
}

export const loadNow = () =>
  `${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}${pressure() ? `; ${pressure()}` : ''}`;

export function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  const fsLine = sh('df', ['-T', os.tmpdir()]).split('\n')[1]?.split(/\s+/);
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const dirty = sh('git', ['status', '--porcelain', '--', 'src'], root);
  return {
    nproc: sh('nproc', []),
    model,
    memGiB: (os.totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    fs: fsLine ? `${fsLine[1]} on ${fsLine[0]} (${os.tmpdir()})` : 'n/a',
    date: new Date().toISOString(),
    load: loadNow(),
    commit: `${sh('git', ['rev-parse', '--short', 'HEAD'], root)}${dirty && dirty !== 'n/a' ? ` + ${dirty.split('\n').length} uncommitted change(s) under src/` : ''}`,
  };
}
export type Machine = ReturnType<typeof machine>;

const pct = (part: number, whole: number) => `${((100 * part) / whole).toFixed(1)}`;
const cores = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');

function row(label: string, xs: number[], fmt: (n: number) => string = fmtInt): string {
  return `| ${label} | ${xs.map(fmt).join(' | ')} | **${fmt(median(xs))}** |`;
}

export function report(m: Machine, c: Config, r: Results): string {
  const stele = median(r.withId.map((x) => x.eventsPerSec));
  const steleNoId = median(r.noId.map((x) => x.eventsPerSec));
  const raw = median(r.raw.map((x) => x.eventsPerSec));
  const hyper = median(r.hyper.map((x) => x.eventsPerSec));
  const vsHyper = stele / hyper;
  const vsRaw = stele / raw;
  const okEps = stele >= TARGET_EPS;
  const okHyper = vsHyper >= TARGET_VS_HYPERCORE;
  const hv = r.hypercoreVersion;
  const n = r.withId.length;
  const runs = Array.from({ length: n }, (_, i) => `run ${i + 1}`);
  const nproc = Number(m.nproc) || os.availableParallelism();
  const o: string[] = [];
  const p = (...lines: string[]) => o.push(...lines);

  p('# Benchmarks', '');
  p(
    'Generated by `npm run bench` (`bench/ingest/`): every number below comes from one run of that command, ' +
      'on the machine described here. Rerun it rather than editing this file.',
    '',
  );
  p('## Machine', '');
  p(`- \`nproc\`: ${m.nproc}; CPU: ${m.model}; memory: ${m.memGiB} GiB`);
  p(`- ${m.kernel}; temp files on ${m.fs}`);
  p(`- Node ${m.node}; hypercore ${hv}; Stele at ${m.commit}`);
  p(`- Date: ${m.date}`);
  p(`- Load at start: ${m.load}`);
  p(`- Load at end: ${r.endLoad}`);
  p('- A shared, noisy 2-core VM: other work on it shows up in the "other processes" columns below.');
  p(
    `- Command: \`npm run bench\` (= \`npm run build --silent && node dist/bench/ingest/run.js\`); this run took ${Math.round(r.elapsedS)} s`,
    '',
  );

  p('## Workload', '');
  p(
    `Realistic audit events (git commits, Kubernetes configmap updates, Emacs package installs, CloudTrail role ` +
      `assumptions, CI deploys by an AI agent on behalf of a person): \`id\` (a unique client UUID), \`time\`, \`actor\`, ` +
      `\`action\`, \`source\`, \`resource\`, \`outcome\` and a small \`data\` object, **${r.eventBytes} bytes** of JSON on ` +
      `average. The leaf Stele stores for one (canonical JSON of the record: event, server time, ingest principal) is ` +
      `**${r.leafBytes} bytes**. Request bodies are built before timing; before each send a client only rewrites the last ` +
      '12 hex digits of each id, so no id ever repeats (a repeat would be answered from the id index without appending).',
    '',
  );
  p(
    `- **Stele over HTTP**: \`stele serve --listen 127.0.0.1:0 --log-level warn\` as a child process on a fresh temp ` +
      `data dir (\`stele init --dir D --json\`; token from \`D/admin.token\`), a fresh server for every run. ${c.clients} ` +
      `closed-loop clients in the benchmark process (node:http, keep-alive Agent) each POST a JSON array of ${c.batch} ` +
      'events to `/v1/events`. Counted: events acknowledged with HTTP 200 (sent after the write-ahead log fdatasync) ' +
      `whose response arrived inside the window, as listed in the response's \`entries\`. ${c.httpWarmupMs / 1000} s ` +
      `warm-up, then ${c.httpMs / 1000} s measured (${c.noIdMs / 1000} s for the variant without ids, where the server ` +
      'assigns UUIDv7s).',
    `- **Raw limit**: in the benchmark process, the same leaves in the same batches of ${c.batch}: SHA-256 of each leaf ` +
      '(the RFC 6962 leaf hash), one write of the length-prefixed batch to one file, one `fdatasync`; sequential, one ' +
      `thread, no parsing or validation. ${c.localWarmupMs / 1000} s warm-up, ${c.localMs / 1000} s measured.`,
    `- **hypercore ${hv}**: \`new Hypercore(tmpdir)\`, then \`await core.append(batch)\` in a loop with the same ` +
      `${c.batch}-leaf batches as the raw run, in process, same timing.`,
    `- **Reference, bare node:http** (not a competitor): a ~30-line \`node:http\` server (\`bench/ingest/bare-server.ts\`) ` +
      'that JSON.parses each body and answers the same `{"entries":[…]}` shape, on one thread, with no validation, ' +
      `hashing, disk or fsync, under the same two loads (one ${c.bareMs / 1000} s run each). It shows what HTTP + ` +
      'JSON alone cost on this machine.',
    `- The ${n} repetitions interleave (Stele, Stele without ids, raw, hypercore, then again), so a noisy phase of the ` +
      'machine hits all four; medians are reported.',
    '',
  );

  p('## Targets (issue 12)', '');
  p(
    'Every target of issue 12 with what this run measured (targets 2 and 6 are measured by `npm run bench:index` and ' +
      '`npm run bench:verify`; their rows are copied from those sections below as they stood when this run started).',
    '',
  );
  p(...targetsMarkdown(r.targets));
  if (r.sustain) p(...sustainSection(r.sustain, r.sustainPeak, r.heldSteps));

  if (r.alerts.length) p(...alertsSection(r.alerts, r.withId));

  p('## Throughput (events/s, higher is better)', '');
  p(`| | ${runs.join(' | ')} | median |`, `|---|${runs.map(() => '---:').join('|')}|---:|`);
  p(
    row(
      '**Stele over HTTP, durable, client ids** (headline)',
      r.withId.map((x) => x.eventsPerSec),
    ),
  );
  p(
    row(
      'Stele over HTTP, durable, server-assigned ids',
      r.noId.map((x) => x.eventsPerSec),
    ),
  );
  p(
    row(
      'Raw limit: SHA-256 + write + fdatasync per batch',
      r.raw.map((x) => x.eventsPerSec),
    ),
  );
  p(
    row(
      `hypercore ${hv}, \`append(batch)\` (not fsync'd, see below)`,
      r.hyper.map((x) => x.eventsPerSec),
    ),
    '',
  );

  p('| ratio / target | value | target | met? |', '|---|---:|---:|:---:|');
  p(`| Stele over HTTP, events/s | ${fmtInt(stele)} | ≥ ${fmtInt(TARGET_EPS)} | ${okEps ? 'yes' : '**no**'} |`);
  p(`| Stele / hypercore | ${fmtRatio(vsHyper)} | ≥ ${TARGET_VS_HYPERCORE}× | ${okHyper ? 'yes' : '**no**'} |`);
  p(`| Stele / raw limit | ${fmtRatio(vsRaw)} | ≥ ${TARGET_VS_RAW}× | ${vsRaw >= TARGET_VS_RAW ? 'yes' : '**no**'} |`);
  p(`| Stele server-assigned ids / client ids | ${fmtRatio(steleNoId / stele)} | | |`, '');
  const bt = r.bare?.throughput;
  if (bt) {
    p(
      `Reference: the bare node:http server took ${fmtInt(bt.eventsPerSec)} events/s from the same clients (one run, ` +
        `${cores(bt.serverCores)} cores, other processes ${cores(bt.otherCores)}): Stele runs at ` +
        `${fmtRatio(stele / bt.eventsPerSec)} of plain HTTP + JSON.parse on this machine.`,
      '',
    );
  }

  p('Per run (CPU in cores: 1.00 = one core busy for the whole window):', '');
  p(
    '| run | Stele events/s | requests | failures | batch request p50 / p99 ms | Stele server CPU | load generator CPU | other processes CPU |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  );
  r.withId.forEach((x, i) => {
    p(
      `| ${i + 1} | ${fmtInt(x.eventsPerSec)} | ${x.requests} | ${x.failures} | ${fmtMs(x.batchP50Ms)} / ${fmtMs(x.batchP99Ms)} | ${cores(x.serverCores)} | ${cores(x.clientCores)} | ${cores(x.otherCores)} |`,
    );
  });
  p('');
  p(
    '| run | raw events/s | raw batch ms (median) | other CPU | hypercore events/s | hypercore batch ms (median) | other CPU |',
    '|---|---:|---:|---:|---:|---:|---:|',
  );
  r.raw.forEach((x, i) => {
    const h = r.hyper[i] as AppendRun;
    p(
      `| ${i + 1} | ${fmtInt(x.eventsPerSec)} | ${fmtMs(x.batchMs)} | ${cores(x.otherCores)} | ${fmtInt(h.eventsPerSec)} | ${fmtMs(h.batchMs)} | ${cores(h.otherCores)} |`,
    );
  });
  const failed = [...r.withId, ...r.noId].find((x) => x.firstFailure);
  if (failed) p('', `First failure seen: \`${failed.firstFailure}\``);
  p('');

  const l = r.latency;
  if (l) {
    p(`## Single-event latency at a steady ${fmtInt(l.rate)} events/s (ms, lower is better)`, '');
    p(
      `Open loop: one single-event POST (with a client id) every ${fmtMs(1000 / l.rate)} ms on a fixed schedule, whatever ` +
        `the responses do, for ${c.latencyMs / 1000} s after a ${c.latencyWarmupMs / 1000} s warm-up, on a fresh server. ` +
        'Latency runs from the *scheduled* send time to the end of the 200 response, so a stalled server or a late ' +
        'generator counts against the result (no coordinated omission).',
      '',
    );
    p('| server | p50 | p90 | p99 | p99.9 | max | requests | failures | server CPU | load generator CPU | other processes CPU |');
    p('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    const lrow = (name: string, x: LatencyResult) =>
      p(
        `| ${name} | ${fmtMs(x.p50)} | ${fmtMs(x.p90)} | ${fmtMs(x.p99)} | ${fmtMs(x.p999)} | ${fmtMs(x.max)} | ${x.sent} | ${x.failures} | ${cores(x.serverCores)} | ${cores(x.clientCores)} | ${cores(x.otherCores)} |`,
      );
    lrow('**Stele** (durable)', l);
    if (r.bare) lrow('bare node:http (reference, no disk)', r.bare.latency);
    p('');
    p(
      `The generator sent its requests late by up to ${fmtMs(l.sendLagP99)} ms (p99 of send time − scheduled time)` +
        (r.bare ? `; ${fmtMs(r.bare.latency.sendLagP99)} ms in the reference run.` : '.'),
    );
    if (l.firstFailure) p(`First failure: \`${l.firstFailure}\``);
    p('');
  }

  // ---------------------------------------------------------------------------------------------
  p('## Interpretation', '');
  const srvCores = median(r.withId.map((x) => x.serverCores));
  const cliCores = median(r.withId.map((x) => x.clientCores));
  const othCores = median(r.withId.map((x) => x.otherCores));
  const maxOther = Math.max(
    ...[...r.withId, ...r.noId, ...r.raw, ...r.hyper].map((x) => x.otherCores).filter(Number.isFinite),
    0,
  );
  const usPerEvent = (srvCores / stele) * 1e6;
  const budgetUs = (nproc * 1e6) / TARGET_EPS;
  p(
    `- **Result.** Stele acknowledged a median **${fmtInt(stele)} durable events/s** over HTTP: ${fmtRatio(vsRaw)} the raw ` +
      `limit of this machine (${fmtInt(raw)}/s) and ${fmtRatio(vsHyper)} hypercore (${fmtInt(hyper)}/s). ` +
      `Targets: ≥ ${fmtInt(TARGET_EPS)}/s **${okEps ? 'met' : 'not met'}**; ≥ ${TARGET_VS_HYPERCORE}× hypercore ` +
      `**${okHyper ? 'met' : 'not met'}**.`,
  );
  const P = r.profile;
  const mv = machineVerdict(srvCores, cliCores, othCores, nproc);
  const batchMs = median(r.raw.map((x) => x.batchMs));
  p(
    `- **What limits it.** During the Stele runs the server used a median ${cores(srvCores)} cores, the load generator ` +
      `${cores(cliCores)} and other processes ${cores(othCores)}, about **${fmtInt(usPerEvent)} µs of server CPU per ` +
      `acknowledged event**. ${mv.text} ` +
      (P
        ? `${profileVerdict(P, machineVerdict(P.serverCores, P.clientCores, P.otherCores, nproc).full, nproc)} `
        : mv.full
          ? ''
          : 'Without a profile of this run it is not known whether one of its threads was saturated; otherwise the server ' +
            'waits part of the time (on the WAL fdatasync of each group commit, on hand-offs between its threads, or on its clients). ') +
      (raw >= 1.5 * stele
        ? `The disk is not the limit: the raw loop makes a ${c.batch}-leaf batch durable in ${fmtMs(batchMs)} ms (${fmtInt(raw)}/s). `
        : `The raw loop (a ${c.batch}-leaf batch durable in ${fmtMs(batchMs)} ms, ${fmtInt(raw)}/s) is within 1.5× of Stele's rate, so the disk may be a limit too. `) +
      `${TARGET_EPS.toLocaleString('en-US')} events/s on ${nproc} cores leaves at most ${fmtInt(budgetUs)} µs of CPU per ` +
      `event for everything, load generator included; the server alone spends ${fmtRatio(usPerEvent / budgetUs)} that today.` +
      (bt
        ? ` For scale, the bare node:http server spends ${fmtInt((bt.serverCores / bt.eventsPerSec) * 1e6)} µs per event ` +
          '(HTTP + JSON.parse + response) on this machine.'
        : '') +
      (P ? ' The profile below shows where the time goes, thread by thread.' : ''),
  );
  if (maxOther >= 0.2) {
    p(
      `- **Noise.** Other processes used up to ${cores(maxOther)} cores during some runs (the "other processes" ` +
        'columns); runs where that is high are slower for reasons outside Stele, which is why the medians matter.',
    );
  }
  p(
    "- **Not like for like.** The differences favour the peers: Stele's number includes HTTP, JSON parsing, schema " +
      "validation, canonical JSON, the id index (a lookup per client id), the write-ahead log's fdatasync per group " +
      'commit, and the integrator (hashing, tiles, entry bundles, signed checkpoints), with the load generator on the same ' +
      '2 cores; the raw and hypercore loops run in process with no network and no parsing.',
  );
  const hs = r.hypercoreSync;
  p(
    `- **Durability is not the same either.** A Stele 200 means the entries were fdatasync'd. hypercore ${hv}'s ` +
      '`append()` resolves once the batch is written to RocksDB with default `WriteOptions` (`sync = false`): ' +
      'hypercore-storage 3 → rocksdb-native → librocksdb `rocksdb_write`, which does `WriteOptions options; ' +
      'db->Write(options, &batch)`, so the RocksDB WAL reaches the page cache, not the disk. ' +
      (hs
        ? `Measured in this run: ${hs.appends} appends of ${hs.batch} under \`strace -f\` made **${hs.total}** ` +
          `fsync/fdatasync/sync_file_range/syncfs calls${
            hs.total
              ? ` (${Object.entries(hs.calls)
                  .map(([k, v]) => `${k} ${v}`)
                  .join(', ')})`
              : ''
          }. `
        : '(strace was not available to confirm it in this run; on the development VM it showed no fsync or fdatasync between appends.) ') +
      "So hypercore's acknowledged appends survive a crash of the process but not a power loss or kernel crash; with " +
      'an fsync per append it would be bounded by the raw limit above, as Stele is.',
  );
  const idRatio = steleNoId / stele;
  p(
    `- **Client ids.** Server-assigned ids ran at ${fmtRatio(idRatio)} the client-id rate (${fmtInt(steleNoId)}/s)` +
      (Math.abs(idRatio - 1) < 0.2
        ? '. Both paths do the same id work (every id, client-sent or a server-assigned UUIDv7, is looked up in the id ' +
          'index and recorded), so a difference of this size is noise on this machine.'
        : ", a larger gap than this machine's run-to-run noise; compare the profiles of the two variants."),
  );
  if (l) {
    const usPerReq = (l.serverCores / l.rate) * 1e6;
    const bl = r.bare?.latency;
    const bareUs = bl ? (bl.serverCores / bl.rate) * 1e6 : Number.NaN;
    p(
      `- **Latency.** At a steady ${fmtInt(l.rate)} single-event requests/s the median acknowledgement took ` +
        `${fmtMs(l.p50)} ms, p99 ${fmtMs(l.p99)} ms and p99.9 ${fmtMs(l.p999)} ms. Each answer waits for a WAL ` +
        'fdatasync, shared by the requests that arrive meanwhile (group commit). The server used ' +
        `${cores(l.serverCores)} cores, about ${fmtInt(usPerReq)} µs of CPU per single-event request` +
        (bl ? `, ${fmtRatio(usPerReq / bareUs)} the bare node:http server (${fmtInt(bareUs)} µs; p50 ${fmtMs(bl.p50)} ms)` : '') +
        '.' +
        (l.p99 > 50
          ? ' The per-request work (HTTP, the sequencer and id index, the WAL write, and the preparation of the event or ' +
            'its hand-off to an ingest worker) runs on the main thread; whenever that thread stalls (GC, a synchronous fs ' +
            "call, see the profile) or loses its core (to the ingest workers, the integrator thread's hashing and tile " +
            `writes, or other processes: ${cores(l.otherCores)} cores here), requests arriving 1 ms apart queue behind it ` +
            "and take long to drain; and the integrator's checkpoint fsyncs (one per checkpoint, every 100 ms by default " +
            "while data arrives) share the disk with the WAL's fdatasyncs. That is the tail."
          : '') +
        (l.sendLagP99 > 20
          ? ` The generator itself sent up to ${fmtMs(l.sendLagP99)} ms late (p99), a sign of CPU contention; that lateness is included in the latencies.`
          : ''),
    );
  }
  p('- Numbers on this shared VM move by 10–30 % between runs; compare medians, and look at the "other processes" columns.', '');

  if (r.profile) p(...profileSection(c, r.profile, nproc));
  return `${o.join('\n')}\n`;
}

// -----------------------------------------------------------------------------------------------
// Profile

/** A thread is saturated when it is busy this share of the window or more. */
const SATURATED = 0.9;
/** The machine's CPU is the limit when everything together uses this share of its cores or more. */
const MACHINE_FULL = 0.9;

type Kind = 'main' | 'ingest' | 'integrator' | 'index' | 'other';

interface ThreadLoad {
  kind: Kind;
  /** For prose: "main thread", "ingest worker", "3 ingest workers", "integrator thread"... */
  name: string;
  /** For tables and headings: "ingest workers (3)". */
  label: string;
  /** Several threads of the kind. */
  plural: boolean;
  s: ProfileSummary;
  /** Busy share of the window, per thread (averaged over threads of the kind). */
  busy: number;
  /** Busy time in cores (summed over threads of the kind). */
  cores: number;
}

/** The profiled threads, main first. */
/** The samples of a sustained run (about 12 rows), RSS and the index lag in entries and seconds. */
/** Issue 15's cost target: alert evaluation under 5 % of ingest at this benchmark's rate. */
export const TARGET_ALERT_SHARE = 0.05;

function alertsSection(runs: readonly AlertRun[], plain: readonly ThroughputResult[]): string[] {
  const wallShare = (a: AlertRun) => a.evaluationS / a.serverCpuS;
  const cpuShare = (a: AlertRun) => (a.matchUs + a.countUs) / a.serverUsPerEvent;
  const med = median(runs.map(cpuShare));
  const ratio = median(runs.map((a) => a.throughput.eventsPerSec)) / median(plain.map((x) => x.eventsPerSec));
  const first = runs[0] as AlertRun;
  return [
    '## Alert evaluation (issue 15)',
    '',
    `The headline load against a server whose policy has ${BENCH_ALERT_RULES} alert rules (\`bench/ingest/alerts.ts\`: ` +
      "the issue's examples, and rules that match most of this load, grouped per actor, per resource and per host, one " +
      `on a full-text word, so every entry is tested against every rule; ${first.hitsPerEntry.toFixed(2)} matches an entry). ` +
      "Three measures of the cost: (a) the CPU time one entry's rules take, tested as an ingest worker tests them and " +
      'counted as the server counts them, on an idle core in the benchmark process (`process.cpuUsage`, 20,000 entries ' +
      "of the same mix), against the server's CPU per acknowledged event in the run; (b) the time the server itself " +
      'spent on rules (`stele_alert_evaluation_seconds_total`, wall time on threads that share the 2 cores with four ' +
      'others, so an upper bound) over the CPU time it used; (c) the throughput, beside the runs without rules ' +
      "(interleaved with them; this machine's run-to-run spread is ±10 %).",
    '',
    '| run | events/s with rules | events/s without | (a) rules, µs/entry (test + count) | server CPU, µs/event | (a) share | (b) evaluation s / server CPU s | (b) share |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...runs.map(
      (a, i) =>
        `| ${i + 1} | ${fmtInt(a.throughput.eventsPerSec)} | ${fmtInt(plain[i]?.eventsPerSec ?? Number.NaN)} | ` +
        `${(a.matchUs + a.countUs).toFixed(2)} (${a.matchUs.toFixed(2)} + ${a.countUs.toFixed(2)}) | ${a.serverUsPerEvent.toFixed(1)} | ` +
        `${(cpuShare(a) * 100).toFixed(2)} % | ${a.evaluationS.toFixed(2)} / ${a.serverCpuS.toFixed(1)} | ${(wallShare(a) * 100).toFixed(2)} % |`,
    ),
    '',
    `| alert evaluation | value | target | met? |`,
    '|---|---:|---:|:---:|',
    `| (a) CPU of the rules / the server's CPU per event (median) | ${(med * 100).toFixed(2)} % | < ${TARGET_ALERT_SHARE * 100} % | ${med < TARGET_ALERT_SHARE ? 'yes' : '**no**'} |`,
    `| (b) the server's own count, an upper bound (median) | ${(median(runs.map(wallShare)) * 100).toFixed(2)} % | | |`,
    `| (c) throughput with rules / without (medians) | ${fmtRatio(ratio)} | | |`,
    '',
  ];
}

function sampleTable(s: SustainResult): string[] {
  const o = ['| t (s) | RSS MiB | log size | indexed_through | lag, entries | lag, s |', '|---:|---:|---:|---:|---:|---:|'];
  const step = Math.max(1, Math.round(s.samples.length / 12));
  s.samples.forEach((x, i) => {
    if (i % step === 0 || i === s.samples.length - 1)
      o.push(
        `| ${x.t.toFixed(0)} | ${x.rssMiB.toFixed(0)} | ${fmtInt(x.size)} | ${fmtInt(x.indexed)} | ${fmtInt(x.lagEntries)} | ${(x.lagEntries / s.ingestRate).toFixed(2)} |`,
      );
  });
  o.push('');
  return o;
}

function lagLine(s: SustainResult): string {
  return (
    `- Index lag at the end of the load: ${fmtInt(s.endLagEntries)} entries, ${s.endLagS.toFixed(2)} s; largest ${s.maxLagS.toFixed(2)} s. ` +
    (Number.isFinite(s.catchUpS)
      ? `After the load stopped the index reached the log's size in ${s.catchUpS.toFixed(1)} s.`
      : "After the load stopped the index had not reached the log's size within the limit.")
  );
}

function sustainSection(s: SustainResult, peak: SustainResult | null, steps: readonly HeldStep[]): string[] {
  const o: string[] = [];
  const p = (...lines: string[]) => o.push(...lines);
  p(`## Sustained load and read your writes (${s.seconds} s)`, '');
  p(
    'One fresh server, three phases. Once a second in each: the server process RSS (`VmRSS`, /proc), the log size ' +
      '(`/healthz` `size`, every durable entry) and `indexed_through` of `GET /v1/events?limit=1`; the index lag is ' +
      "size − indexed_through, in seconds at the phase's ingest rate. The index catches up between phases.",
    '',
  );
  if (peak) {
    p(`### Peak: closed loop for ${peak.seconds} s`, '');
    p(
      `4 clients post 1000-event batches as fast as the server acknowledges: ${fmtInt(peak.ingestRate)} entries/s durable, ` +
        `while the index thread, sharing the 2 cores with ingest, indexed ${fmtInt(peak.indexRate)} entries/s, so at this rate ` +
        'the index falls behind without bound (appends never wait for it; they are refused with 503 only past the ' +
        'documented backlog bound).',
      '',
    );
    p(...sampleTable(peak));
    p(lagLine(peak), '');
  }
  if (steps.length) {
    p('### The highest rate the server holds', '');
    p(
      `Paced runs of a few seconds each (4 clients, 1000-event batches on a fixed schedule), from the index rate under the peak load, ×1.2 ` +
        `while the server acknowledges ≥ 97 % of the offer and the index indexes ≥ 97 % of what is appended and ends less than ${STEP_LAG_S} s behind:`,
      '',
    );
    p('| offered ev/s | acknowledged ev/s | indexed ev/s | index lag at end, s | held |', '|---:|---:|---:|---:|:---:|');
    for (const x of steps)
      p(
        `| ${fmtInt(x.rate)} | ${fmtInt(x.taken)} | ${fmtInt(x.indexRate)} | ${x.endLagS.toFixed(2)} | ${x.held ? 'yes' : 'no'} |`,
      );
    p('');
  }
  p(
    s.offeredRate === null
      ? `### ${s.seconds} s closed loop`
      : `### ${s.seconds} s at the held rate, ${fmtInt(s.offeredRate)} events/s offered`,
    '',
  );
  p(
    `${fmtInt(s.load.requests)} batch requests of 1000 events; ${fmtInt(s.ingestRate)} entries/s durable from the sampled sizes ` +
      `(the clients counted ${fmtInt(s.load.eventsPerSec)} acknowledged events/s), ${fmtInt(s.indexRate)} indexed/s. ` +
      'Every 2 s during the load, and 10 times on the idle server after it, a read-your-writes probe appends one event and ' +
      'searches with `after=<its index>`.',
    '',
  );
  p(...sampleTable(s));
  p(
    `- RSS start / middle / end: ${s.rssStartMiB.toFixed(0)} / ${s.rssMidMiB.toFixed(0)} / ${s.rssEndMiB.toFixed(0)} MiB; ` +
      `least-squares slope over the second half ${s.rssSlopeMiBPerMin.toFixed(1)} MiB/min (${(s.rssGrowth * 100).toFixed(1)} % of the middle value over that half).`,
  );
  p(lagLine(s));
  const st = (ps: readonly { status: number }[]) => {
    const m = new Map<number, number>();
    for (const x of ps) m.set(x.status, (m.get(x.status) ?? 0) + 1);
    return [...m].map(([k, v]) => `${v} × ${k}`).join(', ') || 'none';
  };
  p(
    `- Read your writes under load: ${st(s.rywLoaded)}; median wait ${fmtMs(median(s.rywLoaded.filter((x) => x.status === 200).map((x) => x.waitMs)))} ms. ` +
      `Idle: ${st(s.rywIdle)}; median wait ${fmtMs(median(s.rywIdle.filter((x) => x.status === 200).map((x) => x.waitMs)))} ms.`,
  );
  const wrong = [...s.rywLoaded, ...s.rywIdle].find((x) => x.detail);
  if (wrong) p(`- First read-your-writes probe that went wrong: \`${wrong.detail}\``);
  if (s.load.failures) p(`- Load failures: ${s.load.failures} (${s.load.firstFailure ?? ''})`);
  if (s.sampleErrors) p(`- Samples that failed (timeout or error): ${s.sampleErrors}`);
  p('');
  return o;
}

export function threadLoads(P: Profile): ThreadLoad[] {
  const out: ThreadLoad[] = [];
  const add = (kind: Kind, s: ProfileSummary | null, one: string, many: string) => {
    if (!s || s.wallMs <= 0) return;
    const cores = s.busyMs / s.wallMs;
    const plural = s.threads > 1;
    out.push({
      kind,
      name: plural ? `${s.threads} ${many}` : one,
      label: plural ? `${many} (${s.threads})` : one,
      plural,
      s,
      busy: cores / s.threads,
      cores,
    });
  };
  add('main', P.main, 'main thread', 'main threads');
  add('ingest', P.ingest, 'ingest worker', 'ingest workers');
  add('integrator', P.integrator, 'integrator thread', 'integrator threads');
  add('index', P.index ?? null, 'index thread', 'index threads');
  add('other', P.other, 'other worker thread', 'other worker threads');
  return out;
}

const busyPct = (t: ThreadLoad) => `${(100 * t.busy).toFixed(0)} %${t.s.threads > 1 ? ' each' : ''}`;

/** "the main thread was busy 56 %, the ingest worker 98 % and the integrator thread 56 %" */
function busyList(ts: readonly ThreadLoad[]): string {
  const parts = ts.map((t, i) => (i === 0 ? `the ${t.name} was busy ${busyPct(t)}` : `the ${t.name} ${busyPct(t)}`));
  return parts.length > 1 ? `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}` : (parts[0] ?? '');
}

/**
 * Whether the machine's CPU was the limit: the server, the load generator and everything else
 * together against the cores there are.
 */
export function machineVerdict(server: number, client: number, other: number, nproc: number): { full: boolean; text: string } {
  const total = server + client + other;
  const full = total >= MACHINE_FULL * nproc;
  const own = server + client;
  const text = full
    ? `Together that is ${cores(total)} of ${nproc} cores: **the machine's CPU was the limit**` +
      (own >= MACHINE_FULL * nproc
        ? ` (Stele and its load generator alone used ${cores(own)})`
        : `, Stele and its load generator using ${cores(own)} of it and other processes on this shared VM ${cores(other)}`) +
      '.'
    : `Together that is ${cores(total)} of ${nproc} cores: the machine's CPU was **not** the limit (${cores(nproc - total)} cores idle).`;
  return { full, text };
}

/** What the per-thread busy times say, given whether the machine was full. */
function threadVerdict(
  ts: readonly ThreadLoad[],
  machineFull: boolean,
  nproc: number,
): { limit: ThreadLoad | null; text: string } {
  const busiest = [...ts].sort((a, b) => b.busy - a.busy)[0];
  const limit = busiest && busiest.busy >= SATURATED ? busiest : null;
  let text: string;
  if (limit && machineFull) {
    text =
      `The ${limit.name} ${limit.plural ? 'are' : 'is'} saturated, so ${limit.plural ? 'they set' : 'it sets'} the pace; ` +
      `with every core in use the other threads and the load generator compete with ${limit.plural ? 'them' : 'it'} for CPU, ` +
      `so CPU saved anywhere helps, most directly on the ${limit.name}` +
      (limit.kind === 'ingest' ? ` (more ingest workers would not: there is no idle core for them on ${nproc} cores)` : '') +
      '.';
  } else if (limit) {
    text =
      `The ${limit.name} ${limit.plural ? 'are' : 'is'} saturated while the machine has idle CPU: ` +
      `${limit.plural ? 'they are' : 'it is'} the limit, and only work taken off or saved on ${limit.plural ? 'them' : 'it'} raises throughput.`;
  } else if (machineFull) {
    text =
      `No thread is saturated on its own: the server's threads and the load generator compete for the ${nproc} cores, ` +
      'so CPU saved on any of them raises throughput.';
  } else {
    text =
      'Neither the cores nor any one thread is saturated, so part of the time the server waits (on the WAL fdatasync of ' +
      'each group commit, on hand-offs between its threads, or on its clients).';
  }
  return { limit, text };
}

/** The "what limits it" verdict for the interpretation, from the profiled run. */
export function profileVerdict(P: Profile, machineFull: boolean, nproc: number): string {
  const ts = threadLoads(P);
  const busySum = ts.reduce((a, t) => a + t.cores, 0);
  return (
    `In the profiled run (${fmtInt(P.eps)} events/s with the profiler on) ${busyList(ts)} of the time. ` +
    threadVerdict(ts, machineFull, nproc).text +
    (busySum > P.serverCores + 0.15
      ? ` (The threads were busy ${cores(busySum)} cores' worth of wall time, but the process got ${cores(P.serverCores)} ` +
        'cores of CPU: the difference is time they were ready to run but waiting for a core, or blocked in a system call.)'
      : '')
  );
}

const TITLES: Record<Kind, (n: number) => string> = {
  main: () => 'Main thread: HTTP, sequencer, WAL, id index, hand-offs to the other threads',
  ingest: (n) => `Ingest worker${n > 1 ? `s (${n} threads, summed)` : ' thread'}: parse, validate, canonicalize`,
  integrator: () => 'Integrator thread: leaf and node hashing, tiles and bundles, tile files, checkpoints, syncs',
  index: () => 'Index thread: index notes and leaves into the query store (SQLite inserts, FTS5), searches',
  other: (n) => `Other worker thread${n > 1 ? `s (${n}, summed)` : ''}`,
};

function profileSection(c: Config, P: Profile, nproc: number): string[] {
  const o: string[] = [];
  const p = (...lines: string[]) => o.push(...lines);
  const ts = threadLoads(P);
  const nThreads = ts.reduce((a, t) => a + t.s.threads, 0);
  p('## Where the server spends its time (CPU profile)', '');
  p(
    '`node --cpu-prof --cpu-prof-dir=…` on the `stele serve` child, stopped with SIGTERM (serve.ts closes the server ' +
      'and the log and exits, which writes one profile per thread), during a ' +
      `${c.profileMs / 1000} s run with the same load (${c.clients} clients, ${c.batch}-event batches, client ids) that ` +
      `reached ${fmtInt(P.eps)} events/s with the profiler on. Only samples inside the measured window count (the ` +
      'profile and the load generator share the monotonic clock). The worker threads are told apart by what they ran ' +
      '(`src/ingest/`, `src/event/`: ingest worker; `src/log/integrator*`, `src/tlog/`: integrator). "Busy" is the time ' +
      'a thread was not waiting in its event loop, so on a full machine it includes time it was ready to run but had ' +
      'no core. In the component tables, time in Node internals and native calls (Buffer, streams, `crypto.hash`, ' +
      '`fs.promises`, `postMessage`) is charged to the nearest calling function in Stele or a library; the function ' +
      'tables show raw self time.',
    '',
  );
  p(`The server ran ${nThreads} JavaScript threads, which share the machine's ${nproc} cores with the load generator:`, '');
  p('| thread | busy, % of the window | busy, cores | largest component |', '|---|---:|---:|---|');
  for (const t of ts) {
    const g = t.s.groups[0];
    p(`| ${t.label} | ${busyPct(t)} | ${cores(t.cores)} | ${g ? `${g.group} (${pct(g.ms, t.s.busyMs)} %)` : ''} |`);
  }
  const m = machineVerdict(P.serverCores, P.clientCores, P.otherCores, nproc);
  p(
    '',
    `CPU during the profiled run: the server process ${cores(P.serverCores)} cores, the load generator ` +
      `${cores(P.clientCores)}, other processes ${cores(P.otherCores)}. ${m.text} ${threadVerdict(ts, m.full, nproc).text}`,
    '',
  );
  for (const t of ts) {
    const s = t.s;
    p(`### ${TITLES[t.kind](s.threads)}`, '');
    p(
      `Window ${fmtInt(s.wallMs)} ms${s.threads > 1 ? ` × ${s.threads} threads` : ''}; busy ${fmtInt(s.busyMs)} ms, ` +
        `**${busyPct(t)}** of the window.` +
        (s.syncFsMs >= 1
          ? ` Blocked in synchronous fs calls (the thread's event loop stops meanwhile): ${fmtInt(s.syncFsMs)} ms — ` +
            s.syncFsBy.map((x) => `\`${x.caller}\` ${fmtMs(x.ms)} ms`).join(', ') +
            '.'
          : ''),
      '',
    );
    p('| component | ms | % of busy |', '|---|---:|---:|');
    for (const g of s.groups) p(`| ${g.group} | ${fmtInt(g.ms)} | ${pct(g.ms, s.busyMs)} |`);
    p('', '| top self-time functions | where | self ms | % of busy |', '|---|---|---:|---:|');
    for (const f of s.top) p(`| \`${f.name.replaceAll('|', '\\|')}\` | ${f.where} | ${fmtInt(f.ms)} | ${pct(f.ms, s.busyMs)} |`);
    p('');
  }
  p(...suggestions(P, nproc));
  return o;
}

interface Suggestion {
  thread: ThreadLoad;
  /** Share of that thread's busy time the suggestion is about, %. */
  pct: number;
  text: string;
  /** About the thread as a whole (no share): listed first, under this heading. */
  whole?: string;
}

/**
 * Concrete suggestions, each about one thread and weighted by the share of that thread's busy time
 * the profile found for it. Every text names the code as it is now; items whose condition the
 * profile does not show are left out.
 */
function suggestions(P: Profile, nproc: number): string[] {
  const ts = threadLoads(P);
  const T = (k: Kind) => ts.find((t) => t.kind === k);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  /** % of the thread's busy time in these components. */
  const share = (t: ThreadLoad | undefined, ...keys: string[]) =>
    t ? (100 * sum(t.s.groups.filter((g) => keys.includes(g.key)).map((g) => g.ms))) / t.s.busyMs : 0;
  /** Self ms of the functions matching. */
  const self = (t: ThreadLoad | undefined, test: (f: FnTime) => boolean) => (t ? sum(t.s.fns.filter(test).map((f) => f.ms)) : 0);
  const fn = (t: ThreadLoad | undefined, name: string, where = '') => self(t, (f) => f.name === name && f.where.includes(where));
  const blocked = (t: ThreadLoad | undefined, re: RegExp) =>
    t ? sum(t.s.syncFsBy.filter((x) => re.test(x.caller)).map((x) => x.ms)) : 0;
  const ms = (x: number) => `${fmtInt(x)} ms`;

  const M = T('main');
  const W = T('ingest');
  const G = T('integrator');
  const m = machineVerdict(P.serverCores, P.clientCores, P.otherCores, nproc);
  const { limit } = threadVerdict(ts, m.full, nproc);
  const items: Suggestion[] = [];
  const add = (t: ThreadLoad | undefined, pctOfThread: number, text: string) => {
    if (t) items.push({ thread: t, pct: pctOfThread, text });
  };

  // ---- main thread
  if (M) {
    const grow = fn(M, 'grow', '/id-index.');
    const journalSync = blocked(M, /^writeSync ← add/);
    add(
      M,
      share(M, 'idIndex'),
      `Id index (\`${where('JournalIdIndex')}\`): \`JournalIdIndex.lookup\` and \`.add\` each parse every id with \`uuidBytes\` ` +
        `(${ms(fn(M, 'uuidBytes'))} here; two parses per event, each allocating a 16-byte Buffer) before ` +
        `\`IdTable.tag\` hashes it (${ms(fn(M, 'tag', '/id-index.'))}). Have \`uuidBytes\` write into a buffer the caller ` +
        'passes (a reused scratch in `lookup`, the journal buffer `out` in `add`), or better, let the ingest worker, ' +
        'which has already validated each id, send its 16 bytes with the leaf so `lookup` and `add` take bytes.' +
        (grow >= 0.01 * M.s.busyMs
          ? ` \`IdTable.grow\` took ${ms(grow)} rehashing segments as the table grew (amortised; a fresh log, as here, grows it more often than a long-running one).`
          : '') +
        (journalSync >= 1
          ? ` \`add\` also writes the journal with \`writeSync\` (${fmtMs(journalSync)} ms blocked here): an async write ` +
            'would do, keeping the bytes in memory until it completes so that `confirm` can check recent ids there, since ' +
            'entries past the last `flush` are replayed from the WAL on start anyway.'
          : ''),
    );
    add(
      M,
      share(M, 'wal'),
      `WAL (\`encodeRecords\` in \`${where('encodeRecords')}\`): per record a \`Buffer.from(e.id)\`, a copy of the leaf and a \`crc32\` ` +
        `(node:zlib, ${ms(fn(M, 'crc32'))} of self time here), all on the main thread, before one write and one ` +
        '`datasync` per group commit. The ingest worker has the ids and leaves in hand: let it emit finished WAL records ' +
        '(length, crc32, id, leaf) in its reply buffer, so the main thread only writes whole requests (`writev` of the ' +
        "workers' buffers) and assigns indices.",
    );
    add(
      M,
      share(M, 'sequencer'),
      `Sequencer (\`Sequencer.append\` and \`drain\` in \`${where('Sequencer.drain')}\`): per new entry an \`inFlight\` Map set and ` +
        'delete keyed by the 36-character id string (so that a duplicate arriving while the first copy is being written ' +
        `joins it), plus the id arrays it builds for \`ids.lookup\` and \`ids.add\` (self time: \`append\` ${ms(fn(M, 'append', '/sequencer.'))}, ` +
        `\`drain\` ${ms(fn(M, 'drain', '/sequencer.'))}). The id index hashes every id anyway: let \`IdTable\` hold ` +
        'in-flight ids as well (marked pending, their 16 bytes kept in memory for `confirm` until the journal has them), ' +
        'so one probe replaces the lookup, the Map set and the Map delete.',
    );
    add(
      M,
      share(M, 'integratorHandoff'),
      `Hand-off to the integrator (\`IntegratorThread.add\` in \`${where('IntegratorThread.add')}\`): \`pack\` copies every leaf ` +
        `of the group commit into one new buffer before posting it to the integrator thread (${ms(fn(M, 'pack'))} here). ` +
        'The leaves already arrive from the ingest worker in one buffer per request: allocate that buffer on a ' +
        `\`SharedArrayBuffer\` in \`${where('prepare')}\` and post the integrator views (offsets and lengths) of it, and the ` +
        'copy goes.',
    );
    add(
      M,
      share(M, 'ingestHandoff'),
      `Hand-off to the ingest workers (\`IngestPool\` in \`${where('IngestPool.prepare')}\`): \`prepare\` posts the body without a ` +
        'transfer list, so structured clone copies it, and the reply handler builds one `{ id, leaf }` object and one ' +
        '`subarray` per event. Only bodies of 4 KB or more go to a worker (smaller ones are prepared inline), and ' +
        "fastify's `Buffer.concat` gives those an ArrayBuffer of their own (not Node's shared pool): transfer it " +
        '(`postMessage(msg, [body.buffer])`, guarded by `byteOffset === 0 && byteLength === buffer.byteLength`).',
    );
    add(
      M,
      share(M, 'fastify', 'http', 'routes'),
      'HTTP: fastify routing and hooks, `fast-json-stringify` of the `{"entries":[{"id","index"}…]}` response (about ' +
        '60 KB per 1000-event request) and the socket writes. A compact response (the first index and the count, with ' +
        'ids only where an id was a repeat and got an earlier index) would cut the serialisation and the bytes; it is an ' +
        'API change.',
    );
  }

  // ---- ingest workers
  if (W) {
    add(
      W,
      share(W, 'canonical', 'record'),
      `Canonical JSON (\`${where('canonicalBytes')}\`: \`writeString\` ${ms(fn(W, 'writeString', '/canonical.'))}, \`ser\` ` +
        `${ms(fn(W, 'ser', '/canonical.'))}): \`writeString\` copies every string one UTF-16 unit at a time. Most strings ` +
        'in events are printable ASCII without `"` or `\\`: test that with one regex (`/^[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]*$/`) ' +
        'and copy them with one `buf.latin1Write(s, pos)`, falling back to the loop otherwise.',
    );
    add(
      W,
      share(W, 'ingestHandoff'),
      `Leaf copies and the reply (\`${where('prepare')}\`, ${ms(fn(W, 'postMessage'))} in \`postMessage\`): ` +
        '`canonicalBytes` copies each leaf out of the scratch buffer into a Buffer of its own, the reply copies every leaf ' +
        'again into the transfer buffer, and `postMessage` clones the array of id strings. Serialise the leaves straight ' +
        'into one growing reply buffer (a `canonicalBytes` variant that appends at an offset) and both copies go.',
    );
    const uuidFormat = self(
      W,
      (f) => f.name.startsWith('RegExp: ^(?:urn:uuid:)?') || (f.name === 'uuid' && f.where.includes('ajv-formats')),
    );
    const dateTime = self(W, (f) => ['date', 'time', 'date_time'].includes(f.name) && f.where.includes('ajv-formats'));
    const ucs2 = fn(W, 'ucs2length');
    const validators = self(W, (f) => /^validate\d*$/.test(f.name));
    const regexes = W.s.fns.filter((f) => f.name.startsWith('RegExp: ')).slice(0, 3);
    const fixes = [
      uuidFormat >= 0.01 * W.s.busyMs
        ? `\`id\` is checked twice, by \`UUID_PATTERN\` and by ajv-formats' \`uuid\` format (${ms(uuidFormat)}): register ` +
          `\`ajv.addFormat('uuid', true)\` in \`${where('validateEvent')}\` instead, as the pattern already pins the form`
        : '',
      dateTime >= 0.01 * W.s.busyMs
        ? `\`time\` is checked by \`TIME_PATTERN\` and again by ajv-formats' \`date-time\` format (\`date_time\`, \`date\`, ` +
          `\`time\`: ${ms(dateTime)}), whose regexes re-parse what the pattern has fixed: register a \`date-time\` format ` +
          'that only checks the calendar ranges (month, day of month, time of day, offset), as `parseMicros` in ' +
          `\`${where('parseMicros')}\` does`
        : '',
      ucs2 >= 0.01 * W.s.busyMs
        ? `\`minLength\`/\`maxLength\` count code points with \`ucs2length\` (${ms(ucs2)}): ajv's \`unicode: false\` ` +
          'option uses `.length` instead (maximum lengths then count UTF-16 units, stricter only for text outside the BMP)'
        : '',
    ].filter(Boolean);
    add(
      W,
      share(W, 'ajv'),
      `Schema validation (ajv, compiled in \`${where('validateEvent')}\`; the compiled \`validate*\` functions ${ms(validators)}` +
        (regexes.length
          ? `, regexes ${regexes.map((f) => `\`${f.name.slice(8, 40)}${f.name.length > 40 ? '…' : ''}\` ${ms(f.ms)}`).join(', ')}`
          : '') +
        '). ' +
        (fixes.length
          ? `${fixes.map((x) => `${x[0]?.toUpperCase()}${x.slice(1)}`).join('. ')}.`
          : "The formats and length checks no longer show; what is left is the schema's own patterns and type checks, " +
            "which a hand-written check of the fixed top-level fields (ajv only for `data`'s shape) would beat."),
    );
    add(
      W,
      share(W, 'normalize'),
      `Stele's own checks (\`${where('validateEvent')}\`): after ajv, \`validateEvent\` runs \`knownStrings\` (\`isWellFormed\` on ` +
        `each free-text field, ${ms(fn(W, 'knownStrings'))}) and \`scan\` over \`data\` (depth and lone surrogates, ` +
        `${ms(fn(W, 'scan', '/normalize.'))}), then \`normalizeEvent\` builds the stored event. Canonicalization refuses ` +
        'lone surrogates too (`writeString` returns false), with the JSON pointer: the surrogate checks could rely on ' +
        'it, mapped to the same error, leaving `scan` only the depth.',
    );
    add(
      W,
      share(W, 'gc'),
      'GC on the ingest worker: the parsed events, the objects `normalizeEvent` and `buildLeaf` build around them, and ' +
        'one Buffer per leaf; serialising the leaves into one reply buffer (above) removes the per-leaf Buffers.',
    );
  }

  // ---- integrator thread
  if (G) {
    const fsOps = self(
      G,
      (f) => f.where === '(native/eval)' && /^(openFileHandle|open|close|rename|writeBuffer|writeString|mkdir)$/.test(f.name),
    );
    add(
      G,
      share(G, 'tileFiles', 'fs'),
      `Tile files (\`FsLogStorage.writeTile\` in \`${where('FsLogStorage.writeTile')}\`): each integration run (every ` +
        '`--checkpoint-interval`, 100 ms by default, while data arrives) writes every tile that filled plus the partial ' +
        'tile of each level and the partial entry bundle, each as `writeFile` of a `.tmp` and a `rename` through ' +
        `\`fs.promises\`: an open, a write, a close and a rename, each a trip through libuv's thread pool (the native ` +
        `calls took ${ms(fsOps)} here). A file no published checkpoint covers yet can be written in place: clients ask ` +
        'for a tile only once a checkpoint covers it, and the checkpoint is written after `writeTiles` returns; keep ' +
        'write-then-rename for rewrites during recovery. A longer default interval (the log promises a checkpoint at ' +
        'least once a second) would also rewrite the partial tiles and bundle several times less often, at the cost of ' +
        '`?wait=checkpoint` latency.',
    );
    add(
      G,
      share(G, 'tiles'),
      `TileBuilder (\`${where('TileBuilder')}\`; \`tileSubtreeRoot\` ${ms(fn(G, 'tileSubtreeRoot'))}, \`encodeBundle\` ` +
        `${ms(fn(G, 'encodeBundle'))}): a full tile's root takes 255 node hashes (inherent), but \`root()\` also refolds ` +
        "every level's partial tile from its leaves at each checkpoint, and each run re-encodes the whole partial entry " +
        "bundle. Keeping each partial tile's folded subtree roots between runs would make `root()` a few hashes per " +
        'level, and appending to the encoded partial bundle would save its re-encoding.',
    );
    add(
      G,
      share(G, 'signing'),
      `Checkpoint signing (\`signNote\` in \`${where('signNote')}\`, Ed25519 via \`crypto.sign\`: ${ms(fn(G, 'signOneShot'))}) ` +
        'runs once per integration run; a longer checkpoint interval divides it.',
    );
    if (G === limit || (!m.full && G.busy >= 0.7)) {
      add(
        G,
        share(G, 'hash'),
        `SHA-256 (\`leafHash\`, \`nodeHash\` in \`${where('leafHash')}\` → \`crypto.hash\`: ${ms(fn(G, 'hash', 'crypto'))} of ` +
          `native self time) on a thread busy ${busyPct(G)}: the ingest workers have each leaf in hand, so they could ` +
          'compute its leaf hash and send the 32 bytes with it, spreading the largest share of this thread over the ' +
          'workers; the integrator would then only do node hashes.',
      );
    }
    add(
      G,
      share(G, 'gc'),
      'GC on the integrator thread: a Buffer per leaf (`unpack`), per hash (`crypto.hash` returns a new Buffer) and per ' +
        'tile and bundle written.',
    );
  }

  // ---- synchronous fs, per thread (the event loop stops while the disk works)
  for (const t of ts) {
    if (t.s.syncFsMs < 1) continue;
    const advice: string[] = [];
    if (t.s.syncFsBy.some((x) => x.caller.startsWith('writeSync ← add'))) {
      advice.push("the id journal's `writeSync` (see the id index above)");
    }
    add(
      t,
      (100 * t.s.syncFsMs) / t.s.busyMs,
      `Synchronous fs on the ${t.name} (${t.s.syncFsBy
        .slice(0, 4)
        .map((x) => `\`${x.caller}\` ${fmtMs(x.ms)} ms`)
        .join(
          ', ',
        )}): each stops the thread for as long as the disk takes${t.kind === 'main' ? ', and every request in flight with it (an fsync under disk contention can take tens of ms: latency tail)' : ''}.` +
        (advice.length ? ` ${advice.map((x) => `${x[0]?.toUpperCase()}${x.slice(1)}`).join('. ')}.` : ''),
    );
  }

  // GC on the main thread last among its items: it mostly follows from the per-event work above.
  if (M) {
    add(
      M,
      share(M, 'gc'),
      "GC on the main thread: per event it allocates the `{ id, leaf }` entry and leaf view in `IngestPool`'s reply " +
        'handler, the id arrays for `lookup` and `add`, two 16-byte Buffers in `uuidBytes`, a `Buffer.from(id)` in ' +
        "`encodeRecords` and the response's entry object; ids as bytes and WAL records from the worker and a compact " +
        'response (above) remove most of them.',
    );
  }

  // More ingest workers only help when there is a core for them.
  if (W && W.busy >= SATURATED && !m.full) {
    items.push({
      thread: W,
      pct: 100,
      whole: 'saturated',
      text:
        `The ${W.name} ${W.plural ? 'are' : 'is'} saturated while the machine has idle CPU: run more ` +
        '(`--ingest-workers`; the default is `availableParallelism() − 1`, at least 1), or let `IngestPool.prepare` run ' +
        'a request inline on the main thread when every worker is busy.',
    });
  }

  const useful = items.filter((x) => x.pct >= 2);
  // Cores a suggestion is about: its share of the thread's busy time × the thread's busy cores.
  const coresOf = (x: Suggestion) => (x.pct / 100) * x.thread.cores;
  // With idle CPU only the saturated thread's work matters; with the cores full, CPU saved anywhere.
  const first = (x: Suggestion) => (x.whole ? 2 : !m.full && limit && x.thread === limit ? 1 : 0);
  useful.sort((a, b) => first(b) - first(a) || coresOf(b) - coresOf(a));
  const out = ['### Suggestions', ''];
  out.push(
    (!m.full && limit
      ? `With idle CPU only the ${limit.name}${limit.plural ? "'" : "'s"} work limits throughput, so ${limit.plural ? 'their' : 'its'} items come first, then the rest`
      : 'With the cores full, CPU saved on any thread counts, so these are ordered') +
      " by the CPU each is about (share of that thread's busy time, and in cores); the code is described as it stands, " +
      'the functions and times as profiled in this run:',
    '',
  );
  if (useful.length === 0) out.push('- Nothing in the profile reaches 2 % of a thread’s busy time.');
  for (const it of useful) {
    const head = it.whole ?? `${it.pct.toFixed(0)} % (${cores(coresOf(it))} cores)`;
    out.push(`- **${it.thread.label}, ${head}** — ${it.text}`);
  }
  out.push('');
  return out;
}
