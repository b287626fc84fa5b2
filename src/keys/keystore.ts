/**
 * The key store: one data key per (retention tier, UTC day, data subject or none), each wrapped by
 * the master key and kept as a record by the backend (KeyRecords, key-records.ts). It is the
 * source of truth beside the log — unlike the query store it cannot be rebuilt — so every change
 * is durable before it is relied on (a key exists before any leaf sealed with it is acknowledged).
 *
 * Forgetting is destroying: expiry and erasure drop the wrapped key and keep a tombstone (so
 * reading an entry can say "expired" or "erased", not "not found"); the driver scrubs the old
 * bytes from its storage.
 *
 * Keys are cached once unwrapped, so sealing and reading a cached key touch no record.
 */
import { randomBytes } from 'node:crypto';
import { SteleError } from '../core/errors.js';
import {
  keyInfo as info,
  type KeyFilter,
  type KeyInfo,
  type KeyRecord,
  type KeyRecords,
  type SlotName,
  SlotTaken,
  slotName,
} from './key-records.js';
import { type MasterKey, unwrapKey, wrapKey } from './master.js';
import { subjectHash } from './subject.js';

export type { KeyInfo, KeyState } from './key-records.js';

export type KeyLookup = { state: 'active'; key: Buffer; info: KeyInfo } | { state: 'expired' | 'erased'; info: KeyInfo };

export interface SlotKey {
  id: string;
  key: Buffer;
}

export interface KeyStoreOptions {
  /** Open for lookups only (the index thread): no keys are created or destroyed through it. */
  readonly?: boolean;
}

export class KeyStore {
  private readonly slotCache = new Map<string, SlotKey>();
  private readonly lookups = new Map<string, KeyLookup>();
  private readonly destroyedListeners: ((ids: string[]) => void)[] = [];
  /** Keys destroyed by this process (what a cache elsewhere may still hold). */
  private readonly destroyedIds = new Set<string>();
  /** Counts forget()s: a record read while one happened is not cached (it may be a destroyed key). */
  private forgets = 0;
  /** Slot creation, one batch at a time (two batches missing one slot must not both create it). */
  private creating: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly records: KeyRecords,
    private readonly masters: readonly MasterKey[],
    private readonly pepper: Buffer,
    private readonly readonly: boolean,
  ) {}

  /** Opens the key store over its records; the first open (not read-only) makes the subject pepper. */
  static async open(records: KeyRecords, masters: readonly MasterKey[], opts: KeyStoreOptions = {}): Promise<KeyStore> {
    const readonly = (opts.readonly ?? false) || records.readonly;
    try {
      const store = new KeyStore(records, masters, await KeyStore.loadPepper(records, masters, readonly), readonly);
      await records.watchDestroyed?.((ids) => store.destroyedElsewhere(ids));
      return store;
    } catch (err) {
      await records.close();
      throw err;
    }
  }

  /** The subject pepper: a random secret, so a subject's hash cannot be found by hashing guesses. */
  private static async loadPepper(records: KeyRecords, masters: readonly MasterKey[], readonly: boolean): Promise<Buffer> {
    const stored = await records.pepper();
    if (stored) return unwrapKey(masters, stored.master, 'pepper', stored.wrapped);
    if (readonly) throw new Error('the key store has no subject pepper yet');
    const pepper = randomBytes(32);
    const m = masters[0] as MasterKey;
    const mine = { wrapped: wrapKey(m, 'pepper', pepper), master: m.id };
    if (!records.initPepper) {
      await records.setPepper(mine);
      return pepper;
    }
    const first = await records.initPepper(mine);
    return unwrapKey(masters, first.master, 'pepper', first.wrapped);
  }

  subjectHash(subject: string): string {
    return subjectHash(this.pepper, subject);
  }

  /** The pepper itself, for ingest workers that hash subjects off the main thread. */
  get subjectPepper(): Buffer {
    return this.pepper;
  }

  /**
   * The active data keys of slots, created (durably, in one step: one fsync for a batch) on first
   * use. Cached slots need no record.
   */
  async slots(reqs: readonly SlotName[]): Promise<SlotKey[]> {
    const cached = reqs.map((r) => this.slotCache.get(slotName(r)));
    if (cached.every((s) => s !== undefined)) return cached as SlotKey[];
    const run = this.creating.then(() => this.fetchSlotsRetrying(reqs));
    this.creating = run.catch(() => {});
    return run;
  }

  /** fetchSlots, again when another process made one of the keys meanwhile (it then reads that one). */
  private async fetchSlotsRetrying(reqs: readonly SlotName[]): Promise<SlotKey[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.fetchSlots(reqs);
      } catch (err) {
        if (!(err instanceof SlotTaken) || attempt === 3) throw err;
      }
    }
  }

  private async fetchSlots(reqs: readonly SlotName[]): Promise<SlotKey[]> {
    const missing = [...new Map(reqs.filter((r) => !this.slotCache.has(slotName(r))).map((r) => [slotName(r), r])).values()];
    const forgets = this.forgets;
    const found = missing.length > 0 ? await this.records.activeSlots(missing) : [];
    const made: KeyRecord[] = [];
    const got = new Map<string, SlotKey>();
    for (const [i, r] of missing.entries()) {
      const row = found[i];
      if (row) {
        got.set(slotName(r), { id: row.id, key: this.unwrap(row) });
        continue;
      }
      if (this.readonly) throw new Error('cannot create data keys through a read-only key store');
      const id = randomBytes(16).toString('base64url');
      const key = randomBytes(32);
      const m = this.masters[0] as MasterKey;
      made.push({
        id,
        ...r,
        wrapped: wrapKey(m, id, key),
        master: m.id,
        created: new Date().toISOString(),
        state: 'active',
        destroyed: null,
        reason: null,
      });
      got.set(slotName(r), { id, key });
    }
    if (made.length > 0) await this.records.insert(made);
    // A key destroyed while it was being read is not cached (and was not active when made).
    if (forgets === this.forgets) for (const [k, s] of got) this.slotCache.set(k, s);
    return reqs.map((r) => (this.slotCache.get(slotName(r)) ?? got.get(slotName(r))) as SlotKey);
  }

  /** A cached data key (or tombstone) by id, without touching a record; undefined if not cached. */
  cached(id: string): KeyLookup | undefined {
    return this.lookups.get(id);
  }

  /** A data key by id: the key when active, its tombstone when destroyed, undefined when unknown. */
  async lookup(id: string): Promise<KeyLookup | undefined> {
    return this.lookups.get(id) ?? (await this.lookupMany([id]))[0];
  }

  /** Whether the key store has each key (active or destroyed), read without unwrapping any. */
  async known(ids: readonly string[]): Promise<boolean[]> {
    const rows = await this.records.get(ids);
    return rows.map((r) => r !== undefined);
  }

  /** lookup() of several keys, the uncached ones read together. */
  async lookupMany(ids: readonly string[]): Promise<(KeyLookup | undefined)[]> {
    const missing = [...new Set(ids.filter((id) => !this.lookups.has(id)))];
    if (missing.length === 0) return ids.map((id) => this.lookups.get(id));
    const forgets = this.forgets;
    const rows = await this.records.get(missing);
    const got = new Map<string, KeyLookup>();
    for (const row of rows) {
      if (!row) continue;
      const l: KeyLookup =
        row.state === 'active'
          ? { state: 'active', key: this.unwrap(row), info: info(row) }
          : { state: row.state, info: info(row) };
      got.set(row.id, l);
      // Tombstones are final; active keys are cached until forget() (the writer tells readers).
      if (l.state !== 'active' || forgets === this.forgets) this.lookups.set(row.id, l);
    }
    return ids.map((id) => this.lookups.get(id) ?? got.get(id));
  }

  private unwrap(row: KeyRecord): Buffer {
    if (!row.wrapped || !row.master) throw new Error(`data key ${row.id} is ${row.state}`);
    return unwrapKey(this.masters, row.master, row.id, row.wrapped);
  }

  /** Keys (without key material) matching a filter, by day, tier and creation. */
  select(filter: KeyFilter = {}): Promise<KeyInfo[]> {
    return this.records.select(filter);
  }

  /** Active keys of a tier for days before `beforeDay` (YYYY-MM-DD): the ones retention may expire. */
  activeBefore(tier: string, beforeDay: string): Promise<KeyInfo[]> {
    return this.records.select({ state: 'active', tier, beforeDay });
  }

  /** Active keys of a subject (by subjectHash), in every tier and day. */
  activeForSubject(subjectHash: string): Promise<KeyInfo[]> {
    return this.records.select({ state: 'active', subject: subjectHash });
  }

  /** All keys (without key material), for listing. */
  list(): Promise<KeyInfo[]> {
    return this.records.select({});
  }

  /**
   * Destroys active keys for good: drops the wrapped key and keeps a tombstone saying why (the
   * driver scrubs the old bytes). Returns how many were active.
   */
  async destroy(ids: readonly string[], state: 'expired' | 'erased', reason: string): Promise<number> {
    if (ids.length === 0) return 0;
    if (this.readonly) throw new Error('cannot destroy data keys through a read-only key store');
    this.forgets++; // a slot or lookup read meanwhile may be of a key going now
    const n = await this.records.destroy(ids, state, reason, new Date().toISOString());
    for (const id of ids) this.destroyedIds.add(id);
    this.forget(ids);
    for (const l of this.destroyedListeners) l([...ids]);
    return n;
  }

  /** Drops cached keys (a reader does this when the writer reports them destroyed). */
  forget(ids: readonly string[]): void {
    this.forgets++;
    const gone = new Set(ids);
    for (const id of ids) {
      const l = this.lookups.get(id);
      if (l?.state === 'active') l.key.fill(0);
      this.lookups.delete(id);
    }
    for (const [k, s] of this.slotCache) if (gone.has(s.id)) this.slotCache.delete(k);
  }

  /**
   * Keys another process destroyed (a node sharing the records): forgotten here as well, and the
   * listeners told. null: some may have been missed, so every cached key is forgotten.
   */
  private destroyedElsewhere(ids: string[] | null): void {
    const gone = ids ?? [...new Set([...this.lookups.keys(), ...[...this.slotCache.values()].map((s) => s.id)])];
    if (ids) for (const id of ids) this.destroyedIds.add(id);
    this.forget(gone);
    for (const l of this.destroyedListeners) l([...gone]);
  }

  isDestroyed(id: string): boolean {
    return this.destroyedIds.has(id);
  }

  onDestroyed(listener: (ids: string[]) => void): void {
    this.destroyedListeners.push(listener);
  }

  /**
   * Re-wraps every live data key (and the pepper) under `next` in one step; the log is not
   * touched. Returns how many keys were re-wrapped.
   */
  async rewrap(next: MasterKey): Promise<number> {
    const rows = await this.records.active();
    await this.records.rewrap(
      rows.map((r) => ({ id: r.id, wrapped: wrapKey(next, r.id, this.unwrap(r)), master: next.id })),
      { wrapped: wrapKey(next, 'pepper', this.pepper), master: next.id },
    );
    return rows.length;
  }

  /** Master key ids still in use (normally one; two only mid-rotation). */
  mastersInUse(): Promise<string[]> {
    return this.records.mastersInUse();
  }

  async close(): Promise<void> {
    for (const l of this.lookups.values()) if (l.state === 'active') l.key.fill(0);
    await this.records.close();
  }
}

/** UTC day (YYYY-MM-DD) of a time in microseconds. */
export function utcDay(micros: bigint | number): string {
  return new Date(Number(micros) / 1000).toISOString().slice(0, 10);
}

export function keyNotReadable(index: number, l: KeyLookup | undefined, keyId: string): SteleError {
  if (!l)
    return new SteleError('key_missing', `entry ${index} is sealed with data key ${keyId}, which the key store does not have`);
  const i = l.info;
  const why = l.state === 'expired' ? `expired (tier ${i.tier}, day ${i.day})` : 'erased';
  const code = l.state === 'expired' ? 'expired' : 'erased';
  return new SteleError(code, `entry ${index} has been ${why}; its data key was destroyed at ${i.destroyed}`, {
    detail: { index, state: l.state, tier: i.tier, day: i.day, destroyed: i.destroyed },
  });
}
