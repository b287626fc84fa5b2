/**
 * Data keys in memory (tests, and the memory backend). Records are copied in and out, so a caller
 * changing what it got back changes nothing stored; a destroyed key's bytes are zeroed.
 */
import {
  type KeyFilter,
  type KeyInfo,
  type KeyRecord,
  type KeyRecords,
  keyInfo,
  type SlotName,
  type WrappedSecret,
} from '../../keys/key-records.js';

/** What a MemoryKeyRecords and its read-only views share. */
class KeyData {
  readonly keys = new Map<string, KeyRecord>();
  pepper: WrappedSecret | undefined;
}

const copy = (r: KeyRecord): KeyRecord => ({ ...r, wrapped: r.wrapped && Buffer.from(r.wrapped) });
const sameSlot = (r: KeyRecord, s: SlotName) => r.tier === s.tier && r.day === s.day && r.subject === s.subject;

export class MemoryKeyRecords implements KeyRecords {
  constructor(
    private readonly data = new KeyData(),
    readonly readonly = false,
  ) {}

  /** A read-only view of the same keys (what another thread would open). */
  reader(): MemoryKeyRecords {
    return new MemoryKeyRecords(this.data, true);
  }

  private writable(): void {
    if (this.readonly) throw new Error('the key records are open read-only');
  }

  async pepper(): Promise<WrappedSecret | undefined> {
    const p = this.data.pepper;
    return p && { wrapped: Buffer.from(p.wrapped), master: p.master };
  }

  async setPepper(p: WrappedSecret): Promise<void> {
    this.writable();
    this.data.pepper = { wrapped: Buffer.from(p.wrapped), master: p.master };
  }

  async activeSlots(slots: readonly SlotName[]): Promise<(KeyRecord | undefined)[]> {
    const active = [...this.data.keys.values()].filter((r) => r.state === 'active');
    return slots.map((s) => {
      const r = active.find((k) => sameSlot(k, s));
      return r && copy(r);
    });
  }

  async insert(keys: readonly KeyRecord[]): Promise<void> {
    this.writable();
    // All or none: every check before any change.
    const active = [...this.data.keys.values()].filter((r) => r.state === 'active');
    for (const [i, k] of keys.entries()) {
      if (this.data.keys.has(k.id) || keys.findIndex((o) => o.id === k.id) !== i) throw new Error(`data key ${k.id} exists`);
      const clash = [...active, ...keys.slice(0, i)].some((o) => o.state === 'active' && k.state === 'active' && sameSlot(o, k));
      if (clash) throw new Error(`slot ${k.tier}/${k.day} has an active key already`);
    }
    for (const k of keys) this.data.keys.set(k.id, copy(k));
  }

  async get(ids: readonly string[]): Promise<(KeyRecord | undefined)[]> {
    return ids.map((id) => {
      const r = this.data.keys.get(id);
      return r && copy(r);
    });
  }

  async select(f: KeyFilter): Promise<KeyInfo[]> {
    const match = (r: KeyRecord) =>
      (f.state === undefined || r.state === f.state) &&
      (f.tier === undefined || r.tier === f.tier) &&
      (f.day === undefined || r.day === f.day) &&
      (f.beforeDay === undefined || r.day < f.beforeDay) &&
      (f.subject === undefined || r.subject === f.subject);
    const order = (a: KeyRecord, b: KeyRecord) =>
      a.day.localeCompare(b.day) || a.tier.localeCompare(b.tier) || a.created.localeCompare(b.created);
    return [...this.data.keys.values()].filter(match).sort(order).map(keyInfo);
  }

  async destroy(ids: readonly string[], state: 'expired' | 'erased', reason: string, at: string): Promise<number> {
    this.writable();
    let n = 0;
    for (const id of ids) {
      const r = this.data.keys.get(id);
      if (r?.state !== 'active') continue;
      r.wrapped?.fill(0);
      this.data.keys.set(id, { ...r, wrapped: null, master: null, state, destroyed: at, reason });
      n++;
    }
    return n;
  }

  async active(): Promise<KeyRecord[]> {
    return [...this.data.keys.values()].filter((r) => r.state === 'active').map(copy);
  }

  async rewrap(keys: readonly { id: string; wrapped: Buffer; master: string }[], pepper: WrappedSecret): Promise<void> {
    this.writable();
    for (const k of keys) {
      const r = this.data.keys.get(k.id);
      if (r?.state !== 'active') continue;
      r.wrapped?.fill(0);
      this.data.keys.set(k.id, { ...r, wrapped: Buffer.from(k.wrapped), master: k.master });
    }
    this.data.pepper = { wrapped: Buffer.from(pepper.wrapped), master: pepper.master };
  }

  async mastersInUse(): Promise<string[]> {
    const masters = [...this.data.keys.values()].flatMap((r) => (r.state === 'active' && r.master ? [r.master] : []));
    return [...new Set([...masters, ...(this.data.pepper ? [this.data.pepper.master] : [])])];
  }

  async close(): Promise<void> {}
}
