/** Legal holds in memory (tests, and the memory backend); copied in and out. */
import type { Hold, HoldRecords } from '../../keys/hold-records.js';

export class MemoryHoldRecords implements HoldRecords {
  private readonly holds = new Map<string, Hold>();

  async insert(h: Hold): Promise<void> {
    if (this.holds.has(h.id)) throw new Error(`legal hold ${h.id} exists`);
    this.holds.set(h.id, { ...h });
  }

  async get(id: string): Promise<Hold | undefined> {
    const h = this.holds.get(id);
    return h && { ...h };
  }

  async list(includeReleased: boolean): Promise<Hold[]> {
    return [...this.holds.values()]
      .filter((h) => includeReleased || h.released === null)
      .sort((a, b) => a.created.localeCompare(b.created))
      .map((h) => ({ ...h }));
  }

  async release(id: string, at: string, by: string, reason: string): Promise<boolean> {
    const h = this.holds.get(id);
    if (!h || h.released !== null) return false;
    this.holds.set(id, { ...h, released: at, released_by: by, release_reason: reason });
    return true;
  }

  async forgetReleased(subject: string, actorAs: string): Promise<number> {
    let n = 0;
    for (const [id, h] of this.holds) {
      if (h.released === null) continue;
      const next = { ...h };
      if (h.subject === subject) next.subject = null;
      if (h.actor === subject) next.actor = actorAs;
      if (next.subject === h.subject && next.actor === h.actor) continue;
      this.holds.set(id, next);
      n += Number(next.subject !== h.subject) + Number(next.actor !== h.actor);
    }
    return n;
  }

  async close(): Promise<void> {}
}
