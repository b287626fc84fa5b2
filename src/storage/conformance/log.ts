import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { SequencedEntry, TileData, TileStore } from '../../log/storage.js';
import type { EmbeddedBackend } from '../backend.js';
import { type DriverUnderTest, withCode } from './driver.js';

const entry = (n: number, digest = false): SequencedEntry => ({
  id: randomUUID(),
  leaf: Buffer.from(`leaf ${n}`),
  ...(digest ? { digest: Buffer.alloc(16, n) } : {}),
});
const tile = (level: number | 'entries', index: number, width: number, fill: number): TileData => ({
  level,
  index,
  width,
  data: Buffer.alloc(level === 'entries' ? 10 : width * 32, fill),
});

/** A TileStore under test: a fresh one, and the same store opened again (as another process would). */
export interface TileStoreUnderTest {
  name: string;
  create(): Promise<TileStore>;
  reopen(t: TileStore): Promise<TileStore> | TileStore;
}

/** What every TileStore must do: full tiles never change, the checkpoint is a compare-and-swap. */
export function tileStoreConformance(d: TileStoreUnderTest): void {
  describe(`${d.name}: tile store`, () => {
    test('a full tile never changes: the same bytes again are a no-op, other bytes are refused', async () => {
      const s = await d.create();
      const full = [tile(0, 0, 256, 1), tile('entries', 0, 256, 2)];
      await s.writeTiles(full);
      await s.syncTiles(256);
      await s.writeTiles(full);
      for (const t of full) {
        await assert.rejects(s.writeTiles([{ ...t, data: Buffer.alloc(t.data.length, 9) }]), withCode('immutable_change'));
        assert.deepEqual(await s.readTile(t.level, t.index, 256), t.data, 'the refused write left the tile as it was');
      }
      const other = await d.reopen(s);
      await assert.rejects(other.writeTiles([tile(0, 0, 256, 7)]), withCode('immutable_change'), 'after a reopen too');
      // A partial tile is rewritten as the tree grows (at another width) and may be rewritten at its own.
      await s.writeTiles([tile(0, 1, 3, 1)]);
      await s.writeTiles([tile(0, 1, 3, 2)]);
      assert.deepEqual(await s.readTile(0, 1, 3), tile(0, 1, 3, 2).data);
      assert.equal(await s.readTile(0, 2, 256), null, 'an absent tile reads as null');
    });

    test('the checkpoint is a compare-and-swap: a conflicting or stale writer is refused', async () => {
      const s = await d.create();
      assert.equal(await s.readCheckpoint(), null);
      await s.writeCheckpoint(null, 'origin\n1\nroot-a\n');
      await assert.rejects(s.writeCheckpoint(null, 'origin\n1\nroot-x\n'), withCode('checkpoint_conflict'), 'a second first');
      await s.writeCheckpoint('origin\n1\nroot-a\n', 'origin\n2\nroot-b\n');
      await assert.rejects(
        s.writeCheckpoint('origin\n1\nroot-a\n', 'origin\n3\nroot-c\n'),
        withCode('checkpoint_conflict'),
        'a stale previous',
      );
      assert.equal(await (await d.reopen(s)).readCheckpoint(), 'origin\n2\nroot-b\n');
    });
  });
}

/** What every driver's LogStorage must do: the write-ahead log, tiles, checkpoint and sync. */
export function logConformance(d: DriverUnderTest): void {
  // The tile side, on the backend's tile store; then what only the whole backend can show.
  const backendOf = new WeakMap<TileStore, EmbeddedBackend>();
  tileStoreConformance({
    name: d.name,
    create: async () => {
      const b = await d.create();
      const t = b.tileStore();
      backendOf.set(t, b);
      return t;
    },
    reopen: (t) => d.reopen(backendOf.get(t) as EmbeddedBackend).tileStore(),
  });
  describe(`${d.name}: log storage`, () => {
    test('sequenced entries survive a reopen, in order, and appends go on after them', async () => {
      const b = await d.create();
      const first = b.log();
      assert.deepEqual(await first.open(), { checkpoint: null, syncedSize: 0 });
      assert.deepEqual(await first.recoverSequenced(0), []);
      const written = [entry(0, true), entry(1), entry(2, true), entry(3), entry(4)];
      await first.appendSequenced(0, written.slice(0, 3));
      await first.appendSequenced(3, written.slice(3));
      await assert.rejects(first.appendSequenced(7, [entry(7)]), /expected entry 5/, 'a gap is refused');
      await first.close();

      const again = d.reopen(b).log();
      await again.open();
      assert.deepEqual(await again.recoverSequenced(0), written);
      const more = entry(5);
      await again.appendSequenced(5, [more]);
      again.dropSequencedBefore(2);
      await again.close();

      const third = d.reopen(b).log();
      await third.open();
      assert.deepEqual(await third.recoverSequenced(2), [...written.slice(2), more], 'entries from the cut on are kept');
      await third.close();
    });

    test('tiles are read back, by the log and by readers of a reopened backend', async () => {
      const b = await d.create();
      const s = b.log();
      await s.open();
      const tiles = [
        tile(0, 0, 256, 1),
        tile(0, 1, 3, 2),
        tile('entries', 0, 256, 3),
        tile('entries', 1, 3, 4),
        tile(1, 0, 1, 5),
      ];
      await s.writeTiles(tiles);
      for (const t of tiles) assert.deepEqual(await s.readTile(t.level, t.index, t.width), t.data);
      assert.equal(await s.readTile(0, 2, 256), null, 'an absent tile reads as null');
      assert.equal(await s.readTile(0, 1, 4), null, 'a partial tile is found only at its width');
      await s.syncTiles(259);
      const reader = d.reopen(b).tiles();
      for (const t of tiles) assert.deepEqual(Buffer.from((await reader.readTile(t.level, t.index, t.width)) ?? []), t.data);
      await s.close();
    });

    test("the checkpoint a tile store wrote is the one the backend's readers and log storage see", async () => {
      const b = await d.create();
      await b.tileStore().writeCheckpoint(null, 'origin\n2\nroot-b\n');
      const again = d.reopen(b);
      assert.equal(await again.tiles().readCheckpoint(), 'origin\n2\nroot-b\n');
      assert.equal((await again.log().open()).checkpoint, 'origin\n2\nroot-b\n');
    });

    test('syncTiles records the synced size, which a reopened log storage reports', async () => {
      const b = await d.create();
      const s = b.tileStore();
      await s.writeTiles([tile('entries', 0, 256, 1), tile('entries', 1, 44, 2)]);
      await s.syncTiles(300);
      const state = await d.reopen(b).log().open();
      assert.equal(state.syncedSize, 300);
    });
  });
}
