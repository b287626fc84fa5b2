import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tileFilePath } from '../../tlog/tile.js';
import type { TileSource } from '../../tlog/verify.js';

/** Reads a log's C2SP files straight from a folder (`<data dir>/log`, or a mirror of it). */
export class DirTileSource implements TileSource {
  constructor(private readonly root: string) {}

  readTile(level: number | 'entries', index: number, width: number): Promise<Buffer | null> {
    return readOrNull(join(this.root, tileFilePath(level, index, width)));
  }

  async readCheckpoint(): Promise<string | null> {
    return (await readOrNull(join(this.root, 'checkpoint')))?.toString('utf8') ?? null;
  }
}

async function readOrNull(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
