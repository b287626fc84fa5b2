import { fromWire } from '../core/errors.js';
import type { ThreadHandle } from '../core/thread.js';
import { CheckpointWaiters } from './checkpoint-waiters.js';
import type { IntegratorOptions, Published } from './integrator.js';
import type { FromIntegrator, ToIntegrator } from './integrator-worker.js';
import { pack, sharedRuns, transferList } from './packed.js';

export interface IntegratorStart {
  /** The started thread (the backend's `spawn('integrator')`, which runs serveIntegrator). */
  thread: ThreadHandle;
  skey: string;
  origin: string;
  /** The durable right edge from which integration resumes. */
  size: number;
  partials: Buffer[];
  bundle: Buffer[];
  /** The newest signed checkpoint. */
  published: Published;
  /** Sequenced entries from `size` on, to integrate before the log opens. */
  replay: Buffer[];
  options: IntegratorOptions;
  /** Called when tiles covering `size` entries are durable. */
  onSynced: (size: number) => Promise<void>;
}

/**
 * The main thread's handle on the integrator thread: it hands over durable entries, keeps them
 * readable until a checkpoint covers them, and tracks the newest published checkpoint.
 */
export class IntegratorThread {
  /** Entries handed over but not yet in a published checkpoint; pending[0] has index pendingFrom. */
  private pending: Buffer[] = [];
  private pendingFrom: number;
  private readonly waiters = new CheckpointWaiters();
  /** When the newest checkpoint was published (ms since the epoch; the start, before the first). */
  publishedAt = Date.now();
  private failure: Error | null = null;
  private closing: (() => void) | null = null;
  private syncing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly worker: ThreadHandle,
    private published: Published,
    private readonly onSynced: (size: number) => Promise<void>,
  ) {
    this.pendingFrom = published.size;
  }

  /** Starts the thread; resolves once recovery has integrated `replay` (or rejects, e.g. on a fork). */
  static start(s: IntegratorStart): Promise<IntegratorThread> {
    const worker = s.thread;
    const t = new IntegratorThread(worker, s.published, s.onSynced);
    const expect = s.published.size > s.size ? { size: s.published.size, root: s.published.root } : undefined;
    const init: ToIntegrator = {
      type: 'init',
      skey: s.skey,
      origin: s.origin,
      size: s.size,
      partials: s.partials,
      bundle: s.bundle,
      published: s.published,
      options: s.options,
      replay: pack(s.replay),
      ...(expect ? { expect } : {}),
    };
    return new Promise((resolve, reject) => {
      const onMessage = (m: FromIntegrator) => {
        if (m.type === 'ready') {
          worker.off('message', onMessage);
          worker.on('message', (x: FromIntegrator) => t.receive(x));
          resolve(t);
        } else if (m.type === 'failed') {
          void worker.terminate();
          reject(fromWire(m.error));
        } else {
          t.receive(m);
        }
      };
      worker.on('message', onMessage);
      worker.on('error', (err) => {
        t.fail(err);
        reject(err);
      });
      worker.postMessage(init);
    });
  }

  get checkpoint(): Published {
    return this.published;
  }

  get failed(): Error | null {
    return this.failure;
  }

  /** An entry durably sequenced but not yet in a published checkpoint, if `index` is one. */
  pendingEntry(index: number): Buffer | undefined {
    return index >= this.pendingFrom ? this.pending[index - this.pendingFrom] : undefined;
  }

  /** Hands durable entries to the integrator. */
  add(first: number, leaves: readonly Buffer[]): void {
    const next = this.pendingFrom + this.pending.length;
    if (first !== next) throw new Error(`integrator expected entry ${next}, got ${first}`);
    for (const l of leaves) this.pending.push(l);
    // Leaves from the ingest workers already live in shared memory: pass views, copy nothing.
    const parts = sharedRuns(leaves) ?? [pack(leaves)];
    const m: ToIntegrator = { type: 'add', first, parts };
    this.worker.postMessage(m, parts.flatMap(transferList));
  }

  /** Resolves with the first published checkpoint of at least `size`. */
  waitFor(size: number, timeoutMs: number): Promise<Published> {
    if (this.failure && this.published.size < size) return Promise.reject(this.failure);
    return this.waiters.wait(this.published, size, timeoutMs);
  }

  /** Integrates everything handed over, makes it durable, and stops the thread. */
  async close(): Promise<void> {
    if (!this.failure) {
      await new Promise<void>((resolve) => {
        this.closing = resolve;
        this.worker.postMessage({ type: 'close' } satisfies ToIntegrator);
      });
    }
    await this.syncing;
    await this.worker.terminate();
  }

  private receive(m: FromIntegrator): void {
    switch (m.type) {
      case 'published': {
        const p = { ...m.published, root: Buffer.from(m.published.root) };
        this.pending.splice(0, p.size - this.pendingFrom);
        this.pendingFrom = p.size;
        this.published = p;
        this.publishedAt = Date.now();
        this.waiters.published(p);
        break;
      }
      case 'synced':
        // Chained, so the write-ahead log is cut in order and close() can wait for the last cut.
        this.syncing = this.syncing.then(() => this.onSynced(m.size)).catch((err: Error) => this.fail(err));
        break;
      case 'failed':
        this.fail(fromWire(m.error));
        break;
      case 'closed':
        this.closing?.();
        break;
      case 'ready':
        break;
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.waiters.fail(this.failure);
    this.closing?.();
  }
}
