/**
 * The storage options of issue 18 side by side, on the query benchmark's corpus (the seed the leaf
 * dictionary was not trained on): `npm run bench:storage-options [-- --events N]` (default 100,000).
 *
 *   1. What a sealed leaf compresses (the canonical `{"event":…,"ingest":…}`), one event at a time:
 *      none, deflate (node:zlib) without and with a 32 KiB dictionary of other events, zstd
 *      (zstd-napi) without a dictionary and with the leaf dictionary at levels 1, 3 and 9; bytes per
 *      event and µs per event to compress and to decompress. The same events gzipped as one stream
 *      is the floor no per-event scheme reaches (it compresses events together, which a sealed leaf
 *      must not).
 *   2. The v2 leaf (JSON, base64 of the sealed plaintext) against the v3 leaf (binary, compressed).
 *   3. The full-text index alone: FTS5 `detail=full` (phrases; what Stele uses), `column` and
 *      `none`, bytes per event and insert rate; and `full` on the text with the event time's
 *      words, as it was before schema 7.
 *   4. A grown query-store file against the same file compacted (`VACUUM INTO`, FTS5 `optimize`).
 *   5. The same rows as one closed-partition segment (src/storage/segment: compressed columns and
 *      a full-text inverted index), without and with token positions: bytes per event, µs per row
 *      to write it, and the rate of reading a column and a common token's postings back; and the
 *      query benchmark's queries (bench/query/queries.ts), first page of 50, newest first, on the
 *      segment (src/storage/segment/search.ts) against the SQLite store of the same rows.
 *
 * Rewrites the `<!-- bench:storage-options -->` section of BENCHMARKS.md (`--no-write`: print only;
 * `--segments`: part 5 alone, printed, e.g. `-- --events 1000000 --segments` for a whole partition).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';
import { deflateRawSync, gzipSync, inflateRawSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { leafDictionary } from '../../src/event/compress.js';
import { buildSealedLeaf, encodeLeaf, formatMicros, sealedAad, sealedPlaintext } from '../../src/event/record.js';
import type { Event, Ingest } from '../../src/event/types.js';
import { parseQuery } from '../../src/index/query.js';
import { SEAL_OVERHEAD, SEAL_RANDOM, SealingKey } from '../../src/keys/seal.js';
import { SqliteQueryStore } from '../../src/storage/fs/query-store.js';
import { searchSegment } from '../../src/storage/segment/search.js';
import { encodeSegment, SegmentReader } from '../../src/storage/segment/segment.js';
import { fmtInt, median } from '../ingest/stats.js';
import { EventStream, SEED } from '../query/gen.js';
import { QUERY_TYPES } from '../query/queries.js';
import { writeSection } from '../section.js';

const log = (s: string) => process.stderr.write(`${s}\n`);
const a = process.argv.slice(2);
const at = a.indexOf('--events');
const N = at < 0 ? 100_000 : Number(String(a[at + 1]).replaceAll('_', ''));
// --segments: only the segment rows and the store they are compared with (at 1M events the other
// parts take many minutes); prints, never writes.
const segmentsOnly = a.includes('--segments');
const write = !a.includes('--no-write') && !segmentsOnly;

interface Zstd {
  CCtx: new () => {
    setParameter(p: number, v: number): void;
    loadDictionary(d: Uint8Array): void;
    compress2(dst: Uint8Array, src: Uint8Array): number;
  };
  DCtx: new () => { loadDictionary(d: Uint8Array): void; decompress(dst: Uint8Array, src: Uint8Array): number };
  CParameter: Record<string, number>;
}
const zstd = createRequire(import.meta.url)('zstd-napi/binding') as Zstd;

/** Median over 3 passes of µs per item of `fn` over `items`. */
function timeUs<T>(items: readonly T[], fn: (x: T) => void): number {
  const runs: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    for (const x of items) fn(x);
    runs.push(((performance.now() - t) * 1000) / items.length);
  }
  return median(runs);
}

type Row = { option: string; bytes: number; compressUs: number; decompressUs: number };

function compression(plains: Buffer[], dictFromEvents: Buffer): Row[] {
  const out: Row[] = [];
  const avg = (xs: Uint8Array[]) => xs.reduce((s, x) => s + x.length, 0) / xs.length;
  out.push({ option: 'none', bytes: avg(plains), compressUs: 0, decompressUs: 0 });
  for (const [name, dict] of [
    ['deflate (level 6)', undefined],
    ['deflate (level 6), 32 KiB dictionary of other events', dictFromEvents],
  ] as const) {
    const opts = dict ? { dictionary: dict } : {};
    const packed = plains.map((p) => deflateRawSync(p, opts));
    out.push({
      option: name,
      bytes: avg(packed),
      compressUs: timeUs(plains, (p) => deflateRawSync(p, opts)),
      decompressUs: timeUs(packed, (c) => inflateRawSync(c, opts)),
    });
  }
  const scratch = Buffer.allocUnsafe(1 << 17);
  const back = Buffer.allocUnsafe(1 << 17);
  for (const [name, level, dict] of [
    ['zstd level 3, no dictionary', 3, null],
    ['zstd level 1, leaf dictionary', 1, leafDictionary()],
    ['zstd level 3, leaf dictionary (Stele: leaf v3)', 3, leafDictionary()],
    ['zstd level 9, leaf dictionary', 9, leafDictionary()],
  ] as const) {
    const c = new zstd.CCtx();
    c.setParameter(zstd.CParameter.compressionLevel as number, level);
    c.setParameter(zstd.CParameter.checksumFlag as number, 0);
    c.setParameter(zstd.CParameter.dictIDFlag as number, 0);
    const d = new zstd.DCtx();
    if (dict) {
      c.loadDictionary(dict);
      d.loadDictionary(dict);
    }
    const packed = plains.map((p) => Buffer.from(scratch.subarray(0, c.compress2(scratch, p))));
    out.push({
      option: name,
      bytes: avg(packed),
      compressUs: timeUs(plains, (p) => c.compress2(scratch, p)),
      decompressUs: timeUs(packed, (x) => d.decompress(back, x)),
    });
  }
  return out;
}

function leaves(events: { event: Event; ingest: Ingest }[]): { v2: number; v3: number } {
  const key = new SealingKey(randomBytes(32));
  const keyId = randomBytes(16).toString('base64url');
  const received = 1_795_342_503_140_211n;
  const seal = (p: Uint8Array, aad: Uint8Array) => key.seal(randomBytes(SEAL_RANDOM), p, aad);
  let v2 = 0;
  let v3 = 0;
  const text = formatMicros(received);
  for (const { event, ingest } of events) {
    v2 += encodeLeaf({
      v: 2,
      received: text,
      key: keyId,
      sealed: seal(sealedPlaintext(event, ingest), sealedAad(keyId, text)).toString('base64'),
    }).length;
    v3 += buildSealedLeaf(event, ingest, received, keyId, seal).length;
  }
  return { v2: v2 / events.length, v3: v3 / events.length };
}

type FtsRow = { row: { idx: number; time: number }; text: string };

/** Each detail on Stele's text, and `full` on the text as it was before schema 7 (with the event time's words). */
function fts(rows: FtsRow[]): { detail: string; bytes: number; rowsPerS: number }[] {
  const withTime = rows.map((r) => ({ ...r, text: `${r.text}\n${new Date(r.row.time / 1000).toISOString()}` }));
  return [
    ...['full', 'column', 'none'].map((detail) => ftsOf(rows, detail, detail)),
    ftsOf(withTime, 'full', '`full`, the text with the event time (schema 6)'),
  ];
}

function ftsOf(rows: FtsRow[], detail: string, name: string): { detail: string; bytes: number; rowsPerS: number } {
  const db = new Database(':memory:');
  db.exec(
    `CREATE VIRTUAL TABLE fts USING fts5(text, content='', contentless_delete=1, detail=${detail}, tokenize='unicode61 remove_diacritics 2')`,
  );
  const ins = db.prepare('INSERT INTO fts (rowid, text) VALUES (?, ?)');
  const t = performance.now();
  for (let i = 0; i < rows.length; i += 10_000)
    db.transaction(() => {
      for (const r of rows.slice(i, i + 10_000)) ins.run(r.row.idx, r.text);
    })();
  const ms = performance.now() - t;
  const bytes = (
    db.prepare("SELECT sum(pgsize) AS b FROM dbstat WHERE name LIKE 'fts%'").get() as {
      b: number;
    }
  ).b;
  db.close();
  return { detail: name, bytes: bytes / rows.length, rowsPerS: rows.length / (ms / 1000) };
}

function compaction(rows: ReturnType<EventStream['rows']>, dir: string): { grown: number; vacuum: number; optimized: number } {
  const path = join(dir, 'grown.db');
  const store = new SqliteQueryStore(path);
  for (let i = 0; i < rows.length; i += 10_000)
    store.insertSync({ rows: rows.slice(i, i + 10_000), upto: Math.min(rows.length, i + 10_000) });
  store.optimizeSync();
  void store.close();
  const db = new Database(path);
  db.exec(`VACUUM INTO '${join(dir, 'vacuum.db')}'`);
  db.exec("INSERT INTO fts (fts) VALUES ('optimize')");
  db.exec(`VACUUM INTO '${join(dir, 'optimized.db')}'`);
  db.close();
  const per = (f: string) => statSync(join(dir, f)).size / rows.length;
  return { grown: per('grown.db'), vacuum: per('vacuum.db'), optimized: per('optimized.db') };
}

type SegmentRow = {
  positions: boolean;
  bytes: number;
  writeUs: number;
  columnRowsPerS: number;
  postingsPerS: number;
};

/** The token whose postings part 5 reads back: in nearly every event (the outcome). */
const COMMON_TOKEN = 'success';

/** The rows as one segment, each way: size, time to write, and reading back a column and the commonest token's postings. */
function segments(rows: ReturnType<EventStream['rows']>): SegmentRow[] {
  return [false, true].map((positions) => {
    const times: number[] = [];
    let bytes: Buffer = Buffer.alloc(0);
    for (let r = 0; r < 3; r++) {
      const t = performance.now();
      bytes = encodeSegment(rows, { positions });
      times.push(((performance.now() - t) * 1000) / rows.length);
    }
    const seg = new SegmentReader(bytes);
    // Items per second of `fn` (which answers how many it did): median of 3 passes after a warm-up
    // one (else the first variant measured would also pay for the JIT).
    const rate = (fn: () => number) => {
      fn();
      return median(
        [0, 1, 2].map(() => {
          const t = performance.now();
          const n = fn();
          return n / ((performance.now() - t) / 1000);
        }),
      );
    };
    const scan = rate(() => {
      for (let b = 0; b < seg.blocks; b++) seg.column('actor', b);
      return rows.length;
    });
    const postings = rate(() => {
      let n = 0;
      for (let b = 0; b < seg.blocks; b++) n += seg.postings(b, COMMON_TOKEN).length;
      return n;
    });
    return {
      positions,
      bytes: bytes.length / rows.length,
      writeUs: median(times),
      columnRowsPerS: scan,
      postingsPerS: postings,
    };
  });
}

type SpeedRow = { label: string; sqliteMs: number; segmentMs: number };

/** Median ms to the first page of 50, newest first, per query type: the SQLite file and the segment, interleaved. */
async function searchSpeed(path: string, seg: SegmentReader): Promise<SpeedRow[]> {
  const store = new SqliteQueryStore(path);
  const nowMs = Date.now();
  const page = { order: 'desc', limit: 50 } as const;
  const out: SpeedRow[] = [];
  try {
    for (const type of QUERY_TYPES) {
      const sqlite: number[] = [];
      const segment: number[] = [];
      for (let round = 0; round < 6; round++)
        for (const v of type.values) {
          const q = { root: parseQuery(v), nowMs };
          let t = performance.now();
          const a = await store.search(q, page);
          if (round > 0) sqlite.push(performance.now() - t);
          t = performance.now();
          const b = searchSegment(seg, q, page);
          if (round > 0) segment.push(performance.now() - t);
          const ids = (xs: { idx: number }[]) => xs.map((x) => x.idx).join();
          const fromStore = a.flatMap((m) => (m.kind === 'entry' ? [m.row] : []));
          if (ids(fromStore) !== ids(b)) throw new Error(`the segment and the store disagree on ${v}`);
        }
      out.push({ label: type.label, sqliteMs: median(sqlite), segmentMs: median(segment) });
    }
  } finally {
    await store.close();
  }
  return out;
}

/** Part 5's lines: the segments against the grown SQLite file of `grown` bytes an event. */
function segmentLines(grown: number, seg: SegmentRow[], speed: SpeedRow[]): string[] {
  return [
    `**The same rows as one closed-partition segment** (src/storage/segment, written once: zstd-compressed columns in blocks of ` +
      `8,192 rows, coded fields as numbers into one dictionary, a vocabulary naming each token's blocks, and a full-text inverted index per block; medians of 3 passes), against ` +
      `the grown SQLite file above (${grown.toFixed(1)} bytes/event). The server does not use segments yet: this is the format and its search, measured.`,
    '',
    `| segment | bytes/event | × the SQLite file | write µs/row | read the actor column, rows/s | postings of \`${COMMON_TOKEN}\`, rows/s |`,
    '|---|---:|---:|---:|---:|---:|',
    ...seg.map(
      (x) =>
        `| ${x.positions ? 'with token positions (phrases from the index, like FTS5 `full`)' : 'rows only (phrases confirmed on the entry, like FTS5 `none`)'} | ` +
        `${x.bytes.toFixed(1)} | ${(x.bytes / grown).toFixed(2)}× | ${x.writeUs.toFixed(1)} | ${fmtInt(x.columnRowsPerS)} | ${fmtInt(x.postingsPerS)} |`,
    ),
    '',
    "The query benchmark's queries on both (first page of 50, newest first; median ms over 5 rounds of every value of the type, " +
      'the two interleaved and checked to give the same page; the segment with positions, evaluated a block at a time from the newest, ' +
      'nothing cached between queries):',
    '',
    '| query type | SQLite file, ms | segment, ms |',
    '|---|---:|---:|',
    ...speed.map((x) => `| ${x.label} | ${x.sqliteMs.toFixed(2)} | ${x.segmentMs.toFixed(2)} |`),
  ];
}

async function main(): Promise<void> {
  log(`storage options: ${fmtInt(N)} events of the query corpus`);
  const stream = new EventStream(N, SEED);
  const events: { event: Event; ingest: Ingest }[] = [];
  const rows: ReturnType<EventStream['rows']> = [];
  for (let i = 0; i < N && !segmentsOnly; i++) {
    const { event, ingest } = stream.next();
    events.push({ event, ingest });
  }
  const rowStream = new EventStream(N, SEED);
  while (rowStream.index < N) rows.push(...rowStream.rows(Math.min(10_000, N - rowStream.index)));
  if (segmentsOnly) {
    const dir = mkdtempSync(join(os.tmpdir(), 'stele-options-'));
    try {
      log('  segments...');
      const seg = segments(rows);
      log('  the SQLite store of the same rows...');
      const c = compaction(rows, dir);
      log('  search: segment against the store...');
      const speed = await searchSpeed(join(dir, 'grown.db'), new SegmentReader(encodeSegment(rows, { positions: true })));
      process.stdout.write(`${fmtInt(N)} events\n\n${segmentLines(c.grown, seg, speed).join('\n')}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return;
  }
  const plains = events.map((e) => sealedPlaintext(e.event, e.ingest));
  const raw = events.reduce((s, e) => s + Buffer.byteLength(JSON.stringify(e.event)), 0) / N;
  const gz = gzipSync(Buffer.concat(plains)).length / N;
  // deflate's dictionary: the last 32 KiB of events from another seed (as a trained one would be).
  const other = new EventStream(2000, SEED + 99);
  const dictFromEvents = Buffer.concat(
    Array.from({ length: 2000 }, () => {
      const x = other.next();
      return sealedPlaintext(x.event, x.ingest);
    }),
  ).subarray(-32768);
  log('  compression...');
  const comp = compression(plains, dictFromEvents);
  log('  leaves...');
  const lv = leaves(events);
  log('  full-text index...');
  const f = fts(rows);
  log('  segments...');
  const seg = segments(rows);
  log('  compaction...');
  const dir = mkdtempSync(join(os.tmpdir(), 'stele-options-'));
  let c: ReturnType<typeof compaction>;
  let speed: SpeedRow[];
  try {
    c = compaction(rows, dir);
    log('  search: segment against the store...');
    speed = await searchSpeed(join(dir, 'grown.db'), new SegmentReader(encodeSegment(rows, { positions: true })));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const plainAvg = plains.reduce((s, p) => s + p.length, 0) / N;
  const o: string[] = [
    '<!-- bench:storage-options -->',
    '## Storage options compared (`npm run bench:storage-options`)',
    '',
    `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; ${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim() ?? 'n/a'}), node ${process.version}. ` +
      `${fmtInt(N)} events of the query benchmark's corpus (held out from the leaf dictionary's training), ${raw.toFixed(0)} bytes of JSON each ` +
      `on average; what a sealed leaf compresses (event and ingest principal as canonical JSON) is ${plainAvg.toFixed(0)} bytes.`,
    '',
    '**What a sealed leaf compresses, one event at a time** (medians of 3 passes; a shared 2-core VM, so compare within the table):',
    '',
    '| option | bytes/event | × the plaintext | compress µs/event | decompress µs/event |',
    '|---|---:|---:|---:|---:|',
    ...comp.map(
      (r) =>
        `| ${r.option} | ${r.bytes.toFixed(1)} | ${(r.bytes / plainAvg).toFixed(2)}× | ${r.compressUs.toFixed(2)} | ${r.decompressUs.toFixed(2)} |`,
    ),
    `| (reference) the same plaintexts gzipped as one stream | ${gz.toFixed(1)} | ${(gz / plainAvg).toFixed(2)}× | | |`,
    '',
    `**The leaf**: v2 (JSON, base64 of the uncompressed sealed plaintext) ${lv.v2.toFixed(1)} bytes/event; v3 (binary, zstd with the leaf ` +
      `dictionary, then sealed) ${lv.v3.toFixed(1)} bytes/event: ${(lv.v3 / lv.v2).toFixed(2)}× the v2 leaf. Both carry the seal's ` +
      `${SEAL_OVERHEAD} bytes (version, salt, key commitment, tag).`,
    '',
    "**The full-text index alone** (FTS5, contentless, the store's tokenizer, 10,000-row transactions):",
    '',
    '| detail | bytes/event | insert rows/s |',
    '|---|---:|---:|',
    ...f.map(
      (x) =>
        `| ${x.detail.startsWith('`') ? x.detail : `\`${x.detail}\``}${x.detail === 'full' ? ' (Stele: phrases need positions)' : ''} | ${x.bytes.toFixed(1)} | ${fmtInt(x.rowsPerS)} |`,
    ),
    '',
    `**Compaction of a grown store file** (${fmtInt(N)} rows inserted as the index thread does): as grown ${c.grown.toFixed(1)} bytes/event; ` +
      `\`VACUUM INTO\` ${c.vacuum.toFixed(1)}; FTS5 \`optimize\` then \`VACUUM INTO\` ${c.optimized.toFixed(1)} ` +
      `(${(100 * (1 - c.optimized / c.grown)).toFixed(0)} % less).`,
    '',
    ...segmentLines(c.grown, seg, speed),
    '<!-- /bench:storage-options -->',
  ];
  const md = o.join('\n');
  process.stdout.write(`${md}\n`);
  if (write) writeSection('storage-options', md);
}

await main();
