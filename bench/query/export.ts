/**
 * Export rate on the query-store side: page through the newest `rows` entries with
 * `SqliteQueryStore.searchEntries` (pages of 1000, newest first, the previous page's last index as the cursor,
 * as GET /v1/events and `stele search --all` page) and write each row as one JSON line to
 * /dev/null. The real export also reads each entry's leaf from the log and decrypts it; that part
 * is measured end to end in e2e.ts, not here.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type Database from 'better-sqlite3';
import type { IndexRow } from '../../src/event/searchable.js';
import type { SqliteQueryStore } from '../../src/storage/fs/query-store.js';
import { ROW_COLUMNS } from './build.js';
import { compileQuery } from './compile.js';

export const EXPORT_PAGE = 1000;

export interface ExportRun {
  rows: number;
  ms: number;
  bytes: number;
  rowsPerS: number;
}

type Page = (cursor: number | undefined) => IndexRow[];

function drain(page: Page, rows: number, format: boolean): ExportRun {
  const fd = openSync('/dev/null', 'w');
  try {
    let cursor: number | undefined;
    let n = 0;
    let bytes = 0;
    const t0 = performance.now();
    while (n < rows) {
      const hits = page(cursor);
      if (hits.length === 0) break;
      const take = Math.min(hits.length, rows - n);
      if (format) {
        let out = '';
        for (let i = 0; i < take; i++) out += `${JSON.stringify(hits[i])}\n`;
        bytes += Buffer.byteLength(out);
        writeSync(fd, out);
      }
      n += take;
      cursor = (hits[hits.length - 1] as IndexRow).idx;
      if (hits.length < EXPORT_PAGE) break;
    }
    const ms = performance.now() - t0;
    return { rows: n, ms, bytes, rowsPerS: n / (ms / 1000) };
  } finally {
    closeSync(fd);
  }
}

/** SqliteQueryStore.searchEntries pages, each row as a JSON line (the headline). */
export function exportStele(store: SqliteQueryStore, rows: number, format = true): ExportRun {
  return drain(
    (cursor) =>
      store.searchEntries(compileQuery('', Date.now()), {
        ...(cursor === undefined ? {} : { cursor }),
        limit: EXPORT_PAGE,
        order: 'desc',
      }),
    rows,
    format,
  );
}

/** The raw limit: the same paging SQL as two statements prepared once, bound and stepped. */
export function exportRaw(raw: Database.Database, rows: number): ExportRun {
  const cols = ROW_COLUMNS.map((c) => `e.${c}`).join(', ');
  const first = raw.prepare(`SELECT ${cols} FROM entries e WHERE (1) ORDER BY e.idx DESC LIMIT ?`);
  const next = raw.prepare(`SELECT ${cols} FROM entries e WHERE (1) AND e.idx < ? ORDER BY e.idx DESC LIMIT ?`);
  return drain(
    (cursor) => (cursor === undefined ? first.all(EXPORT_PAGE) : next.all(cursor, EXPORT_PAGE)) as IndexRow[],
    rows,
    true,
  );
}
