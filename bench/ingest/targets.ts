/**
 * Every target of issue 12 with "met" / "not met" and the measured figure: one table for
 * BENCHMARKS.md and the same lines on the terminal. Targets 2 (indexing, `npm run bench:index`) and
 * 6 (verification, `npm run bench:verify`) are measured by their own scripts; their latest results
 * are read back from their BENCHMARKS.md sections.
 */
import type { LatencyResult } from './http-load.js';
import { fmtInt, fmtMs, fmtRatio } from './stats.js';
import { FLAT_GROWTH, rywMedianMs, rywOk, type SustainResult, TARGET_LAG_S } from './sustain.js';

export const TARGET_EPS = 100_000;
export const TARGET_VS_HYPERCORE = 1.5;
export const TARGET_VS_RAW = 0.5;
export const TARGET_P99_MS = 10;

export interface TargetLine {
  target: string;
  measured: string;
  /** true met, false not met, null: not measured by this run (see `measured`). */
  met: boolean | null;
}

export interface TargetInputs {
  stele: number;
  raw: number;
  hyper: number;
  hypercoreVersion: string;
  sustain: SustainResult | null;
  latency: LatencyResult | null;
  /** BENCHMARKS.md as it was before this run (for the index and verify sections). */
  previous: string;
}

export function section(md: string, name: string): string | null {
  const m = new RegExp(`<!-- bench:${name} -->([\\s\\S]*?)<!-- /bench:${name} -->`).exec(md);
  return m ? (m[1] as string) : null;
}

/**
 * Target lines another bench left in its section, as a JSON comment
 * `<!-- targets: [{"target","measured","met"}, …] -->` (bench/verify writes one), else its lines
 * that say met / not met, else null.
 */
export function linesFrom(md: string, name: string): TargetLine[] | null {
  const s = section(md, name);
  if (s === null) return null;
  const j = /<!-- targets: (\[[\s\S]*?\]) -->/.exec(s);
  if (j) {
    try {
      return JSON.parse(j[1] as string) as TargetLine[];
    } catch {
      // fall through to the text
    }
  }
  // Table rows whose last cell is a verdict: met / not met / yes / no (bold or not).
  const verdictOf = (l: string) =>
    l
      .split('|')
      .map((c) => c.trim().replace(/\*\*/g, '').toLowerCase())
      .filter((c) => c !== '')
      .at(-1);
  const said = s
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('|') && ['met', 'not met', 'yes', 'no'].includes(verdictOf(l) ?? ''));
  if (said.length === 0) return null;
  return said.map((l) => {
    const cells = l
      .split('|')
      .map((c) => c.trim().replace(/\*\*/g, ''))
      .filter((c) => c !== '');
    return {
      target: `${name}: ${cells[0] ?? ''}`.slice(0, 200),
      measured: cells.slice(1, -1).join(' · ') || 'see its section',
      met: ['met', 'yes'].includes(verdictOf(l) ?? ''),
    };
  });
}

export function targetLines(x: TargetInputs): TargetLine[] {
  const t: TargetLine[] = [];
  t.push({
    target: `1. durable appends over HTTP ≥ ${fmtInt(TARGET_EPS)} events/s`,
    measured: `${fmtInt(x.stele)} events/s`,
    met: x.stele >= TARGET_EPS,
  });
  t.push({
    target: `1. appends ≥ ${TARGET_VS_RAW}× the raw limit (same run)`,
    measured: `${fmtRatio(x.stele / x.raw)} (raw ${fmtInt(x.raw)}/s)`,
    met: x.stele >= TARGET_VS_RAW * x.raw,
  });
  t.push({
    target: `1. appends ≥ ${TARGET_VS_HYPERCORE}× hypercore ${x.hypercoreVersion} (same run)`,
    measured: `${fmtRatio(x.stele / x.hyper)} (hypercore ${fmtInt(x.hyper)}/s)`,
    met: x.stele >= TARGET_VS_HYPERCORE * x.hyper,
  });

  const idx = linesFrom(x.previous, 'index');
  if (idx) t.push(...idx.map((l) => ({ ...l, target: l.target.startsWith('2.') ? l.target : `2. ${l.target}` })));
  else
    t.push({
      target: '2. indexing ≥ 50,000 events/s at 1M and at 10M entries stored',
      measured: 'measured by `npm run bench:index` (no `bench:index` section in BENCHMARKS.md yet)',
      met: null,
    });

  const s = x.sustain;
  if (s) {
    t.push({
      target: `3. sustained ${s.seconds} s at the highest rate: index < ${TARGET_LAG_S} s behind at the end`,
      measured:
        `${fmtInt(s.ingestRate)} events/s (${s.offeredRate === null ? 'closed loop' : 'the highest paced rate at which the index kept up'}); ` +
        `${fmtInt(s.endLagEntries)} entries = ${s.endLagS.toFixed(2)} s behind (max ${s.maxLagS.toFixed(2)} s)`,
      met: s.endLagS < TARGET_LAG_S,
    });
    t.push({
      target: `3. memory flat over the ${s.seconds} s (second half grows RSS < ${FLAT_GROWTH * 100} %)`,
      measured: `RSS ${s.rssStartMiB.toFixed(0)} / ${s.rssMidMiB.toFixed(0)} / ${s.rssEndMiB.toFixed(0)} MiB (start/middle/end), slope ${s.rssSlopeMiBPerMin.toFixed(1)} MiB/min in the second half (${(s.rssGrowth * 100).toFixed(1)} %)`,
      met: s.memoryFlat,
    });
    const all = [...s.rywLoaded, ...s.rywIdle];
    const ok = all.filter(rywOk).length;
    const c503 = all.filter((p) => p.status === 503).length;
    t.push({
      target: '4. read your writes: `GET /v1/events?after=<index>` sees the append, or 503 + Retry-After within 5 s',
      measured:
        `${ok}/${all.length} probes right (${c503} × 503); wait median ${fmtMs(rywMedianMs(s.rywLoaded))} ms under load, ` +
        `${fmtMs(rywMedianMs(s.rywIdle))} ms idle`,
      met: all.length > 0 && ok === all.length && s.rywIdle.every((p) => p.status === 200),
    });
  } else {
    t.push({ target: '3. sustained load', measured: 'not run (BENCH_SUSTAIN_SECONDS=0)', met: null });
    t.push({ target: '4. read your writes', measured: 'not run (BENCH_SUSTAIN_SECONDS=0)', met: null });
  }

  const l = x.latency;
  if (l) {
    t.push({
      target: `5. ${fmtInt(l.rate)} single-event requests/s, open loop: p99 ≤ ${TARGET_P99_MS} ms`,
      measured: `p99 ${fmtMs(l.p99)} ms (p50 ${fmtMs(l.p50)})`,
      met: l.p99 <= TARGET_P99_MS,
    });
    t.push({
      target: '5. … and no request refused',
      measured: `${l.failures} of ${l.sent} failed${l.firstFailure ? ` (${l.firstFailure.slice(0, 80)})` : ''}`,
      met: l.failures === 0,
    });
  }

  const ver = linesFrom(x.previous, 'verify');
  if (ver) t.push(...ver);
  else
    t.push({
      target: '6. `stele verify` of a 10M-entry log ≥ 300,000 entries/s; inclusion proofs ≥ 20,000/s with p99 ≤ 5 ms',
      measured: 'measured by `npm run bench:verify` (no `bench:verify` section in BENCHMARKS.md yet)',
      met: null,
    });
  return t;
}

const verdict = (m: boolean | null) => (m === null ? 'see there' : m ? 'met' : '**not met**');

export function targetsMarkdown(ts: readonly TargetLine[]): string[] {
  return [
    '| target (issue 12) | measured (median) | |',
    '|---|---|:---:|',
    ...ts.map((x) => `| ${x.target.replace(/\|/g, '\\|')} | ${x.measured.replace(/\|/g, '\\|')} | ${verdict(x.met)} |`),
    '',
  ];
}

export function targetsText(ts: readonly TargetLine[]): string {
  return ts.map((x) => `${x.met === null ? '   ?   ' : x.met ? '  met  ' : 'NOT MET'}  ${x.target}: ${x.measured}`).join('\n');
}
