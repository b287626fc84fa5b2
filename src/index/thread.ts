import { LIMITS } from '../core/config/settings.js';
import { fromWire, SteleError } from '../core/errors.js';
import type { ThreadHandle } from '../core/thread.js';
import { bytes, pack, transferList } from '../log/packed.js';
import { overloaded } from '../log/sequencer.js';
import type { Policy } from '../policy/policy.js';
import type { FromIndex, SearchRequest, SearchResult, ToIndex, WireGap, WireHit } from './worker.js';

/** A readable entry a search found: its event, and with withLeaves its leaf and message key. */
export type Hit = Omit<WireHit, 'leaf' | 'messageKey'> & { leaf?: Buffer; messageKey?: Buffer };
/** An entry whose data key was destroyed (expired or erased): no event, no message key; with withLeaves its leaf. */
export type Gap = Omit<WireGap, 'leaf'> & { leaf?: Buffer };
/** What a search finds, in log order. */
export type Match = Hit | Gap;

/** Entries the index thread may be behind before appends wait for it (a few seconds of its work). */
export const MAX_BACKLOG = LIMITS.indexBacklog;

/** Waiters for a backlog under `limit`: resolved together when it gets there, or refused after their own wait. */
export class Room {
  private waiters: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  /** The backlog now; releases every waiter once it is under the limit. */
  update(backlog: number): void {
    if (backlog < this.limit) this.release();
  }

  release(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /**
   * Undefined when `backlog` is under the limit; else a promise resolved once it is, which
   * rejects with 503 'overloaded' after `maxWaitMs` (when given).
   */
  wait(backlog: number, maxWaitMs?: number): Promise<void> | undefined {
    if (backlog < this.limit) return undefined;
    if (maxWaitMs === undefined) return new Promise((resolve) => this.waiters.push(resolve));
    return new Promise((resolve, reject) => {
      let expired = false;
      const timer = setTimeout(() => {
        expired = true;
        reject(overloaded(`the query store is more than ${this.limit} entries behind`));
      }, maxWaitMs);
      this.waiters.push(() => {
        if (expired) return;
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

type Request = ToIndex extends infer T ? (T extends { seq: number } ? Omit<T, 'seq'> : never) : never;

/**
 * The main thread's handle on the index thread (worker.ts): posts sequenced entries to it and
 * sends it searches and deletions. SQLite work, leaf reads and decryption for searches all happen
 * there, so a long query never blocks sequencing.
 */
export class IndexThread {
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private seq = 0;
  private failure: Error | null = null;
  /** Entries handed to the thread, and entries it has indexed: the difference is its backlog. */
  private posted = 0;
  private indexed = 0;
  private readonly roomWaiters = new Room(MAX_BACKLOG);
  /** Searches waiting for the index to reach an entry (read your writes): resolved as `indexed` grows. */
  private indexedWaiters: { upto: number; done: (err?: Error) => void }[] = [];

  private constructor(private readonly worker: ThreadHandle) {
    worker.on('message', (m: FromIndex) => {
      if (m.type === 'failed') {
        const e = fromWire(m.error);
        this.fail(new Error(`indexing stopped: ${e.message}`, { cause: e }));
        return;
      }
      if (m.type === 'indexed') {
        this.indexed = Math.max(this.indexed, m.upto);
        this.roomWaiters.update(this.backlog);
        this.releaseIndexed();
        return;
      }
      const w = this.waiting.get(m.seq);
      this.waiting.delete(m.seq);
      if (m.ok) w?.resolve(m.value);
      else w?.reject(fromWire(m.error));
    });
    worker.on('error', (err) => this.fail(new Error(`the index thread failed: ${err.message}`)));
  }

  /** Takes over a started index thread (the backend's `spawn('index', …)`, which runs serveIndex). */
  static async start(thread: ThreadHandle): Promise<IndexThread> {
    const t = new IndexThread(thread);
    // Opening the store can fail (e.g. an old schema): fail here, not later.
    t.indexed = await t.upto();
    t.posted = t.indexed;
    return t;
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.roomWaiters.release();
    for (const w of this.waiting.values())
      w.reject(new SteleError('index_unavailable', this.failure.message, { cause: this.failure }));
    this.waiting.clear();
    for (const w of this.indexedWaiters.splice(0)) w.done(new SteleError('index_unavailable', this.failure.message));
  }

  private releaseIndexed(): void {
    if (!this.indexedWaiters.some((w) => w.upto <= this.indexed)) return;
    const ready = this.indexedWaiters.filter((w) => w.upto <= this.indexed);
    this.indexedWaiters = this.indexedWaiters.filter((w) => w.upto > this.indexed);
    for (const w of ready) w.done();
  }

  /** Entries [0, indexedThrough) are searchable. */
  get indexedThrough(): number {
    return this.indexed;
  }

  /**
   * Resolves once entries [0, upto) are searchable (read your writes); after `maxWaitMs` rejects
   * with 503 'index_behind' and a Retry-After, and the search is not run.
   */
  whenIndexed(upto: number, maxWaitMs: number): Promise<void> {
    if (this.failure) return Promise.reject(new SteleError('index_unavailable', this.failure.message));
    if (upto <= this.indexed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = {
        upto,
        done: (err?: Error) => {
          clearTimeout(timer);
          if (err) reject(err);
          else resolve();
        },
      };
      const timer = setTimeout(() => {
        this.indexedWaiters = this.indexedWaiters.filter((x) => x !== w);
        reject(
          new SteleError(
            'index_behind',
            `the query store has not reached entry ${upto - 1} within ${maxWaitMs} ms (it has ${this.indexed} entries); retry`,
            { detail: { retryAfter: 1, indexedThrough: this.indexed } },
          ),
        );
      }, maxWaitMs);
      this.indexedWaiters.push(w);
    });
  }

  /** Why indexing stopped, if it did. */
  get failed(): Error | null {
    return this.failure;
  }

  private call<T>(req: Request): Promise<T> {
    if (this.failure) return Promise.reject(new SteleError('index_unavailable', this.failure.message, { cause: this.failure }));
    const seq = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(seq, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...req, seq } as ToIndex);
    });
  }

  /** Entries handed over but not indexed yet. */
  get backlog(): number {
    return this.posted - this.indexed;
  }

  /**
   * Resolves once the backlog is under MAX_BACKLOG. Appends wait for this before they are
   * sequenced, so under sustained load ingest slows to the index's pace instead of the backlog
   * (memory, and how long a search waits to see every acknowledged entry) growing without bound.
   * With `maxWaitMs` (client appends), rejects with 503 'overloaded' once it has waited that long.
   */
  room(maxWaitMs?: number): Promise<void> | undefined {
    if (this.failure) return undefined;
    return this.roomWaiters.wait(this.backlog, maxWaitMs);
  }

  /** Hands durable entries to the index (before they are acknowledged). */
  add(first: number, leaves: readonly Buffer[], published: number): void {
    if (this.failure) return;
    this.posted = Math.max(this.posted, first + leaves.length);
    const packed = pack(leaves);
    this.worker.postMessage({ type: 'add', first, leaves: packed, published } satisfies ToIndex, transferList(packed));
  }

  async search(req: SearchRequest, published: number): Promise<{ hits: Match[]; next?: number; total?: number; gaps?: number }> {
    const r = await this.call<SearchResult>({ type: 'search', published, req });
    return {
      ...r,
      hits: r.hits.map((m): Match => {
        if (m.kind === 'gap') {
          const { leaf, ...g } = m;
          return { ...g, ...(leaf ? { leaf: bytes(leaf) } : {}) };
        }
        const { leaf, messageKey, ...h } = m;
        return { ...h, ...(leaf ? { leaf: bytes(leaf) } : {}), ...(messageKey ? { messageKey: bytes(messageKey) } : {}) };
      }),
    };
  }

  /** Deletes the entries sealed by destroyed keys; resolves with how many. */
  deleteKeys(ids: string[]): Promise<number> {
    return this.call({ type: 'deleteKeys', ids });
  }

  keysOfActors(actors: string[]): Promise<string[]> {
    return this.call({ type: 'keysOfActors', actors });
  }

  /** Entries indexed so far (all before this are done). */
  upto(): Promise<number> {
    return this.call({ type: 'upto' });
  }

  optimize(): Promise<void> {
    return this.call({ type: 'optimize' });
  }

  setPolicy(policy: Policy): void {
    this.worker.postMessage({ type: 'policy', policy } satisfies ToIndex);
  }

  /** Waits for queued work, then stops the thread. */
  async close(): Promise<void> {
    if (!this.failure) await this.upto().catch(() => {});
    await this.worker.terminate();
  }
}
