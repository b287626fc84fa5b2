import { plural } from '../../core/plural.js';
import type { IdEntry, IdIndex } from '../../log/id-index.js';

/** What the memory driver keeps of the id index: every id added, and how many a flush covered. */
export class MemoryIds {
  ids: string[] = [];
  digests: (Buffer | null)[] = [];
  flushed = 0;
}

/**
 * The memory driver's IdIndex: a Map over the shared MemoryIds. Like the fs journal, what was
 * added but not flushed is forgotten when the index is opened again, so the log's replay of the
 * write-ahead log is exercised on this driver too.
 */
export class MemoryIdIndex implements IdIndex {
  private readonly map = new Map<string, number>();

  constructor(private readonly state: MemoryIds) {
    state.ids.length = state.flushed;
    state.digests.length = state.flushed;
    state.ids.forEach((id, i) => {
      if (!this.map.has(id)) this.map.set(id, i);
    });
  }

  lookup(ids: readonly string[]): Map<string, number> {
    const found = new Map<string, number>();
    for (const id of ids) {
      const index = this.map.get(id);
      if (index !== undefined) found.set(id, index);
    }
    return found;
  }

  digestAt(index: number): Buffer | null {
    const d = this.state.digests[index];
    return d ? Buffer.from(d) : null;
  }

  add(first: number, entries: readonly IdEntry[]): void {
    const covered = this.state.ids.length;
    if (first > covered) throw new Error(`id index covers ${plural(covered, 'entry', 'entries')}; cannot add from ${first}`);
    for (let i = covered - first; i < entries.length; i++) {
      const e = entries[i] as IdEntry;
      if (!this.map.has(e.id)) this.map.set(e.id, first + i);
      this.state.ids.push(e.id);
      this.state.digests.push(e.digest ? Buffer.from(e.digest) : null);
    }
  }

  upto(): number {
    return this.state.ids.length;
  }

  async flush(): Promise<void> {
    this.state.flushed = this.state.ids.length;
  }

  close(): void {}
}
