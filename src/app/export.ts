import { bundleEntry, bundleGap, bundleHeader, bundleTimestamp, bundleTrailer } from '../export/bundle.js';
import { csvHeader, csvRow, jsonLine } from '../export/formats.js';
import { EntryDigest, formatManifest, manifestHash, signManifest } from '../export/manifest.js';
import { parseQuery } from '../index/query.js';
import { openEntry } from '../index/reader.js';
import type { Match } from '../index/thread.js';
import type { Stele } from './stele.js';
import { TIMESTAMP_ACTION, type TimestampRecord } from './timestamping.js';

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
  keep?: (hit: Match) => boolean;
  /** Called once per exported entry (gaps included). */
  counted?: () => void;
  /** Bundles (required): what the signed manifest says about the export, and how it is recorded. */
  manifest?: ManifestScope;
}

export interface ManifestScope {
  asker: { id: string; method: string };
  /** Index of the stele.access.export entry recording the export's start. */
  started: number;
  /**
   * Records the signed manifest in the log (by its hash) once the last entry has been written, and
   * returns the index of that entry, which the trailer names. Never called when the export stops
   * early (the client went away, an error): such a bundle has no trailer and so no manifest.
   */
  record: (m: { note: string; sha256: string; count: number }) => Promise<number>;
}

const PAGE = 1000;

/**
 * The newest RFC 3161 timestamp of each TSA (stele.timestamp events) whose checkpoint is at most
 * `size`, for a bundle against the checkpoint of that size.
 */
async function newestTimestamps(stele: Stele, size: number): Promise<TimestampRecord[]> {
  const found = await stele.index.search(
    { q: `action:${TIMESTAMP_ACTION}`, limit: 100, order: 'desc', nowMs: Date.now() },
    stele.log.checkpoint.size,
  );
  const byTsa = new Map<string, TimestampRecord>();
  for (const h of found.hits) {
    if (h.kind !== 'entry') continue;
    const r = h.event.data as unknown as TimestampRecord;
    if (typeof r?.tsa !== 'string' || typeof r.size !== 'number' || r.size > size || byTsa.has(r.tsa)) continue;
    byTsa.set(r.tsa, r);
  }
  return [...byTsa.values()];
}

/**
 * The export operation: the entries a query matches, as text lines, a page at a time so memory
 * stays flat however many there are. An entry whose data key was destroyed is exported as the gap
 * it is (index, received, tier, state, erasure), not skipped, so a reader can tell a gap from an
 * omission. An evidence bundle proves every entry against one signed
 * checkpoint, taken when the export starts (entries appended later are not in it).
 */
export async function* exportLines(stele: Stele, req: ExportRequest, scope: ExportScope = {}): AsyncGenerator<string> {
  parseQuery(req.q); // a bad query fails here, before any line is sent
  const bundle = req.format === 'bundle';
  if (bundle && !scope.manifest) throw new Error('exportLines: a bundle needs the manifest scope');
  const cp = bundle ? await stele.log.waitForCheckpoint(stele.log.size) : null;
  const query = { q: req.q, order: req.order };
  if (cp) {
    yield bundleHeader({ vkey: stele.vkey, checkpoint: cp.note, query });
    for (const t of await newestTimestamps(stele, cp.size))
      yield bundleTimestamp({ ...t, consistency: await stele.log.consistencyProof(t.size, cp.size) });
  } else if (req.format === 'csv') yield csvHeader();
  // Every entry line of a bundle (event or gap) goes into the digest, in the order written.
  const digest = new EntryDigest();
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
      count++;
      digest.add(h.index, h.leaf as Buffer);
      if (h.kind === 'gap') {
        yield bundleGap({ ...h, leaf: h.leaf as Buffer, proof, checkpoint: cp.note });
        continue;
      }
      yield bundleEntry({
        index: h.index,
        leaf: h.leaf as Buffer,
        event: h.event,
        ingest: h.ingest,
        ...(h.messageKey ? { messageKey: h.messageKey } : {}),
        proof,
        checkpoint: cp.note,
      });
    }
    if (page.next === undefined) break;
    cursor = page.next;
  }
  if (!cp || !scope.manifest) return;
  // Only now, after the last entry, is there a manifest to sign: a bundle cut short has none.
  const m = scope.manifest;
  const manifest = {
    origin: stele.config.origin,
    size: cp.size,
    root: cp.root,
    asker: m.asker,
    query,
    started: m.started,
    count: digest.count,
    digest: digest.digest(),
    time: new Date().toISOString(),
  };
  const note = signManifest(manifest, stele.signer);
  const record = await m.record({ note, sha256: manifestHash(formatManifest(manifest)), count: digest.count });
  // The record goes in the trailer with its message key, proven in the first checkpoint that
  // holds it (at most a checkpoint interval away) and that checkpoint proven consistent with the
  // header's, so the bundle shows offline where the log recorded it.
  const later = await stele.log.waitForCheckpoint(record + 1);
  const leaf = await stele.log.entry(record);
  const opened = await openEntry(stele.keys, record, leaf, true);
  yield bundleTrailer(count, {
    manifest: note,
    record: {
      index: record,
      leaf,
      event: opened.event,
      ingest: opened.ingest,
      ...(opened.messageKey ? { messageKey: opened.messageKey } : {}),
      proof: await stele.log.inclusionProof(record, later.size),
      checkpoint: later.note,
    },
    consistency: await stele.log.consistencyProof(cp.size, later.size),
  });
}
