import type { ApiKeyRecords } from '../auth/apikey-records.js';
import type { S3Location } from '../core/config/parse.js';
import type { ThreadHandle, ThreadPort } from '../core/thread.js';
import type { QueryStore } from '../index/query-store.js';
import type { IndexThreadData } from '../index/worker.js';
import type { HoldRecords } from '../keys/hold-records.js';
import type { KeyRecords } from '../keys/key-records.js';
import type { IdIndex } from '../log/id-index.js';
import type { LogOptions, SteleLog } from '../log/log.js';
import type { SharedLogParams } from '../log/shared-log.js';
import type { LogStorage, TileStore } from '../log/storage.js';
import type { Verifier } from '../tlog/note.js';
import type { TileSource } from '../tlog/verify.js';

/**
 * How to open a backend: plain data, so a worker thread (or another process) reopens the same
 * stores from it. Each driver lives in its own folder under src/storage/ and is named here.
 */
export type BackendSpec =
  /** A data directory; `queryPartition`: entries per query-store file (PARTITION_ENTRIES unless set). */
  | { driver: 'fs'; dir: string; queryPartition?: number }
  /** In this process's memory; the same name opens the same stores (src/storage/memory). */
  | { driver: 'memory'; name: string }
  /** Another backend whose operation `fail.op` throws, after `fail.after` calls (src/storage/faults). */
  | { driver: 'faults'; inner: EmbeddedSpec; fail: FaultSpec }
  /** A PostgreSQL database (and schema) that several nodes share (src/storage/pg); the log's tiles there or in `tiles`. */
  | { driver: 'pg'; url: string; schema?: string; tiles?: S3TilesSpec };

/** An S3 bucket with Object Lock holding a log's tiles and entry bundles (src/storage/s3/tile-store.ts). */
export interface S3TilesSpec {
  location: S3Location;
  endpoint?: string;
  region: string;
  /** COMPLIANCE retention of each full tile and bundle, ms. */
  retainMs: number;
  legalHold: boolean;
}

/** The specs of drivers whose log is one process's (EmbeddedBackend). */
export type EmbeddedSpec = Exclude<BackendSpec, { driver: 'pg' }>;

/**
 * Which operation the faults driver fails: a LogStorage or TileStore method ('appendSequenced',
 * 'writeTiles', 'writeCheckpoint', 'syncTiles', ...) or an id index one ('ids.add', 'ids.flush').
 * The first `after` calls (default 0) succeed; every later one throws.
 */
export interface FaultSpec {
  op: string;
  after?: number;
}

/** A backend's threads (src/storage/threads) by name, each with what its owner posts to start it. */
export interface ThreadData {
  /** The log's integrator: builds tiles and signs checkpoints (src/log/integrator-worker.ts). */
  integrator: undefined;
  /** The query store's indexer and searcher (src/index/worker.ts). */
  index: IndexThreadData;
}
export type ThreadKind = keyof ThreadData;
/** A thread's code (src/storage/threads): serves `port` on the stores of `backend`. */
export type ThreadMain<K extends ThreadKind> = (port: ThreadPort, data: ThreadData[K], backend: Backend) => void | Promise<void>;

/** What opening a backend's log takes (Backend.openLog). */
export interface OpenLogParams {
  /** The log's signing key (signed-note format) and its verifier. */
  skey: string;
  verifier: Verifier;
  origin: string;
  /** The log's options; a shared log also takes its polling intervals (SharedLogParams). */
  options?: LogOptions & NonNullable<SharedLogParams['options']>;
  /**
   * Each durable entry, in index order, once, with its index note where its writer made one: the
   * query store's feed. On a shared log only the node holding the integrator lease is fed.
   */
  onSequenced?: (first: number, leaves: readonly Buffer[], notes: readonly (Buffer | undefined)[]) => void;
  /** A shared log: this node took (true) or gave up (false) the integrator lease; an embedded log leads from the start. */
  onLead?: (leading: boolean) => void;
  /** A shared log's background failures (the store unreachable, a lost lease), for the server's log. */
  onError?: (err: Error) => void;
}

/**
 * Every store a Stele keeps, behind one seam (issue 13). A driver implements all of it; the
 * conformance suite (src/storage/conformance) says what each member must guarantee. The members
 * open lazily: a read-only tool opens only what it reads.
 */
export interface Backend {
  readonly spec: BackendSpec;
  /**
   * Several processes write it at once (pg): its log is a SharedLog, and only the node holding
   * the integrator lease writes the query store.
   */
  readonly shared?: boolean;
  /**
   * Takes the write lock (one process per embedded backend; the nodes of a shared one take turns
   * in its transactions instead); returns its release.
   */
  lock(): () => void;
  /**
   * A shared backend: takes the lock that makes forgetting operations (erasures, holds, retention)
   * run one at a time across every node, waiting for it; returns its release. Embedded backends
   * have none (the process's own queue is enough).
   */
  exclusive?(): Promise<() => Promise<void>>;
  /** Opens (and recovers) the log: the embedded Log on its own storage, or a log shared by several nodes. */
  openLog(p: OpenLogParams): Promise<SteleLog>;
  /** The tile side of the log alone, for the integrator's thread. */
  tileStore(): TileStore;
  /** Read-only tiles and checkpoint, for readers (the index thread, verification). */
  tiles(): TileSource;
  /** Data keys (wrapped) and their tombstones; read-only: lookups beside a writer (the index thread). */
  keys(opts?: { readonly?: boolean }): KeyRecords;
  /** Legal holds. */
  holds(): HoldRecords;
  /** API keys. */
  apiKeys(): ApiKeyRecords;
  /** The query store (a cache of the readable entries, rebuilt from the log). */
  queryStore(): QueryStore;
  /**
   * A file the index thread may queue index notes in while it is far behind (derived data,
   * emptied when it starts; see src/index/note-queue.ts); null: the driver has no disk.
   */
  noteSpill(): string | null;
  /** Deletes the query store and everything in it (`stele reindex` then rebuilds it; no store of it may be open). */
  dropQueryStore(): Promise<void>;
  /**
   * Starts one of the backend's threads (src/storage/threads) on this backend's stores: a worker
   * thread that reopens the backend from `spec`, or, for a driver whose stores cannot be shared
   * across threads (memory), the same code on this thread behind a MessageChannel.
   */
  spawn<K extends ThreadKind>(kind: K, data: ThreadData[K]): ThreadHandle;
  /** Releases what the backend holds itself (a connection pool); the stores it handed out are closed by their users. */
  close?(): Promise<void>;
}

/** A backend whose log lives in one process (fs, memory, faults): its storage and id index are its own. */
export interface EmbeddedBackend extends Backend {
  readonly spec: EmbeddedSpec;
  /** The write-ahead log, tiles, entry bundles and checkpoint. */
  log(): LogStorage;
  /** Event id → log index (deduplication). */
  ids(): IdIndex;
}
