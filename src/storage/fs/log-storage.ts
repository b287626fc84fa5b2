import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { access, link, mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { syncDir, writeDurably } from '../../core/durable.js';
import {
  checkpointConflict,
  immutableChange,
  type LogStorage,
  type SequencedEntry,
  type StorageState,
  type TileData,
} from '../../log/storage.js';
import { fullTileSize, tileFilePath } from '../../tlog/tile.js';
import { DirTileSource } from './tile-source.js';
import { WriteAheadLog } from './wal.js';

const run = promisify(execFile);

/**
 * The embedded storage driver. Under `<dir>`:
 *
 *     log/checkpoint, log/tile/...   exactly the C2SP read paths: serve `log/` with any static server
 *     wal/                           the sequencer's write-ahead log (entries not yet durable in tiles)
 *     state/synced.json              the tree size up to which tiles and bundles are durable
 *
 * Tiles are written without an fsync each (hundreds of files a second would cost seconds of
 * fsyncs); the write-ahead log keeps every entry until a periodic `sync` has flushed the file
 * system, so recovery can always rebuild tiles the crash took.
 */
export class FsLogStorage implements LogStorage {
  readonly logDir: string;
  private readonly walDir: string;
  private readonly stateFile: string;
  private wal: WriteAheadLog | null = null;
  private readonly reader: DirTileSource;
  private readonly madeDirs = new Set<string>();
  /** Tiles and bundles written since the last sync. */
  private unsynced: string[] = [];
  /** Folders of partial tiles written for tiles not yet full. */
  private readonly partialDirs = new Set<string>();
  /** Partial-tile folders made obsolete by a full tile, removed once that tile is durable. */
  private obsoletePartials: string[] = [];

  constructor(readonly dir: string) {
    this.logDir = join(dir, 'log');
    this.reader = new DirTileSource(this.logDir);
    this.walDir = join(dir, 'wal');
    this.stateFile = join(dir, 'state', 'synced.json');
  }

  async open(): Promise<StorageState> {
    for (const d of [this.logDir, this.walDir, dirname(this.stateFile)]) mkdirSync(d, { recursive: true, mode: 0o700 });
    return { checkpoint: await this.readCheckpoint(), syncedSize: this.readSynced() };
  }

  /** The tree size up to which tiles are durable (state/synced.json). */
  private readSynced(): number {
    try {
      return (JSON.parse(readFileSync(this.stateFile, 'utf8')) as { size: number }).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return 0;
    }
  }

  async recoverSequenced(from: number): Promise<SequencedEntry[]> {
    const { wal, entries } = await WriteAheadLog.open(this.walDir, from);
    this.wal = wal;
    return entries;
  }

  async appendSequenced(first: number, entries: readonly SequencedEntry[]): Promise<void> {
    if (!this.wal) throw new Error('storage: recoverSequenced must run before appends');
    await this.wal.append(first, entries);
  }

  async writeTiles(tiles: readonly TileData[]): Promise<void> {
    // A handful at a time: enough to keep the thread pool busy without starving the WAL's fsyncs.
    const width = 8;
    for (let i = 0; i < tiles.length; i += width) {
      await Promise.all(tiles.slice(i, i + width).map((t) => this.writeTile(t)));
    }
  }

  private async writeTile(t: TileData): Promise<void> {
    const path = join(this.logDir, tileFilePath(t.level, t.index, t.width));
    const dir = dirname(path);
    if (!this.madeDirs.has(dir)) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      this.madeDirs.add(dir);
    }
    // Write then rename (or link), so a static server never serves half a tile.
    const tmp = `${path}.tmp`;
    await writeFile(tmp, t.data, { mode: 0o600 });
    if (t.width < 256) {
      await rename(tmp, path);
      this.partialDirs.add(dir);
    } else {
      await this.placeFull(tmp, path, t);
    }
    this.unsynced.push(path);
    // Partials from before a restart are not in partialDirs; one stat per 256 entries finds them.
    if (t.width === 256 && (this.partialDirs.delete(`${path}.p`) || (await exists(`${path}.p`)))) {
      this.obsoletePartials.push(`${path}.p`);
    }
  }

  /**
   * Puts a full tile in place without replacing one that is there unseen: link(2) refuses an
   * existing name. The same bytes again (recovery rewrites what it cannot know was durable) are a
   * no-op; other bytes are refused once the tile was synced. Before that a crash may have left a
   * torn file where the tile was, and the rewrite repairs it.
   */
  private async placeFull(tmp: string, path: string, t: TileData): Promise<void> {
    try {
      await link(tmp, path);
      await rm(tmp);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A file system without hard links: check, then rename (the directory lock keeps writers out).
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS') {
        if (!(await exists(path))) return rename(tmp, path);
      } else if (code !== 'EEXIST') throw err;
    }
    const old = await readFile(path);
    if (old.equals(t.data)) return void (await rm(tmp));
    if (fullTileSize(t) <= this.readSynced()) {
      await rm(tmp);
      throw immutableChange(t.level, t.index);
    }
    await rename(tmp, path);
  }

  readTile(level: number | 'entries', index: number, width: number): Promise<Buffer | null> {
    return this.reader.readTile(level, index, width);
  }

  async writeCheckpoint(previous: string | null, next: string): Promise<void> {
    // The data-directory lock makes this the only writer, so nothing moves between compare and rename.
    const stored = await this.readCheckpoint();
    if (stored !== previous) throw checkpointConflict(stored);
    // A TileStore is used without `open` (the integrator's thread), maybe on a new directory.
    if (stored === null) await mkdir(this.logDir, { recursive: true, mode: 0o700 });
    await writeDurably(join(this.logDir, 'checkpoint'), next);
  }

  readCheckpoint(): Promise<string | null> {
    return this.reader.readCheckpoint();
  }

  async syncTiles(size: number): Promise<void> {
    const written = this.unsynced;
    const obsolete = this.obsoletePartials;
    this.unsynced = [];
    this.obsoletePartials = [];
    await flushFiles(this.logDir, written);
    mkdirSync(dirname(this.stateFile), { recursive: true, mode: 0o700 });
    await writeDurably(this.stateFile, `${JSON.stringify({ size })}\n`);
    // Partial tiles are only needed until their full tile exists (c2sp.org/tlog-tiles).
    await Promise.all(obsolete.map((p) => rm(p, { recursive: true, force: true })));
  }

  dropSequencedBefore(index: number): void {
    this.wal?.truncateBefore(index);
  }

  async close(): Promise<void> {
    await this.wal?.close();
    this.wal = null;
  }
}

/**
 * Makes `files` durable. On Linux one syncfs(2) (`sync -f`) flushes them all at the cost of one
 * call; elsewhere, or if that fails, each file is fsync'd.
 */
async function flushFiles(root: string, files: readonly string[]): Promise<void> {
  if (files.length === 0) return;
  if (process.platform === 'linux') {
    try {
      await run('sync', ['-f', root]);
      return;
    } catch {
      // fall through to per-file fsync
    }
  }
  const dirs = new Set<string>();
  for (let i = 0; i < files.length; i += 4) {
    await Promise.all(
      files.slice(i, i + 4).map(async (f) => {
        dirs.add(dirname(f));
        const fh = await open(f, 'r');
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
      }),
    );
  }
  for (const d of dirs) await syncDir(d);
}

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );
