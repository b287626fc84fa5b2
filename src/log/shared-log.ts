/**
 * A log that several nodes append to at once, through a shared store (the PostgreSQL driver;
 * docs/design.md): the store numbers each batch (SharedSequencing), and the one node that holds
 * the integrator lease turns the shared write-ahead log into tiles and signed checkpoints. Every
 * node reads the checkpoint, tiles and proofs from the shared tile store. A node that takes the
 * lease recovers as the embedded log does after a crash: the tree's right edge from the tiles at
 * the synced size, then every write-ahead entry after it, which must reproduce the stored
 * checkpoint (no fork); and each checkpoint is published by compare-and-swap, so a node that lost
 * the lease without knowing cannot publish over the new holder.
 */
import { SteleError } from '../core/errors.js';
import { plural } from '../core/plural.js';
import { formatCheckpoint, parseCheckpoint } from '../tlog/checkpoint.js';
import { emptyRoot } from '../tlog/hash.js';
import { newSigner, openNote, signNote, type Verifier } from '../tlog/note.js';
import { rightEdge, TileBuilder } from '../tlog/tile.js';
import { CheckpointWaiters } from './checkpoint-waiters.js';
import { Integrator, type IntegratorOptions, type Published } from './integrator.js';
import type { SteleLog } from './log.js';
import { checkIndex, leafHashAt, type MaybePromise, proveConsistency, proveInclusion } from './proofs.js';
import { type AppendOptions, DEFAULT_MAX_QUEUED_ENTRIES, overloaded } from './sequencer.js';
import type { SequencedEntry, TileStore } from './storage.js';
import { TreeReader } from './tree-reader.js';

/** The store's sequencing: one batch numbered and made durable in one step, for every node. */
export interface SharedSequencing {
  /**
   * `keyIds`: the data keys that sealed the entries; refused (nothing stored) if one was destroyed.
   * `repeated`: as AppendOptions.repeated.
   */
  append(entries: readonly SequencedEntry[], keyIds?: readonly string[], repeated?: (i: number) => void): Promise<number[]>;
  /** Entries sequenced so far. */
  size(): Promise<number>;
  /** Write-ahead entries from `from`, in order, at most `limit`. */
  read(from: number, limit: number): Promise<{ idx: number; leaf: Buffer }[]>;
  /** Forgets write-ahead entries below `index` (the tiles hold them). */
  dropBefore(index: number): Promise<void>;
}

export interface SharedTileStore extends TileStore {
  /** The tree size up to which tiles are durable (the last syncTiles). */
  syncedSize(): Promise<number>;
}

/** The integrator lease (PgLease): held until released or lost. */
export interface Lease {
  readonly held: boolean;
  onLost(fn: (err: Error) => void): void;
  release(): Promise<void>;
}

export interface SharedLogParams {
  sequencing: SharedSequencing;
  tiles: SharedTileStore;
  /** Takes the integrator lease, or null when another node holds it. */
  takeLease: () => Promise<Lease | null>;
  skey: string;
  verifier: Verifier;
  origin: string;
  options?: IntegratorOptions & {
    /** How often a node reads the checkpoint and (holding the lease) the new entries, ms (default 50). */
    pollMs?: number;
    /** How often a node without the lease tries to take it, ms (default 1000). */
    leaseRetryMs?: number;
    maxQueuedEntries?: number;
  };
  /** On the lease holder: every entry, in index order, once (the query store's feed). */
  onSequenced?: (first: number, leaves: readonly Buffer[], notes: readonly (Buffer | undefined)[]) => void;
  /**
   * This node took the integrator lease (true: before its first entry is fed to onSequenced) or
   * gave it up (false): the query store is written by the lease holder alone.
   */
  onLead?: (leading: boolean) => void;
  /** A failure of the background loop (the store unreachable, a lost lease), for the server's log. */
  onError?: (err: Error) => void;
}

/** Write-ahead entries read at a time. */
const FEED = 10_000;

export class SharedLog implements SteleLog {
  private published: Published;
  private known = 0;
  private pending = 0;
  private lead: { lease: Lease; integrator: Integrator; fed: number } | null = null;
  private lastTry = 0;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private readonly waiters = new CheckpointWaiters();
  private readonly reader: TreeReader;
  /** When this node first saw the newest checkpoint (ms since the epoch). */
  private publishedAt = Date.now();

  private constructor(
    private readonly p: SharedLogParams,
    published: Published,
  ) {
    this.published = published;
    this.reader = new TreeReader(p.tiles);
  }

  get origin(): string {
    return this.p.origin;
  }

  static async open(p: SharedLogParams): Promise<SharedLog> {
    let note = await p.tiles.readCheckpoint();
    if (note === null) {
      // The first node publishes the empty tree; another may do so at the same moment.
      const root = emptyRoot();
      const empty = signNote(formatCheckpoint({ origin: p.origin, size: 0, root, extensions: [] }), [newSigner(p.skey)]);
      try {
        await p.tiles.writeCheckpoint(null, empty);
        note = empty;
      } catch (err) {
        if ((err as SteleError).code !== 'checkpoint_conflict') throw err;
        note = (await p.tiles.readCheckpoint()) as string;
      }
    }
    const log = new SharedLog(p, SharedLog.parse(p, note));
    await log.tick();
    log.schedule();
    return log;
  }

  private static parse(p: SharedLogParams, note: string): Published {
    let text: string;
    try {
      text = openNote(note, [p.verifier]).text;
    } catch (err) {
      throw new Error(
        `the stored checkpoint is not signed by this log's key ${p.verifier.name} (${(err as Error).message}): every node of a log needs the same signing key`,
        { cause: err },
      );
    }
    const c = parseCheckpoint(text);
    if (c.origin !== p.origin) throw new Error(`the stored checkpoint is for origin "${c.origin}", not "${p.origin}"`);
    return { size: c.size, root: c.root, note };
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick()
        .catch((err: Error) => this.p.onError?.(err))
        .finally(() => this.schedule());
    }, this.p.options?.pollMs ?? 50);
    this.timer.unref();
  }

  /** Reads the checkpoint and size; takes the lease when it is free; feeds the integrator when holding it. */
  private async tick(): Promise<void> {
    const note = await this.p.tiles.readCheckpoint();
    if (note !== null && note !== this.published.note) this.publish(SharedLog.parse(this.p, note));
    this.known = Math.max(this.known, await this.p.sequencing.size());
    if (!this.lead && Date.now() - this.lastTry >= (this.p.options?.leaseRetryMs ?? 1000)) {
      this.lastTry = Date.now();
      const lease = await this.p.takeLease();
      if (lease) await this.take(lease);
    }
    if (this.lead) await this.feed(this.lead);
  }

  private publish(p: Published): void {
    if (p.size < this.published.size) return;
    if (p.note !== this.published.note) this.publishedAt = Date.now();
    this.published = p;
    this.waiters.published(p);
  }

  /** Becomes the integrator: recovery from the synced size, as after a crash, then the feed. */
  private async take(lease: Lease): Promise<void> {
    try {
      const tiles = this.p.tiles;
      const published = SharedLog.parse(this.p, (await tiles.readCheckpoint()) as string);
      const synced = await tiles.syncedSize();
      if (synced > published.size)
        throw new Error(`tiles are marked durable to ${synced}, past the checkpoint at ${published.size}`);
      const partials: Buffer[] = [];
      for (const t of rightEdge(synced))
        partials.push(t.width ? await this.reader.tile(t.level, t.index, synced) : Buffer.alloc(0));
      const bundle = synced % 256 ? await this.reader.bundle(Math.floor(synced / 256), synced) : [];
      const integrator = new Integrator(
        tiles,
        newSigner(this.p.skey),
        this.p.origin,
        new TileBuilder(synced, partials),
        bundle,
        published,
        {
          published: (pub) => this.publish(pub),
          synced: (size) => void this.p.sequencing.dropBefore(size).catch((err: Error) => this.p.onError?.(err)),
          failed: (err) => void this.stepDown(err),
        },
        this.p.options ?? {},
      );
      const lead = { lease, integrator, fed: synced };
      this.p.onLead?.(true);
      // Every entry after the synced size; those up to the checkpoint must reproduce it.
      const expect = { size: published.size, root: published.root };
      await this.feed(lead, expect);
      if (lead.fed < published.size)
        throw new Error(
          `the checkpoint covers ${plural(published.size, 'entry', 'entries')} but only ${lead.fed} can be recovered`,
        );
      if (lead.fed > synced) await integrator.integrateNow(lead.fed >= expect.size ? expect : undefined);
      this.lead = lead;
      lease.onLost((err) => void this.stepDown(err));
    } catch (err) {
      this.p.onLead?.(false);
      await lease.release();
      throw err;
    }
  }

  /** Gives the integrator every write-ahead entry after what it has, in order. */
  private async feed(lead: { integrator: Integrator; fed: number }, expect?: { size: number; root: Buffer }): Promise<void> {
    for (;;) {
      const rows = await this.p.sequencing.read(lead.fed, FEED);
      // The lease was given up while reading: another node integrates (and feeds the index) now.
      if (rows.length === 0 || lead.integrator.stopped) return;
      rows.forEach((r, i) => {
        if (r.idx !== lead.fed + i) throw new Error(`the write-ahead log has entry ${r.idx} where ${lead.fed + i} was due`);
      });
      const leaves = rows.map((r) => r.leaf);
      lead.integrator.add(lead.fed, leaves);
      if (expect && lead.fed < expect.size && lead.fed + rows.length >= expect.size) await lead.integrator.integrateNow(expect);
      // No index notes: the shared write-ahead log keeps leaves only (the index opens them).
      this.p.onSequenced?.(
        lead.fed,
        leaves,
        leaves.map(() => undefined),
      );
      lead.fed += rows.length;
      if (rows.length < FEED) return;
    }
  }

  private async stepDown(err: Error): Promise<void> {
    const lead = this.lead;
    if (!lead) return;
    this.lead = null;
    lead.integrator.stop();
    this.p.onLead?.(false);
    this.p.onError?.(new Error(`gave up the integrator lease: ${err.message}`));
    await lead.lease.release();
  }

  /** Whether this node holds the integrator lease. */
  get leader(): boolean {
    return this.lead !== null;
  }

  /** Durably appends entries (on any node); resolves with each one's index (a known id gives its first index). */
  async append(entries: readonly SequencedEntry[], opts: AppendOptions = {}): Promise<number[]> {
    if (this.stopped) throw new SteleError('shutting_down', 'the log is shutting down');
    const max = this.p.options?.maxQueuedEntries ?? DEFAULT_MAX_QUEUED_ENTRIES;
    if (opts.bounded && this.pending > 0 && this.pending + entries.length > max) {
      throw overloaded(`${this.pending} events are waiting to be written`);
    }
    this.pending += entries.length;
    try {
      const out = await this.p.sequencing.append(entries, opts.keyIds, opts.repeated);
      for (const i of out) if (i >= this.known) this.known = i + 1;
      return out;
    } finally {
      this.pending -= entries.length;
    }
  }

  /** Entries sequenced, as far as this node has seen. */
  get size(): number {
    return this.known;
  }

  async sizeNow(): Promise<number> {
    this.known = Math.max(this.known, await this.p.sequencing.size());
    return this.known;
  }

  get checkpoint(): Published {
    return this.published;
  }

  get checkpointTime(): number {
    return this.publishedAt;
  }

  /** A shared log does not stop on a failure: an append that fails says so, and the lease moves on. */
  get failure(): Error | null {
    return null;
  }

  waitForCheckpoint(size: number, timeoutMs = 10_000): Promise<Published> {
    return this.waiters.wait(this.published, size, timeoutMs);
  }

  /** The leaf at `index`: from the tiles once checkpointed, else from the shared write-ahead log. */
  async entry(index: number): Promise<Buffer> {
    checkIndex('index', index);
    const published = this.published.size;
    if (index < published) return this.reader.entry(index, published);
    const [row] = await this.p.sequencing.read(index, 1);
    if (row?.idx === index) return row.leaf;
    throw new SteleError('not_found', `entry ${index} does not exist; the log has ${plural(this.size, 'entry', 'entries')}`);
  }

  inclusionProof(index: number, size = this.published.size): MaybePromise<Buffer[]> {
    return proveInclusion(this.reader, index, size, this.published.size);
  }

  leafHash(index: number): MaybePromise<Buffer> {
    return leafHashAt(this.reader, index, this.published.size);
  }

  consistencyProof(from: number, to = this.published.size): MaybePromise<Buffer[]> {
    return proveConsistency(this.reader, from, to, this.published.size);
  }

  readTile(level: number | 'entries', index: number, width: number): Promise<Buffer | null> {
    return this.p.tiles.readTile(level, index, width);
  }

  /** Stops the loop; the lease holder integrates what it has and gives the lease up. */
  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    const lead = this.lead;
    this.lead = null;
    if (lead) {
      await this.feed(lead).catch(() => {});
      await lead.integrator.close().catch((err: Error) => this.p.onError?.(err));
      await lead.lease.release();
    }
  }
}
