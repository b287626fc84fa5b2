import { defaultOf } from '../core/config/resolve.js';
import { LIMITS } from '../core/config/settings.js';
import { formatCheckpoint } from '../tlog/checkpoint.js';
import { leafHash } from '../tlog/hash.js';
import { type Signer, signNote } from '../tlog/note.js';
import { encodeBundle, type TileBuilder } from '../tlog/tile.js';
import type { TileData, TileStore } from './storage.js';

export interface Published {
  size: number;
  root: Buffer;
  /** The signed note, as served at /log/checkpoint. */
  note: string;
}

export interface IntegratorOptions {
  /** Least time between two checkpoints, ms. New data is integrated no later than this. */
  checkpointIntervalMs?: number;
  /** Time between two syncs of the tiles (after which the WAL can shrink), ms. */
  syncIntervalMs?: number;
}

export interface IntegratorEvents {
  /** A new checkpoint is durable and may be served. */
  published(p: Published): void;
  /** Tiles covering `size` entries are durable: sequenced entries below it may be dropped. */
  synced(size: number): void;
  /** The integrator stopped (an I/O error, or a fork refused); it does nothing more. */
  failed(err: Error): void;
}

/**
 * Turns sequenced entries into tiles, entry bundles and a signed checkpoint. It runs whenever
 * there is new data, at most once per `checkpointIntervalMs` (so at least once a second by default
 * while data arrives), and every `syncIntervalMs` makes the tiles durable so storage can drop
 * entries from its write-ahead log. It runs on its own thread (integrator-worker.ts): hashing and
 * writing hundreds of files a second would otherwise take half the main thread.
 */
export class Integrator {
  /** Sequenced entries not yet integrated; pending[0] has index builder.size. */
  private pending: Buffer[] = [];
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private lastRun = 0;
  private lastSync = Date.now();
  private failure: Error | null = null;
  private readonly interval: number;
  private readonly syncInterval: number;

  constructor(
    private readonly store: TileStore,
    private readonly signer: Signer,
    private readonly origin: string,
    private readonly builder: TileBuilder,
    /** Entries of the current partial entry bundle (builder.size % 256 of them). */
    private bundle: Buffer[],
    private published: Published,
    private readonly events: IntegratorEvents,
    opts: IntegratorOptions = {},
  ) {
    this.interval = opts.checkpointIntervalMs ?? defaultOf('checkpointInterval');
    this.syncInterval = opts.syncIntervalMs ?? LIMITS.tileSyncIntervalMs;
  }

  /** Called once entries are durably sequenced. */
  add(first: number, leaves: readonly Buffer[]): void {
    const next = this.builder.size + this.pending.length;
    if (first !== next) throw new Error(`integrator expected entry ${next}, got ${first}`);
    for (const l of leaves) this.pending.push(l);
    this.schedule();
  }

  /**
   * Integrates every pending entry now. When `expect` is given (recovery), the tree root at that
   * size must equal the one already signed, or the log refuses to go on: it would fork.
   */
  async integrateNow(expect?: { size: number; root: Buffer }): Promise<void> {
    while (this.running) await this.running;
    this.running = this.integrate(expect).finally(() => {
      this.running = null;
    });
    await this.running;
  }

  /** Integrates what is pending, makes everything durable and stops the timers. */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.failure) throw this.failure;
    await this.integrateNow();
    await this.sync();
  }

  /**
   * Stops at once, integrating nothing more (a node that lost the integrator lease: another node
   * integrates what is pending, and nothing this one would write may race it).
   */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.failure ??= new Error('the integrator was stopped');
  }

  /** Whether it stopped (stop(), or a failure): it integrates nothing more. */
  get stopped(): boolean {
    return this.failure !== null;
  }

  private schedule(): void {
    if (this.timer || this.running || this.failure || this.pending.length === 0) return;
    const delay = Math.max(0, this.lastRun + this.interval - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.integrateNow().then(
        () => this.schedule(),
        () => {},
      );
    }, delay);
  }

  private async integrate(expect?: { size: number; root: Buffer }): Promise<void> {
    if (this.failure) throw this.failure;
    const n = this.pending.length;
    if (n === 0) return;
    this.lastRun = Date.now();
    try {
      const tiles: TileData[] = [];
      const leaves = this.pending.splice(0, n);
      for (const leaf of leaves) {
        this.builder.append(leafHash(leaf));
        this.bundle.push(leaf);
        if (expect && this.builder.size === expect.size && !this.builder.root().equals(expect.root)) {
          throw new Error(`the entries do not reproduce the signed checkpoint at size ${expect.size}: refusing to fork the log`);
        }
        if (this.bundle.length === 256) {
          tiles.push({ level: 'entries', index: (this.builder.size - 256) / 256, width: 256, data: encodeBundle(this.bundle) });
          this.bundle = [];
        }
      }
      if (this.bundle.length > 0) {
        const index = Math.floor(this.builder.size / 256);
        tiles.push({ level: 'entries', index, width: this.bundle.length, data: encodeBundle(this.bundle) });
      }
      for (const t of this.builder.drain()) tiles.push(t);
      await this.store.writeTiles(tiles);
      const size = this.builder.size;
      if (size > this.published.size) {
        const root = this.builder.root();
        const note = signNote(formatCheckpoint({ origin: this.origin, size, root, extensions: [] }), [this.signer]);
        await this.store.writeCheckpoint(this.published.note, note);
        this.published = { size, root, note };
        this.events.published(this.published);
      }
      if (Date.now() - this.lastSync >= this.syncInterval) await this.sync();
    } catch (err) {
      this.failure = err as Error;
      this.events.failed(this.failure);
      throw err;
    }
  }

  private async sync(): Promise<void> {
    this.lastSync = Date.now();
    const size = this.published.size;
    await this.store.syncTiles(size);
    this.events.synced(size);
  }
}
