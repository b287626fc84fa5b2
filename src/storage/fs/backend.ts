import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ThreadHandle } from '../../core/thread.js';
import type { Log } from '../../log/log.js';
import type { EmbeddedBackend, OpenLogParams, ThreadData, ThreadKind } from '../backend.js';
import { openEmbeddedLog } from '../embedded-log.js';
import { spawnWorker } from '../threads/spawn.js';
import { FsApiKeyRecords } from './apikeys.js';
import { FsHoldRecords } from './holds.js';
import { JournalIdIndex } from './id-index.js';
import { FsKeyRecords, keystoreDb } from './keys.js';
import { lockDataDir } from './lock.js';
import { FsLogStorage } from './log-storage.js';
import { PartitionedQueryStore } from './partitioned-query-store.js';
import { DirTileSource } from './tile-source.js';

/**
 * The embedded driver: one data directory on a local file system, SQLite for the key store and
 * the query store. Where each store lives under `dir`:
 *
 *     LOCK               the pid of the process that has the directory open for writing
 *     log/ wal/ state/   the log itself (see FsLogStorage); state/ids.journal the id index
 *     keys/keystore.db   the data keys (wrapped), their tombstones, and legal holds
 *     auth/apikeys.json  the API keys (auth/tokens.json read too, from before roles existed)
 *     index/query/       the query store, one SQLite file per 2^20 entries or `queryPartition` (PartitionedQueryStore)
 *     index/notes.spill  index notes waiting for the index thread past its memory bound
 */
export class FsBackend implements EmbeddedBackend {
  readonly dir: string;

  constructor(
    dir: string,
    private readonly opts: { queryPartition?: number } = {},
  ) {
    this.dir = resolve(dir);
  }

  get spec() {
    const { queryPartition } = this.opts;
    return { driver: 'fs', dir: this.dir, ...(queryPartition ? { queryPartition } : {}) } as const;
  }

  lock(): () => void {
    return lockDataDir(this.dir);
  }
  openLog(p: OpenLogParams): Promise<Log> {
    return openEmbeddedLog(this, p);
  }

  log(): FsLogStorage {
    return new FsLogStorage(this.dir);
  }

  tileStore(): FsLogStorage {
    return new FsLogStorage(this.dir);
  }

  tiles(): DirTileSource {
    return new DirTileSource(join(this.dir, 'log'));
  }

  ids(): JournalIdIndex {
    mkdirSync(join(this.dir, 'state'), { recursive: true, mode: 0o700 });
    return new JournalIdIndex(join(this.dir, 'state', 'ids.journal'));
  }

  keys(opts: { readonly?: boolean } = {}): FsKeyRecords {
    return new FsKeyRecords(keystoreDb(join(this.dir, 'keys', 'keystore.db'), opts.readonly ?? false));
  }

  holds(): FsHoldRecords {
    return new FsHoldRecords(keystoreDb(join(this.dir, 'keys', 'keystore.db'), false));
  }

  apiKeys(): FsApiKeyRecords {
    return new FsApiKeyRecords(join(this.dir, 'auth', 'apikeys.json'), join(this.dir, 'auth', 'tokens.json'));
  }

  queryStore(): PartitionedQueryStore {
    this.dropLegacyQueryStore();
    return new PartitionedQueryStore(this.queryStorePath, this.opts.queryPartition);
  }

  /**
   * The single-file store of earlier versions (index/stele.db): a cache like its successor, which
   * rebuilds from the log; deleted rather than left on disk, where an erasure would no longer reach it.
   */
  private dropLegacyQueryStore(): void {
    const db = join(this.dir, 'index', 'stele.db');
    for (const f of [db, `${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });
  }

  noteSpill(): string {
    return join(this.dir, 'index', 'notes.spill');
  }

  async dropQueryStore(): Promise<void> {
    this.dropLegacyQueryStore();
    rmSync(this.queryStorePath, { recursive: true, force: true });
  }

  private get queryStorePath(): string {
    return join(this.dir, 'index', 'query');
  }

  spawn<K extends ThreadKind>(kind: K, data: ThreadData[K]): ThreadHandle {
    return spawnWorker(this.spec, kind, data);
  }
}
