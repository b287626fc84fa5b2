import { SteleError } from '../errors.js';
import type { IdIndex } from './id-index.js';
import type { LogStorage, SequencedEntry } from './storage.js';

interface Queued {
  entry: SequencedEntry;
  resolve: (index: number) => void;
  reject: (err: Error) => void;
}

export interface SequencerOptions {
  /** Most entries in one group commit. */
  maxBatchEntries?: number;
  /** Most leaf bytes in one group commit. */
  maxBatchBytes?: number;
}

/**
 * Assigns indices and makes entries durable with group commit: while one write-and-fsync is in
 * flight, new appends queue up and all of them go out in the next write. An append resolves only
 * after the fsync that covers it. A repeated id resolves to its first index.
 *
 * A storage failure stops the sequencer for good (fail-stop, like a database after a failed fsync):
 * the state of the write is unknown, and a restart's recovery is the safe way on.
 */
export class Sequencer {
  private queue: Queued[] = [];
  /** Ids queued or being written, so a duplicate arriving meanwhile joins the first. */
  private readonly inFlight = new Map<string, Promise<number>>();
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

  append(entries: readonly SequencedEntry[]): Promise<number[]> {
    if (this.failure) return Promise.reject(unavailable(this.failure));
    if (this.closed) return Promise.reject(new SteleError('shutting_down', 'the log is shutting down', 503));
    const results: Promise<number>[] = new Array(entries.length);
    const unseen: number[] = [];
    for (let i = 0; i < entries.length; i++) {
      const p = this.inFlight.get((entries[i] as SequencedEntry).id);
      if (p) results[i] = p;
      else unseen.push(i);
    }
    const known = unseen.length ? this.ids.lookup(unseen.map((i) => (entries[i] as SequencedEntry).id)) : new Map();
    for (const i of unseen) {
      const entry = entries[i] as SequencedEntry;
      const prior = known.get(entry.id);
      if (prior !== undefined) {
        results[i] = Promise.resolve(prior);
        continue;
      }
      // Within one request the same id may appear twice: the second joins the first.
      const again = this.inFlight.get(entry.id);
      if (again) {
        results[i] = again;
        continue;
      }
      const p = new Promise<number>((resolve, reject) => this.queue.push({ entry, resolve, reject }));
      this.inFlight.set(entry.id, p);
      results[i] = p;
    }
    if (!this.writing && this.queue.length) this.idle = this.drain();
    return Promise.all(results);
  }

  /** Stops taking appends and waits for those already queued. */
  async close(): Promise<void> {
    this.closed = true;
    await this.idle;
  }

  private takeBatch(): Queued[] {
    let n = 0;
    let bytes = 0;
    while (n < this.queue.length && n < this.maxEntries) {
      bytes += (this.queue[n] as Queued).entry.leaf.length;
      if (n > 0 && bytes > this.maxBytes) break;
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
        const entries = batch.map((q) => q.entry);
        try {
          await this.storage.appendSequenced(first, entries);
          this.next += batch.length;
          this.ids.add(first, entries.map((e) => e.id));
          this.onDurable(first, entries);
        } catch (err) {
          this.failure = err as Error;
          for (const q of [...batch, ...this.queue.splice(0)]) {
            this.inFlight.delete(q.entry.id);
            q.reject(unavailable(this.failure));
          }
          return;
        }
        for (let i = 0; i < batch.length; i++) {
          const q = batch[i] as Queued;
          this.inFlight.delete(q.entry.id);
          q.resolve(first + i);
        }
      }
    } finally {
      this.writing = false;
    }
  }
}

function unavailable(cause: Error): SteleError {
  return new SteleError('log_unavailable', `the log stopped accepting writes after a storage failure: ${cause.message}`, 503);
}
