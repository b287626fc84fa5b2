/**
 * Entries numbered by the database, so that several nodes append to one log (docs/design.md):
 * one transaction locks the log's state row, looks the batch's ids up, gives the new entries the
 * next indices, stores their ids and leaves, and moves the counter. The row lock makes the nodes
 * take turns, so indices are dense and never given twice; the commit is the durability the
 * append's acknowledgement promises. A known id with the same content is a retry and gets its
 * first index; with other content the whole batch is refused (409) and nothing of it is stored.
 */
import { SteleError } from '../../core/errors.js';
import { batchConflict, idConflict, sameContent } from '../../log/sequencer.js';
import type { SequencedEntry } from '../../log/storage.js';
import type { PgDatabase } from './database.js';

export class PgSequencing {
  constructor(private readonly db: PgDatabase) {}

  /**
   * Appends a batch; resolves with each entry's index once committed. An error names the entry by
   * its position in the batch (when it has several), as the embedded sequencer's do.
   */
  async append(
    entries: readonly SequencedEntry[],
    keyIds: readonly string[] = [],
    repeated?: (i: number) => void,
  ): Promise<number[]> {
    if (entries.length === 0) return [];
    return this.db.tx(async (c) => {
      if (keyIds.length) {
        // Another node may have destroyed a key this node still had cached (an erasure a moment
        // ago): checked under a share lock, so a destruction either came first and is seen here,
        // or waits for this commit and then finds the entries to forget.
        const r = await c.query<{ id: string; state: string }>(
          'SELECT id, state FROM stele_keys WHERE id = ANY($1::text[]) FOR SHARE',
          [keyIds],
        );
        const gone = r.rows.filter((k) => k.state !== 'active').map((k) => k.id);
        if (gone.length || r.rows.length < new Set(keyIds).size)
          throw new SteleError(
            'key_destroyed',
            'a data key of this batch was destroyed by an erasure or expiry a moment ago; nothing was appended, retry',
            { detail: { retryAfter: 1 } },
          );
      }
      await c.query('INSERT INTO stele_log_state (one) VALUES (true) ON CONFLICT (one) DO NOTHING');
      const next = Number((await c.query<{ next: string }>('SELECT next FROM stele_log_state FOR UPDATE')).rows[0]?.next);
      const known = await c.query<{ id: string; idx: string; digest: Buffer | null }>(
        'SELECT id, idx, digest FROM stele_ids WHERE id = ANY($1::text[])',
        [entries.map((e) => e.id)],
      );
      const prior = new Map(known.rows.map((r) => [r.id, { idx: Number(r.idx), digest: r.digest }]));
      const many = entries.length > 1;
      const out: number[] = new Array(entries.length);
      const fresh: SequencedEntry[] = [];
      /** New ids of this batch: their position in the batch and their entry. */
      const mine = new Map<string, { at: number; e: SequencedEntry }>();
      entries.forEach((e, i) => {
        const where = many ? i : undefined;
        const p = prior.get(e.id);
        if (p) {
          if (!sameContent(p.digest, e.digest)) throw idConflict(where, e.id, p.idx);
          out[i] = p.idx;
          repeated?.(i);
          return;
        }
        const m = mine.get(e.id);
        if (m) {
          if (!sameContent(m.e.digest, e.digest)) throw batchConflict(where, e.id, m.at);
          out[i] = out[m.at] as number;
          repeated?.(i);
          return;
        }
        mine.set(e.id, { at: i, e });
        out[i] = next + fresh.length;
        fresh.push(e);
      });
      if (fresh.length === 0) return out;
      const indices = fresh.map((_, k) => next + k);
      await c.query('INSERT INTO stele_ids (id, idx, digest) SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])', [
        fresh.map((e) => e.id),
        indices,
        fresh.map((e) => e.digest ?? null),
      ]);
      // Leaves only, never index notes: a note holds searchable fields in the clear, and a deleted
      // row's bytes stay in the table file, where an erasure could not reach them.
      await c.query('INSERT INTO stele_wal (idx, leaf) SELECT * FROM unnest($1::bigint[], $2::bytea[])', [
        indices,
        fresh.map((e) => e.leaf),
      ]);
      await c.query('UPDATE stele_log_state SET next = $1', [next + fresh.length]);
      return out;
    });
  }

  /** Entries sequenced so far (the next index). */
  async size(): Promise<number> {
    return Number((await this.db.query<{ next: string }>('SELECT next FROM stele_log_state')).rows[0]?.next ?? 0);
  }

  /** Up to `limit` entries of the write-ahead log from index `from`, in order (the integrator's feed, and recovery). */
  async read(from: number, limit: number): Promise<{ idx: number; leaf: Buffer }[]> {
    const r = await this.db.query<{ idx: string; leaf: Buffer }>(
      'SELECT idx, leaf FROM stele_wal WHERE idx >= $1 ORDER BY idx LIMIT $2',
      [from, limit],
    );
    return r.rows.map((x) => ({ idx: Number(x.idx), leaf: x.leaf }));
  }

  /** Forgets write-ahead entries below `index`: the tiles hold them durably (their ids stay, for deduplication). */
  async dropBefore(index: number): Promise<void> {
    await this.db.query('DELETE FROM stele_wal WHERE idx < $1', [index]);
  }
}
