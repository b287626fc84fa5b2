/**
 * Reading the log's contents, guarded and audited: reading one entry's event, searching, and
 * exporting. Each checks the policy (the action on the whole log, then each entry, whose tier,
 * action, actor... Cedar policies may test), and appends a stele.access.* event saying who read
 * what before the answer goes out. Routes call these; the CLI reaches them through the API.
 */
import type { Principal } from './auth/principal.js';
import { SteleError } from './errors.js';
import type { Event } from './event/types.js';
import { type ExportRequest, exportLines } from './export/export.js';
import { compileQuery } from './index/query.js';
import { openEntry } from './index/reader.js';
import type { Hit } from './index/thread.js';
import type { SearchRequest } from './index/worker.js';
import { subjectHash } from './keys/subject.js';
import type { AccessAction, AccessResource } from './policy/access.js';
import type { Stele } from './stele.js';

/** The Cedar resource of one entry: what a policy can test about it. */
export function entryResource(stele: Stele, hit: Pick<Hit, 'tier' | 'event' | 'ingest'>): AccessResource {
  const e: Event = hit.event;
  const erasureOf = e.action === 'stele.erasure' ? (e.data as { subject_hash?: unknown } | undefined)?.subject_hash : undefined;
  return {
    type: 'Entry',
    tier: hit.tier,
    action: e.action,
    source: e.source.kind,
    actor: e.actor.id,
    actor_type: e.actor.type,
    outcome: e.outcome,
    principal: hit.ingest.principal,
    subject_hash:
      e.subject !== undefined ? subjectHash(stele.keys.subjectPepper, e.subject) : typeof erasureOf === 'string' ? erasureOf : '',
  };
}

/** The hits `p` may see through `action` (the tier filter already ran in the query store). */
function visible<H extends Pick<Hit, 'tier' | 'event' | 'ingest'>>(
  stele: Stele,
  p: Principal,
  action: AccessAction,
  hits: H[],
): H[] {
  return hits.filter((h) => stele.access.allowed(p, action, entryResource(stele, h)));
}

/** `GET /v1/entries/:index` with a credential: the decrypted event of `leaf` (the entry's, already read), if policy lets `p` read it. */
export async function readEntry(stele: Stele, p: Principal, index: number, leaf: Buffer): Promise<Event> {
  stele.access.require(p, 'read');
  const found = await stele.index.search(
    { q: `index:${index}`, limit: 1, order: 'desc', nowMs: Date.now(), tiers: stele.access.readableTiers(p, 'read') },
    stele.log.checkpoint.size,
  );
  const hit = found.hits[0];
  if (!hit) {
    // Not in the query store: expired or erased (410), or in a tier `p` may not read (403, which
    // the server records as a denied access, with the URL naming the entry).
    const opened = openEntry(stele.keys, index, leaf);
    throw new SteleError('forbidden', `${p.id} may not read entry ${index} (a ${opened.event.action} entry)`, 403, {
      action: 'read',
    });
  }
  stele.access.require(p, 'read', entryResource(stele, hit));
  await stele.audit.record('stele.access.read', p, { index });
  return hit.event;
}

export type SearchInput = Omit<SearchRequest, 'nowMs' | 'withLeaves' | 'tiers'>;

/** `GET /v1/events`: a page of hits `p` may see, newest first by default. */
export async function searchEvents(
  stele: Stele,
  p: Principal,
  req: SearchInput,
): Promise<{ hits: Hit[]; next?: number; total?: number }> {
  stele.access.require(p, 'search');
  const page = await stele.index.search(
    { ...req, nowMs: Date.now(), tiers: stele.access.readableTiers(p, 'search') },
    stele.log.checkpoint.size,
  );
  const hits = visible(stele, p, 'search', page.hits);
  await stele.audit.record('stele.access.search', p, {
    query: req.q,
    order: req.order,
    ...(req.cursor !== undefined ? { cursor: req.cursor } : {}),
    results: hits.length,
    indices: hits.map((h) => h.index),
  });
  return {
    hits,
    ...(page.next !== undefined ? { next: page.next } : {}),
    ...(page.total !== undefined ? { total: page.total } : {}),
  };
}

/**
 * `GET /v1/export`: the export's lines, with what `p` may export. The export is recorded when it
 * starts (before the first line) and again when it ends, with the count — or with `complete:
 * false` if the client went away. A bundle's end record carries the SHA-256 of its signed
 * manifest, and the bundle's trailer names that record, so the log itself says which bundle it
 * gave out; the manifest is signed only once every entry is out.
 */
export async function* exportEvents(stele: Stele, p: Principal, req: ExportRequest): AsyncGenerator<string> {
  stele.access.require(p, 'export');
  compileQuery(req.q, Date.now()); // a bad query is refused before anything is recorded
  const started = await stele.audit.record('stele.access.export', p, { query: req.q, format: req.format, order: req.order });
  let count = 0;
  let complete = false;
  let ended = false;
  try {
    for await (const line of exportLines(stele, req, {
      tiers: stele.access.readableTiers(p, 'export'),
      keep: (hit) => stele.access.allowed(p, 'export', entryResource(stele, hit)),
      counted: () => count++,
      manifest: {
        asker: { id: p.id, method: p.method },
        started,
        record: async (m) => {
          const index = await stele.audit.record('stele.access.export.end', p, {
            started,
            entries: m.count,
            complete: true,
            manifest_sha256: m.sha256,
          });
          ended = true;
          return index;
        },
      },
    })) {
      yield line;
    }
    complete = true;
  } finally {
    if (!ended) await stele.audit.record('stele.access.export.end', p, { started, entries: count, complete });
  }
}
