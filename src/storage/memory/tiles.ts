import { immutableChange, type TileData, type TileStore } from '../../log/storage.js';
import { tileFilePath } from '../../tlog/tile.js';
import type { MemoryCheckpoint } from './checkpoint.js';

/** The memory driver's tiles and bundles by C2SP path, and how far they are synced. */
export class MemoryTiles {
  readonly files = new Map<string, Buffer>();
  synced = 0;
}

/**
 * The memory driver's TileStore: copies in and out (a caller's buffer never aliases a stored
 * tile), and stricter than fs on immutability: a full tile never changes, synced or not (here no
 * crash can tear one).
 */
export class MemoryTileStore implements TileStore {
  constructor(
    protected readonly tiles: MemoryTiles,
    protected readonly checkpoint: MemoryCheckpoint,
  ) {}

  async writeTiles(tiles: readonly TileData[]): Promise<void> {
    // Checked first, so a refused batch leaves nothing behind.
    for (const t of tiles) {
      const old = t.width === 256 ? this.tiles.files.get(tileFilePath(t.level, t.index, t.width)) : undefined;
      if (old && !old.equals(t.data)) throw immutableChange(t.level, t.index);
    }
    for (const t of tiles) this.tiles.files.set(tileFilePath(t.level, t.index, t.width), Buffer.from(t.data));
  }

  async readTile(level: number | 'entries', index: number, width: number): Promise<Buffer | null> {
    const t = this.tiles.files.get(tileFilePath(level, index, width));
    return t ? Buffer.from(t) : null;
  }

  async writeCheckpoint(previous: string | null, next: string): Promise<void> {
    this.checkpoint.swap(previous, next);
  }

  async readCheckpoint(): Promise<string | null> {
    return this.checkpoint.read();
  }

  async syncTiles(size: number): Promise<void> {
    this.tiles.synced = size;
  }
}
