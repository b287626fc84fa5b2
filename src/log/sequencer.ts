import { defaultOf } from '../core/config/resolve.js';
import { eventAt, SteleError } from '../core/errors.js';
import { metrics } from '../core/metrics.js';
import type { IdIndex } from './id-index.js';
import type { LogStorage, SequencedEntry } from './storage.js';

/** One append call's new entries; they get consecutive indices from `first`. */
interface Queued {
  entries: SequencedEntry[];
  resolve: (first: number) => void;
  reject: (err: Error) => void;
}

export interface SequencerOptions {
  /** Most entries in one group commit (a single larger append still goes out whole). */
  maxBatchEntries?: number;
  /** Most leaf bytes in one group commit (likewise). */
  maxBatchBytes?: number;
  /**
   * Most entries queued or being written before a `bounded` append is refused with 503 (a single
   * larger append still goes when nothing is waiting).
   */
  maxQueuedEntries?: number;
}

export interface AppendOptions {
  /** Refuse (503, nothing appended) rather than queue when `maxQueuedEntries` are waiting: client appends. */
  bounded?: boolean;
  /**
   * The data keys that sealed the entries: a store shared by several nodes checks in the append's
   * transaction that none was destroyed meanwhile (a node's cache may lag an erasure on another).
   */
  keyIds?: readonly string[];
  /**
   * Told the position of each entry this call does not append because its id is already in the
   * log, being written by another call, or earlier in this call (a retry): its index is the first
   * copy's. Observers of appends (alert rules) count only the others.
   */
  repeated?: (i: number) => void;
}

export const DEFAULT_MAX_QUEUED_ENTRIES = defaultOf('maxQueuedEvents');

/** Backpressure: the 503 of an append refused because the write path is full; nothing was appended. */
export function overloaded(what: string, retryAfter = 1): SteleError {
  return new SteleError('overloaded', `the server is overloaded (${what}); nothing was appended, retry in ${retryAfter} s`, {
    detail: {
      retryAfter,
    },
  });
}

/**
 * Assigns indices and makes entries durable with group commit: while one write-and-fsync is in
 * flight, new appends queue up and all of them go out in the next write. An append resolves only
 * after the fsync that covers it. A repeated id resolves to its first index when its content digest
 * matches (a retry), and is refused with 409 when it does not (another event claiming the id).
 *
 * Work is per append call, not per entry (one promise for a call's 1000 entries), because this
 * runs on the main thread for every event.
 *
 * A storage failure stops the sequencer for good (fail-stop, like a database after a failed fsync):
 * the state of the write is unknown, and a restart's recovery is the safe way on.
 */
export class Sequencer {
  private queue: Queued[] = [];
  /** Ids queued or being written: which call's promise gives their index, and at what offset. */
  private readonly inFlight = new Map<string, { first: Promise<number>; offset: number; digest: Buffer | undefined }>();
  private writing = false;
  private failure: Error | null = null;
  private closed = false;
  private idle: Promise<void> = Promise.resolve();
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly maxQueued: number;
  /** Entries queued or being written, not yet durable. */
  private pending = 0;

  constructor(
    private readonly storage: LogStorage,
    private readonly ids: IdIndex,
    private next: number,
    private readonly onDurable: (first: number, entries: readonly SequencedEntry[]) => void,
    opts: SequencerOptions = {},
  ) {
    this.maxEntries = opts.maxBatchEntries ?? 65536;
    this.maxBytes = opts.maxBatchBytes ?? 32 * 1024 * 1024;
    this.maxQueued = opts.maxQueuedEntries ?? DEFAULT_MAX_QUEUED_ENTRIES;
  }

  /** Number of entries durably sequenced. */
  get size(): number {
    return this.next;
  }

  get failed(): Error | null {
    return this.failure;
  }

  async append(entries: readonly SequencedEntry[], opts: AppendOptions = {}): Promise<number[]> {
    if (this.failure) throw unavailable(this.failure);
    if (this.closed) throw new SteleError('shutting_down', 'the log is shutting down');
    // Before anything is registered, so a refusal leaves no trace.
    if (opts.bounded && this.pending > 0 && this.pending + entries.length > this.maxQueued) {
      throw overloaded(`${this.pending} events are waiting to be written`);
    }
    const known = this.ids.lookup(entries.map((e) => e.id));
    const out: number[] = new Array(entries.length);
    // Entries whose index comes from another call still in flight (or an earlier copy in this one).
    const later: { i: number; first: Promise<number>; offset: number }[] = [];
    const fresh: SequencedEntry[] = [];
    const freshAt: number[] = [];
    let resolve!: (first: number) => void;
    let reject!: (err: Error) => void;
    const first = new Promise<number>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const many = entries.length > 1;
    // A repeated id must carry its first entry's content (a retry); anything else refuses the
    // whole call (409), undoing this call's claims before anyone could see them: all of this runs
    // without an await, so the check and the claims are one step.
    const refuse = (err: SteleError | Promise<SteleError>): Promise<never> => {
      for (const e of fresh) this.inFlight.delete(e.id);
      return Promise.resolve(err).then((e) => Promise.reject(e));
    };
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as SequencedEntry;
      const where = many ? i : undefined;
      const prior = known.get(e.id);
      if (prior !== undefined) {
        if (!sameContent(this.ids.digestAt(prior), e.digest)) return refuse(idConflict(where, e.id, prior));
        out[i] = prior;
        opts.repeated?.(i);
        continue;
      }
      const pending = this.inFlight.get(e.id);
      if (pending) {
        if (!sameContent(pending.digest, e.digest)) {
          if (pending.first === first) return refuse(batchConflict(where, e.id, freshAt[pending.offset] as number));
          // The first claim is another call's, still being written: name its index once it has one.
          return refuse(
            pending.first.then(
              (f) => idConflict(where, e.id, f + pending.offset),
              () => idConflict(where, e.id, undefined),
            ),
          );
        }
        later.push({ i, first: pending.first, offset: pending.offset });
        opts.repeated?.(i);
        continue;
      }
      this.inFlight.set(e.id, { first, offset: fresh.length, digest: e.digest });
      freshAt.push(i);
      fresh.push(e);
    }
    if (fresh.length) {
      first.catch(() => {}); // observed below; keeps an early rejection from going unhandled
      this.queue.push({ entries: fresh, resolve, reject });
      this.pending += fresh.length;
      if (!this.writing) this.idle = this.drain();
      const f = await first;
      for (let k = 0; k < freshAt.length; k++) out[freshAt[k] as number] = f + k;
    }
    for (const l of later) out[l.i] = (await l.first) + l.offset;
    return out;
  }

  /** Stops taking appends and waits for those already queued. */
  async close(): Promise<void> {
    this.closed = true;
    await this.idle;
  }

  /** Whole calls, up to the batch bounds (at least one call). */
  private takeBatch(): Queued[] {
    let n = 0;
    let count = 0;
    let bytes = 0;
    while (n < this.queue.length) {
      const q = this.queue[n] as Queued;
      let b = 0;
      for (const e of q.entries) b += e.leaf.length;
      if (n > 0 && (count + q.entries.length > this.maxEntries || bytes + b > this.maxBytes)) break;
      count += q.entries.length;
      bytes += b;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length && !this.failure) {
        const batch = this.takeBatch();
        const first = this.next;
        const entries = batch.length === 1 ? (batch[0] as Queued).entries : batch.flatMap((q) => q.entries);
        try {
          await this.storage.appendSequenced(first, entries);
          metrics.groupCommit(entries.length);
          this.next += entries.length;
          this.ids.add(first, entries);
          this.onDurable(first, entries);
        } catch (err) {
          this.failure = err as Error;
          for (const q of [...batch, ...this.queue.splice(0)]) {
            this.pending -= q.entries.length;
            for (const e of q.entries) this.inFlight.delete(e.id);
            q.reject(unavailable(this.failure));
          }
          return;
        }
        let at = first;
        for (const q of batch) {
          this.pending -= q.entries.length;
          for (const e of q.entries) this.inFlight.delete(e.id);
          q.resolve(at);
          at += q.entries.length;
        }
      }
    } finally {
      this.writing = false;
    }
  }
}

/** Whether two content digests may be of the same event: equal, or either unknown (older entries). */
export function sameContent(a: Buffer | null | undefined, b: Buffer | null | undefined): boolean {
  return !a || !b || a.equals(b);
}

export function idConflict(where: number | undefined, id: string, index: number | undefined): SteleError {
  const at = index === undefined ? 'in an append still being written' : `at index ${index}`;
  return new SteleError(
    'id_conflict',
    `id ${id} is already in the log ${at}, with different content; a retry must repeat the event exactly, and a new event needs a new id`,
    eventAt(where, { id, ...(index !== undefined ? { index } : {}) }),
  );
}

export function batchConflict(where: number | undefined, id: string, at: number): SteleError {
  return new SteleError(
    'id_conflict',
    `id ${id} is also the id of event ${at} of this request, with different content; an id names one event`,
    eventAt(where, { id, event: at }),
  );
}

function unavailable(cause: Error): SteleError {
  return new SteleError('log_unavailable', `the log stopped accepting writes after a storage failure: ${cause.message}`);
}
