import { Worker } from 'node:worker_threads';
import { SteleError } from '../errors.js';
import type { Ingest } from '../event/types.js';
import { unpack } from '../log/packed.js';
import type { SequencedEntry } from '../log/storage.js';
import type { BodyKind } from './body.js';
import { prepareBody } from './prepare.js';
import type { PrepareReply, PrepareRequest } from './worker.js';

const INLINE_BYTES = 4096;

interface Pending {
  slot: Slot;
  resolve: (e: SequencedEntry[]) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  busy: number;
}

/**
 * Parsing, validating and encoding events is most of ingest's CPU time; this spreads it over
 * worker threads so the main thread only moves bytes, sequences and answers. With `size` 0 the
 * work runs inline (tests, and machines with one core).
 */
export class IngestPool {
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private closed = false;

  constructor(size: number) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  async prepare(body: Uint8Array, kind: BodyKind, ingest: Ingest, received: bigint): Promise<SequencedEntry[]> {
    // Small bodies (a single event, say) cost less to prepare than to hand to a worker and back.
    if (this.slots.length === 0 || body.length < INLINE_BYTES) return prepareBody(body, kind, ingest, received);
    if (this.closed) throw new SteleError('shutting_down', 'the server is shutting down', 503);
    const slot = this.slots.reduce((a, b) => (b.busy < a.busy ? b : a));
    const seq = ++this.seq;
    slot.busy++;
    try {
      return await new Promise<SequencedEntry[]>((resolve, reject) => {
        this.pending.set(seq, { slot, resolve, reject });
        const msg: PrepareRequest = { seq, body, kind, ingest, received };
        slot.worker.postMessage(msg);
      });
    } finally {
      slot.busy--;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private spawn(): Slot {
    const worker = new Worker(new URL('./worker.js', import.meta.url));
    const slot: Slot = { worker, busy: 0 };
    worker.on('message', (r: PrepareReply) => {
      const p = this.pending.get(r.seq);
      if (!p) return;
      this.pending.delete(r.seq);
      if (!r.ok) return p.reject(new SteleError(r.code, r.message, r.status));
      const leaves = unpack(r.leaves);
      const entries: SequencedEntry[] = r.ids.map((id, i) => ({ id, leaf: leaves[i] as Buffer }));
      p.resolve(entries);
    });
    worker.on('error', (err) => {
      // A crashed worker fails what it held and is replaced; requests never hang on it.
      for (const [seq, p] of this.pending) {
        if (p.slot !== slot) continue;
        p.reject(new SteleError('internal', `ingest worker failed: ${err.message}`, 500));
        this.pending.delete(seq);
      }
      if (!this.closed) this.slots[this.slots.indexOf(slot)] = this.spawn();
    });
    return slot;
  }
}
