import { SteleError } from '../errors.js';
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

  constructor(
    private readonly storage: LogStorage,
    private readonly ids: IdIndex,
    private next: number,
    private readonly onDurable: (first: number, entries: readonly SequencedEntry[]) => void,
    opts: SequencerOptions = {},
  ) {
    this.maxEntries = opts.maxBatchEntries ?? 65536;
    this.maxBytes = opts.maxBatchBytes ?? 32 * 1024 * 1024;
  }

  /** Number of entries durably sequenced. */
  get size(): number {
    return this.next;
  }

  get failed(): Error | null {
    return this.failure;
  }

  async append(entries: readonly SequencedEntry[]): Promise<number[]> {
    if (this.failure) throw unavailable(this.failure);
    if (this.closed) throw new SteleError('shutting_down', 'the log is shutting down', 503);
    const known = this.ids.lookup(entries.map((e) => e.id));
    // All or nothing: every repeated id is checked against its first entry's content before any
    // entry of this call is queued, in the same synchronous run as the queueing below (an await
    // in between would let another call claim an id unchecked).
    const conflict = this.checkRepeats(entries, known);
    if (conflict) throw await conflict();
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
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as SequencedEntry;
      const prior = known.get(e.id);
      if (prior !== undefined) {
        out[i] = prior;
        continue;
      }
      const pending = this.inFlight.get(e.id);
      if (pending) {
        later.push({ i, first: pending.first, offset: pending.offset });
        continue;
      }
      this.inFlight.set(e.id, { first, offset: fresh.length, digest: e.digest });
      freshAt.push(i);
      fresh.push(e);
    }
    if (fresh.length) {
      first.catch(() => {}); // observed below; keeps an early rejection from going unhandled
      this.queue.push({ entries: fresh, resolve, reject });
      if (!this.writing) this.idle = this.drain();
      const f = await first;
      for (let k = 0; k < freshAt.length; k++) out[freshAt[k] as number] = f + k;
    }
    for (const l of later) out[l.i] = (await l.first) + l.offset;
    return out;
  }

  /**
   * Refuses (409) an entry whose id is already in the log, in flight, or earlier in the same call
   * with a different content digest. The common case (no repeats) costs one map lookup per entry.
   */
  private checkRepeats(entries: readonly SequencedEntry[], known: Map<string, number>): (() => Promise<SteleError>) | null {
    let seen: Map<string, { digest: Buffer | undefined; at: number }> | undefined;
    const many = entries.length > 1;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as SequencedEntry;
      const where = many ? `event ${i}: ` : '';
      const prior = known.get(e.id);
      if (prior !== undefined) {
        if (!sameContent(this.ids.digestAt(prior), e.digest)) return async () => idConflict(where, e.id, prior);
        continue;
      }
      const pending = this.inFlight.get(e.id);
      if (pending) {
        if (!sameContent(pending.digest, e.digest)) {
          // The first claim is still being written: name its index once it has one.
          return async () =>
            idConflict(
              where,
              e.id,
              await pending.first.then(
                (f) => f + pending.offset,
                () => undefined,
              ),
            );
        }
        continue;
      }
      if (many) {
        seen ??= new Map();
        const s = seen.get(e.id);
        if (!s) seen.set(e.id, { digest: e.digest, at: i });
        else if (!sameContent(s.digest, e.digest)) {
          const err = new SteleError(
            'id_conflict',
            `${where}id ${e.id} is also the id of event ${s.at} of this request, with different content; an id names one event`,
            409,
            { id: e.id, event: s.at },
          );
          return async () => err;
        }
      }
    }
    return null;
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
          this.next += entries.length;
          this.ids.add(first, entries);
          this.onDurable(first, entries);
        } catch (err) {
          this.failure = err as Error;
          for (const q of [...batch, ...this.queue.splice(0)]) {
            for (const e of q.entries) this.inFlight.delete(e.id);
            q.reject(unavailable(this.failure));
          }
          return;
        }
        let at = first;
        for (const q of batch) {
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
function sameContent(a: Buffer | null | undefined, b: Buffer | null | undefined): boolean {
  return !a || !b || a.equals(b);
}

function idConflict(where: string, id: string, index: number | undefined): SteleError {
  const at = index === undefined ? 'in an append still being written' : `at index ${index}`;
  return new SteleError(
    'id_conflict',
    `${where}id ${id} is already in the log ${at}, with different content; a retry must repeat the event exactly, and a new event needs a new id`,
    409,
    { id, ...(index !== undefined ? { index } : {}) },
  );
}

function unavailable(cause: Error): SteleError {
  return new SteleError('log_unavailable', `the log stopped accepting writes after a storage failure: ${cause.message}`, 503);
}
