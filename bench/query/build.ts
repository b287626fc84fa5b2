/**
 * Builds (or reuses) the benchmark's query stores under bench/.cache/:
 *
 * - the Stele store: the real schema, filled with `SqliteQueryStore.insert` in transactions of 10,000
 *   rows (as the index thread does, only bigger), then the planner statistics as `stele reindex`
 *   leaves them (a count over everything, then `SqliteQueryStore.optimize()`, i.e. PRAGMA optimize);
 * - the peer store: the same rows in one plain table (the indexed columns plus the full-text text
 *   as a column) with no secondary index and no FTS, for the naive comparison.
 *
 * File names carry the generator version, a hash of the schema SQL and the row count, so a change
 * to either rebuilds; a store is built under a temporary name and renamed when complete.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { PARTITION_ENTRIES, PartitionedQueryStore } from '../../src/storage/fs/partitioned-query-store.js';
import { CODED_COLUMNS, SCHEMA_SQL, SCHEMA_VERSION } from '../../src/storage/fs/query-schema.js';
import { COLUMNS, SqliteQueryStore } from '../../src/storage/fs/query-store.js';
import { compileQuery } from './compile.js';
import { EventStream, GEN_VERSION, type GenRow } from './gen.js';

export const CACHE_DIR = fileURLToPath(new URL('../../../bench/.cache/', import.meta.url));
export const BATCH = 10_000;

const schemaHash = () => createHash('sha256').update(SCHEMA_SQL).digest('hex').slice(0, 8);

export interface BuildInfo {
  path: string;
  rows: number;
  /** Wall time of the build (generation overlapped on a worker thread), seconds. */
  buildS: number;
  /** Time inside SqliteQueryStore.insert (or the peer's inserts), seconds. */
  insertS: number;
  /** Time of the count + PRAGMA optimize after the load, seconds. */
  optimizeS: number;
  rowsPerS: number;
  /** Insert rate of each tenth of the build (rows/s inside insert), to show how it changes as the store grows. */
  rateByTenth: number[];
  builtAt: string;
  /** Load average while building. */
  load: string;
  /** Rows of sqlite_stat1 / sqlite_stat4 after optimize (0: the planner has no statistics). */
  stat1: number;
  stat4: number;
}

export interface StoreFile extends BuildInfo {
  cached: boolean;
  /** Database file size now (bytes). */
  bytes: number;
  /** Bytes per table and index (dbstat), largest first. */
  objects: { name: string; bytes: number }[];
}

/** The columns of `entries` (IndexRow), in schema order. */
export const ROW_COLUMNS = COLUMNS;

const files = (p: string) => [p, `${p}-wal`, `${p}-shm`];
const log = (s: string) => process.stderr.write(`${s}\n`);

export function storePath(rows: number): string {
  return join(CACHE_DIR, `stele-g${GEN_VERSION}-s${SCHEMA_VERSION}-${schemaHash()}-${rows}.db`);
}
export function partitionsPath(rows: number): string {
  return join(CACHE_DIR, `parts-g${GEN_VERSION}-s${SCHEMA_VERSION}-${schemaHash()}-${PARTITION_ENTRIES}-${rows}`);
}
/** Bump when the peer table changes. */
const PEER_VERSION = 3;
export function peerPath(rows: number): string {
  return join(CACHE_DIR, `peer-g${GEN_VERSION}-p${PEER_VERSION}-${rows}.db`);
}

function ensureCacheDir(): void {
  mkdirSync(CACHE_DIR, { recursive: true });
  const gi = join(CACHE_DIR, '.gitignore');
  if (!existsSync(gi)) writeFileSync(gi, '*\n');
}

function describe(path: string, info: BuildInfo, cached: boolean): StoreFile {
  const db = new Database(path);
  try {
    const objects = (
      db.prepare('SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC').all() as {
        name: string;
        bytes: number;
      }[]
    ).filter((o) => o.bytes > 64 * 1024);
    return { ...info, cached, bytes: statSync(path).size, objects };
  } finally {
    db.close();
  }
}

/** Streams `total` rows from the generator worker to `sink`, batch by batch, two batches ahead. */
async function generate(total: number, sink: (rows: GenRow[], upto: number) => void): Promise<void> {
  const w = new Worker(new URL('./gen-worker.js', import.meta.url), { workerData: { total, batch: BATCH } });
  try {
    await new Promise<void>((resolve, reject) => {
      let asked = 0;
      const ask = () => {
        if (asked * BATCH < total) {
          asked++;
          w.postMessage('more');
        }
      };
      w.on('error', reject);
      w.on('message', (m: { rows: GenRow[]; upto: number }) => {
        ask();
        try {
          sink(m.rows, m.upto);
        } catch (err) {
          reject(err);
          return;
        }
        if (m.upto >= total) resolve();
      });
      ask();
      ask();
    });
  } finally {
    await w.terminate();
  }
}

function progress(label: string, total: number, t0: number) {
  let nextReport = 0;
  return (done: number) => {
    if (done < nextReport && done < total) return;
    nextReport = done + Math.max(BATCH, Math.floor(total / 20));
    const s = (performance.now() - t0) / 1000;
    const rate = done / s;
    log(
      `  ${label}: ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')} rows, ${s.toFixed(0)} s, ${Math.round(rate).toLocaleString('en-US')} rows/s, ETA ${((total - done) / rate).toFixed(0)} s`,
    );
  };
}

/**
 * `rows` generated rows through `insert`, batch by batch: the time inside insert, and the insert
 * rate of each tenth of the fill (to show how it changes as the store grows).
 */
async function fill(
  rows: number,
  report: (done: number) => void,
  insert: (batch: GenRow[], upto: number) => unknown,
): Promise<{ insertMs: number; tenths: number[] }> {
  let insertMs = 0;
  const tenths: number[] = [];
  let tenthMs = 0;
  let tenthRows = 0;
  await generate(rows, (batch, upto) => {
    const a = performance.now();
    insert(batch, upto);
    const d = performance.now() - a;
    insertMs += d;
    tenthMs += d;
    tenthRows += batch.length;
    if (tenthRows >= rows / 10 || upto >= rows) {
      tenths.push(tenthRows / (tenthMs / 1000));
      tenthMs = 0;
      tenthRows = 0;
    }
    report(upto);
  });
  return { insertMs, tenths };
}

/** The Stele store of `rows` generated events: reused from the cache, or built. */
export async function steleStore(rows: number, loadNow: () => string): Promise<StoreFile> {
  ensureCacheDir();
  const path = storePath(rows);
  const meta = `${path}.json`;
  if (existsSync(path) && existsSync(meta)) {
    log(`query store: reusing ${path}`);
    return describe(path, JSON.parse(readFileSync(meta, 'utf8')) as BuildInfo, true);
  }
  const tmp = `${path}.building`;
  for (const f of files(tmp)) rmSync(f, { force: true });
  log(`query store: building ${rows.toLocaleString('en-US')} rows into ${tmp}`);
  const loadAtStart = loadNow();
  const t0 = performance.now();
  const store = new SqliteQueryStore(tmp);
  const { insertMs, tenths } = await fill(rows, progress('build', rows, t0), (batch, upto) =>
    store.insertSync({ rows: batch, upto }),
  );
  // What `stele reindex` does after loading: a count over everything, then PRAGMA optimize.
  const o = performance.now();
  const n = store.countEntries(compileQuery('', Date.now()));
  if (n !== rows) throw new Error(`built ${n} rows, expected ${rows}`);
  store.optimize();
  const optimizeMs = performance.now() - o;
  store.close();
  const buildS = (performance.now() - t0) / 1000;
  const stats = new Database(tmp); // read-write, so that closing it removes the WAL file again
  const count = (t: string) => {
    try {
      return (stats.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n;
    } catch {
      return 0; // no such table: never analyzed
    }
  };
  const stat1 = count('sqlite_stat1');
  const stat4 = count('sqlite_stat4');
  stats.close();
  for (const f of files(tmp).slice(1)) if (existsSync(f)) throw new Error(`${f} left behind after close`);
  renameSync(tmp, path);
  const info: BuildInfo = {
    path,
    rows,
    buildS,
    insertS: insertMs / 1000,
    optimizeS: optimizeMs / 1000,
    rowsPerS: rows / buildS,
    rateByTenth: tenths,
    builtAt: new Date().toISOString(),
    load: `${loadAtStart} → ${loadNow()}`,
    stat1,
    stat4,
  };
  writeFileSync(meta, `${JSON.stringify(info, null, 2)}\n`);
  log(
    `query store: ${rows} rows in ${buildS.toFixed(0)} s (${Math.round(info.rowsPerS)} rows/s); optimize ${info.optimizeS.toFixed(1)} s; stat1 ${stat1} rows, stat4 ${stat4}`,
  );
  return describe(path, info, false);
}

/**
 * The peer: one plain table with the same columns as `entries` plus the full-text text as a
 * column, rows in the same order, and no secondary index and no FTS. A query against it is a scan
 * from the newest row down (the rowid order the queries ask for) until 50 rows match.
 */
export async function peerStore(rows: number, loadNow: () => string): Promise<StoreFile> {
  ensureCacheDir();
  const path = peerPath(rows);
  const meta = `${path}.json`;
  if (existsSync(path) && existsSync(meta)) {
    log(`peer store: reusing ${path}`);
    return describe(path, JSON.parse(readFileSync(meta, 'utf8')) as BuildInfo, true);
  }
  const tmp = `${path}.building`;
  for (const f of files(tmp)) rmSync(f, { force: true });
  log(`peer store: building ${rows.toLocaleString('en-US')} rows into ${tmp}`);
  const loadAtStart = loadNow();
  const t0 = performance.now();
  const db = new Database(tmp);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  // The entries table of the real schema, without its indexes, plus the text.
  const table = /CREATE TABLE IF NOT EXISTS entries \(([\s\S]*?)\) STRICT;/.exec(SCHEMA_SQL)?.[1];
  if (!table) throw new Error('cannot find the entries table in SCHEMA_SQL');
  // The peer keeps every value as it is: the columns Stele stores as term ids are TEXT here.
  const plain = table.replace(/--.*$/gm, '').replace(new RegExp(`\\b(${CODED_COLUMNS.join('|')}) INTEGER`, 'g'), '$1 TEXT');
  db.exec(`CREATE TABLE entries (${plain.trim()},\n  text TEXT NOT NULL) STRICT`);
  const cols = [...ROW_COLUMNS, 'text'];
  const ins = db.prepare(`INSERT INTO entries (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`);
  const tx = db.transaction((batch: GenRow[]) => {
    for (const { row, text } of batch) ins.run({ ...row, text });
  });
  let insertMs = 0;
  const report = progress('peer', rows, t0);
  const stream = new EventStream(rows);
  while (stream.index < rows) {
    const batch = stream.rows(BATCH);
    const a = performance.now();
    tx(batch);
    insertMs += performance.now() - a;
    report(stream.index);
  }
  db.close();
  renameSync(tmp, path);
  const buildS = (performance.now() - t0) / 1000;
  const info: BuildInfo = {
    path,
    rows,
    buildS,
    insertS: insertMs / 1000,
    optimizeS: 0,
    rowsPerS: rows / buildS,
    rateByTenth: [],
    builtAt: new Date().toISOString(),
    load: `${loadAtStart} → ${loadNow()}`,
    stat1: 0,
    stat4: 0,
  };
  writeFileSync(meta, `${JSON.stringify(info, null, 2)}\n`);
  return describe(path, info, false);
}

export interface PartitionsInfo extends BuildInfo {
  /** Bytes of every partition file, in log order. */
  partitionBytes: number[];
}

const partitionFiles = (dir: string) =>
  readdirSync(dir)
    .filter((f) => /^p\d+\.db$/.test(f))
    .sort();

/**
 * The same rows as steleStore, as the server stores them: a PartitionedQueryStore (one file per
 * PARTITION_ENTRIES, each optimized when the next begins, the newest at the end), filled in the
 * same 10,000-row batches. Reused from the cache like the others.
 */
export async function partitionedStore(rows: number, loadNow: () => string): Promise<PartitionsInfo> {
  ensureCacheDir();
  const path = partitionsPath(rows);
  const meta = `${path}.json`;
  const sizes = () => partitionFiles(path).map((f) => statSync(join(path, f)).size);
  if (existsSync(path) && existsSync(meta)) {
    log(`partitioned store: reusing ${path}`);
    return { ...(JSON.parse(readFileSync(meta, 'utf8')) as BuildInfo), partitionBytes: sizes() };
  }
  const tmp = `${path}.building`;
  rmSync(tmp, { recursive: true, force: true });
  log(`partitioned store: building ${rows.toLocaleString('en-US')} rows into ${tmp}`);
  const loadAtStart = loadNow();
  const t0 = performance.now();
  const store = new PartitionedQueryStore(tmp);
  const pending: Promise<void>[] = [];
  // insert is async in name only on this driver: the work is done before it returns.
  const { insertMs, tenths } = await fill(rows, progress('partitions', rows, t0), (batch, upto) =>
    pending.push(store.insert({ rows: batch, upto })),
  );
  await Promise.all(pending);
  const o = performance.now();
  await store.optimize();
  const optimizeMs = performance.now() - o;
  await store.close();
  renameSync(tmp, path);
  const buildS = (performance.now() - t0) / 1000;
  const info: BuildInfo = {
    path,
    rows,
    buildS,
    insertS: insertMs / 1000,
    optimizeS: optimizeMs / 1000,
    rowsPerS: rows / buildS,
    rateByTenth: tenths,
    builtAt: new Date().toISOString(),
    load: `${loadAtStart} → ${loadNow()}`,
    stat1: 0,
    stat4: 0,
  };
  writeFileSync(meta, `${JSON.stringify(info, null, 2)}\n`);
  log(`partitioned store: ${rows} rows in ${buildS.toFixed(0)} s (${Math.round(info.rowsPerS)} rows/s)`);
  return { ...info, partitionBytes: sizes() };
}
