/**
 * Reading the log's contents, guarded and audited: reading one entry's event, searching, and
 * exporting. Each checks the policy (the action on the whole log, then each entry, whose tier,
 * action, actor... Cedar policies may test), and appends a stele.access.* event saying who read
 * what before the answer goes out. Routes call these; the CLI reaches them through the API.
 */
import { who } from '../auth/access.js';
import { LIMITS } from '../core/config/settings.js';
import { SteleError } from '../core/errors.js';
import { plural } from '../core/plural.js';
import type { Principal } from '../core/principal.js';
import type { Event } from '../event/types.js';
import { parseQuery } from '../index/query.js';
import type { Hit, Match } from '../index/thread.js';
import type { SearchRequest } from '../index/worker.js';
import { subjectHash } from '../keys/subject.js';
import type { AccessResource } from '../policy/access.js';
import { type ExportRequest, exportLines } from './export.js';
import type { Stele } from './stele.js';

/**
 * The Cedar resource of one entry: what a policy can test about it. A gap (an entry whose data key
 * was destroyed) is judged as an entry of its tier of which nothing else is known (every other
 * attribute ""): its content is gone, and must not be guessed at.
 */
export function entryResource(stele: Stele, m: Match): AccessResource {
  if (m.kind === 'gap') {
    return {
      type: 'Entry',
      tier: m.tier,
      action: '',
      source: '',
      actor: '',
      actor_type: '',
      outcome: '',
      principal: '',
      subject_hash: '',
    };
  }
  const e: Event = m.event;
  const erasureOf = e.action === 'stele.erasure' ? (e.data as { subject_hash?: unknown } | undefined)?.subject_hash : undefined;
  return {
    type: 'Entry',
    tier: m.tier,
    action: e.action,
    source: e.source.kind,
    actor: e.actor.id,
    actor_type: e.actor.type,
    outcome: e.outcome,
    principal: m.ingest.principal,
    subject_hash:
      e.subject !== undefined ? subjectHash(stele.keys.subjectPepper, e.subject) : typeof erasureOf === 'string' ? erasureOf : '',
  };
}

/**
 * `GET /v1/entries/:index` with a credential: the decrypted event of entry `index`, if policy lets
 * `p` read it. A refusal never opens the entry: an entry hidden by its tier, by a Cedar forbid, or
 * whose key was destroyed in a tier `p` may not see, all get the same 403 naming only the index;
 * a gap `p` may see answers 410 ("expired"/"erased"). `_leaf` is the entry's leaf, already read.
 */
export async function readEntry(stele: Stele, p: Principal, index: number, _leaf: Buffer): Promise<Event> {
  stele.access.require(p, 'read');
  // The entry exists (its leaf was read): its tier and access are the index's to say, so wait for
  // it there (briefly; 503 index_behind after that), as a search with after= does.
  await stele.index.whenIndexed(index + 1, LIMITS.searchAfterWaitMs);
  const found = await stele.index.search(
    { q: `index:${index}`, limit: 1, order: 'desc', nowMs: Date.now(), tiers: stele.access.readableTiers(p, 'read') },
    stele.log.checkpoint.size,
  );
  const m = found.hits[0];
  if (!m || !stele.access.allowed(p, 'read', entryResource(stele, m))) {
    throw new SteleError('forbidden', `${who(p)} may not read entry ${index}`, { detail: { action: 'read' } });
  }
  if (m.kind === 'gap') {
    const by = m.erasure === undefined ? '' : ` by entry ${m.erasure}`;
    throw new SteleError(m.state, `entry ${index} has been ${m.state}${by}; its data key was destroyed`, {
      detail: {
        index,
        state: m.state,
        tier: m.tier,
        ...(m.erasure === undefined ? {} : { erasure: m.erasure }),
      },
    });
  }
  // The tier read is its resource, so an alert can watch a tier's reads (action:stele.access.read resource:<tier>).
  await stele.audit.record('stele.access.read', p, { index }, { resource: { type: 'stele.tier', id: m.tier } });
  return m.event;
}

export type SearchInput = Omit<SearchRequest, 'nowMs' | 'withLeaves' | 'tiers' | 'bound'> & {
  /** Read your writes: answer only once entry `after` (e.g. an append's index) is searchable. */
  after?: number;
};

/**
 * Log positions a search scans past its cursor (SCAN_SPAN) when the policy may hide entries of a
 * tier the asker sees (Cedar reads more than the tier). The scan stops early once the page is full
 * of visible matches; otherwise at this many positions, where the cursor it returns is a position
 * that depends only on the request (cursor - SCAN_SPAN), never on where hidden matches are.
 */
export const SCAN_SPAN = 100_000;
/** Matches (visible or not) `count=true` examines when the policy decides per entry; beyond, 422. */
export const COUNT_BUDGET = 100_000;
const STORE_PAGE = 1000;

interface Page {
  hits: Match[];
  next?: number;
  total?: number;
}

/** A search's answer: its page, and how far the index had got (every entry below is in this answer's view). */
export interface SearchPage extends Page {
  indexedThrough: number;
}

/**
 * `GET /v1/events`: a page of what `p` may see (entries and gaps), newest first by default.
 * `hits`, `next` and `total` are computed over what `p` may see only, so that neither the count
 * nor the cursor tells anything about an entry hidden from `p` (see SCAN_SPAN, COUNT_BUDGET).
 */
export async function searchEvents(stele: Stele, p: Principal, req: SearchInput): Promise<SearchPage> {
  stele.access.require(p, 'search');
  if (req.after !== undefined) {
    if (req.after >= (await stele.log.sizeNow())) {
      throw new SteleError(
        'not_found',
        `entry ${req.after} has not been appended (the log has ${plural(stele.log.size, 'entry', 'entries')})`,
      );
    }
    await stele.index.whenIndexed(req.after + 1, LIMITS.searchAfterWaitMs);
  }
  // Read before the search is sent (every entry below was searchable); a single store search says exactly.
  let indexedThrough = stele.index.indexedThrough;
  const base = { q: req.q, order: req.order, nowMs: Date.now(), tiers: stele.access.readableTiers(p, 'search') };
  const see = (m: Match) => stele.access.allowed(p, 'search', entryResource(stele, m));
  const published = stele.log.checkpoint.size;
  let page: Page | undefined;
  if (!stele.access.entryDependent) {
    // The tier filter in the store decides every entry: its page, cursor and count are exact —
    // as long as every hit is indeed visible (if not, the scan below, which never relies on it).
    const r = await stele.index.search({ ...base, cursor: req.cursor, limit: req.limit, count: req.count }, published);
    if (r.hits.every(see)) {
      indexedThrough = r.indexed;
      page = {
        hits: r.hits,
        ...(r.next !== undefined ? { next: r.next } : {}),
        ...(r.total !== undefined ? { total: r.total } : {}),
      };
    }
  }
  if (!page) {
    page = await scanVisible(stele, { ...base, cursor: req.cursor, limit: req.limit }, see, published);
    if (req.count) page.total = await countVisible(stele, base, see, published);
  }
  await stele.audit.record('stele.access.search', p, {
    query: req.q,
    order: req.order,
    ...(req.cursor !== undefined ? { cursor: req.cursor } : {}),
    results: page.hits.length,
    indices: page.hits.map((h) => h.index),
  });
  return { ...page, indexedThrough };
}

type ScanRequest = Omit<SearchRequest, 'count' | 'bound' | 'withLeaves'>;

/**
 * A page of visible matches, scanning at most SCAN_SPAN log positions past the cursor. The cursor
 * returned is the last visible match when the page is full (the next page starts after it), else
 * the end of the span (a function of the request and the log's size alone), else none when the
 * span reached the end of the log.
 */
export async function scanVisible(
  stele: Pick<Stele, 'index' | 'log'>,
  req: ScanRequest,
  see: (m: Match) => boolean,
  published: number,
  span = SCAN_SPAN,
): Promise<Page> {
  const desc = req.order === 'desc';
  const size = stele.log.size;
  const from = req.cursor ?? (desc ? size : -1); // exclusive
  const bound = desc ? from - span : from + 1 + span;
  const toEnd = desc ? bound <= 0 : bound >= size;
  const hits: Match[] = [];
  let cursor = req.cursor;
  let limit = req.limit;
  for (;;) {
    const r = await stele.index.search(
      { ...req, ...(cursor === undefined ? {} : { cursor }), limit, ...(toEnd ? {} : { bound }) },
      published,
    );
    for (const m of r.hits) {
      if (!see(m)) continue;
      hits.push(m);
      if (hits.length === req.limit) return { hits, next: m.index };
    }
    if (r.next === undefined) break;
    cursor = r.next;
    limit = Math.min(STORE_PAGE, limit * 2); // most pages fill at once; a page with hidden matches reads on in larger steps
  }
  return toEnd ? { hits } : { hits, next: desc ? bound : bound - 1 };
}

/** How many matches `p` may see; refused (422) past COUNT_BUDGET matches, rather than run unbounded. */
async function countVisible(
  stele: Stele,
  base: Omit<ScanRequest, 'limit' | 'cursor'>,
  see: (m: Match) => boolean,
  published: number,
): Promise<number> {
  let total = 0;
  for await (const _ of eachVisible(stele, base, see, published, 'or leave out count')) total++;
  return total;
}

/**
 * Every match `p` may see (`see`), in log order; refused (422 count_unavailable) once
 * COUNT_BUDGET matches, visible or not, were examined, rather than run unbounded. `advice` ends
 * the refusal's message.
 */
export async function* eachVisible(
  stele: Pick<Stele, 'index'>,
  base: Omit<ScanRequest, 'limit' | 'cursor' | 'order'>,
  see: (m: Match) => boolean,
  published: number,
  advice: string,
): AsyncGenerator<Match> {
  let examined = 0;
  let cursor: number | undefined;
  for (;;) {
    const r = await stele.index.search(
      { ...base, order: 'asc', ...(cursor === undefined ? {} : { cursor }), limit: STORE_PAGE },
      published,
    );
    for (const m of r.hits) if (see(m)) yield m;
    examined += r.hits.length;
    if (r.next === undefined) return;
    if (examined >= COUNT_BUDGET) {
      throw new SteleError(
        'count_unavailable',
        `counting stops at ${COUNT_BUDGET} matching entries under this policy; narrow the query (index:, since:, tier:) ${advice}`,
      );
    }
    cursor = r.next;
  }
}

/** Entries a live tail reads from the store at a time. */
const STREAM_PAGE = 500;

/**
 * `GET /v1/stream` and `stele tail`: the entries `p` may see that match the query, in log order
 * after `after` (default: from now on), then each new one as it becomes searchable, until `signal`
 * aborts. Every entry passes the same access check as a search's; gaps (expired or erased entries)
 * are never sent, and an entry erased before it was read is not found. It yields `null` once the
 * stream is open, then every `idleMs` while it waits (a keep-alive for the connection). Recorded when it opens and when it closes,
 * with how many entries it sent, not each page it read.
 */
export async function* streamEvents(
  stele: Stele,
  p: Principal,
  req: { q: string; after?: number; signal: AbortSignal; idleMs?: number },
): AsyncGenerator<Hit | null> {
  stele.access.require(p, 'search');
  parseQuery(req.q); // a bad query is refused before anything is recorded
  const started = await stele.audit.record('stele.access.stream', p, {
    query: req.q,
    ...(req.after !== undefined ? { after: req.after } : {}),
  });
  const see = (m: Match) => stele.access.allowed(p, 'search', entryResource(stele, m));
  // Exclusive: the last entry already sent, or scanned and not matching.
  let cursor = req.after ?? stele.index.indexedThrough - 1;
  let sent = 0;
  try {
    // At once, so the caller knows the stream is open (and a refusal came before it) without a match.
    yield null;
    while (!req.signal.aborted) {
      // Everything below `indexed` is in the store: once scanned, the cursor may pass it.
      const indexed = stele.index.indexedThrough;
      const base = { q: req.q, order: 'asc' as const, nowMs: Date.now(), tiers: stele.access.readableTiers(p, 'search') };
      const page = await scanVisible(stele, { ...base, cursor, limit: STREAM_PAGE }, see, stele.log.checkpoint.size);
      for (const m of page.hits) {
        cursor = m.index;
        if (m.kind !== 'entry') continue;
        sent++;
        yield m;
      }
      if (page.next !== undefined) {
        cursor = Math.max(cursor, page.next);
        continue;
      }
      cursor = Math.max(cursor, indexed - 1);
      // Wait for the index to pass what was scanned, or the keep-alive, or the end.
      const more = stele.index.whenIndexed(indexed + 1, req.idleMs ?? 15_000).then(
        () => true,
        () => false,
      );
      const aborted = new Promise<boolean>((resolve) =>
        req.signal.addEventListener('abort', () => resolve(false), { once: true }),
      );
      if (!(await Promise.race([more, aborted])) && !req.signal.aborted) yield null;
    }
  } finally {
    await stele.audit.record('stele.access.stream.end', p, { started, entries: sent, last: cursor });
  }
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
  parseQuery(req.q); // a bad query is refused before anything is recorded
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
