import type { ApiKeyStore } from '../../auth/apikeys.js';
import type { ThreadHandle } from '../../core/thread.js';
import type { IndexStore } from '../../index/store.js';
import type { KeyStore } from '../../keys/keystore.js';
import type { Backend, ThreadData, ThreadKind } from '../backend.js';
import { spawnInProcess } from '../threads/in-process.js';
import { MemoryCheckpoint } from './checkpoint.js';
import { MemoryIdIndex, MemoryIds } from './id-index.js';
import { MemoryLock } from './lock.js';
import { MemoryLogStorage, MemoryWal } from './log.js';
import { MemoryTileStore, MemoryTiles } from './tiles.js';

/** Every memory backend of this process by name, so opening one by its spec again finds the same stores. */
const backends = new Map<string, MemoryBackend>();

/**
 * The in-memory driver, for tests and trials: every store in this process's memory, gone when it
 * exits. A store object opened again (a restart, as the conformance suite does it) sees what the
 * last one made durable, as it would on disk. Its threads run on this thread (spawnInProcess).
 */
export class MemoryBackend implements Backend {
  private readonly wal = new MemoryWal();
  private readonly files = new MemoryTiles();
  private readonly checkpoint = new MemoryCheckpoint();
  private readonly idState = new MemoryIds();
  private readonly writeLock: MemoryLock;

  private constructor(readonly name: string) {
    this.writeLock = new MemoryLock(name);
  }

  /** The memory backend called `name` in this process, made empty on first use. */
  static named(name: string): MemoryBackend {
    let b = backends.get(name);
    if (!b) {
      b = new MemoryBackend(name);
      backends.set(name, b);
    }
    return b;
  }

  /** Forgets the backend called `name` (its stores are freed once no one holds them). */
  static drop(name: string): void {
    backends.delete(name);
  }

  get spec() {
    return { driver: 'memory', name: this.name } as const;
  }

  lock(): () => void {
    return this.writeLock.take();
  }

  log(): MemoryLogStorage {
    return new MemoryLogStorage(this.wal, this.files, this.checkpoint);
  }

  tileStore(): MemoryTileStore {
    return new MemoryTileStore(this.files, this.checkpoint);
  }

  tiles(): MemoryTileStore {
    return this.tileStore();
  }

  ids(): MemoryIdIndex {
    return new MemoryIdIndex(this.idState);
  }

  // The key, hold, API-key and query stores of this driver are written separately (issue 13).
  keys(): KeyStore {
    return notYet('the key store');
  }

  apiKeys(): ApiKeyStore {
    return notYet('the API key store');
  }

  queryStore(): IndexStore {
    return notYet('the query store');
  }

  spawn<K extends ThreadKind>(kind: K, data: ThreadData[K]): ThreadHandle {
    return spawnInProcess(this, kind, data);
  }
}

function notYet(what: string): never {
  throw new Error(`${what} is not implemented by the memory driver yet`);
}
