/**
 * The index thread: keeps the query store up to date with the log at its own pace and answers
 * searches. Leaves arrive with their appends (`add`) or, while the thread is far behind, are read
 * from the tiles once checkpointed (`tail` says how far the log and its checkpoint are). It
 * indexes in large transactions between messages, so searches interleave with indexing; a search
 * first indexes a small backlog (SEARCH_CATCHUP), so under light load it sees every entry
 * acknowledged before it was sent, and under heavy load answers at once (indexed_through says
 * how far it saw).
 */
import { isConnectionError, SteleError, toWire, type WireError } from '../core/errors.js';
import type { ThreadPort } from '../core/thread.js';
import { decodeLeaf, formatMicros, parseMicros } from '../event/record.js';
import { ftsText, type IndexRow, indexRow, readNote } from '../event/searchable.js';
import type { Event, Ingest } from '../event/types.js';
import { type KeyStore, keyNotReadable } from '../keys/keystore.js';
import { type Packed, unpack } from '../log/packed.js';
import { TreeReader } from '../log/tree-reader.js';
import type { Policy } from '../policy/policy.js';
import { TierMatcher } from '../policy/tiers.js';
import { noteSize } from '../tlog/checkpoint.js';
import type { TileSource } from '../tlog/verify.js';
import { addTally, bucketsFor, emptyTally, type Summary, summarize } from './aggregate.js';
import { candidates, destroyedBy, type ErasureRef, erasureRef } from './erasure.js';
import { NoteQueue } from './note-queue.js';
import { canMatchGaps, parseQuery } from './query.js';
import { type GapRow, type Order, type QueryStore, StaleBatch, type StoreQuery } from './query-store.js';
import { type OpenedEntry, openEntry } from './reader.js';

/** One entry to index: its index note when its writer made one, else its leaf. */
interface Item {
  leaf?: Buffer;
  note?: Buffer;
}

/** Index notes kept in memory (~400 bytes each); past this they queue on disk (NoteQueue). */
export const NOTE_MEMORY = 65_536;

/** Entries indexed in one store transaction (large transactions are most of the speed). */
export const BATCH = 10_000;

/**
 * A search first indexes a backlog this small (a batch or two), so under light load it sees every
 * entry acknowledged before it was sent; a larger backlog it does not wait for.
 */
export const SEARCH_CATCHUP = 10_000;

/**
 * A backlog smaller than this waits up to COALESCE_MS for more before it is indexed. Under a
 * steady trickle of single appends each group commit would otherwise be a store transaction of its
 * own, and a transaction of one row cost 374 µs against 40 µs a row in one of 1,000 (measured on a
 * store of 100,000 rows: a commit, a new FTS5 segment and the merges it leads to, every page it
 * touched written to the WAL). Nobody waits for it: a search first catches up (readyToRead), and
 * a read-your-writes wait (IndexThread.whenIndexed) sends `hurry`.
 */
export const COALESCE_BELOW = 1_000;
export const COALESCE_MS = 50;

/** What the index thread's owner gives it to start. */
export interface IndexThreadData {
  /** The master keys, to unwrap data keys for indexing and search. */
  masters: { id: string; key: Uint8Array }[];
  policy: Policy;
  /**
   * Start as a reader: search the store but do not write it (a node of a shared log that does not
   * hold the integrator lease; the holder indexes, and `role` messages switch).
   */
  reader?: boolean;
}

/** What the index thread works on: opened by the backend the thread belongs to. */
export interface IndexStores {
  store: QueryStore;
  /** Read-only: the main thread's key store creates and destroys keys (deleteKeys says which). */
  keys: KeyStore;
  tiles: TileSource;
  /** Where notes queue on disk past NOTE_MEMORY (Backend.noteSpill); null: they are dropped there. */
  noteSpill?: string | null;
}

/** One search hit as it crosses threads: a readable entry and its event. */
export interface WireHit {
  kind: 'entry';
  index: number;
  received: string;
  ingest: Ingest;
  tier: string;
  key?: string;
  event: Event;
  leaf?: Uint8Array;
  messageKey?: Uint8Array;
}

/**
 * An entry whose data key was destroyed: where it is and how it went, nothing of what it said.
 * `erasure` is the index of the stele.erasure / stele.retention.run entry that destroyed the key,
 * once that entry is indexed. With withLeaves, the leaf (its ciphertext stays in the log).
 */
export interface WireGap {
  kind: 'gap';
  index: number;
  received: string;
  tier: string;
  state: 'expired' | 'erased';
  erasure?: number;
  leaf?: Uint8Array;
}

/** What a search finds, in log order: readable entries and gaps. */
export type WireMatch = WireHit | WireGap;

export interface SearchRequest {
  q: string;
  cursor?: number;
  limit: number;
  order: Order;
  nowMs: number;
  /** Also return each hit's leaf bytes and message key (evidence bundles). */
  withLeaves?: boolean;
  count?: boolean;
  /** Only entries of these tiers (what the asker's policy lets them see); absent: every tier. */
  tiers?: string[];
  /** Only entries at or after (desc) or before (asc) this index (a bounded scan, see src/app/reading.ts). */
  bound?: number;
}

/** A summary of what a query matches: its histogram and facets (aggregate.ts). */
export interface SummaryRequest {
  q: string;
  nowMs: number;
  /** Only entries of these tiers; absent: every tier. */
  tiers?: string[];
  /** At most this many histogram buckets. */
  buckets: number;
  /** Values per facet. */
  top: number;
}

export type SummaryResult = Summary & { indexed: number };

export interface SearchResult {
  hits: WireMatch[];
  /** Cursor for the next page; absent on the last page. */
  next?: number;
  /** With count: the matches, and how many of them are gaps. */
  total?: number;
  gaps?: number;
  /** Entries [0, indexed) were in the store for this search (and later ones were not). */
  indexed: number;
}

export type ToIndex =
  | { type: 'add'; first: number; leaves: Packed; published: number; notes?: Packed }
  | { type: 'tail'; size: number; published: number }
  /** Someone waits for entries below `upto` to be searchable: index them now, not after COALESCE_MS. */
  | { type: 'hurry'; upto: number }
  /** Index notes of entries whose leaves the thread reads from the tiles (it is far behind); empty: none. */
  | { type: 'notes'; first: number; notes: Packed }
  | { type: 'settle'; seq: number; budgetMs: number }
  | { type: 'search'; seq: number; published: number; req: SearchRequest }
  | { type: 'summarize'; seq: number; published: number; req: SummaryRequest }
  /** The asker of summary `of` went away: its remaining steps are not run. */
  | { type: 'cancel'; of: number }
  | { type: 'deleteKeys'; seq: number; ids: string[] }
  | { type: 'keysOfActors'; seq: number; actors: string[] }
  | { type: 'upto'; seq: number }
  | { type: 'policy'; policy: Policy }
  /** Whether this thread writes the store (the lease holder of a shared log) or only reads it. */
  | { type: 'role'; writer: boolean }
  | { type: 'optimize'; seq: number };

export type FromIndex =
  | { type: 'reply'; seq: number; ok: true; value: unknown }
  | { type: 'reply'; seq: number; ok: false; error: WireError }
  | { type: 'failed'; error: WireError }
  | { type: 'indexed'; upto: number };

/**
 * Serves the index thread's messages on `port` (its owner is IndexThread): one message at a
 * time, in order.
 */
export function serveIndex(
  port: ThreadPort,
  { store, keys, tiles, noteSpill = null }: IndexStores,
  policy: Policy,
  readOnly = false,
  coalesceMs = COALESCE_MS,
): void {
  /** Whether this thread indexes; a reader follows the store's upto, which another node moves. */
  let writer = !readOnly;
  let tiers = new TierMatcher(policy);
  const reader = new TreeReader(tiles);
  /** Leaves handed over with their appends and not yet both indexed and checkpointed, by index. */
  const recent = new Map<number, Buffer>();
  /** Index notes handed over with the entries (event/searchable.ts indexNote), until indexed. */
  const notes = new NoteQueue(noteSpill, NOTE_MEMORY);
  /** Entries below this are in the store (read from it before the first message is handled). */
  let next = 0;
  /** The log's size and its newest checkpoint's, as far as this thread was told. */
  let known = 0;
  let published = 0;
  let chain: Promise<void> = store.upto().then(
    (n) => {
      next = n;
      known = Math.max(known, n);
    },
    (err: Error) => port.postMessage({ type: 'failed', error: toWire(err) } satisfies FromIndex),
  );

  /** Leaves below both the checkpoint and `next` are read from the tiles if ever needed again. */
  function prune(): void {
    const below = Math.min(published, next);
    for (const i of recent.keys()) {
      if (i >= below) break; // Map keeps insertion order, which is index order
      recent.delete(i);
    }
    notes.dropBelow(next);
  }

  /**
   * The next entries to index, up to BATCH, each as its note (handed over) or its leaf (handed over,
   * or read from the tiles); empty when none is readable yet. An entry is indexed only once its
   * leaf is readable too (in `recent` or checkpointed), so every search hit can be read back.
   */
  async function readable(): Promise<Item[]> {
    const out: Item[] = [];
    const end = Math.min(known, next + BATCH);
    let bundle: Buffer[] = [];
    let bundleAt = -1;
    for (let i = next; i < end; i++) {
      const leaf = recent.get(i);
      const note = notes.get(i);
      if (leaf || (note && i < published)) {
        out.push({ leaf, note });
        continue;
      }
      if (i >= published) break; // neither handed over nor checkpointed yet: wait for a `tail`
      if (bundleAt !== Math.floor(i / 256)) {
        bundleAt = Math.floor(i / 256);
        bundle = await reader.bundle(bundleAt, published);
      }
      out.push({ leaf: bundle[i % 256] as Buffer });
    }
    return out;
  }

  /** Indexes one batch of what is readable; false when nothing was. */
  async function step(): Promise<boolean> {
    const leaves = await readable();
    if (!leaves.length) return false;
    try {
      await add(next, leaves);
    } catch (err) {
      if (!(err instanceof StaleBatch)) throw err;
      // Another node indexed these entries (it took the lease while this one still wrote): go on from where it got.
      next = err.upto;
      known = Math.max(known, next);
    }
    prune();
    port.postMessage({ type: 'indexed', upto: next } satisfies FromIndex);
    return true;
  }

  /**
   * A reader's view of how far the store is indexed (the writer is another node), up to the
   * newest checkpoint: the leaves of entries past it are not in the tiles this thread reads.
   */
  async function refresh(): Promise<void> {
    const [upto, note] = await Promise.all([store.upto(), tiles.readCheckpoint()]);
    published = Math.max(published, note ? noteSize(note) : 0);
    const n = Math.min(upto, published);
    if (n <= next) return;
    next = n;
    known = Math.max(known, n);
    prune();
    port.postMessage({ type: 'indexed', upto: next } satisfies FromIndex);
  }

  /** Indexes what is readable below `upto` (default: all of it), or until `deadline` (ms, performance clock) passes. */
  async function catchUp(deadline = Number.POSITIVE_INFINITY, upto = Number.POSITIVE_INFINITY): Promise<void> {
    while (next < upto && performance.now() < deadline && (await step()));
  }

  // Background indexing: one batch per turn of the event loop, so messages that arrive meanwhile
  // (searches) are served between batches. A batch never starts from a message handler: Node runs
  // the microtasks after each message it delivers, so a batch started there would run inside the
  // delivery of the queue, and with the log sending a message per group commit the queue never
  // emptied (a search waited behind a batch per message ahead of it: tens of seconds under load).
  let pumping = false;
  let woken = false;
  let coalescing: NodeJS.Timeout | undefined;
  /** Entries below this are indexed without coalescing: a read-your-writes wait asked for them. */
  let urgentTo = 0;
  function wake(): void {
    const urgent = next < urgentTo;
    if (woken && !(urgent && coalescing)) return;
    clearTimeout(coalescing);
    woken = true;
    const run = () => {
      woken = false;
      coalescing = undefined;
      pump();
    };
    if (!urgent && known - next < COALESCE_BELOW) coalescing = setTimeout(run, coalesceMs);
    else setImmediate(run);
  }
  function pump(): void {
    if (pumping || !writer || next >= known) return;
    pumping = true;
    chain = chain.then(async () => {
      let more = false;
      try {
        more = await step();
      } catch (err) {
        // A networked store out of reach for a moment (a database restart): the same batch again in a second.
        if (isConnectionError(err)) return void setTimeout(wake, 1000);
        // An entry that cannot be indexed is a bug or corruption: stop indexing rather than skip it silently.
        port.postMessage({ type: 'failed', error: toWire(err) } satisfies FromIndex);
        return;
      } finally {
        pumping = false;
      }
      if (more) wake();
    });
  }

  async function add(first: number, items: Item[]): Promise<void> {
    const rows: { row: IndexRow; text: string }[] = [];
    const gaps: GapRow[] = [];
    const refs: ErasureRef[] = [];
    for (let k = 0; k < items.length; k++) {
      const idx = first + k;
      const { note } = items[k] as Item;
      let leaf = (items[k] as Item).leaf;
      const noted = note ? readNote(idx, note) : undefined;
      // The log's own events are indexed from their leaves: some are read for their data (erasureRef).
      if (noted?.row.source === 'stele') leaf ??= await leafAt(idx);
      else if (noted) {
        // The note is only good while its data key is: a key destroyed since (erasure, expiry)
        // leaves the gap the leaf would have left.
        const keyId = noted.row.key_id;
        const l = keyId === null ? undefined : (keys.cached(keyId) ?? (await keys.lookup(keyId)));
        if (keyId === null || l?.state === 'active') {
          rows.push(noted);
          continue;
        }
        const err = keyNotReadable(idx, l, keyId);
        if (err.status !== 410) throw err; // as openEntry would: a missing key is not a gap
        gaps.push(gapRow(idx, noted.row.received, keyId, err));
        continue;
      }
      if (!leaf) throw new Error(`entry ${idx}: neither its leaf nor its note`);
      try {
        const { record, event, ingest } = await openEntry(keys, idx, leaf);
        const tier = record.key
          ? (keys.cached(record.key)?.info.tier as string)
          : tiers.tierFor(event.action, event.source.kind).name;
        rows.push({ row: indexRow(idx, record, event, tier, ingest), text: ftsText(event) });
        const ref = erasureRef(idx, record.received, event);
        if (ref) refs.push(ref);
      } catch (err) {
        // Expired or erased before it was indexed: its tombstone, and nothing of what it said.
        if (!(err instanceof SteleError && err.status === 410)) throw err;
        gaps.push(leafGap(idx, leaf, err));
      }
    }
    const upto = first + items.length;
    // Rare (erasures, daily retention runs): the key records each one names are read when there is one.
    const links = [];
    for (const r of refs) {
      const named = (await Promise.all(candidates(r).map((f) => keys.select(f)))).flat();
      links.push({ index: r.index, keyIds: destroyedBy(r, named) });
    }
    await store.insert({ rows, gaps, links, upto, from: first });
    next = upto;
  }

  /** The tombstone of entry `idx`, whose leaf openEntry refused with 410 `err` (the key store's tombstone). */
  function leafGap(idx: number, leaf: Buffer, err: SteleError): GapRow {
    const record = decodeLeaf(leaf); // openEntry decoded it before it found the key destroyed
    return gapRow(idx, Number(parseMicros(record.received)), record.key ?? '', err);
  }

  /** The tombstone of entry `idx`, received at `received` (µs), sealed under `keyId`, destroyed as `err` says. */
  function gapRow(idx: number, received: number, keyId: string, err: SteleError): GapRow {
    return {
      idx,
      time: received,
      tier: String(err.detail?.tier ?? ''),
      state: err.code === 'expired' ? 'expired' : 'erased',
      key_id: keyId,
      erasure: null,
    };
  }

  async function leafAt(index: number): Promise<Buffer> {
    if (index < published) return reader.entry(index, published);
    const l = recent.get(index);
    if (!l) throw new Error(`entry ${index} is neither checkpointed nor recent`);
    return l;
  }

  /** Before a search: index a small backlog, or (a reader) learn how far the writer got. */
  async function readyToRead(): Promise<void> {
    // Only what the log had when the search arrived: under a steady stream there is always more,
    // and catching up with that would hold the search until the stream stops.
    if (!writer) await refresh();
    else if (known - next <= SEARCH_CATCHUP) await catchUp(Number.POSITIVE_INFINITY, known);
  }

  async function search(req: SearchRequest): Promise<SearchResult> {
    await readyToRead();
    const root = parseQuery(req.q);
    const q: StoreQuery = { root, nowMs: req.nowMs, ...(req.tiers ? { tiers: req.tiers } : {}) };
    const page = { cursor: req.cursor, limit: req.limit, order: req.order, bound: req.bound };
    // A reader's store may hold entries past what it can read yet (refresh): only those below `next`.
    if (!writer) {
      if (page.order === 'desc') page.cursor = Math.min(page.cursor ?? next, next);
      else page.bound = Math.min(page.bound ?? next, next);
    }
    const indexed = next;
    const found = await store.search(q, page);
    const hits: WireMatch[] = [];
    for (const m of found) {
      if (m.kind === 'gap') {
        hits.push(wireGap(m.gap, req.withLeaves ? await leafAt(m.gap.idx) : undefined));
        continue;
      }
      const r = m.row;
      const leaf = await leafAt(r.idx);
      let opened: OpenedEntry;
      try {
        opened = await openEntry(keys, r.idx, leaf, req.withLeaves);
      } catch (err) {
        if (!(err instanceof SteleError && err.status === 410)) throw err;
        // Destroyed a moment ago (its row becomes a gap once deleteKeys runs): shown as the gap it is.
        const g = leafGap(r.idx, leaf, err);
        if (canMatchGaps(root)) hits.push(wireGap(g, req.withLeaves ? leaf : undefined));
        continue;
      }
      const { record, event, ingest } = opened;
      hits.push({
        kind: 'entry',
        index: r.idx,
        received: record.received,
        ingest,
        tier: r.tier,
        ...(record.key ? { key: record.key } : {}),
        event,
        ...(req.withLeaves ? { leaf } : {}),
        ...(opened.messageKey ? { messageKey: opened.messageKey } : {}),
      });
    }
    const last = found[found.length - 1];
    const counted = req.count ? await store.count(q) : undefined;
    return {
      hits,
      ...(found.length === req.limit && last ? { next: last.kind === 'entry' ? last.row.idx : last.gap.idx } : {}),
      ...(counted ? { total: counted.entries + counted.gaps, gaps: counted.gaps } : {}),
      indexed,
    };
  }

  /** Summaries under way, and those of them cancelled. */
  const summarizing = new Set<number>();
  const cancelled = new Set<number>();

  /**
   * A summary in steps queued like messages (the time span, then each part of the store's tally),
   * so indexing and searches go on between the partitions of a large one.
   */
  async function summarizeInSteps(seq: number, req: SummaryRequest): Promise<void> {
    const step = async <T>(fn: () => Promise<T>): Promise<T> => {
      // A turn of the event loop first, so messages already waiting (a search) queue before this step.
      await new Promise((r) => setImmediate(r));
      const r = chain.then(() => {
        if (cancelled.has(seq)) throw new SteleError('abandoned', 'the summary was cancelled: its asker went away');
        return fn();
      });
      chain = r.then(
        () => {},
        () => {},
      );
      return r;
    };
    try {
      const q: StoreQuery = { root: parseQuery(req.q), nowMs: req.nowMs, ...(req.tiers ? { tiers: req.tiers } : {}) };
      const { span, indexed } = await step(async () => {
        await readyToRead();
        return { span: await store.timeSpan(q), indexed: next };
      });
      const b = span ? bucketsFor(span, req.buckets) : null;
      const parts = store.tally(q, b)[Symbol.asyncIterator]();
      const total = emptyTally();
      for (;;) {
        const part = await step(() => parts.next());
        if (part.done) break;
        addTally(total, part.value);
      }
      reply(seq, { ...summarize(total, b, req.top), indexed } satisfies SummaryResult);
    } catch (err) {
      port.postMessage({ type: 'reply', seq, ok: false, error: toWire(err) } satisfies FromIndex);
    } finally {
      summarizing.delete(seq);
      cancelled.delete(seq);
    }
  }

  function wireGap(g: GapRow, leaf: Buffer | undefined): WireGap {
    return {
      kind: 'gap',
      index: g.idx,
      received: formatMicros(BigInt(g.time)),
      tier: g.tier,
      state: g.state,
      ...(g.erasure !== null ? { erasure: g.erasure } : {}),
      ...(leaf ? { leaf } : {}),
    };
  }

  async function handle(m: ToIndex): Promise<unknown> {
    switch (m.type) {
      case 'search':
        return search(m.req);
      case 'settle':
        await catchUp(performance.now() + m.budgetMs);
        return next;
      case 'deleteKeys': {
        keys.forget(m.ids);
        const found = await keys.lookupMany(m.ids);
        const expired = new Set(m.ids.filter((_, i) => found[i]?.state === 'expired'));
        const n = await store.deleteByKeys(m.ids, (id) => (expired.has(id) ? 'expired' : 'erased'));
        // Answered once the deleted words are off the disk, without holding up the queue meanwhile.
        return { later: scrub().then(() => n) };
      }
      case 'keysOfActors':
        return store.keysOfActors(m.actors);
      case 'upto':
        if (!writer) await refresh();
        return next;
      case 'policy':
        tiers = new TierMatcher(m.policy);
        return;
      case 'optimize':
        return store.optimize();
    }
  }

  // Scrubbing after deletions: full merge passes of steps queued behind whatever messages are
  // waiting; then the WAL is truncated and the waiters answered. A deletion during a pass may land in
  // segments the pass already rewrote, so it waits for the next pass.
  let passWaiters: (() => void)[] = [];
  let nextWaiters: (() => void)[] = [];
  let passing = false;
  function scrub(): Promise<void> {
    return new Promise((resolve) => {
      if (passing) nextWaiters.push(resolve);
      else {
        passWaiters.push(resolve);
        passing = true;
        setImmediate(scrubStep);
      }
    });
  }
  function scrubStep(): void {
    chain = chain.then(async () => {
      if (await store.scrubStep()) return void setImmediate(scrubStep);
      await store.scrubbed();
      for (const w of passWaiters) w();
      passWaiters = nextWaiters;
      nextWaiters = [];
      passing = passWaiters.length > 0;
      if (passing) setImmediate(scrubStep);
    });
  }

  function reply(seq: number, value: unknown): void {
    port.postMessage({ type: 'reply', seq, ok: true, value } satisfies FromIndex);
  }

  port.on('message', handleMessage);

  /** Where the log is: taken at once, not queued, so the chain's next batch sees it. */
  function learn(size: number, at: number): void {
    known = Math.max(known, size);
    published = Math.max(published, at);
  }

  function handleMessage(m: ToIndex): void {
    if (m.type === 'add') {
      const leaves = unpack(m.leaves);
      for (let k = 0; k < leaves.length; k++) recent.set(m.first + k, leaves[k] as Buffer);
      if (m.notes) notes.push(m.first, unpack(m.notes));
      learn(m.first + leaves.length, m.published);
      wake();
      return;
    }
    if (m.type === 'tail') {
      learn(m.size, m.published);
      wake();
      return;
    }
    if (m.type === 'hurry') {
      urgentTo = Math.max(urgentTo, m.upto);
      wake();
      return;
    }
    if (m.type === 'notes') {
      notes.push(m.first, unpack(m.notes));
      return;
    }
    if (m.type === 'role') {
      if (!m.writer) writer = false;
      // A new writer starts from wherever the last one got, once the batches queued before this are done.
      else
        chain = chain.then(async () => {
          await refresh().catch(() => {}); // unreachable now: a StaleBatch sets it right later
          writer = true;
          wake();
        });
      return;
    }
    if ('published' in m) learn(0, m.published);
    if (m.type === 'summarize') {
      summarizing.add(m.seq);
      return void summarizeInSteps(m.seq, m.req);
    }
    if (m.type === 'cancel') {
      if (summarizing.has(m.of)) cancelled.add(m.of);
      return;
    }
    chain = chain.then(async () => {
      const seq = 'seq' in m ? m.seq : undefined;
      try {
        const value = await handle(m);
        if (seq === undefined) return;
        if (value && typeof value === 'object' && 'later' in value) {
          const s = seq;
          (value.later as Promise<unknown>).then((v) => reply(s, v));
        } else reply(seq, value);
      } catch (err) {
        if (seq === undefined) return;
        port.postMessage({ type: 'reply', seq, ok: false, error: toWire(err) } satisfies FromIndex);
      }
    });
  }
}
