/**
 * Index-rate benchmark (issue 12, target 2): `npm run bench:index`. How many events a second the
 * query store indexes on its own, the whole step the index thread runs per entry included:
 * openEntry (decode the leaf, unwrap nothing (keys cached), AES-256-GCM decrypt with the tag
 * checked, parse), indexRow, ftsText, and SqliteQueryStore.insert in the thread's batch size —
 * at an empty store and with 1M and 10M entries already stored. In the same run, for comparison:
 *
 * - the raw limit: the same rows as plain INSERTs into a table with no index and no FTS;
 * - the old schema (version 3, bench/index/schemas.ts) and variants of the new one, rows only
 *   (insert without openEntry), so the table shows what each index and FTS option costs;
 * - openEntry alone (CPU only).
 *
 * Stores with entries already stored are built by direct inserts (rows of the query benchmark's
 * generator, cycled with times moved 90 days a cycle, indexes created after the load, then
 * PRAGMA optimize) and cached under bench/.cache/; each measurement runs on a fresh copy.
 * Rewrites only the `<!-- bench:index -->` section of BENCHMARKS.md.
 *
 * Options: --fill N (the partition filled; 0 skips), --fill-fts default,am16 (FTS5 settings of the fills), --sizes 0,1000000,10000000, --batch N (1024: the catch-up chunk of src/app/stele.ts),
 * --batches N (60 measured, after 4 warm-up), --variants all|name,name, --old-sizes (sizes the old
 * schema is measured at; default those up to 1M: its 10M store takes long to build), --no-write.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { buildSealedLeaf, parseMicros } from '../../src/event/record.js';
import { ftsText, type IndexRow, indexNote, indexRow, readNote } from '../../src/event/searchable.js';
import type { Event, Ingest, LeafRecord } from '../../src/event/types.js';
import { erasureRef } from '../../src/index/erasure.js';
import { openEntry } from '../../src/index/reader.js';
import { BATCH } from '../../src/index/worker.js';
import { KeyStore, utcDay } from '../../src/keys/keystore.js';
import { masterKeyId } from '../../src/keys/master.js';
import { seal } from '../../src/keys/seal.js';
import { PARTITION_ENTRIES, PartitionedQueryStore } from '../../src/storage/fs/partitioned-query-store.js';
import { SCHEMA_SQL, SCHEMA_VERSION } from '../../src/storage/fs/query-schema.js';
import { COLUMNS, SqliteQueryStore } from '../../src/storage/fs/query-store.js';
import { Terms } from '../../src/storage/fs/query-terms.js';
import { MemoryKeyRecords } from '../../src/storage/memory/keys.js';
import { fmtInt, median } from '../ingest/stats.js';
import { DAYS, EventStream, GEN_VERSION, type GenRow, SEED } from '../query/gen.js';
import { BENCHMARKS_MD, sectionMarkers, writeSection } from '../section.js';
import { VARIANTS, type Variant } from './schemas.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CACHE_DIR = join(ROOT, 'bench/.cache');
const { begin: BEGIN, end: END } = sectionMarkers('index');
const TARGET = 50_000;
/** Rows generated once and cycled to fill bigger stores. */
const BASE = 1_000_000;
const SPAN_MS = DAYS * 86_400_000;
const WARMUP = 4;
const log = (s: string) => process.stderr.write(`${s}\n`);

function args() {
  const a = process.argv.slice(2);
  const opt = (name: string) => {
    const i = a.indexOf(name);
    return i < 0 ? undefined : String(a[i + 1]);
  };
  const nums = (s: string) => s.split(',').map((x) => Number(x.replaceAll('_', '')));
  const sizes = nums(opt('--sizes') ?? '0,1000000,10000000');
  return {
    sizes,
    oldSizes: opt('--old-sizes') ? nums(opt('--old-sizes') as string) : sizes.filter((n) => n <= 1_000_000),
    batch: Number(opt('--batch') ?? 1024),
    batches: Number(opt('--batches') ?? 60),
    variants: opt('--variants') ?? 'all',
    fill: Number(opt('--fill') ?? PARTITION_ENTRIES),
    fillFts: (opt('--fill-fts') ?? 'default,am16').split(',') as (keyof typeof FILL_FTS)[],
    write: !a.includes('--no-write'),
  };
}

const sh = (cmd: string, argv: string[]) => {
  try {
    return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'n/a';
  }
};

function machine(): string {
  const cpu = os.cpus()[0]?.model.trim() ?? 'cpu';
  const sqlite = (new Database(':memory:').prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  const load = os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  return `${cpu}, ${os.cpus().length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}, SQLite ${sqlite}, ${sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'])}; load ${load}`;
}

// ---- rows -------------------------------------------------------------------------------------

/** Row `i` of a store: base row i mod BASE, its times moved by whole 90-day cycles. */
function rowAt(base: GenRow[], i: number): GenRow {
  const g = base[i % BASE] as GenRow;
  const shift = Math.floor(i / BASE) * SPAN_MS * 1000;
  return { row: { ...g.row, idx: i, time: g.row.time + shift, received: g.row.received + shift }, text: g.text };
}

function baseRows(): GenRow[] {
  const t = performance.now();
  const rows = new EventStream(BASE).rows(BASE);
  log(`generated ${fmtInt(BASE)} base rows in ${((performance.now() - t) / 1000).toFixed(0)} s`);
  return rows;
}

// ---- stores with entries already stored --------------------------------------------------------

const hash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 8);
const withoutIndexes = (sql: string) =>
  sql
    .split('\n')
    .filter((l) => !l.startsWith('CREATE INDEX'))
    .join('\n');

/** A store of `n` rows under schema `sql`, from the cache or built by direct inserts (seconds it took). */
function prefilled(sql: string, n: number, base: GenRow[]): { path: string; buildS: number; cached: boolean } {
  mkdirSync(CACHE_DIR, { recursive: true });
  const gi = join(CACHE_DIR, '.gitignore');
  if (!existsSync(gi)) writeFileSync(gi, '*\n');
  const path = join(CACHE_DIR, `index-g${GEN_VERSION}-${hash(sql)}-${n}.db`);
  if (existsSync(path) && existsSync(`${path}.json`)) {
    return { path, buildS: (JSON.parse(readFileSync(`${path}.json`, 'utf8')) as { buildS: number }).buildS, cached: true };
  }
  const tmp = `${path}.building`;
  for (const f of [tmp, `${tmp}-wal`, `${tmp}-shm`]) rmSync(f, { force: true });
  log(`building ${fmtInt(n)} rows into ${tmp}`);
  const t0 = performance.now();
  const db = new Database(tmp);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -262144');
  db.exec(withoutIndexes(sql));
  const ins = db.prepare(`INSERT INTO entries (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`);
  const text = sql.includes('fts5') ? db.prepare('INSERT INTO fts (rowid, text) VALUES (?, ?)') : null;
  const w = rowWriter(db, sql);
  const CHUNK = 100_000;
  for (let at = 0; at < n; at += CHUNK) {
    db.transaction(() => {
      for (let i = at; i < Math.min(n, at + CHUNK); i++) {
        const r = rowAt(base, i);
        ins.run(w.row(r.row));
        text?.run(i, r.text);
      }
      w.flush();
    })();
    if ((at / CHUNK) % 10 === 9) log(`  ${fmtInt(at + CHUNK)} rows, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  db.exec(sql); // the indexes, over the whole table at once
  db.pragma('optimize');
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  renameSync(tmp, path);
  const buildS = (performance.now() - t0) / 1000;
  writeFileSync(`${path}.json`, `${JSON.stringify({ buildS, builtAt: new Date().toISOString() })}\n`);
  log(`  built in ${buildS.toFixed(0)} s (${(statSync(path).size / 2 ** 20).toFixed(0)} MiB)`);
  return { path, buildS, cached: false };
}

/**
 * How rows go into a schema's `entries`: through `terms` where the schema has them (the store's,
 * schema 5 on), as SqliteQueryStore.insert does, else as they are (the old schema, text variants).
 * `flush` writes the counted uses, before each commit.
 */
function rowWriter(db: Database.Database, sql: string): { row: (r: IndexRow) => unknown[]; flush: () => void } {
  if (!/CREATE TABLE IF NOT EXISTS terms/.test(sql)) return { row: (r) => COLUMNS.map((c) => r[c]), flush: () => {} };
  const terms = new Terms(db);
  return { row: (r) => terms.values(r), flush: () => terms.flush() };
}

/** A fresh copy of the prefilled store (or an empty file for n = 0) to measure on. */
function scratch(sql: string, n: number, base: GenRow[]): string {
  const path = join(CACHE_DIR, 'index-measure.db');
  mkdirSync(CACHE_DIR, { recursive: true }); // a fresh clone has none before the first store is built
  for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
  if (n > 0) copyFileSync(prefilled(sql, n, base).path, path);
  return path;
}

// ---- sealed leaves ------------------------------------------------------------------------------

interface Leaves {
  keys: KeyStore;
  leaves: Buffer[];
  /** Each leaf's index note, as the ingest worker that sealed it makes it (none for the log's own events). */
  notes: (Buffer | undefined)[];
}

/** `count` real sealed leaves (encrypted as the server seals them), times past a store of n entries. */
async function sealedLeaves(count: number, n: number): Promise<Leaves> {
  const master = Buffer.alloc(32, 7);
  const keys = await KeyStore.open(new MemoryKeyRecords(), [{ id: masterKeyId(master), key: master }]);
  const stream = new EventStream(BASE, SEED ^ 0x1d3);
  const shiftMs = (Math.floor(n / BASE) + 1) * SPAN_MS;
  const leaves: Buffer[] = [];
  const notes: (Buffer | undefined)[] = [];
  for (let i = 0; i < count; i++) {
    const { event, record, tier, ingest } = stream.next() as { event: Event; record: LeafRecord; tier: string; ingest: Ingest };
    const received = parseMicros(record.received) + BigInt(shiftMs) * 1000n;
    const e: Event = { ...event, time: new Date(Date.parse(event.time) + shiftMs).toISOString() };
    const [slot] = await keys.slots([{ tier, day: utcDay(received), subject: null }]);
    const k = slot as { id: string; key: Buffer };
    leaves.push(buildSealedLeaf(e, ingest, received, k.id, (p, aad) => seal(k.key, p, aad)));
    notes.push(indexNote(e, received, tier, k.id, ingest.principal));
  }
  return { keys, leaves, notes };
}

type Opened = { row: IndexRow; text: string };

/** The index thread's per-entry work (src/index/worker.ts add()), without the store. */
async function open(keys: KeyStore, idx: number, leaf: Buffer): Promise<Opened> {
  const { record, event, ingest } = await openEntry(keys, idx, leaf);
  const tier = keys.cached(record.key as string)?.info.tier as string;
  erasureRef(idx, record.received, event);
  return { row: indexRow(idx, record, event, tier, ingest), text: ftsText(event) };
}

// ---- measuring ----------------------------------------------------------------------------------

interface Rate {
  /** Median rows/s over segments of 10 batches. */
  median: number;
  min: number;
  max: number;
}

function rate(batchMs: number[], batch: number): Rate {
  const seg: number[] = [];
  for (let i = 0; i + 10 <= batchMs.length; i += 10) {
    const ms = batchMs.slice(i, i + 10).reduce((a, b) => a + b, 0);
    seg.push((10 * batch) / (ms / 1000));
  }
  return { median: median(seg), min: Math.min(...seg), max: Math.max(...seg) };
}

/** Rows through a store's insert, batch by batch; ms per measured batch. */
async function timeBatches(batches: number, step: (k: number) => Promise<void> | void): Promise<number[]> {
  const ms: number[] = [];
  for (let k = 0; k < WARMUP + batches; k++) {
    const t = performance.now();
    await step(k);
    if (k >= WARMUP) ms.push(performance.now() - t);
  }
  return ms;
}

/** Batches of `cfg.batch` rows the index thread puts in one transaction (its BATCH, rounded). */
const THREAD_GROUP = (batch: number) => Math.max(1, Math.round(BATCH / batch));

/**
 * The index thread's step on a fresh copy of a store of n entries: each row made by `row(i)`, and
 * the rows inserted in transactions of about BATCH rows as src/index/worker.ts does when it is
 * behind. A segment of rate() is one transaction when the group is 10 batches (the default batch).
 */
async function threadSteps(
  cfg: ReturnType<typeof args>,
  n: number,
  base: GenRow[],
  row: (i: number) => Promise<Opened>,
): Promise<Rate> {
  const store = new SqliteQueryStore(scratch(SCHEMA_SQL, n, base));
  const group = THREAD_GROUP(cfg.batch);
  let pending: Opened[] = [];
  const ms = await timeBatches(cfg.batches, async (k) => {
    for (let j = 0; j < cfg.batch; j++) pending.push(await row(k * cfg.batch + j));
    // Warm-up batches go in on their own; measured ones in groups, so each segment ends in its commit.
    if (k < WARMUP || (k - WARMUP + 1) % group === 0) {
      await store.insert({ rows: pending, upto: n + (k + 1) * cfg.batch });
      pending = [];
    }
  });
  await store.close();
  return rate(ms, cfg.batch);
}

/** FTS5 merge settings a partition fill can be measured with (`--fill-fts`). */
const FILL_FTS = {
  default: { label: 'FTS5 defaults (automerge 4, crisismerge 16): what the server runs', sql: [] as string[] },
  am8: { label: 'FTS5 automerge 8', sql: ["INSERT INTO fts (fts, rank) VALUES ('automerge', 8)"] },
  am16: {
    label: 'FTS5 automerge 16, crisismerge 64',
    sql: ["INSERT INTO fts (fts, rank) VALUES ('automerge', 16)", "INSERT INTO fts (fts, rank) VALUES ('crisismerge', 64)"],
  },
} as const;

interface Fill {
  fts: keyof typeof FILL_FTS;
  size: number;
  /** Rows/s over the whole fill, and over its first and last tenth. */
  whole: number;
  first: number;
  last: number;
}

/**
 * What the server's store (PartitionedQueryStore) sustains whatever the log's size: one whole
 * partition filled from empty, from index notes (cycled, each read back at its new index) in the
 * index thread's transactions. Inserts touch only the newest partition, so this is the rate at 10M
 * or 100M entries as at the first million.
 */
async function partitionFill(size: number, leaves: Leaves, fts: keyof typeof FILL_FTS): Promise<Fill> {
  const dir = join(CACHE_DIR, 'index-fill');
  rmSync(dir, { recursive: true, force: true });
  const store = new PartitionedQueryStore(dir, size);
  await store.insert({ rows: [], upto: 0 }); // creates the partition, so the settings can go in first
  if (FILL_FTS[fts].sql.length) {
    // FTS5 keeps its settings in the file and rereads them when they change.
    const db = new Database(join(dir, readdirSync(dir).find((f) => f.endsWith('.db')) as string));
    for (const sql of FILL_FTS[fts].sql) db.exec(sql);
    db.close();
  }
  const tenth = Math.floor(size / 10);
  const marks: number[] = [performance.now()];
  let pending: Opened[] = [];
  for (let i = 0; i < size; i++) {
    const j = i % leaves.notes.length;
    const note = leaves.notes[j];
    // The log's own events have no note: opened from their leaves, as the index thread does.
    const noted = note ? readNote(i, note) : await open(leaves.keys, i, leaves.leaves[j] as Buffer);
    if (note && leaves.keys.cached(noted.row.key_id as string)?.state !== 'active') throw new Error('bench: a key is not active');
    pending.push(noted);
    if (pending.length === BATCH || i === size - 1) {
      await store.insert({ rows: pending, upto: i + 1 });
      pending = [];
    }
    if ((i + 1) % tenth === 0) marks.push(performance.now());
  }
  marks.push(performance.now());
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  const per = (a: number, b: number, rows: number) => rows / (((marks[b] as number) - (marks[a] as number)) / 1000);
  return { fts, size, whole: per(0, marks.length - 1, size), first: per(0, 1, tenth), last: per(9, 10, tenth) };
}

/** A bare store for a schema variant: the same statements and pragmas as SqliteQueryStore's insert. */
function variantDb(path: string, v: Variant) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('secure_delete = ON');
  for (const p of v.pragmas ?? []) db.pragma(p);
  db.exec(v.sql);
  const ins = db.prepare(`INSERT INTO entries (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`);
  const text = v.sql.includes('fts5') ? db.prepare('INSERT INTO fts (rowid, text) VALUES (?, ?)') : null;
  const upto = db.prepare("INSERT OR REPLACE INTO meta (k, v) VALUES ('upto', ?)");
  const w = rowWriter(db, v.sql);
  const put = (rows: Opened[]) => {
    for (const r of rows) {
      ins.run(w.row(r.row));
      text?.run(r.row.idx, r.text);
    }
    w.flush();
    upto.run(String((rows.at(-1)?.row.idx ?? 0) + 1));
  };
  if (!v.txRows) return { db, insert: db.transaction(put), close: () => db.close() };
  // Batches share one transaction until it holds txRows rows (what SqliteQueryStore does since schema 4).
  let open = 0;
  return {
    db,
    insert: (rows: Opened[]) => {
      if (open === 0) db.exec('BEGIN');
      put(rows);
      open += rows.length;
      if (open >= (v.txRows as number)) {
        db.exec('COMMIT');
        open = 0;
      }
    },
    close: () => {
      if (open > 0) db.exec('COMMIT');
      db.close();
    },
  };
}

interface Measured {
  variant: string;
  size: number;
  mode: 'rows' | 'full' | 'noted';
  rate: Rate;
}

async function main(): Promise<void> {
  const cfg = args();
  const m = machine();
  log(`stele index bench: ${m}`);
  const base = baseRows();
  const total = (WARMUP + cfg.batches) * cfg.batch;
  const variants = cfg.variants === 'all' ? VARIANTS : VARIANTS.filter((v) => cfg.variants.split(',').includes(v.key));
  const results: Measured[] = [];
  const builds: { size: number; variant: string; buildS: number; cached: boolean }[] = [];
  let openRate: Rate | undefined;
  for (const n of cfg.sizes) {
    const { keys, leaves, notes } = await sealedLeaves(total, n);
    await open(keys, n, leaves[0] as Buffer); // the data keys are cached from here on
    // openEntry alone (CPU): the rows every store below is given.
    const opened: Opened[] = [];
    const oms = await timeBatches(cfg.batches, async (k) => {
      for (let j = 0; j < cfg.batch; j++)
        opened.push(await open(keys, n + k * cfg.batch + j, leaves[k * cfg.batch + j] as Buffer));
    });
    const or = rate(oms, cfg.batch);
    if (n === cfg.sizes[0]) openRate = or;
    log(`  openEntry + indexRow + ftsText alone: ${fmtInt(or.median)} rows/s`);
    const batchOf = (k: number) => opened.slice(k * cfg.batch, (k + 1) * cfg.batch);
    for (const v of variants) {
      if (v.key === 'old' && !cfg.oldSizes.includes(n)) continue;
      if (v.onlyAt && !v.onlyAt.includes(n)) continue;
      if (n > 0) {
        const p = prefilled(v.sql, n, base);
        builds.push({ size: n, variant: v.key, buildS: p.buildS, cached: p.cached });
      }
      const path = scratch(v.sql, n, base);
      const s = variantDb(path, v);
      const ms = await timeBatches(cfg.batches, (k) => s.insert(batchOf(k)));
      s.close();
      const r = rate(ms, cfg.batch);
      results.push({ variant: v.key, size: n, mode: 'rows', rate: r });
      log(`  ${fmtInt(n)} stored, ${v.key}: ${fmtInt(r.median)} rows/s (insert only)`);
    }
    // The real thing: the full step into SqliteQueryStore, as the index thread runs it.
    const fr = await threadSteps(cfg, n, base, (i) => open(keys, n + i, leaves[i] as Buffer));
    results.push({ variant: 'stele', size: n, mode: 'full', rate: fr });
    log(`  ${fmtInt(n)} stored, full index step (SqliteQueryStore, schema ${SCHEMA_VERSION}): ${fmtInt(fr.median)} rows/s`);
    // The same from index notes: what the thread does for entries ingest workers handed over
    // (src/index/worker.ts add(): read the note, check its data key is still active, insert).
    const nr = await threadSteps(cfg, n, base, async (i) => {
      const note = notes[i];
      if (!note) return open(keys, n + i, leaves[i] as Buffer); // the log's own events are opened
      const noted = readNote(n + i, note);
      if (keys.cached(noted.row.key_id as string)?.state !== 'active') throw new Error('bench: a key is not active');
      return noted;
    });
    results.push({ variant: 'stele', size: n, mode: 'noted', rate: nr });
    log(`  ${fmtInt(n)} stored, index step from notes: ${fmtInt(nr.median)} rows/s`);
    await keys.close();
  }
  const fills: Fill[] = [];
  if (cfg.fill > 0) {
    const leaves = await sealedLeaves((WARMUP + cfg.batches) * cfg.batch, 0);
    // Every leaf opened once, so each day's data key is cached (as in the server, which opened them to seal).
    for (const [i, leaf] of leaves.leaves.entries()) await open(leaves.keys, i, leaf);
    for (const fts of cfg.fillFts) {
      const f = await partitionFill(cfg.fill, leaves, fts);
      fills.push(f);
      log(
        `  partition of ${fmtInt(f.size)} filled from notes, ${fts}: ${fmtInt(f.whole)} rows/s (first tenth ${fmtInt(f.first)}, last ${fmtInt(f.last)})`,
      );
    }
    await leaves.keys.close();
  }
  const fill = fills.find((f) => f.fts === 'default');
  rmSync(join(CACHE_DIR, 'index-measure.db'), { force: true });
  for (const s of ['-wal', '-shm']) rmSync(join(CACHE_DIR, `index-measure.db${s}`), { force: true });

  const full = (n: number) => results.find((r) => r.mode === 'full' && r.size === n)?.rate.median;
  const at1 = full(1_000_000);
  const at10 = full(10_000_000);
  const met = at1 !== undefined && at10 !== undefined && at1 >= TARGET && at10 >= TARGET;
  const verdict = `target 2 (indexing ≥ 50,000 events/s at 1M and 10M): ${met ? 'met' : 'not met'}`;
  // The line `npm run bench` reads back for its table of every issue 12 target (bench/ingest/targets.ts).
  const noted = (n: number) => results.find((r) => r.mode === 'noted' && r.size === n)?.rate.median;
  const f = (x: number | undefined) => (x === undefined ? 'n/a' : fmtInt(x));
  const measured =
    `${f(at1)} events/s at 1M, ${f(at10)} at 10M (full step, leaf opened and decrypted); ` +
    `from index notes ${f(noted(1_000_000))} at 1M, ${f(noted(10_000_000))} at 10M` +
    (fill ? `; the partitioned store from notes ${f(fill.whole)} at any size` : '');
  const line = [{ target: '2. indexing ≥ 50,000 events/s at 1M and at 10M entries stored', measured, met }];
  const md = render(m, cfg, results, builds, openRate, verdict, variants, fills).replace(
    END,
    `<!-- targets: ${JSON.stringify(line)} -->\n${END}`,
  );
  process.stdout.write(`${md}\n`);
  console.log(verdict);
  if (cfg.write) {
    writeSection('index', md);
    log(`wrote the bench:index section of ${BENCHMARKS_MD}`);
  }
}

function render(
  m: string,
  cfg: ReturnType<typeof args>,
  results: Measured[],
  builds: { size: number; variant: string; buildS: number; cached: boolean }[],
  openRate: Rate | undefined,
  verdict: string,
  variants: readonly Variant[],
  fills: readonly Fill[],
): string {
  const fill = fills.find((f) => f.fts === 'default');
  const sizes = cfg.sizes;
  const cell = (r: Measured | undefined) => (r ? `${fmtInt(r.rate.median)} (${fmtInt(r.rate.min)}–${fmtInt(r.rate.max)})` : '—');
  const out: string[] = [BEGIN, '## Indexing rate (`npm run bench:index`)', ''];
  out.push(`${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; ${m}.`, '');
  out.push(
    `Rows per second (median over segments of 10 batches of ${fmtInt(cfg.batch)}, min–max), ${fmtInt(cfg.batches)} batches measured after ${WARMUP} warm-up, ` +
      'on a fresh copy of a store already holding the given number of entries. **Full step** is what the index thread does per entry: ' +
      '`openEntry` of a real sealed leaf (canonical-JSON check, AES-256-GCM with its tag checked, parse), `indexRow`, `ftsText`, and ' +
      `\`SqliteQueryStore.insert\` in transactions of ${fmtInt(THREAD_GROUP(cfg.batch) * cfg.batch)} rows (the index thread's, when it is behind): ` +
      'the path for entries read back from the tiles (the index thread more than 32,768 entries behind, or after a restart). ' +
      '**From index notes** is the path for entries the ingest workers hand over with their appends: the row and text the worker made while sealing (`indexNote`), read back (`readNote`), the data key checked still active, and the same insert. ' +
      'The other rows insert the same, already opened rows only.',
    '',
  );
  out.push(`| | ${sizes.map((n) => `${fmtInt(n)} stored`).join(' | ')} |`, `|---|${sizes.map(() => '---:').join('|')}|`);
  out.push(
    `| **Full step, schema ${SCHEMA_VERSION} (this code)** | ${sizes.map((n) => cell(results.find((r) => r.mode === 'full' && r.size === n))).join(' | ')} |`,
  );
  out.push(
    `| **Full step from index notes (this code, entries handed over by ingest)** | ${sizes.map((n) => cell(results.find((r) => r.mode === 'noted' && r.size === n))).join(' | ')} |`,
  );
  for (const v of variants) {
    out.push(
      `| ${v.label} | ${sizes.map((n) => cell(results.find((r) => r.mode === 'rows' && r.variant === v.key && r.size === n))).join(' | ')} |`,
    );
  }
  out.push('');
  if (openRate)
    out.push(
      `\`openEntry\` + \`indexRow\` + \`ftsText\` alone (CPU, no store): ${fmtInt(openRate.median)} rows/s (${fmtInt(1e6 / openRate.median)} µs a row).`,
      '',
    );
  if (builds.length > 0) {
    out.push(
      'Stores with entries already stored were built by direct inserts (generated rows cycled every 1,000,000 with times moved 90 days, FTS filled in 100,000-row transactions, indexes created after the load, PRAGMA optimize): ' +
        builds
          .map((b) => `${b.variant} at ${fmtInt(b.size)}: ${b.buildS.toFixed(0)} s${b.cached ? ' (cached)' : ''}`)
          .join('; ') +
        '.',
      '',
    );
  }
  const rows = (k: string, n: number) => results.find((r) => r.mode === 'rows' && r.variant === k && r.size === n)?.rate.median;
  const big = sizes[sizes.length - 1] as number;
  const open = openRate?.median;
  // The store half as the thread pays it: its transactions are ~10,000 rows (lean-tx) when it is behind.
  const store = rows('lean-tx', big) ?? rows('lean-cache', big);
  if (open !== undefined && store !== undefined) {
    out.push(
      `Why: one index thread does both halves in turn, so its rate is at most 1 / (1/${fmtInt(open)} + 1/${fmtInt(store)}) = ` +
        `${fmtInt(1 / (1 / open + 1 / store))} rows/s at ${fmtInt(big)} stored (opening a leaf ${fmtInt(1e6 / open)} µs, inserting its row ` +
        `${fmtInt(1e6 / store)} µs). Index notes take the opening half away for entries handed over by the ingest workers (the row above it), ` +
        'which leaves the store: FTS5 and the four indexes each cost about as much (rows above), and both grow with the store; FTS5 automerge ' +
        "settings moved it by no more than this machine's noise. Hence the partitions below.",
      '',
    );
  }
  if (fill)
    out.push(
      `**The server's store, partitioned** (\`PartitionedQueryStore\`, one SQLite file per ${fmtInt(PARTITION_ENTRIES)} entries): inserts go to the newest ` +
        `partition only, so its rate does not depend on how many entries the older ones hold. One partition of ${fmtInt(fill.size)} filled from empty, ` +
        `from index notes in the index thread's transactions of ${fmtInt(BATCH)}: **${fmtInt(fill.whole)} rows/s** over the whole fill ` +
        `(${fmtInt(fill.first)} in its first tenth, ${fmtInt(fill.last)} in its last): the rate at 1M, 10M or 100M entries stored. ` +
        'This is lower than the rows above at the same sizes because it grows the store the way the server does, batch by batch, so ' +
        'FTS5 merges its segments as it goes; the stores above were built in bulk (FTS5 in 100,000-row transactions, B-trees created ' +
        'after the load) and flatter the rate of their 60 measured batches. The fill is the figure to plan with.',
      '',
    );
  if (fills.length > 1) {
    out.push(
      'The same fill with other FTS5 merge settings (fewer merges while inserting leave more segments for full-text searches to read):',
      '',
    );
    out.push('| partition fill from notes | rows/s, whole fill | first tenth | last tenth |', '|---|---:|---:|---:|');
    for (const f of fills) out.push(`| ${FILL_FTS[f.fts].label} | ${fmtInt(f.whole)} | ${fmtInt(f.first)} | ${fmtInt(f.last)} |`);
    out.push('');
  }
  out.push(`**${verdict}**`, '', END);
  return out.join('\n');
}

main().catch((err) => {
  log(`bench:index failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
});
