import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { entriesPath, tilePath } from '../tlog/tile.js';
import type { TileSource } from '../tlog/verify.js';

const rel = (level: number | 'entries', index: number, width: number) =>
  level === 'entries' ? entriesPath(index, width) : tilePath(level, index, width);

/** Reads a log's C2SP files straight from a folder (`<data dir>/log`, or a mirror of it). */
export class DirTileSource implements TileSource {
  constructor(private readonly root: string) {}

  readTile(level: number | 'entries', index: number, width: number): Promise<Buffer | null> {
    return readOrNull(join(this.root, rel(level, index, width)));
  }

  async readCheckpoint(): Promise<string | null> {
    return (await readOrNull(join(this.root, 'checkpoint')))?.toString('utf8') ?? null;
  }
}

/** Reads a log over HTTP from its C2SP prefix (e.g. `http://127.0.0.1:7433/log`). */
export class HttpTileSource implements TileSource {
  private readonly prefix: string;
  constructor(prefix: string) {
    this.prefix = prefix.replace(/\/+$/, '');
  }

  async readTile(level: number | 'entries', index: number, width: number): Promise<Buffer | null> {
    return this.get(rel(level, index, width));
  }

  async readCheckpoint(): Promise<string | null> {
    return (await this.get('checkpoint'))?.toString('utf8') ?? null;
  }

  private async get(path: string): Promise<Buffer | null> {
    const url = `${this.prefix}/${path}`;
    const res = await fetch(url);
    if (res.status === 404) return null;
    if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
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
