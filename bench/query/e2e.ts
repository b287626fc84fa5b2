/**
 * End to end on a real data directory: `openStele` on a fresh temporary directory (the starter
 * policy: every tier encrypted), `events` generated events appended with `stele.append` (the path
 * of `stele append --local`; validation, sealing, the write-ahead log, tiles, checkpoints, and the
 * index thread indexing them), then:
 *
 * - export: every entry, newest first, through `stele.index.search` in pages of 1000 with
 *   `withLeaves: false` (the index thread queries the store, reads each leaf from the tiles and
 *   decrypts it), each hit written as `jsonLine` to /dev/null;
 * - search: first pages of 50 for a few queries through the index thread, next to
 *   `SqliteQueryStore.searchEntries` on a second connection to the same store file, so the difference is what
 *   the server adds per page (the thread hop, 50 leaf reads and decryptions).
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initDataDir } from '../../src/app/datadir.js';
import { openStele, type Stele } from '../../src/app/stele.js';
import type { Principal } from '../../src/core/principal.js';
import { jsonLine } from '../../src/export/formats.js';
import { SqliteQueryStore } from '../../src/storage/fs/query-store.js';
import { sleep } from '../ingest/stats.js';
import { compileQuery } from './compile.js';
import { EventStream, humanId, SEED } from './gen.js';
import { PAGE, type Summary, summarise } from './measure.js';

export interface E2EResult {
  events: number;
  appendS: number;
  appendPerS: number;
  /** Wait after the last append until everything was indexed and checkpointed. */
  settleS: number;
  exports: { rows: number; ms: number; bytes: number; rowsPerS: number }[];
  /** The same paging through SqliteQueryStore.searchEntries alone (no leaves), JSON lines of the rows. */
  storeExports: { rows: number; ms: number; rowsPerS: number }[];
  searches: { q: string; hits: number; server: Summary; store: Summary }[];
}

const INGEST: Principal = { kind: 'local', id: 'local', method: 'local', groups: [], roles: [] };
const log = (s: string) => process.stderr.write(`${s}\n`);

/**
 * Appends `events` events of the corpus (seed `seed`) through `stele.append` (the path of `stele
 * append --local`), 4 batches of 1000 in flight: they share write-ahead-log syncs, as concurrent
 * clients do. `onBatch` is told how many are appended so far.
 */
export async function appendCorpus(stele: Stele, events: number, seed: number, onBatch?: (done: number) => void): Promise<void> {
  const stream = new EventStream(events, seed);
  const batch = () => {
    const out: unknown[] = [];
    for (let k = 0; k < 1000 && stream.index < events; k++) {
      const { event } = stream.next();
      const { verified: _, ...actor } = event.actor;
      out.push({ ...event, actor });
    }
    return out;
  };
  let done = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (;;) {
        const b = batch();
        if (b.length === 0) return;
        await stele.append(b, INGEST);
        done += b.length;
        onBatch?.(done);
      }
    }),
  );
}

export async function e2e(events: number, opts: { repeats: number; samples: number }): Promise<E2EResult> {
  const dir = mkdtempSync(join(tmpdir(), 'stele-bench-query-'));
  try {
    await initDataDir(dir, 'bench.example/stele');
    const stele = await openStele(dir);
    try {
      const t0 = performance.now();
      await appendCorpus(stele, events, SEED ^ 0xe2e);
      const appendS = (performance.now() - t0) / 1000;
      const size = stele.log.size;
      while ((await stele.index.upto()) < size || stele.log.checkpoint.size < size) await sleep(50);
      const settleS = (performance.now() - t0) / 1000 - appendS;
      log(
        `e2e: appended ${size} events in ${appendS.toFixed(1)} s (${Math.round(size / appendS)}/s), indexed and checkpointed ${settleS.toFixed(1)} s later`,
      );

      const store = new SqliteQueryStore(join(dir, 'index', 'query', 'p000000000000000.db')); // 200,000 entries: the first partition;
      const fd = openSync('/dev/null', 'w');
      const exports: E2EResult['exports'] = [];
      const storeExports: E2EResult['storeExports'] = [];
      try {
        for (let rep = 0; rep < opts.repeats; rep++) {
          // Through the index thread: rows, leaves, decryption, then JSON lines.
          let cursor: number | undefined;
          let n = 0;
          let bytes = 0;
          let t = performance.now();
          for (;;) {
            const page = await stele.index.search(
              {
                q: '',
                ...(cursor === undefined ? {} : { cursor }),
                limit: 1000,
                order: 'desc',
                nowMs: Date.now(),
                withLeaves: false,
              },
              stele.log.checkpoint.size,
            );
            let out = '';
            for (const h of page.hits) out += jsonLine(h);
            bytes += Buffer.byteLength(out);
            writeSync(fd, out);
            n += page.hits.length;
            if (page.next === undefined) break;
            cursor = page.next;
          }
          let ms = performance.now() - t;
          exports.push({ rows: n, ms, bytes, rowsPerS: n / (ms / 1000) });
          // The store alone, same paging, the rows as JSON lines.
          cursor = undefined;
          n = 0;
          t = performance.now();
          for (;;) {
            const rows = store.searchEntries(compileQuery('', Date.now()), {
              ...(cursor === undefined ? {} : { cursor }),
              limit: 1000,
              order: 'desc',
            });
            let out = '';
            for (const r of rows) out += `${JSON.stringify(r)}\n`;
            writeSync(fd, out);
            n += rows.length;
            if (rows.length < 1000) break;
            cursor = rows[rows.length - 1]?.idx;
          }
          ms = performance.now() - t;
          storeExports.push({ rows: n, ms, rowsPerS: n / (ms / 1000) });
          log(
            `e2e export ${rep + 1}/${opts.repeats}: ${Math.round(exports.at(-1)?.rowsPerS ?? 0)} events/s through the server's index thread; store alone ${Math.round(n / (ms / 1000))} rows/s`,
          );
        }

        const searches: E2EResult['searches'] = [];
        for (const q of [`actor:${humanId(0)}`, 'action:k8s.* outcome:failure', 'timeout']) {
          const server: number[] = [];
          const direct: number[] = [];
          let hits = 0;
          for (let i = 0; i < opts.samples + 3; i++) {
            let t = performance.now();
            const r = await stele.index.search(
              { q, limit: PAGE.limit, order: 'desc', nowMs: Date.now(), withLeaves: false },
              stele.log.checkpoint.size,
            );
            const a = performance.now() - t;
            t = performance.now();
            store.searchEntries(compileQuery(q, Date.now()), PAGE);
            const b = performance.now() - t;
            hits = r.hits.length;
            if (i >= 3) {
              server.push(a);
              direct.push(b);
            }
          }
          searches.push({ q, hits, server: summarise(server), store: summarise(direct) });
        }
        return { events: size, appendS, appendPerS: size / appendS, settleS, exports, storeExports, searches };
      } finally {
        closeSync(fd);
        store.close();
      }
    } finally {
      await stele.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
