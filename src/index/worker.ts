/**
 * The index thread: keeps the query store up to date as entries are sequenced and answers
 * searches, one message at a time. Because appends are posted here before they are acknowledged
 * and messages are handled in order, a search sent after an acknowledgement sees that entry.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SteleError } from '../errors.js';
import type { Event, Ingest } from '../event/types.js';
import { KeyStore } from '../keys/keystore.js';
import type { MasterKey } from '../keys/master.js';
import { type Packed, unpack } from '../log/packed.js';
import { DirTileSource } from '../log/tile-source.js';
import { TreeReader } from '../log/tree-reader.js';
import type { Policy } from '../policy/policy.js';
import { TierMatcher } from '../policy/tiers.js';
import { ftsText, type IndexRow, indexRow } from './extract.js';
import { type CompiledQuery, compileQuery } from './query.js';
import { openEntry } from './reader.js';
import { IndexStore, type Order } from './store.js';

export interface IndexWorkerData {
  dbPath: string;
  keystorePath: string;
  logDir: string;
  masters: { id: string; key: Uint8Array }[];
  policy: Policy;
}

/** One search hit as it crosses threads. */
export interface WireHit {
  index: number;
  received: string;
  ingest: Ingest;
  tier: string;
  key?: string;
  event: Event;
  leaf?: Uint8Array;
  messageKey?: Uint8Array;
}

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
}

export interface SearchResult {
  hits: WireHit[];
  /** Cursor for the next page; absent on the last page. */
  next?: number;
  total?: number;
}

export type ToIndex =
  | { type: 'add'; first: number; leaves: Packed; published: number }
  | { type: 'search'; seq: number; published: number; req: SearchRequest }
  | { type: 'deleteKeys'; seq: number; ids: string[] }
  | { type: 'keysOfActors'; seq: number; actors: string[] }
  | { type: 'upto'; seq: number }
  | { type: 'policy'; policy: Policy }
  | { type: 'optimize'; seq: number };

export type FromIndex =
  | { type: 'reply'; seq: number; ok: true; value: unknown }
  | { type: 'reply'; seq: number; ok: false; code: string; message: string; status: number; detail?: Record<string, unknown> }
  | { type: 'failed'; message: string }
  | { type: 'indexed'; upto: number };

const data = workerData as IndexWorkerData;
const port = parentPort;
const store = new IndexStore(data.dbPath);
const masters: MasterKey[] = data.masters.map((m) => ({ id: m.id, key: Buffer.from(m.key) }));
const keys = KeyStore.open(data.keystorePath, masters, { readonly: true });
let tiers = new TierMatcher(data.policy);
const reader = new TreeReader(new DirTileSource(data.logDir));
/** Leaves not yet covered by a checkpoint (so not yet readable from tiles), by index. */
const recent = new Map<number, Buffer>();
let next = store.upto();

function prune(published: number): void {
  for (const i of recent.keys()) {
    if (i >= published) break; // Map keeps insertion order, which is index order
    recent.delete(i);
  }
}

function add(first: number, leaves: Buffer[], published: number): void {
  prune(published);
  const rows: { row: IndexRow; text: string }[] = [];
  for (let k = 0; k < leaves.length; k++) {
    const idx = first + k;
    const leaf = leaves[k] as Buffer;
    if (idx >= published) recent.set(idx, leaf);
    if (idx < next) continue; // already indexed (catch-up overlap)
    try {
      const { record, event, ingest } = openEntry(keys, idx, leaf);
      const tier = record.key
        ? (keys.lookup(record.key)?.info.tier as string)
        : tiers.tierFor(event.action, event.source.kind).name;
      rows.push({ row: indexRow(idx, record, event, tier, ingest), text: ftsText(event) });
    } catch (err) {
      // Expired or erased before it was indexed: nothing to index, and nothing to reveal.
      if (!(err instanceof SteleError && err.status === 410)) throw err;
    }
  }
  const upto = Math.max(next, first + leaves.length);
  store.insert(rows, upto);
  next = upto;
}

async function leafAt(index: number, published: number): Promise<Buffer> {
  if (index < published) return reader.entry(index, published);
  const l = recent.get(index);
  if (!l) throw new Error(`entry ${index} is neither checkpointed nor recent`);
  return l;
}

async function search(req: SearchRequest, published: number): Promise<SearchResult> {
  const q = withinTiers(compileQuery(req.q, req.nowMs), req.tiers);
  const rows = store.search(q, { cursor: req.cursor, limit: req.limit, order: req.order });
  const hits: WireHit[] = [];
  for (const r of rows) {
    const leaf = await leafAt(r.idx, published);
    let opened: ReturnType<typeof openEntry>;
    try {
      opened = openEntry(keys, r.idx, leaf, req.withLeaves);
    } catch (err) {
      if (err instanceof SteleError && err.status === 410) continue; // destroyed a moment ago
      throw err;
    }
    const { record, event, ingest } = opened;
    hits.push({
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
  const last = rows[rows.length - 1];
  return {
    hits,
    ...(rows.length === req.limit && last ? { next: last.idx } : {}),
    ...(req.count ? { total: store.count(q) } : {}),
  };
}

async function handle(m: ToIndex): Promise<unknown> {
  switch (m.type) {
    case 'add':
      add(m.first, unpack(m.leaves), m.published);
      port?.postMessage({ type: 'indexed', upto: next } satisfies FromIndex);
      return;
    case 'search':
      return search(m.req, m.published);
    case 'deleteKeys': {
      keys.forget(m.ids);
      const n = store.deleteByKeys(m.ids);
      // Answered once the deleted words are off the disk, without holding up the queue meanwhile.
      return { later: scrub().then(() => n) };
    }
    case 'keysOfActors':
      return store.keysOfActors(m.actors);
    case 'upto':
      return next;
    case 'policy':
      tiers = new TierMatcher(m.policy);
      return;
    case 'optimize':
      return store.optimize();
  }
}

let chain: Promise<void> = Promise.resolve();

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
  chain = chain.then(() => {
    if (store.mergeStep()) return void setImmediate(scrubStep);
    store.truncateWal();
    for (const w of passWaiters) w();
    passWaiters = nextWaiters;
    nextWaiters = [];
    passing = passWaiters.length > 0;
    if (passing) setImmediate(scrubStep);
  });
}

function reply(seq: number, value: unknown): void {
  port?.postMessage({ type: 'reply', seq, ok: true, value } satisfies FromIndex);
}

port?.on('message', (m: ToIndex) => {
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
      if (seq === undefined) {
        // An entry that cannot be indexed is a bug or corruption: stop indexing rather than skip it silently.
        port?.postMessage({ type: 'failed', message: (err as Error).message } satisfies FromIndex);
        return;
      }
      const e = err instanceof SteleError ? err : new SteleError('internal', (err as Error).message, 500);
      port?.postMessage({
        type: 'reply',
        seq,
        ok: false,
        code: e.code,
        message: e.message,
        status: e.status,
        ...(e.detail ? { detail: e.detail } : {}),
      } satisfies FromIndex);
    }
  });
});

/** Narrows a query to entries of the given tiers (none: it matches nothing). */
function withinTiers(q: CompiledQuery, tiers: string[] | undefined): CompiledQuery {
  if (tiers === undefined) return q;
  if (tiers.length === 0) return { ...q, where: `(${q.where}) AND 0` };
  return { ...q, where: `(${q.where}) AND e.tier IN (${tiers.map(() => '?').join(', ')})`, params: [...q.params, ...tiers] };
}
