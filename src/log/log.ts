import { SteleError } from '../core/errors.js';
import { plural } from '../core/plural.js';
import type { ThreadHandle } from '../core/thread.js';
import { formatCheckpoint, parseCheckpoint } from '../tlog/checkpoint.js';
import { emptyRoot } from '../tlog/hash.js';
import { newSigner, openNote, signNote, type Verifier } from '../tlog/note.js';
import { rightEdge } from '../tlog/tile.js';
import type { IdIndex } from './id-index.js';
import type { IntegratorOptions, Published } from './integrator.js';
import { IntegratorThread } from './integrator-thread.js';
import { checkIndex, leafHashAt, type MaybePromise, proveConsistency, proveInclusion } from './proofs.js';
import { type AppendOptions, Sequencer, type SequencerOptions } from './sequencer.js';
import type { LogStorage, SequencedEntry } from './storage.js';
import { TreeReader } from './tree-reader.js';

export type LogOptions = SequencerOptions & IntegratorOptions;

/**
 * What the rest of Stele uses of a log: the embedded Log here, or a SharedLog (shared-log.ts)
 * that several nodes append to through PostgreSQL.
 */
export interface SteleLog {
  readonly origin: string;
  /** Durably appends entries; resolves with each one's index (a known id gives its first index). */
  append(entries: readonly SequencedEntry[], opts?: AppendOptions): Promise<number[]>;
  /** Entries durably sequenced (as far as this node knows). */
  readonly size: number;
  /** Entries durably sequenced, asking the shared store where there is one (another node may have appended). */
  sizeNow(): Promise<number>;
  /** The newest published checkpoint. */
  readonly checkpoint: Published;
  /** When this process first saw the newest checkpoint (ms since the epoch). */
  readonly checkpointTime: number;
  /** Why the log stopped, if it did. */
  readonly failure: Error | null;
  waitForCheckpoint(size: number, timeoutMs?: number): Promise<Published>;
  /** The leaf at `index`, as soon as its append was acknowledged. */
  entry(index: number): Promise<Buffer>;
  inclusionProof(index: number, size?: number): MaybePromise<Buffer[]>;
  /** The leaf hash of a checkpointed entry, from the tiles (no entry bundle read). */
  leafHash(index: number): MaybePromise<Buffer>;
  consistencyProof(from: number, to?: number): MaybePromise<Buffer[]>;
  /** A tile or entry bundle of the published tree, by its C2SP coordinates. */
  readTile(level: number | 'entries', index: number, width: number): Promise<Buffer | null>;
  close(): Promise<void>;
}

export interface LogParams {
  storage: LogStorage;
  /** Starts the integrator's thread (the backend's `spawn('integrator')`). */
  integratorThread: () => ThreadHandle;
  ids: IdIndex;
  /** The log's signing key (signed-note format); the integrator thread signs with it. */
  skey: string;
  verifier: Verifier;
  origin: string;
  options?: LogOptions;
  /**
   * Called with each group commit's entries once durable, before their appends are acknowledged:
   * their leaves, and their index notes where the writer made them (SequencedEntry.note).
   */
  onSequenced?: (first: number, leaves: readonly Buffer[], notes: readonly (Buffer | undefined)[]) => void;
}

/**
 * A verifiable log: durable appends with group commit, checkpoints signed at least once a second
 * while data arrives, entries and proofs read back from the tiles. `open` recovers from a crash
 * before it returns: nothing acknowledged is lost, and the tree must reproduce the last signed
 * checkpoint exactly (no rollback, no fork).
 */
export class Log implements SteleLog {
  private constructor(
    private readonly storage: LogStorage,
    private readonly ids: IdIndex,
    private readonly sequencer: Sequencer,
    private readonly integrator: IntegratorThread,
    private readonly reader: TreeReader,
    readonly origin: string,
  ) {}

  static async open(p: LogParams): Promise<Log> {
    const { storage, ids, origin } = p;
    const state = await storage.open();
    let published: Published;
    if (!state.checkpoint) {
      // A new log publishes the empty tree, so verifiers have a starting point from the first second.
      const root = emptyRoot();
      const note = signNote(formatCheckpoint({ origin, size: 0, root, extensions: [] }), [newSigner(p.skey)]);
      await storage.writeCheckpoint(null, note);
      published = { size: 0, root, note };
    } else {
      const c = parseCheckpoint(openNote(state.checkpoint, [p.verifier]).text);
      if (c.origin !== origin) throw new Error(`the stored checkpoint is for origin "${c.origin}", not "${origin}"`);
      published = { size: c.size, root: c.root, note: state.checkpoint };
    }
    const synced = state.syncedSize;
    if (synced > published.size)
      throw new Error(`tiles are marked durable to ${synced}, past the checkpoint at ${published.size}`);

    // The durable right edge of the tree at `synced`, from which every later entry is replayed.
    const reader = new TreeReader(storage);
    const partials: Buffer[] = [];
    for (const t of rightEdge(synced)) partials.push(t.width ? await reader.tile(t.level, t.index, synced) : Buffer.alloc(0));
    const bundle = synced % 256 ? await reader.bundle(Math.floor(synced / 256), synced) : [];

    const from = Math.min(synced, ids.upto());
    const entries = await storage.recoverSequenced(from);
    const end = from + entries.length;
    if (end < published.size) {
      throw new Error(`the checkpoint covers ${plural(published.size, 'entry', 'entries')} but only ${end} can be recovered`);
    }
    ids.add(from, entries);

    const integrator = await IntegratorThread.start({
      thread: p.integratorThread(),
      skey: p.skey,
      origin,
      size: synced,
      partials,
      bundle,
      published,
      replay: entries.slice(synced - from).map((e) => e.leaf),
      options: p.options ?? {},
      onSynced: async (size) => {
        // The id index must be durable too before the entries it would replay are dropped.
        const upto = ids.upto();
        await ids.flush();
        storage.dropSequencedBefore(Math.min(size, upto));
      },
    });
    const sequencer = new Sequencer(
      storage,
      ids,
      end,
      (first, batch) => {
        const leaves = batch.map((e) => e.leaf);
        integrator.add(first, leaves);
        p.onSequenced?.(
          first,
          leaves,
          batch.map((e) => e.note),
        );
      },
      p.options,
    );
    return new Log(storage, ids, sequencer, integrator, reader, origin);
  }

  /** Durably appends entries; resolves with each one's index (a known id gives its first index). */
  append(entries: readonly SequencedEntry[], opts?: AppendOptions): Promise<number[]> {
    // Fail-stop: with the integrator down nothing new would be checkpointed or leave the WAL.
    const failed = this.integrator.failed;
    if (failed) {
      return Promise.reject(new SteleError('log_unavailable', `the log stopped integrating entries: ${failed.message}`));
    }
    return this.sequencer.append(entries, opts);
  }

  /** Entries durably sequenced. */
  get size(): number {
    return this.sequencer.size;
  }

  async sizeNow(): Promise<number> {
    return this.size;
  }

  /** The newest published checkpoint. */
  get checkpoint(): Published {
    return this.integrator.checkpoint;
  }

  /** When the newest checkpoint was published by this process (ms since the epoch; its start, before the first). */
  get checkpointTime(): number {
    return this.integrator.publishedAt;
  }

  /** Why the log stopped, if it did. */
  get failure(): Error | null {
    return this.sequencer.failed ?? this.integrator.failed;
  }

  waitForCheckpoint(size: number, timeoutMs = 10_000): Promise<Published> {
    return this.integrator.waitFor(size, timeoutMs);
  }

  /** The leaf at `index`, as soon as its append was acknowledged. */
  async entry(index: number): Promise<Buffer> {
    checkIndex('index', index);
    const published = this.checkpoint.size;
    if (index < published) return this.reader.entry(index, published);
    const pending = this.integrator.pendingEntry(index);
    if (pending) return pending;
    throw new SteleError('not_found', `entry ${index} does not exist; the log has ${plural(this.size, 'entry', 'entries')}`);
  }

  inclusionProof(index: number, size = this.checkpoint.size): MaybePromise<Buffer[]> {
    return proveInclusion(this.reader, index, size, this.checkpoint.size);
  }

  /** The leaf hash of a checkpointed entry, from the tiles (no entry bundle read). */
  leafHash(index: number): MaybePromise<Buffer> {
    return leafHashAt(this.reader, index, this.checkpoint.size);
  }

  consistencyProof(from: number, to = this.checkpoint.size): MaybePromise<Buffer[]> {
    return proveConsistency(this.reader, from, to, this.checkpoint.size);
  }

  /** A tile or entry bundle of the published tree, by its C2SP coordinates. */
  readTile(level: number | 'entries', index: number, width: number): Promise<Buffer | null> {
    return this.storage.readTile(level, index, width);
  }

  async close(): Promise<void> {
    await this.sequencer.close();
    await this.integrator.close();
    await this.storage.close();
    this.ids.close();
  }
}
