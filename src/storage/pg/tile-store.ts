/**
 * The log's tiles, entry bundles and checkpoint in PostgreSQL (tables stele_tiles and
 * stele_log_state), for nodes that share one database. A full tile is inserted once and never
 * changes: the same bytes again are a no-op, other bytes are refused (immutable_change), and its
 * partial tiles are deleted with the insert (c2sp.org/tlog-tiles; a reader of an older tree reads
 * the full tile's prefix). The checkpoint is replaced only by a writer that names the one stored
 * (compare-and-swap in one UPDATE): the integrator lease rests on it. A commit is durable, so
 * syncTiles only records the size.
 */
import { checkpointConflict, immutableChange, type TileData, type TileStore } from '../../log/storage.js';
import type { TileSource } from '../../tlog/verify.js';
import type { PgDatabase } from './database.js';

const levelOf = (l: number | 'entries') => (l === 'entries' ? -1 : l);

export class PgTileStore implements TileStore, TileSource {
  constructor(private readonly db: PgDatabase) {}

  async writeTiles(tiles: readonly TileData[]): Promise<void> {
    if (tiles.length === 0) return;
    const partial = tiles.filter((t) => t.width < 256);
    const full = tiles.filter((t) => t.width === 256);
    await this.db.tx(async (c) => {
      if (partial.length)
        await c.query(
          `INSERT INTO stele_tiles (level, idx, width, data) SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::smallint[], $4::bytea[])
           ON CONFLICT (level, idx, width) DO UPDATE SET data = EXCLUDED.data`,
          [
            partial.map((t) => levelOf(t.level)),
            partial.map((t) => t.index),
            partial.map((t) => t.width),
            partial.map((t) => t.data),
          ],
        );
      if (!full.length) return;
      const levels = full.map((t) => levelOf(t.level));
      const indices = full.map((t) => t.index);
      const inserted = await c.query<{ level: number; idx: string }>(
        `INSERT INTO stele_tiles (level, idx, width, data) SELECT l, i, 256, d FROM unnest($1::smallint[], $2::bigint[], $3::bytea[]) AS u(l, i, d)
         ON CONFLICT (level, idx, width) DO NOTHING RETURNING level, idx`,
        [levels, indices, full.map((t) => t.data)],
      );
      if (inserted.rows.length < full.length) {
        // Some were there: the same bytes are a no-op, other bytes refuse the whole call.
        const have = await c.query<{ level: number; idx: string; data: Buffer }>(
          'SELECT level, idx, data FROM stele_tiles WHERE width = 256 AND (level, idx) IN (SELECT * FROM unnest($1::smallint[], $2::bigint[]))',
          [levels, indices],
        );
        const stored = new Map(have.rows.map((r) => [`${r.level}/${r.idx}`, r.data]));
        for (const t of full) {
          const old = stored.get(`${levelOf(t.level)}/${t.index}`);
          if (old && !old.equals(t.data)) throw immutableChange(t.level, t.index);
        }
      }
      await c.query(
        'DELETE FROM stele_tiles WHERE width < 256 AND (level, idx) IN (SELECT * FROM unnest($1::smallint[], $2::bigint[]))',
        [levels, indices],
      );
    });
  }

  async readTile(level: number | 'entries', index: number, width: number): Promise<Buffer | null> {
    const r = await this.db.query<{ data: Buffer }>('SELECT data FROM stele_tiles WHERE level = $1 AND idx = $2 AND width = $3', [
      levelOf(level),
      index,
      width,
    ]);
    return r.rows[0]?.data ?? null;
  }

  async writeCheckpoint(previous: string | null, next: string): Promise<void> {
    const r =
      previous === null
        ? await this.db.query(
            `INSERT INTO stele_log_state (one, checkpoint) VALUES (true, $1)
             ON CONFLICT (one) DO UPDATE SET checkpoint = EXCLUDED.checkpoint WHERE stele_log_state.checkpoint IS NULL`,
            [next],
          )
        : await this.db.query('UPDATE stele_log_state SET checkpoint = $2 WHERE checkpoint = $1', [previous, next]);
    if (r.rowCount !== 1) throw checkpointConflict(await this.readCheckpoint());
  }

  async readCheckpoint(): Promise<string | null> {
    return (
      (await this.db.query<{ checkpoint: string | null }>('SELECT checkpoint FROM stele_log_state')).rows[0]?.checkpoint ?? null
    );
  }

  async syncTiles(size: number): Promise<void> {
    await this.db.query(
      'INSERT INTO stele_log_state (one, synced) VALUES (true, $1) ON CONFLICT (one) DO UPDATE SET synced = EXCLUDED.synced',
      [size],
    );
  }

  /** The tree size up to which tiles and bundles are stored (the last syncTiles). */
  async syncedSize(): Promise<number> {
    return Number((await this.db.query<{ synced: string }>('SELECT synced FROM stele_log_state')).rows[0]?.synced ?? 0);
  }
}
