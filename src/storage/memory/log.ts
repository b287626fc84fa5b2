import type { LogStorage, SequencedEntry, StorageState } from '../../log/storage.js';
import { MemoryTileStore } from './tiles.js';

/** The memory driver's write-ahead log: the sequenced entries from `base` on. */
export class MemoryWal {
  base = 0;
  entries: SequencedEntry[] = [];

  get next(): number {
    return this.base + this.entries.length;
  }
}

const copy = (e: SequencedEntry): SequencedEntry => ({
  id: e.id,
  leaf: Buffer.from(e.leaf),
  ...(e.digest ? { digest: Buffer.from(e.digest) } : {}),
});

/** The memory driver's LogStorage: its tile store plus the sequenced entries, all in this process. */
export class MemoryLogStorage extends MemoryTileStore implements LogStorage {
  private ready = false;

  constructor(
    private readonly wal: MemoryWal,
    ...tileStore: ConstructorParameters<typeof MemoryTileStore>
  ) {
    super(...tileStore);
  }

  async open(): Promise<StorageState> {
    return { checkpoint: this.checkpoint.read(), syncedSize: this.tiles.synced };
  }

  async recoverSequenced(from: number): Promise<SequencedEntry[]> {
    const { wal } = this;
    if (from < wal.base) throw new Error(`the sequenced entries start at ${wal.base}, but recovery needs entry ${from}`);
    if (from > wal.next) throw new Error(`the sequenced entries end at ${wal.next}, but recovery needs entries from ${from}`);
    this.ready = true;
    return wal.entries.slice(from - wal.base).map(copy);
  }

  async appendSequenced(first: number, entries: readonly SequencedEntry[]): Promise<void> {
    if (!this.ready) throw new Error('storage: recoverSequenced must run before appends');
    if (first !== this.wal.next) throw new Error(`the sequenced entries expected entry ${this.wal.next}, got ${first}`);
    for (const e of entries) this.wal.entries.push(copy(e));
  }

  dropSequencedBefore(index: number): void {
    const n = Math.min(index, this.wal.next) - this.wal.base;
    if (n <= 0) return;
    this.wal.entries.splice(0, n);
    this.wal.base += n;
  }

  async close(): Promise<void> {
    this.ready = false;
  }
}
