import type { ThreadHandle } from '../../core/thread.js';
import type { IdIndex } from '../../log/id-index.js';
import type { Log } from '../../log/log.js';
import type { LogStorage, TileStore } from '../../log/storage.js';
import type { BackendSpec, EmbeddedBackend, OpenLogParams, ThreadData, ThreadKind } from '../backend.js';
import { openEmbeddedLog } from '../embedded-log.js';
import { spawnInProcess } from '../threads/in-process.js';
import { spawnWorker } from '../threads/spawn.js';

/**
 * The fault-injection driver: another backend (`inner`) whose operation `fail.op` throws, so the
 * conformance suite can check that a failure at each step stops the log cleanly. Its spec names
 * the inner backend's, so a worker thread reopens the same faulty backend (with its own count of
 * calls: the integrator's operations run only there). The key, API-key and query stores pass through.
 */
export class FaultsBackend implements EmbeddedBackend {
  private calls = 0;

  constructor(
    readonly spec: Extract<BackendSpec, { driver: 'faults' }>,
    private readonly inner: EmbeddedBackend,
  ) {}

  lock(): () => void {
    return this.inner.lock();
  }
  openLog(p: OpenLogParams): Promise<Log> {
    return openEmbeddedLog(this, p);
  }

  log(): LogStorage {
    return this.faulty(this.inner.log(), '');
  }

  tileStore(): TileStore {
    return this.faulty(this.inner.tileStore(), '');
  }

  tiles() {
    return this.inner.tiles();
  }

  ids(): IdIndex {
    return this.faulty(this.inner.ids(), 'ids.');
  }

  keys(...args: Parameters<EmbeddedBackend['keys']>) {
    return this.inner.keys(...args);
  }

  holds() {
    return this.inner.holds();
  }

  apiKeys() {
    return this.inner.apiKeys();
  }

  queryStore() {
    return this.inner.queryStore();
  }

  noteSpill() {
    return this.inner.noteSpill();
  }

  dropQueryStore() {
    return this.inner.dropQueryStore();
  }

  spawn<K extends ThreadKind>(kind: K, data: ThreadData[K]): ThreadHandle {
    // Threads must see this backend, not the inner one: in-process where the inner's stores live
    // in this thread's memory, else a worker that reopens the faults spec.
    return inProcess(this.spec) ? spawnInProcess(this, kind, data) : spawnWorker(this.spec, kind, data);
  }

  /** `store` with the failing operation (named `prefix + method`) replaced by one that throws. */
  private faulty<T extends object>(store: T, prefix: string): T {
    const { op, after = 0 } = this.spec.fail;
    return new Proxy(store, {
      get: (target, prop, receiver) => {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function' || `${prefix}${String(prop)}` !== op) return value;
        return (...args: unknown[]) => {
          if (this.calls++ < after) return value.apply(target, args);
          const err = new Error(`injected fault: ${op} failed (call ${this.calls})`);
          // An async operation fails as it would for real: with a rejected promise.
          if (value.constructor.name === 'AsyncFunction') return Promise.reject(err);
          throw err;
        };
      },
    });
  }
}

function inProcess(spec: BackendSpec): boolean {
  return spec.driver === 'memory' || (spec.driver === 'faults' && inProcess(spec.inner));
}
