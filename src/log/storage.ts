import { SteleError } from '../core/errors.js';

/**
 * Where a log keeps its bytes. The sequencer appends entries durably (`appendSequenced`); the
 * integrator turns them into C2SP tiles, entry bundles and checkpoints (`writeTiles`,
 * `writeCheckpoint`); `sync` then makes the tiles durable and lets the storage forget sequenced
 * entries the tiles now hold. Drivers live in src/storage/ (`fs`, `memory`); their conformance
 * suite (src/storage/conformance) checks the guarantees written here.
 */
export interface SequencedEntry {
  /** The event id, the idempotency key. */
  id: string;
  /** The leaf bytes (canonical JSON of the record). */
  leaf: Buffer;
  /**
   * Content digest of the event (ingest/digest.ts), so a repeated id with other content is told
   * apart from a retry. Absent when unknown: such an entry's id is deduplicated without a check.
   */
  digest?: Buffer;
  /**
   * The entry's index note (event/searchable.ts indexNote), handed to the query store with the
   * leaf so that it need not open the leaf again; never stored with the entry.
   */
  note?: Buffer;
}

/** A tile (`level` ≥ 0) or entry bundle (`level` = 'entries') at a given width (256 = full). */
export interface TileData {
  level: number | 'entries';
  index: number;
  width: number;
  data: Buffer;
}

export interface StorageState {
  /** The newest durable signed checkpoint, or null for a new log. */
  checkpoint: string | null;
  /** Tree size up to which tiles and bundles are known durable. */
  syncedSize: number;
}

/**
 * The tile side of a log's storage: what the integrator writes and readers read. The integrator
 * runs on its own thread, on the TileStore its backend opens there (Backend.tileStore).
 */
export interface TileStore {
  /**
   * Writes tiles and bundles; they need not be durable until `syncTiles`. A reader may see them at
   * once. A full tile or bundle (width 256) never changes once durable: writing other bytes over
   * one is refused with an immutableChange error, the same bytes are a no-op (a driver may refuse
   * a change before `syncTiles` too; fs allows it, since a crash may have torn an unsynced file).
   */
  writeTiles(tiles: readonly TileData[]): Promise<void>;
  readTile(level: number | 'entries', index: number, width: number): Promise<Buffer | null>;
  /**
   * Atomically and durably replaces the checkpoint `previous` (null: there is none yet) with
   * `next`: a compare-and-swap, refused with a checkpointConflict error when the stored checkpoint
   * is not `previous` (another writer moved it, or this one is stale). It is what keeps one
   * integrator per log when the lock is a lease (PostgreSQL) rather than a file.
   */
  writeCheckpoint(previous: string | null, next: string): Promise<void>;
  readCheckpoint(): Promise<string | null>;
  /** Makes every tile written so far (covering `size` entries) durable and records `size` as synced. */
  syncTiles(size: number): Promise<void>;
}

export interface LogStorage extends TileStore {
  open(): Promise<StorageState>;
  /**
   * Returns every sequenced entry from `from` to the end (recovery) and readies appends after them.
   * Throws when the storage no longer holds entry `from`.
   */
  recoverSequenced(from: number): Promise<SequencedEntry[]>;
  /** Durably appends entries at `first`, `first + 1`, ...; resolves only once they survive a crash. */
  appendSequenced(first: number, entries: readonly SequencedEntry[]): Promise<void>;
  /** Forgets sequenced entries below `index`: they are durable in tiles and every index. */
  dropSequencedBefore(index: number): void;
  close(): Promise<void>;
}

/** The stored checkpoint was not the one a writer replaced (see TileStore.writeCheckpoint). */
export function checkpointConflict(stored: string | null): SteleError {
  const what = stored === null ? 'there is none' : `it is at size ${stored.split('\n')[1] ?? '?'}`;
  return new SteleError('checkpoint_conflict', `the stored checkpoint is not the one this writer last published (${what})`);
}

/** A full tile or entry bundle would change (see TileStore.writeTiles). */
export function immutableChange(level: number | 'entries', index: number): SteleError {
  const what = level === 'entries' ? `entry bundle ${index}` : `tile ${level}/${index}`;
  return new SteleError('immutable_change', `full ${what} already holds other bytes; full tiles never change`, {
    detail: { level, index },
  });
}
