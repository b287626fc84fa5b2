import { Worker } from 'node:worker_threads';
import { LIMITS } from '../core/config/settings.js';
import { fromWire, SteleError, toWire } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import { RuleMatcher } from '../index/alert-rules.js';
import type { SlotName } from '../keys/key-records.js';
import type { KeyStore, SlotKey } from '../keys/keystore.js';
import { DIGEST_BYTES } from '../log/id-index.js';
import { bytes, unpack } from '../log/packed.js';
import { overloaded } from '../log/sequencer.js';
import type { SequencedEntry } from '../log/storage.js';
import type { Policy } from '../policy/policy.js';
import type { BodyKind } from './body.js';
import { type Prepared, prepareBody, prepareEvents } from './prepare.js';
import { Sealing } from './sealing.js';
import type { FromWorker, IngestWorkerData, ToWorker } from './worker.js';

const INLINE_BYTES = 4096;

/**
 * Most request bytes handed to workers and not yet prepared (each is copied to its worker): past
 * it a body is refused with 503 rather than queued (one larger body still goes when none waits).
 */
export const MAX_PENDING_BYTES = LIMITS.ingestPendingBytes;

interface Pending {
  slot: Slot;
  resolve: (p: Prepared) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  busy: number;
}

/**
 * Parsing, validating, encoding and sealing events is most of ingest's CPU time; this spreads it
 * over worker threads so the main thread only moves bytes, sequences and answers. Data keys come
 * from the key store on this thread (workers ask for a slot's key the first time they need it).
 * With `size` 0 the work runs inline (tests, `stele append --local`, one-core machines).
 */
export class IngestPool {
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private closed = false;
  /** Bytes of bodies with the workers, not yet answered. */
  private pendingBytes = 0;
  /** Seals inline work and self-events; answers key requests from workers. */
  readonly sealing: Sealing;
  /**
   * Whether entries prepared now should carry index notes (event/searchable.ts): asked at each
   * request, so the work is skipped while the index is too far behind to use them.
   */
  notesWanted: () => boolean = () => true;
  /** Whether entries prepared now are tested against the policy's alert rules (someone counts the hits). */
  rulesWanted: () => boolean = () => false;
  /** The alert rules of the policy in force, for inline work (workers compile their own). */
  private rules: RuleMatcher;

  constructor(
    size: number,
    private policy: Policy,
    private readonly keys: KeyStore,
  ) {
    this.sealing = new Sealing(policy, keys.subjectPepper, (reqs) => keys.slots(reqs));
    this.rules = new RuleMatcher(policy);
    keys.onDestroyed((ids) => {
      this.sealing.forget(ids);
      this.broadcast({ type: 'forget', ids });
    });
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  /** Applies a newly loaded policy to every thread (events already prepared keep their tiers). */
  setPolicy(policy: Policy): void {
    this.policy = policy;
    this.sealing.setPolicy(policy);
    this.rules = new RuleMatcher(policy);
    this.broadcast({ type: 'policy', policy });
  }

  /** Entries of a request body, sealed with live keys. */
  prepare(body: Uint8Array, kind: BodyKind, principal: Principal, received: bigint): Promise<Prepared> {
    return this.live(() => this.prepareOnce(body, kind, principal, received));
  }

  /** Entries of already-parsed events (inline), sealed with live keys. */
  prepareParsed(inputs: readonly unknown[], principal: Principal, received: bigint): Promise<Prepared> {
    return this.live(() =>
      prepareEvents(inputs, principal, received, this.sealing, this.notesWanted(), this.rulesWanted() ? this.rules : null),
    );
  }

  /**
   * An erasure can destroy a key while a batch sealed with it is being prepared (a worker's cache
   * is told a moment later): such a batch is prepared again, now under fresh keys, rather than
   * acknowledged unreadable.
   */
  private async live(prepare: () => Promise<Prepared>): Promise<Prepared> {
    for (let attempt = 0; ; attempt++) {
      const p = await prepare();
      const destroyed = p.keyIds.filter((id) => this.keys.isDestroyed(id));
      if (attempt === 2 || destroyed.length === 0) return p;
      // The key may have reached the cache after its destruction was announced.
      this.sealing.forget(destroyed);
    }
  }

  private async prepareOnce(body: Uint8Array, kind: BodyKind, principal: Principal, received: bigint): Promise<Prepared> {
    // Small bodies (a single event, say) cost less to prepare than to hand to a worker and back.
    const notes = this.notesWanted();
    const rules = this.rulesWanted();
    if (this.slots.length === 0 || body.length < INLINE_BYTES)
      return prepareBody(body, kind, principal, received, this.sealing, notes, rules ? this.rules : null);
    if (this.closed) throw new SteleError('shutting_down', 'the server is shutting down');
    if (this.pendingBytes > 0 && this.pendingBytes + body.length > MAX_PENDING_BYTES) {
      throw overloaded(`${this.pendingBytes} bytes of events are waiting to be prepared`);
    }
    const slot = this.slots.reduce((a, b) => (b.busy < a.busy ? b : a));
    const seq = ++this.seq;
    slot.busy++;
    this.pendingBytes += body.length;
    try {
      return await new Promise<Prepared>((resolve, reject) => {
        this.pending.set(seq, { slot, resolve, reject });
        const msg: ToWorker = { type: 'prepare', seq, body, kind, principal, received, notes, rules };
        slot.worker.postMessage(msg);
      });
    } finally {
      slot.busy--;
      this.pendingBytes -= body.length;
    }
  }

  /**
   * Slot keys for a worker. Checked again after the wait: a key destroyed meanwhile must not
   * reach a worker after the 'forget' that went out for it (messages to it keep their order).
   */
  private async slotKeys(reqs: SlotName[]): Promise<SlotKey[]> {
    for (;;) {
      const keys = await this.keys.slots(reqs);
      if (!keys.some((k) => this.keys.isDestroyed(k.id))) return keys;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private broadcast(msg: ToWorker): void {
    for (const s of this.slots) s.worker.postMessage(msg);
  }

  private spawn(): Slot {
    const workerData: IngestWorkerData = { policy: this.policy, pepper: this.keys.subjectPepper };
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData });
    const slot: Slot = { worker, busy: 0 };
    worker.on('message', (r: FromWorker) => {
      if (r.type === 'keys') {
        this.slotKeys(r.reqs).then(
          (keys) => worker.postMessage({ type: 'keys', seq: r.seq, keys } satisfies ToWorker),
          (err: Error) =>
            worker.postMessage({
              type: 'keys',
              seq: r.seq,
              error: toWire(new SteleError('key_store', `the key store failed: ${err.message}`, { cause: err })),
            } satisfies ToWorker),
        );
        return;
      }
      const p = this.pending.get(r.seq);
      if (!p) return;
      this.pending.delete(r.seq);
      if (!r.ok) return p.reject(fromWire(r.error));
      const leaves = unpack(r.leaves);
      const notes = unpack(r.notes);
      const d = bytes(r.digests);
      const entries: SequencedEntry[] = r.ids.map((id, i) => {
        const e: SequencedEntry = { id, leaf: leaves[i] as Buffer, digest: d.subarray(i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES) };
        const note = notes[i] as Buffer;
        if (note.length > 0) e.note = note;
        return e;
      });
      p.resolve({
        entries,
        keyIds: r.keyIds,
        claims: r.claims,
        ...(r.hits ? { hits: r.hits, ruleSeconds: r.ruleSeconds ?? 0 } : {}),
      });
    });
    worker.on('error', (err) => {
      // A crashed worker fails what it held and is replaced; requests never hang on it.
      for (const [seq, p] of this.pending) {
        if (p.slot !== slot) continue;
        p.reject(new SteleError('internal', `ingest worker failed: ${err.message}`, { cause: err }));
        this.pending.delete(seq);
      }
      if (!this.closed) this.slots[this.slots.indexOf(slot)] = this.spawn();
    });
    return slot;
  }
}
