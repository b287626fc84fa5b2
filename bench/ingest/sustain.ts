/**
 * Issue 12, targets 3 and 4, on one `stele serve`:
 *   - sustained load: the closed-loop throughput load (4 clients × 1000-event batches, as fast as
 *     the server acknowledges) for N seconds, sampling once a second the server's RSS (VmRSS of the
 *     child, /proc) and the index lag: log size (`/healthz` size, every durable entry) minus
 *     `indexed_through` of a search (`GET /v1/events?limit=1`), in entries and in seconds at the
 *     run's ingest rate. Works whether appends wait for the index (lag bounded by the server) or
 *     not (the lag is whatever the index thread cannot keep up with).
 *   - read your writes: during the load and on the idle server afterwards, append one event and
 *     search with `after=<its index>`; the answer must come with that entry searchable (200 and
 *     `indexed_through` past it), or as a bounded 503 `index_behind` with Retry-After.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { makeEvent, rng } from './events.js';
import { type ThroughputResult, throughput } from './http-load.js';
import type { SteleServer } from './server.js';
import { median, sleep } from './stats.js';

export const TARGET_LAG_S = 5;
/** Memory counts as flat when the second half of the run grows it by less than this share of its middle value. */
export const FLAT_GROWTH = 0.1;

export interface SustainSample {
  /** Seconds since the load started. */
  t: number;
  rssMiB: number;
  /** Durable entries (/healthz size). */
  size: number;
  /** Every entry below this was searchable (search answer's indexed_through). */
  indexed: number;
  /** size − indexed. */
  lagEntries: number;
}

export interface RywProbe {
  /** 200 with the entry searchable, 503 (bounded wait), or another status. */
  status: number;
  /** Time from the append's answer to the search's answer, ms. */
  waitMs: number;
  /** indexed_through covered the appended index (only meaningful with 200). */
  covered: boolean;
  retryAfter: string | null;
  /** What went wrong, when the probe is not right (append refused, error, entry not covered). */
  detail?: string;
}

export interface SustainResult {
  seconds: number;
  /** Offered events/s (paced clients); null: closed loop, as fast as the server acknowledges. */
  offeredRate: number | null;
  load: ThroughputResult;
  /** Durable entries per second over the sampled run (from /healthz sizes). */
  ingestRate: number;
  /** Entries indexed per second over the sampled run (from indexed_through). */
  indexRate: number;
  samples: SustainSample[];
  rssStartMiB: number;
  rssMidMiB: number;
  rssEndMiB: number;
  /** Least-squares slope of RSS over the second half of the run, MiB per minute. */
  rssSlopeMiBPerMin: number;
  /** RSS growth over the second half (slope × half the run) as a share of the middle RSS. */
  rssGrowth: number;
  memoryFlat: boolean;
  /** Index lag at the last sample of the load, entries and seconds at the ingest rate. */
  endLagEntries: number;
  endLagS: number;
  maxLagS: number;
  /** After the load stopped: seconds until indexed_through reached the log size (NaN: not within the limit). */
  catchUpS: number;
  rywLoaded: RywProbe[];
  rywIdle: RywProbe[];
  sampleErrors: number;
}

function rssMiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

const base = (srv: SteleServer) => `http://${srv.host}:${srv.port}`;
const auth = (srv: SteleServer) => ({ authorization: `Bearer ${srv.token}` });

async function logSize(srv: SteleServer): Promise<number> {
  const r = await fetch(`${base(srv)}/healthz`, { signal: AbortSignal.timeout(10_000) });
  return ((await r.json()) as { size: number }).size;
}

async function indexedThrough(srv: SteleServer): Promise<number> {
  const r = await fetch(`${base(srv)}/v1/events?limit=1`, { headers: auth(srv), signal: AbortSignal.timeout(10_000) });
  const body = (await r.json()) as { indexed_through?: number };
  if (r.status !== 200 || typeof body.indexed_through !== 'number') throw new Error(`search answered ${r.status}`);
  return body.indexed_through;
}

/** One read-your-writes probe: append one event, then search with after=<its index>. */
export async function rywProbe(srv: SteleServer, r: () => number): Promise<RywProbe> {
  const a = await fetch(`${base(srv)}/v1/events`, {
    method: 'POST',
    headers: { ...auth(srv), 'content-type': 'application/json' },
    body: JSON.stringify(makeEvent(r)),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await a.text();
  const index = a.status === 200 ? (JSON.parse(text) as { entries?: { index: number }[] }).entries?.[0]?.index : undefined;
  if (a.status !== 200 || index === undefined)
    return {
      status: a.status,
      waitMs: Number.NaN,
      covered: false,
      retryAfter: null,
      detail: `append: ${a.status} ${text.slice(0, 160)}`,
    };
  const t0 = performance.now();
  const s = await fetch(`${base(srv)}/v1/events?after=${index}&limit=1`, {
    headers: auth(srv),
    signal: AbortSignal.timeout(30_000),
  });
  const stext = await s.text();
  const waitMs = performance.now() - t0;
  const sb = JSON.parse(stext) as { indexed_through?: number };
  const covered = s.status === 200 && typeof sb.indexed_through === 'number' && sb.indexed_through > index;
  return {
    status: s.status,
    waitMs,
    covered,
    retryAfter: s.headers.get('retry-after'),
    ...(covered ? {} : { detail: `search after=${index}: ${s.status} ${stext.slice(0, 160)}` }),
  };
}

/** A probe is right when it saw its write, or was told within the bound (≤ 5 s + slack) to retry. */
export const rywOk = (p: RywProbe) =>
  (p.status === 200 && p.covered) || (p.status === 503 && p.retryAfter !== null && p.waitMs < 6_000);

function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return Number.NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += ((xs[i] as number) - mx) * ((ys[i] as number) - my);
    den += ((xs[i] as number) - mx) ** 2;
  }
  return den ? num / den : Number.NaN;
}

export async function sustain(
  srv: SteleServer,
  o: {
    seconds: number;
    clients: number;
    batch: number;
    warmupMs: number;
    catchUpLimitS: number;
    log: (s: string) => void;
    /** Offered events/s; absent: closed loop. */
    rate?: number;
    /** Read-your-writes probes (skipped by the quick steps of findHeldRate). */
    probes?: boolean;
  },
): Promise<SustainResult> {
  const samples: SustainSample[] = [];
  const rywLoaded: RywProbe[] = [];
  const r = rng(0x5a5a);
  let sampleErrors = 0;
  let stop = false;
  const t0 = performance.now();
  const sampler = (async () => {
    let next = t0 + o.warmupMs;
    while (!stop) {
      await sleep(Math.max(0, next - performance.now()));
      next += 1000;
      if (stop) break;
      try {
        // Size first, then the index: the lag is never understated by the order of the two reads.
        const [size, rss] = [await logSize(srv), rssMiB(srv.pid)];
        const indexed = await indexedThrough(srv);
        const t = (performance.now() - t0) / 1000;
        samples.push({ t, rssMiB: rss, size, indexed, lagEntries: Math.max(0, size - indexed) });
        if (samples.length % 10 === 0)
          o.log(`  sustain t=${t.toFixed(0)} s: size ${size}, indexed ${indexed}, RSS ${rss.toFixed(0)} MiB`);
      } catch {
        sampleErrors++;
      }
    }
  })();
  const prober = (async () => {
    await sleep(o.warmupMs);
    while (!stop && o.probes !== false) {
      try {
        rywLoaded.push(await rywProbe(srv, r));
      } catch (err) {
        rywLoaded.push({ status: 0, waitMs: Number.NaN, covered: false, retryAfter: null, detail: (err as Error).message });
      }
      await sleep(2000);
    }
  })();
  const load = await throughput(srv, {
    clients: o.clients,
    batch: o.batch,
    withIds: true,
    warmupMs: o.warmupMs,
    durationMs: o.seconds * 1000,
    ...(o.rate ? { ratePerSec: o.rate } : {}),
  });
  stop = true;
  await Promise.all([sampler, prober]);

  // Catch-up after the load: how long until the index reaches the log's size at the end.
  const c0 = performance.now();
  let catchUpS = Number.NaN;
  try {
    const target = await logSize(srv);
    while ((performance.now() - c0) / 1000 < o.catchUpLimitS) {
      if ((await indexedThrough(srv)) >= target) {
        catchUpS = (performance.now() - c0) / 1000;
        break;
      }
      await sleep(100);
    }
  } catch {
    sampleErrors++;
  }
  const rywIdle: RywProbe[] = [];
  for (let i = 0; i < (o.probes === false ? 0 : 10); i++) rywIdle.push(await rywProbe(srv, r));

  const first = samples[0];
  const last = samples.at(-1);
  const ingestRate = first && last && last.t > first.t ? (last.size - first.size) / (last.t - first.t) : load.eventsPerSec;
  const indexRate = first && last && last.t > first.t ? (last.indexed - first.indexed) / (last.t - first.t) : Number.NaN;
  const lagS = (s: SustainSample) => s.lagEntries / ingestRate;
  const midT = first && last ? (first.t + last.t) / 2 : 0;
  const nearest = (t: number) =>
    samples.reduce((a, b) => (Math.abs(b.t - t) < Math.abs(a.t - t) ? b : a), samples[0] as SustainSample);
  // The second half of the run; all of it when that leaves fewer than 3 samples (a short run).
  const half = samples.filter((s) => s.t >= midT && Number.isFinite(s.rssMiB));
  const second = half.length >= 3 ? half : samples.filter((s) => Number.isFinite(s.rssMiB));
  const rssSlope = slope(
    second.map((s) => s.t),
    second.map((s) => s.rssMiB),
  );
  const rssMid = samples.length ? nearest(midT).rssMiB : Number.NaN;
  const halfS = first && last ? (last.t - first.t) / 2 : 0;
  const growth = (rssSlope * halfS) / rssMid;
  return {
    seconds: o.seconds,
    offeredRate: o.rate ?? null,
    load,
    ingestRate,
    indexRate,
    samples,
    rssStartMiB: first?.rssMiB ?? Number.NaN,
    rssMidMiB: rssMid,
    rssEndMiB: last?.rssMiB ?? Number.NaN,
    rssSlopeMiBPerMin: rssSlope * 60,
    rssGrowth: growth,
    memoryFlat: Number.isFinite(growth) && growth < FLAT_GROWTH,
    endLagEntries: last?.lagEntries ?? Number.NaN,
    endLagS: last ? lagS(last) : Number.NaN,
    maxLagS: samples.length ? Math.max(...samples.map(lagS)) : Number.NaN,
    catchUpS,
    rywLoaded,
    rywIdle,
    sampleErrors,
  };
}

/** One step of findHeldRate: a rate offered for a short run, and whether the index kept up. */
export interface HeldStep {
  rate: number;
  /** Events/s the clients had acknowledged. */
  taken: number;
  /** Entries/s the index indexed. */
  indexRate: number;
  endLagS: number;
  held: boolean;
}

/**
 * A step holds when the server acknowledged ≥ 97 % of the offered rate, the index indexed ≥ 97 % of
 * what was appended meanwhile (it is not falling behind), and it ended less than this behind.
 */
export const STEP_LAG_S = 1;

/**
 * The highest offered rate the server holds with its index keeping up: paced runs of `stepS`
 * seconds from `start`, each ×1.2 the last, until one does not hold (see STEP_LAG_S). The index
 * catches up between steps. Returns the steps; the last held one's rate is the answer.
 */
export async function findHeldRate(
  srv: SteleServer,
  o: { start: number; stepS: number; maxSteps: number; clients: number; batch: number; log: (s: string) => void },
): Promise<HeldStep[]> {
  const steps: HeldStep[] = [];
  let rate = o.start;
  for (let i = 0; i < o.maxSteps; i++) {
    const s = await sustain(srv, {
      seconds: o.stepS,
      clients: o.clients,
      batch: o.batch,
      warmupMs: 1000,
      catchUpLimitS: 300,
      log: () => {},
      rate,
      probes: false,
    });
    const taken = s.load.eventsPerSec;
    const held = taken >= 0.97 * rate && s.indexRate >= 0.97 * s.ingestRate && s.endLagS < STEP_LAG_S;
    steps.push({ rate, taken, indexRate: s.indexRate, endLagS: s.endLagS, held });
    o.log(
      `  held-rate step ${fmtRate(rate)} ev/s: acknowledged ${fmtRate(taken)}/s, indexed ${fmtRate(s.indexRate)}/s, ` +
        `index ${s.endLagS.toFixed(2)} s behind: ${held ? 'held' : 'not held'}`,
    );
    if (!held) break;
    rate = Math.round((rate * 1.2) / 500) * 500;
  }
  return steps;
}

const fmtRate = (n: number) => Math.round(n).toLocaleString('en-US');

export const rywMedianMs = (ps: readonly RywProbe[]) => median(ps.filter((p) => p.status === 200).map((p) => p.waitMs));
