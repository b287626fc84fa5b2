import type { ThreadHandle } from '../../core/thread.js';
import type { Log } from '../../log/log.js';
import type { EmbeddedBackend, OpenLogParams, ThreadData, ThreadKind } from '../backend.js';
import { openEmbeddedLog } from '../embedded-log.js';
import { spawnInProcess } from '../threads/in-process.js';
import { MemoryApiKeyRecords } from './apikeys.js';
import { MemoryCheckpoint } from './checkpoint.js';
import { MemoryHoldRecords } from './holds.js';
import { MemoryIdIndex, MemoryIds } from './id-index.js';
import { MemoryKeyRecords } from './keys.js';
import { MemoryLock } from './lock.js';
import { MemoryLogStorage, MemoryWal } from './log.js';
import { MemoryQueryStore, QueryData } from './query-store.js';
import { MemoryTileStore, MemoryTiles } from './tiles.js';

/** Every memory backend of this process by name, so opening one by its spec again finds the same stores. */
const backends = new Map<string, MemoryBackend>();

/**
 * The in-memory driver, for tests and trials: every store in this process's memory, gone when it
 * exits. A store object opened again (a restart, as the conformance suite does it) sees what the
 * last one made durable, as it would on disk. Its threads run on this thread (spawnInProcess).
 */
export class MemoryBackend implements EmbeddedBackend {
  private readonly wal = new MemoryWal();
  private readonly files = new MemoryTiles();
  private readonly checkpoint = new MemoryCheckpoint();
  private readonly idState = new MemoryIds();
  private readonly keyRecords = new MemoryKeyRecords();
  private readonly holdRecords = new MemoryHoldRecords();
  private readonly apiKeyRecords = new MemoryApiKeyRecords();
  private queryData = new QueryData();
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
  openLog(p: OpenLogParams): Promise<Log> {
    return openEmbeddedLog(this, p);
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

  keys(opts?: { readonly?: boolean }): MemoryKeyRecords {
    return opts?.readonly ? this.keyRecords.reader() : this.keyRecords;
  }

  holds(): MemoryHoldRecords {
    return this.holdRecords;
  }

  apiKeys(): MemoryApiKeyRecords {
    return this.apiKeyRecords;
  }

  queryStore(): MemoryQueryStore {
    return new MemoryQueryStore(this.queryData);
  }

  noteSpill(): null {
    return null;
  }

  async dropQueryStore(): Promise<void> {
    this.queryData = new QueryData();
  }

  spawn<K extends ThreadKind>(kind: K, data: ThreadData[K]): ThreadHandle {
    return spawnInProcess(this, kind, data);
  }
}
