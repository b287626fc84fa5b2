/**
 * An S3 bucket with Object Lock as the tile store of nodes that share a log (the PostgreSQL
 * driver; docs/design.md): tiles and entry bundles go to `<prefix>/log/` as the mirror writes them
 * (full ones once, locked in COMPLIANCE mode), so the bucket is the log's static tlog-tiles
 * endpoint, while the checkpoint's compare-and-swap and the synced size stay in the database
 * (`state`), which S3 cannot do atomically; each checkpoint the database accepts is then written to
 * the bucket too. A full tile already there is compared (HEAD, MD5), never rewritten: other bytes
 * are refused. Once a tile is full, its partials are deleted (unlocked; c2sp.org/tlog-tiles).
 */
import { createHash } from 'node:crypto';
import type { SharedTileStore } from '../../log/shared-log.js';
import { immutableChange, type TileData } from '../../log/storage.js';
import { tileFilePath } from '../../tlog/tile.js';
import type { Bucket } from './bucket.js';

const IMMUTABLE = 'public, max-age=31536000, immutable';
const CONCURRENCY = 8;

export class S3TileStore implements SharedTileStore {
  constructor(
    private readonly bucket: Bucket,
    private readonly state: Pick<SharedTileStore, 'writeCheckpoint' | 'readCheckpoint' | 'syncTiles' | 'syncedSize'>,
    private readonly lock: { retainMs: number; legalHold: boolean },
  ) {}

  async writeTiles(tiles: readonly TileData[]): Promise<void> {
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = next++; i < tiles.length; i = next++) await this.writeTile(tiles[i] as TileData);
      }),
    );
  }

  private async writeTile(t: TileData): Promise<void> {
    const path = `log/${tileFilePath(t.level, t.index, t.width)}`;
    if (t.width < 256) {
      await this.bucket.put(path, t.data, { contentType: 'application/octet-stream', cacheControl: 'no-cache' });
      return;
    }
    const have = await this.bucket.md5(path);
    if (have !== null) {
      if (have !== createHash('md5').update(t.data).digest('hex')) throw immutableChange(t.level, t.index);
    } else {
      await this.bucket.put(path, t.data, {
        contentType: 'application/octet-stream',
        cacheControl: IMMUTABLE,
        lock: { until: new Date(Date.now() + this.lock.retainMs), legalHold: this.lock.legalHold },
      });
    }
    for (const v of await this.bucket.versions(`${path}.p/`))
      await this.bucket.deleteVersion(v.path, v.versionId).catch(() => {});
  }

  async readTile(level: number | 'entries', index: number, width: number): Promise<Buffer | null> {
    return this.bucket.get(`log/${tileFilePath(level, index, width)}`);
  }

  async writeCheckpoint(previous: string | null, next: string): Promise<void> {
    await this.state.writeCheckpoint(previous, next);
    await this.bucket.put('log/checkpoint', Buffer.from(next), {
      contentType: 'text/plain; charset=utf-8',
      cacheControl: 'no-cache',
    });
  }

  readCheckpoint(): Promise<string | null> {
    return this.state.readCheckpoint();
  }

  syncTiles(size: number): Promise<void> {
    return this.state.syncTiles(size);
  }

  syncedSize(): Promise<number> {
    return this.state.syncedSize();
  }
}
