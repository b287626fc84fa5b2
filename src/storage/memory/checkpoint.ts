import { checkpointConflict } from '../../log/storage.js';

/** The memory driver's checkpoint: one compare-and-swap cell (see TileStore.writeCheckpoint). */
export class MemoryCheckpoint {
  private note: string | null = null;

  read(): string | null {
    return this.note;
  }

  swap(previous: string | null, next: string): void {
    if (this.note !== previous) throw checkpointConflict(this.note);
    this.note = next;
  }
}
