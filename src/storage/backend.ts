import type { ApiKeyStore } from '../auth/apikeys.js';
import type { ThreadHandle, ThreadPort } from '../core/thread.js';
import type { QueryStore } from '../index/query-store.js';
import type { IndexThreadData } from '../index/worker.js';
import type { KeyStore, KeyStoreOptions } from '../keys/keystore.js';
import type { MasterKey } from '../keys/master.js';
import type { IdIndex } from '../log/id-index.js';
import type { LogStorage, TileStore } from '../log/storage.js';
import type { TileSource } from '../tlog/verify.js';

/**
 * How to open a backend: plain data, so a worker thread (or another process) reopens the same
 * stores from it. Each driver lives in its own folder under src/storage/ and is named here.
 */
export type BackendSpec = { driver: 'fs'; dir: string };

/** A backend's threads (src/storage/threads) by name, each with what its owner posts to start it. */
export interface ThreadData {
  /** The log's integrator: builds tiles and signs checkpoints (src/log/integrator-worker.ts). */
  integrator: undefined;
  /** The query store's indexer and searcher (src/index/worker.ts). */
  index: IndexThreadData;
}
export type ThreadKind = keyof ThreadData;
/** A thread's code (src/storage/threads): serves `port` on the stores of `backend`. */
export type ThreadMain<K extends ThreadKind> = (port: ThreadPort, data: ThreadData[K], backend: Backend) => void;

/**
 * Every store a Stele keeps, behind one seam (issue 13). A driver implements all of it; the
 * conformance suite (src/storage/conformance) says what each member must guarantee. The members
 * open lazily: a read-only tool opens only what it reads.
 */
export interface Backend {
  readonly spec: BackendSpec;
  /** Takes the write lock (one writer per backend); returns its release. */
  lock(): () => void;
  /** The write-ahead log, tiles, entry bundles and checkpoint. */
  log(): LogStorage;
  /** The tile side of the log alone, for the integrator's thread. */
  tileStore(): TileStore;
  /** Read-only tiles and checkpoint, for readers (the index thread, verification). */
  tiles(): TileSource;
  /** Event id → log index (deduplication). */
  ids(): IdIndex;
  /** Data keys, their tombstones, and legal holds. */
  keys(masters: readonly MasterKey[], opts?: KeyStoreOptions): KeyStore;
  /** API keys. */
  apiKeys(): ApiKeyStore;
  /** The query store (a cache of the readable entries, rebuilt from the log). */
  queryStore(): QueryStore;
  /** Deletes the query store and everything in it (`stele reindex` then rebuilds it; no store of it may be open). */
  dropQueryStore(): Promise<void>;
  /**
   * Starts one of the backend's threads (src/storage/threads) on this backend's stores: a worker
   * thread that reopens the backend from `spec`, or, for a driver whose stores cannot be shared
   * across threads (memory), the same code on this thread behind a MessageChannel.
   */
  spawn<K extends ThreadKind>(kind: K, data: ThreadData[K]): ThreadHandle;
}
