/**
 * Query-store benchmark: `npm run bench:query` (builds, then runs this file). In one run:
 *   1. a query store of `--rows` generated events (default 10,000,000), built once with
 *      SqliteQueryStore.insert and cached under bench/.cache/ (see build.ts, gen.ts);
 *   2. first pages (50, newest first) of five query types, several values each, as the server runs
 *      them, next to the raw limit (the same SQL as a reused prepared statement);
 *   3. the peer: the same queries on a store of `--peer-rows` (1,000,000) with no secondary index
 *      and no FTS (brute-force scans, LIKE '%word%'), next to Stele on a store of the same rows;
 *   4. the export rate: `--export-rows` (1,000,000) rows paged through SqliteQueryStore.searchEntries as JSON lines;
 *   5. the same rows cut into partitions as the server keeps them (PartitionedQueryStore), every case
 *      through QueryStore.search on the partitions next to the one file, interleaved;
 *   6. end to end on a real data directory: `--e2e-events` (200,000) appended, then exported and
 *      searched through the index thread (leaves read from the tiles and decrypted).
 * Prints the section and rewrites only the `<!-- bench:query -->` section of BENCHMARKS.md.
 *
 * Options: --rows N, --rounds N (40), --warmup N (3), --peer-rows N, --peer-rounds N (10),
 * --export-rows N, --export-repeats N (3), --e2e-events N (0 skips), --build-only, --no-write,
 * --report-only (re-render the last results of --rows N from bench/.cache without measuring).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { PartitionedQueryStore } from '../../src/storage/fs/partitioned-query-store.js';
import { SqliteQueryStore } from '../../src/storage/fs/query-store.js';
import { median } from '../ingest/stats.js';
import { CACHE_DIR, partitionedStore, peerStore, type StoreFile, steleStore } from './build.js';
import { compileQuery } from './compile.js';
import { e2e } from './e2e.js';
import { exportRaw, exportStele } from './export.js';
import { DAYS, END_MS, GEN_VERSION, START_MS } from './gen.js';
import {
  type Case,
  type PeerCase,
  peerCase,
  peerRunner,
  prepareCases,
  rawRunner,
  runRounds,
  searchRunner,
  steleRunner,
  summarise,
} from './measure.js';
import { QUERY_TYPES } from './queries.js';
import { type CaseResult, type Results, renderSection, writeSection } from './report.js';

const log = (s: string) => process.stderr.write(`${s}\n`);

function args() {
  const a = process.argv.slice(2);
  const num = (name: string, dflt: number) => {
    const i = a.indexOf(name);
    if (i < 0) return dflt;
    const v = Number(String(a[i + 1]).replaceAll('_', ''));
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${name} needs a whole number, not ${a[i + 1]}`);
    return v;
  };
  const rows = num('--rows', 10_000_000);
  return {
    rows,
    rounds: num('--rounds', 40),
    warmup: num('--warmup', 3),
    peerRows: Math.min(rows, num('--peer-rows', 1_000_000)),
    peerRounds: num('--peer-rounds', 10),
    exportRows: Math.min(rows, num('--export-rows', 1_000_000)),
    exportRepeats: num('--export-repeats', 3),
    e2eEvents: num('--e2e-events', 200_000),
    buildOnly: a.includes('--build-only'),
    write: !a.includes('--no-write'),
    reportOnly: a.includes('--report-only'),
  };
}
export type Config = ReturnType<typeof args>;

function sh(cmd: string, argv: string[], cwd?: string): string {
  try {
    return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], cwd }).trim();
  } catch {
    return 'n/a';
  }
}

function pressure(): string {
  const one = (r: string) => {
    try {
      return /^some avg10=([\d.]+)/m.exec(readFileSync(`/proc/pressure/${r}`, 'utf8'))?.[1] ?? null;
    } catch {
      return null;
    }
  };
  const cpu = one('cpu');
  return cpu === null ? '' : `; CPU pressure (some, avg10) ${cpu} %, IO pressure ${one('io') ?? 'n/a'} %`;
}
export const loadNow = () =>
  `${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}${pressure()}`;

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function machine() {
  const lscpu = sh('lscpu', []);
  const field = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(lscpu)?.[1]?.trim() ?? 'n/a';
  const dirty = sh('git', ['status', '--porcelain', '--', 'src'], ROOT);
  const sqlite = new Database(':memory:');
  const sqliteVersion = (sqlite.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  sqlite.close();
  const bs = JSON.parse(readFileSync(join(ROOT, 'node_modules/better-sqlite3/package.json'), 'utf8')) as { version: string };
  const fsLine = sh('df', ['-T', CACHE_DIR]).split('\n')[1]?.split(/\s+/);
  return {
    model: field('Model name'),
    cpus: field('CPU\\(s\\)'),
    coresPerSocket: field('Core\\(s\\) per socket'),
    threadsPerCore: field('Thread\\(s\\) per core'),
    memGiB: (os.totalmem() / 2 ** 30).toFixed(1),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    betterSqlite3: bs.version,
    sqlite: sqliteVersion,
    fs: fsLine ? `${fsLine[1]} on ${fsLine[0]}` : 'n/a',
    commit: `${sh('git', ['rev-parse', '--short', 'HEAD'], ROOT)}${dirty && dirty !== 'n/a' ? ` + ${dirty.split('\n').length} uncommitted change(s) under src/` : ''}`,
    date: new Date().toISOString(),
    load: loadNow(),
  };
}
export type Machine = ReturnType<typeof machine>;

/** Per-call cost of the two steps the raw limit skips: compiling the query and preparing its SQL. */
function overheads(cases: readonly Case[], raw: Database.Database): { compileUs: number; prepareUs: number } {
  const compile: number[] = [];
  const prepare: number[] = [];
  for (const c of cases) {
    for (let i = 0; i < 50; i++) compileQuery(c.value, Date.now());
    let t = performance.now();
    for (let i = 0; i < 200; i++) compileQuery(c.value, Date.now());
    compile.push(((performance.now() - t) * 1000) / 200);
    t = performance.now();
    for (let i = 0; i < 200; i++) raw.prepare(c.sql);
    prepare.push(((performance.now() - t) * 1000) / 200);
  }
  return { compileUs: median(compile), prepareUs: median(prepare) };
}

/** Rows the first step of a plan walks, where that is simply countable (an index on outcome). */
function visited(db: Database.Database, c: Case): number | null {
  const m = /outcome:(\w+)/.exec(c.value);
  if (m && c.plan.some((l) => l.includes('INDEX entries_outcome'))) {
    return (db.prepare('SELECT count(*) AS n FROM entries WHERE outcome = ?').get(m[1]) as { n: number }).n;
  }
  return null;
}

function resultsPath(rows: number): string {
  return join(CACHE_DIR, `query-results-${rows}.json`);
}

async function main(): Promise<void> {
  const cfg = args();
  if (cfg.reportOnly) {
    const r = JSON.parse(readFileSync(resultsPath(cfg.rows), 'utf8')) as Results;
    const md = renderSection(r);
    if (cfg.write) writeSection(md);
    process.stdout.write(md);
    return;
  }
  const started = performance.now();
  const m = machine();
  log(
    `stele query bench: ${m.model}, ${m.cpus} CPUs, ${m.memGiB} GiB, node ${m.node}, SQLite ${m.sqlite}, ${m.commit}; load ${m.load}`,
  );

  const store = await steleStore(cfg.rows, loadNow);
  const small = cfg.peerRows < cfg.rows ? await steleStore(cfg.peerRows, loadNow) : store;
  const peer = await peerStore(cfg.peerRows, loadNow);
  const parts = await partitionedStore(cfg.rows, loadNow);
  if (cfg.buildOnly) return;

  // 1. Stele and the raw limit on the main store.
  const idx = new SqliteQueryStore(store.path);
  const raw = new Database(store.path);
  const cases = prepareCases(idx, raw, QUERY_TYPES);
  const over = overheads(cases, raw);
  log(`${cases.length} queries; ${cfg.warmup} warm-up + ${cfg.rounds} measured rounds, Stele and raw interleaved`);
  const t1 = performance.now();
  const s = await runRounds(cases, { stele: steleRunner(idx), raw: rawRunner(raw) }, cfg.rounds, cfg.warmup, 0x9e1, (r) => {
    if ((r + 1) % 10 === 0) log(`  round ${r + 1}/${cfg.warmup + cfg.rounds}, ${((performance.now() - t1) / 1000).toFixed(0)} s`);
  });
  const caseResults: CaseResult[] = cases.map((c) => ({
    type: c.type.key,
    value: c.value,
    matches: c.matches,
    page: c.firstPage.length,
    visited: visited(raw, c),
    sql: c.sql,
    plan: c.plan,
    stele: summarise(s.get('stele')?.get(c) ?? []),
    raw: summarise(s.get('raw')?.get(c) ?? []),
  }));
  const types = QUERY_TYPES.map((t) => {
    const mine = cases.filter((c) => c.type === t);
    return {
      key: t.key,
      label: t.label,
      kind: t.kind,
      targetMs: t.targetMs,
      stele: summarise(mine.flatMap((c) => s.get('stele')?.get(c) ?? [])),
      raw: summarise(mine.flatMap((c) => s.get('raw')?.get(c) ?? [])),
    };
  });
  for (const t of types) {
    log(
      `  ${t.label}: Stele median ${t.stele.median.toFixed(2)} p95 ${t.stele.p95.toFixed(2)} max ${t.stele.max.toFixed(1)} ms; raw median ${t.raw.median.toFixed(2)} p95 ${t.raw.p95.toFixed(2)} ms`,
    );
  }

  // 2. Export rate on the main store.
  log(`export: ${cfg.exportRows} rows, ${cfg.exportRepeats} repetitions`);
  const ex: Results['export'] = { rows: cfg.exportRows, stele: [], steleNoFormat: [], raw: [] };
  for (let i = 0; i < cfg.exportRepeats; i++) {
    ex.stele.push(exportStele(idx, cfg.exportRows));
    ex.raw.push(exportRaw(raw, cfg.exportRows));
    ex.steleNoFormat.push(exportStele(idx, cfg.exportRows, false));
    log(
      `  ${i + 1}: SqliteQueryStore.searchEntries + JSON lines ${Math.round(ex.stele.at(-1)?.rowsPerS ?? 0)} rows/s; raw ${Math.round(ex.raw.at(-1)?.rowsPerS ?? 0)}; no formatting ${Math.round(ex.steleNoFormat.at(-1)?.rowsPerS ?? 0)}`,
    );
  }
  idx.close();
  raw.close();

  // 3. The peer, next to Stele on a store of the same rows.
  log(`peer: ${cfg.peerRows} rows, ${cfg.peerRounds} rounds`);
  const sIdx = small === store ? new SqliteQueryStore(store.path) : new SqliteQueryStore(small.path);
  const sRaw = new Database(small.path);
  const pDb = new Database(peer.path);
  const sCases = prepareCases(sIdx, sRaw, QUERY_TYPES);
  const pCases = new Map<Case, PeerCase>(sCases.map((c) => [c, peerCase(pDb, c)]));
  const samePage = new Map<Case, { same: boolean; overlap: number; count: number }>();
  const pRun = peerRunner(pDb, pCases);
  for (const c of sCases) {
    const got = (await pRun(c)).map((r) => r.idx);
    const mine = new Set(c.firstPage);
    samePage.set(c, {
      same: got.join() === c.firstPage.join(),
      overlap: got.filter((i) => mine.has(i)).length,
      count: got.length,
    });
  }
  const t3 = performance.now();
  const ps = await runRounds(sCases, { stele: steleRunner(sIdx), peer: pRun }, cfg.peerRounds, 1, 0x9e2, (r) => {
    log(`  round ${r + 1}/${cfg.peerRounds + 1}, ${((performance.now() - t3) / 1000).toFixed(0)} s`);
  });
  const peerResults: Results['peer'] = {
    rows: cfg.peerRows,
    rounds: cfg.peerRounds,
    types: QUERY_TYPES.map((t) => {
      const mine = sCases.filter((c) => c.type === t);
      return {
        key: t.key,
        stele: summarise(mine.flatMap((c) => ps.get('stele')?.get(c) ?? [])),
        peer: summarise(mine.flatMap((c) => ps.get('peer')?.get(c) ?? [])),
      };
    }),
    cases: sCases.map((c) => ({
      type: c.type.key,
      value: c.value,
      matches: c.matches,
      stele: summarise(ps.get('stele')?.get(c) ?? []),
      peer: summarise(ps.get('peer')?.get(c) ?? []),
      peerPlan: pCases.get(c)?.plan ?? [],
      steleFirstPage: c.firstPage.length,
      ...(samePage.get(c) as { same: boolean; overlap: number; count: number }),
    })),
  };
  sIdx.close();
  sRaw.close();
  pDb.close();

  // 4. Partitions: the same cases through QueryStore.search, one file and partitioned, interleaved.
  log(`partitions: ${parts.partitionBytes.length} files, ${cfg.peerRounds} rounds`);
  const one = new SqliteQueryStore(store.path);
  const cut = new PartitionedQueryStore(parts.path);
  const oneRun = searchRunner(one);
  const cutRun = searchRunner(cut);
  for (const c of cases) {
    const [a, b] = [(await oneRun(c)).map((x) => x.idx), (await cutRun(c)).map((x) => x.idx)];
    if (a.join() !== b.join() || a.join() !== c.firstPage.join())
      throw new Error(`partitioned and one-file search disagree on ${c.value}: ${b.slice(0, 5)} vs ${a.slice(0, 5)}`);
  }
  const t4 = performance.now();
  const qs = await runRounds(cases, { one: oneRun, partitioned: cutRun }, cfg.peerRounds, 1, 0x9e3, (r) => {
    log(`  round ${r + 1}/${cfg.peerRounds + 1}, ${((performance.now() - t4) / 1000).toFixed(0)} s`);
  });
  await one.close();
  await cut.close();
  const partitionsResult: Results['partitions'] = {
    rounds: cfg.peerRounds,
    build: parts,
    types: QUERY_TYPES.map((t) => {
      const mine = cases.filter((c) => c.type === t);
      return {
        key: t.key,
        one: summarise(mine.flatMap((c) => qs.get('one')?.get(c) ?? [])),
        partitioned: summarise(mine.flatMap((c) => qs.get('partitioned')?.get(c) ?? [])),
      };
    }),
    cases: cases.map((c) => ({
      type: c.type.key,
      value: c.value,
      matches: c.matches,
      one: summarise(qs.get('one')?.get(c) ?? []),
      partitioned: summarise(qs.get('partitioned')?.get(c) ?? []),
    })),
  };

  // 5. End to end.
  let e2eResult: Results['e2e'] = null;
  if (cfg.e2eEvents > 0) {
    log(`e2e: ${cfg.e2eEvents} events through openStele`);
    e2eResult = await e2e(cfg.e2eEvents, { repeats: cfg.exportRepeats, samples: 30 });
  }

  const r: Results = {
    machine: m,
    config: cfg,
    genVersion: GEN_VERSION,
    span: { start: new Date(START_MS).toISOString(), end: new Date(END_MS).toISOString(), days: DAYS },
    store: store as StoreFile,
    small: small === store ? null : small,
    peerStore: peer,
    overhead: over,
    types,
    cases: caseResults,
    peer: peerResults,
    partitions: partitionsResult,
    export: ex,
    e2e: e2eResult,
    loadEnd: loadNow(),
    elapsedS: (performance.now() - started) / 1000,
  };
  writeFileSync(resultsPath(cfg.rows), `${JSON.stringify(r, null, 1)}\n`);
  const md = renderSection(r);
  if (cfg.write) {
    writeSection(md);
    log(`wrote the bench:query section of ${join(ROOT, 'BENCHMARKS.md')}`);
  }
  process.stdout.write(md);
  if (!existsSync(resultsPath(cfg.rows))) throw new Error('results not saved');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(`bench:query failed: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
