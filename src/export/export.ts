import { compileQuery } from '../index/query.js';
import type { Hit } from '../index/thread.js';
import type { Stele } from '../stele.js';
import { bundleEntry, bundleHeader, bundleTrailer } from './bundle.js';
import { csvHeader, csvRow, jsonLine } from './formats.js';

export type ExportFormat = 'jsonl' | 'csv' | 'bundle';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['jsonl', 'csv', 'bundle'];

export interface ExportRequest {
  q: string;
  format: ExportFormat;
  order: 'asc' | 'desc';
}

/** What the asker may export: tiers (filtered in the query store) and a per-entry check. */
export interface ExportScope {
  tiers?: string[];
  keep?: (hit: Hit) => boolean;
  /** Called once per exported entry. */
  counted?: () => void;
}

const PAGE = 1000;

/**
 * The export operation: the entries a query matches, as text lines, a page at a time so memory
 * stays flat however many there are. An evidence bundle proves every entry against one signed
 * checkpoint, taken when the export starts (entries appended later are not in it).
 */
export async function* exportLines(stele: Stele, req: ExportRequest, scope: ExportScope = {}): AsyncGenerator<string> {
  compileQuery(req.q, Date.now()); // a bad query fails here, before any line is sent
  const bundle = req.format === 'bundle';
  const cp = bundle ? await stele.log.waitForCheckpoint(stele.log.size) : null;
  if (cp) yield bundleHeader({ vkey: stele.vkey, checkpoint: cp.note, query: { q: req.q, order: req.order } });
  else if (req.format === 'csv') yield csvHeader();
  const nowMs = Date.now();
  let cursor: number | undefined;
  let count = 0;
  for (;;) {
    const page = await stele.index.search(
      {
        q: req.q,
        ...(cursor === undefined ? {} : { cursor }),
        limit: PAGE,
        order: req.order,
        nowMs,
        withLeaves: bundle,
        ...(scope.tiers ? { tiers: scope.tiers } : {}),
      },
      stele.log.checkpoint.size,
    );
    for (const h of page.hits) {
      if (scope.keep && !scope.keep(h)) continue;
      if (cp && h.index >= cp.size) continue;
      scope.counted?.();
      if (!cp) {
        yield req.format === 'csv' ? csvRow(h) : jsonLine(h);
        continue;
      }
      const proof = await stele.log.inclusionProof(h.index, cp.size);
      yield bundleEntry({
        index: h.index,
        leaf: h.leaf as Buffer,
        event: h.event,
        ingest: h.ingest,
        ...(h.messageKey ? { messageKey: h.messageKey } : {}),
        proof,
        checkpoint: cp.note,
      });
      count++;
    }
    if (page.next === undefined) break;
    cursor = page.next;
  }
  if (cp) yield bundleTrailer(count);
}
