import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { access, mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { syncDir, writeDurably } from '../../core/durable.js';
import type { LogStorage, SequencedEntry, StorageState, TileData } from '../../log/storage.js';
import { entriesPath, tilePath } from '../../tlog/tile.js';
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
    let syncedSize = 0;
    try {
      syncedSize = (JSON.parse(readFileSync(this.stateFile, 'utf8')) as { size: number }).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return { checkpoint: await this.readCheckpoint(), syncedSize };
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
    const rel = t.level === 'entries' ? entriesPath(t.index, t.width) : tilePath(t.level, t.index, t.width);
    const path = join(this.logDir, rel);
    const dir = dirname(path);
    if (!this.madeDirs.has(dir)) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      this.madeDirs.add(dir);
    }
    // Write then rename, so a static server never serves half a tile.
    const tmp = `${path}.tmp`;
    await writeFile(tmp, t.data, { mode: 0o600 });
    await rename(tmp, path);
    this.unsynced.push(path);
    if (t.width < 256) this.partialDirs.add(dir);
    // Partials from before a restart are not in partialDirs; one stat per 256 entries finds them.
    else if (this.partialDirs.delete(`${path}.p`) || (await exists(`${path}.p`))) this.obsoletePartials.push(`${path}.p`);
  }

  readTile(level: number | 'entries', index: number, width: number): Promise<Buffer | null> {
    return this.reader.readTile(level, index, width);
  }

  async writeCheckpoint(note: string): Promise<void> {
    await writeDurably(join(this.logDir, 'checkpoint'), note);
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
