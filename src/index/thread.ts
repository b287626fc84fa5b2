import { LIMITS } from '../core/config/settings.js';
import { fromWire, SteleError } from '../core/errors.js';
import type { ThreadHandle } from '../core/thread.js';
import { bytes, pack, sharedRuns, transferList } from '../log/packed.js';
import { overloaded } from '../log/sequencer.js';
import type { Policy } from '../policy/policy.js';
import {
  type FromIndex,
  NOTE_MEMORY,
  type SearchRequest,
  type SearchResult,
  type SummaryRequest,
  type SummaryResult,
  type ToIndex,
  type WireGap,
  type WireHit,
} from './worker.js';

/** A readable entry a search found: its event, and with withLeaves its leaf and message key. */
export type Hit = Omit<WireHit, 'leaf' | 'messageKey'> & { leaf?: Buffer; messageKey?: Buffer };
/** An entry whose data key was destroyed (expired or erased): no event, no message key; with withLeaves its leaf. */
export type Gap = Omit<WireGap, 'leaf'> & { leaf?: Buffer };
/** What a search finds, in log order. */
export type Match = Hit | Gap;

/**
 * Entries the index may be behind the log before client appends are refused with 503 and
 * Retry-After (a few minutes of its work at peak). Below it appends never wait for the index.
 */
export const MAX_BACKLOG = LIMITS.indexBacklog;

/**
 * Entries whose leaves are posted to the index thread while it is behind: past this it reads
 * them back from the tiles itself once they are checkpointed, so a backlog costs disk, not memory.
 */
export const LEAF_WINDOW = 32_768;

/** Summaries (GET /v1/events/summary) counted at once; more are refused with 503 and Retry-After. */
export const MAX_SUMMARIES = 2;

const NO_NOTE = Buffer.alloc(0);
/** Notes as one buffer for the thread (an entry without one: an empty note). */
const packNotes = (notes: readonly (Buffer | undefined)[]) => pack(notes.map((x) => x ?? NO_NOTE));

/** How often a node that does not index a shared store reads how far it is indexed, ms. */
const READER_POLL_MS = 250;

/** How often the index thread hears of new checkpoints while it reads behind the log, ms. */
const TAIL_MS = 200;

/** Where the log is: its durable size and its newest checkpoint's size (the tiles readable). */
export interface LogTail {
  size: number;
  published: number;
}

type Request = ToIndex extends infer T ? (T extends { seq: number } ? Omit<T, 'seq'> : never) : never;

/**
 * The main thread's handle on the index thread (worker.ts). The thread indexes acknowledged
 * entries at its own pace: appends hand it their leaves (`add`) without waiting, and while it is
 * more than LEAF_WINDOW entries behind it reads them back from the tiles instead. Searches,
 * deletions and SQLite work all happen there, so a long query never blocks sequencing.
 */
export class IndexThread {
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private seq = 0;
  /** Summaries asked and not yet answered. */
  private summaries = 0;
  private failure: Error | null = null;
  /** Entries the log has (as far as the thread was told), and entries it has indexed: the difference is its backlog. */
  private known = 0;
  private indexed = 0;
  /** Searches waiting for the index to reach an entry (read your writes): resolved as `indexed` grows. */
  private indexedWaiters: { upto: number; done: (err?: Error) => void }[] = [];
  private readonly progress = new Set<(indexed: number) => void>();
  /** The log, once followed: read for checkpoints while the thread reads behind it. */
  private tail: (() => LogTail) | undefined;
  private tailTimer: NodeJS.Timeout | undefined;
  private toldPublished = 0;
  /** A reader's poll of how far the store is indexed (setWriter). */
  private poll: NodeJS.Timeout | undefined;

  private constructor(
    private readonly worker: ThreadHandle,
    private readonly maxBacklog: number,
    /** The thread queues notes on disk (Backend.noteSpill). */
    private readonly spills: boolean,
  ) {
    worker.on('message', (m: FromIndex) => {
      if (m.type === 'failed') {
        const e = fromWire(m.error);
        this.fail(new Error(`indexing stopped: ${e.message}`, { cause: e }));
        return;
      }
      if (m.type === 'indexed') {
        this.indexed = Math.max(this.indexed, m.upto);
        this.releaseIndexed();
        for (const p of this.progress) p(this.indexed);
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
  static async start(
    thread: ThreadHandle,
    maxBacklog: number = MAX_BACKLOG,
    spills = false,
    reader = false,
  ): Promise<IndexThread> {
    const t = new IndexThread(thread, maxBacklog, spills);
    // Opening the store can fail (e.g. an old schema): fail here, not later.
    t.indexed = await t.upto();
    t.known = t.indexed;
    if (reader) t.follows();
    return t;
  }

  /**
   * Starts indexing what the log has and the store lacks (after a crash, `stele append --local`
   * or `stele reindex`), in the background: the thread reads checkpointed entries from the tiles;
   * `unpublished` are the leaves after the checkpoint, which only the log's memory holds.
   */
  follow(tail: () => LogTail, unpublished: readonly Buffer[]): void {
    this.tail = tail;
    const { size, published } = tail();
    if (this.indexed > size)
      throw new Error(`the query store has ${this.indexed} entries but the log only ${size}: run "stele reindex"`);
    this.tellTail(size, published);
    if (unpublished.length) this.post(size - unpublished.length, unpublished, published);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.stopTail();
    for (const w of this.waiting.values())
      w.reject(new SteleError('index_unavailable', this.failure.message, { cause: this.failure }));
    this.waiting.clear();
    for (const w of this.indexedWaiters.splice(0)) w.done(new SteleError('index_unavailable', this.failure.message));
  }

  private releaseIndexed(): void {
    if (this.indexed >= this.known) this.stopTail();
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
   * Whether an entry appended now would be handed over with its index note: always when the
   * thread can queue notes on disk, else while it is less than NOTE_MEMORY entries behind.
   */
  get wantsNotes(): boolean {
    return !this.failure && (this.spills || this.known - this.indexed < NOTE_MEMORY);
  }

  /** Entries acknowledged but not indexed yet. */
  get backlog(): number {
    return this.known - this.indexed;
  }

  /** Calls `listener` with the entries indexed so far each time the thread indexes more; returns the unsubscriber. */
  onProgress(listener: (indexed: number) => void): () => void {
    this.progress.add(listener);
    return () => this.progress.delete(listener);
  }

  /**
   * Resolves once entries [0, upto) are searchable (read your writes); after `maxWaitMs` rejects
   * with 503 'index_behind' and a Retry-After, and the search is not run. Infinity waits for good.
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
      const timer = !Number.isFinite(maxWaitMs)
        ? undefined
        : setTimeout(() => {
            this.indexedWaiters = this.indexedWaiters.filter((x) => x !== w);
            reject(
              new SteleError(
                'index_behind',
                `the query store has not reached entry ${upto - 1} within ${maxWaitMs} ms (it has ${this.indexed} entries); retry`,
                { detail: { retryAfter: this.retryAfter(), indexedThrough: this.indexed } },
              ),
            );
          }, maxWaitMs);
      this.indexedWaiters.push(w);
      this.worker.postMessage({ type: 'hurry', upto } satisfies ToIndex);
    });
  }

  /** Seconds a refused caller should wait: the backlog at a conservative 10,000 entries/s, 1 to 60. */
  private retryAfter(): number {
    return Math.min(60, Math.max(1, Math.ceil(this.backlog / 10_000)));
  }

  /** Why indexing stopped, if it did. */
  get failed(): Error | null {
    return this.failure;
  }

  private call<T>(req: Request): Promise<T> {
    return this.request<T>(req).answer;
  }

  /** Sends a request; `seq` names it to the thread (a cancel says which), `answer` is its reply. */
  private request<T>(req: Request): { seq: number; answer: Promise<T> } {
    if (this.failure)
      return {
        seq: 0,
        answer: Promise.reject(new SteleError('index_unavailable', this.failure.message, { cause: this.failure })),
      };
    const seq = ++this.seq;
    const answer = new Promise<T>((resolve, reject) => {
      this.waiting.set(seq, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...req, seq } as ToIndex);
    });
    return { seq, answer };
  }

  /**
   * Refuses a client append (503 'overloaded', Retry-After, nothing appended) while the index is
   * `maxBacklog` (MAX_BACKLOG) entries or more behind; below that appends never wait for it. A failed index
   * refuses nothing: the log goes on, and searches answer 503 until a restart.
   */
  admit(): void {
    if (this.failure || this.backlog < this.maxBacklog) return;
    throw overloaded(`the query store is ${this.backlog} entries behind the log`, this.retryAfter());
  }

  /**
   * Hands durable entries to the index (before they are acknowledged); never waits. `notes[i]`:
   * leaf i's index note when its writer made one (the thread then need not open the leaf).
   */
  add(first: number, leaves: readonly Buffer[], published: number, notes?: readonly (Buffer | undefined)[]): void {
    if (this.failure) return;
    const size = first + leaves.length;
    const behind = size - this.indexed;
    if (behind <= LEAF_WINDOW) {
      this.post(first, leaves, published, notes);
      return;
    }
    // Far behind: the thread reads the leaves from the tiles once checkpointed, not from memory,
    // but is still handed the notes (it queues them on disk past NOTE_MEMORY), so it need not
    // open those leaves: indexing from a note costs half as much (bench:index).
    this.tellTail(size, published);
    if (this.wantsNotes && notes?.some((x) => x)) {
      const msg: ToIndex = { type: 'notes', first, notes: packNotes(notes) };
      this.worker.postMessage(msg, transferList(msg.notes));
    }
  }

  private post(first: number, leaves: readonly Buffer[], published: number, notes?: readonly (Buffer | undefined)[]): void {
    this.known = Math.max(this.known, first + leaves.length);
    this.toldPublished = Math.max(this.toldPublished, published);
    // Leaves prepared by ingest workers already live in shared memory: posted as they are, no copy.
    // Notes (a few hundred bytes each) are copied, one buffer per run.
    const noted = notes?.some((x) => x) ? notes : undefined;
    let at = first;
    for (const packed of sharedRuns(leaves) ?? [pack(leaves)]) {
      const n = packed.lengths.length; // read before posting: the transfer detaches `lengths`
      const runNotes = noted ? packNotes(noted.slice(at - first, at - first + n)) : undefined;
      const msg: ToIndex = { type: 'add', first: at, leaves: packed, published, ...(runNotes ? { notes: runNotes } : {}) };
      this.worker.postMessage(msg, [...transferList(packed), ...(runNotes ? transferList(runNotes) : [])]);
      at += n;
    }
  }

  private tellTail(size: number, published: number): void {
    this.known = Math.max(this.known, size);
    this.toldPublished = Math.max(this.toldPublished, published);
    this.worker.postMessage({ type: 'tail', size, published } satisfies ToIndex);
    // Until it catches up, the thread must hear of each checkpoint: the entries it has to read
    // from the tiles become readable only then.
    if (!this.tailTimer && this.tail && this.indexed < this.known) {
      this.tailTimer = setInterval(() => {
        const t = this.tail?.();
        if (t && t.published > this.toldPublished) this.tellTail(t.size, t.published);
      }, TAIL_MS);
      this.tailTimer.unref();
    }
  }

  private stopTail(): void {
    clearInterval(this.tailTimer);
    this.tailTimer = undefined;
  }

  /** A page of matches; `indexed`: entries [0, indexed) were searchable for it, later ones were not. */
  async search(
    req: SearchRequest,
    published: number,
  ): Promise<{ hits: Match[]; next?: number; total?: number; gaps?: number; indexed: number }> {
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

  /**
   * The histogram and facets of what a query matches, over the whole store (aggregate.ts). Once
   * `signal` aborts (the asker went away), the rest of it is not computed.
   */
  summarize(req: SummaryRequest, published: number, signal?: AbortSignal): Promise<SummaryResult> {
    // Each one reads every match: a few at a time, so that askers cannot keep the thread from searching.
    if (this.summaries >= MAX_SUMMARIES) throw overloaded(`${this.summaries} summaries are being counted; try again shortly`, 1);
    this.summaries++;
    const { seq: of, answer } = this.request<SummaryResult>({ type: 'summarize', published, req });
    const cancel = () => this.worker.postMessage({ type: 'cancel', of } satisfies ToIndex);
    if (signal?.aborted) cancel();
    else signal?.addEventListener('abort', cancel, { once: true });
    return answer.finally(() => this.summaries--);
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

  /**
   * A node of a shared log: whether its thread indexes (it holds the integrator lease) or follows
   * the store another node writes, reading how far it got every READER_POLL_MS (read your writes).
   */
  setWriter(writer: boolean): void {
    this.worker.postMessage({ type: 'role', writer } satisfies ToIndex);
    clearInterval(this.poll);
    this.poll = undefined;
    if (!writer) this.follows();
  }

  /** A reader (IndexThreadData.reader): reads how far the store another node writes is indexed, every READER_POLL_MS. */
  private follows(): void {
    this.poll = setInterval(() => void this.upto().catch(() => {}), READER_POLL_MS);
    this.poll.unref();
  }

  setPolicy(policy: Policy): void {
    this.worker.postMessage({ type: 'policy', policy } satisfies ToIndex);
  }

  /**
   * Stops the thread after it indexes what it can within `budgetMs` (a larger backlog is
   * finished by the next start, from the log).
   */
  async close(budgetMs = 2_000): Promise<void> {
    this.stopTail();
    clearInterval(this.poll);
    if (!this.failure) await this.call({ type: 'settle', budgetMs }).catch(() => {});
    await this.worker.terminate();
  }
}
