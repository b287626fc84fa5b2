import { tileFilePath } from '../tlog/tile.js';
import type { TileSource } from '../tlog/verify.js';

/** Reads a log over HTTP from its C2SP prefix (e.g. `http://127.0.0.1:7433/log`). */
export class HttpTileSource implements TileSource {
  private readonly prefix: string;
  constructor(prefix: string) {
    this.prefix = prefix.replace(/\/+$/, '');
  }

  async readTile(level: number | 'entries', index: number, width: number): Promise<Buffer | null> {
    return this.get(tileFilePath(level, index, width));
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
