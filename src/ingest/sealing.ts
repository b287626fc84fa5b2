import { randomBytes } from 'node:crypto';
import { inEvent, SteleError } from '../core/errors.js';
import { buildLeaf, buildSealedLeaf, formatMicros } from '../event/record.js';
import type { Event, Ingest } from '../event/types.js';
import { type SlotName, slotName } from '../keys/key-records.js';
import type { SlotKey } from '../keys/keystore.js';
import { SEAL_RANDOM, SealingKey } from '../keys/seal.js';
import { subjectHash } from '../keys/subject.js';
import type { Policy } from '../policy/policy.js';
import { type Tier, TierMatcher } from '../policy/tiers.js';
import { digestKey, eventDigest } from './digest.js';

/** Where a Sealing gets slot keys it has not cached: the key store itself, or (on a worker) the main thread. */
export type SlotSource = (reqs: SlotName[]) => SlotKey[] | Promise<SlotKey[]>;

/**
 * Turns normalised events into leaves under the retention policy: each event's tier decides
 * whether it is sealed, and its (tier, day, subject) slot which data key seals it. An event with
 * a subject is always sealed, whatever its tier says, so that it can be erased. Keys are cached
 * per slot; missing ones are fetched together, once per batch.
 */
export class Sealing {
  private tiers: TierMatcher;
  private readonly cache = new Map<string, SlotKey>();
  /** Data key id → its SealingKey (HMAC pads made once). */
  private readonly sealers = new Map<string, SealingKey>();
  private readonly digestKey: Buffer;

  constructor(
    policy: Policy,
    private readonly pepper: Buffer,
    private readonly source: SlotSource,
  ) {
    this.tiers = new TierMatcher(policy);
    this.digestKey = digestKey(pepper);
  }

  setPolicy(policy: Policy): void {
    this.tiers = new TierMatcher(policy);
  }

  tierFor(event: Event): Tier {
    return this.tiers.tierFor(event.action, event.source.kind);
  }

  /** Drops destroyed keys, so nothing new is sealed under them. */
  forget(ids: readonly string[]): void {
    const gone = new Set(ids);
    for (const [k, s] of this.cache) if (gone.has(s.id)) this.cache.delete(k);
    for (const id of ids) this.sealers.delete(id);
  }

  /**
   * The leaves of `events`, in order, all received at `received` (µs) through `ingest`, their
   * content digests (ingest/digest.ts; `timeDefaulted[i]` when the server filled in event i's
   * time), the data keys used, and each event's tier and data key (null: not sealed).
   */
  async leaves(
    events: readonly Event[],
    ingest: Ingest,
    received: bigint,
    day: string,
    timeDefaulted?: readonly boolean[],
  ): Promise<{ leaves: Buffer[]; digests: Buffer[]; keyIds: string[]; tiers: string[]; keyOf: (string | null)[] }> {
    const slots: (SlotName | null)[] = new Array(events.length);
    const tiers: string[] = new Array(events.length);
    const keyOf: (string | null)[] = new Array(events.length).fill(null);
    const missing = new Map<string, SlotName>();
    for (let i = 0; i < events.length; i++) {
      const e = events[i] as Event;
      const tier = this.tierFor(e);
      tiers[i] = tier.name;
      if (!tier.encrypt && e.subject === undefined) {
        slots[i] = null;
        continue;
      }
      const r: SlotName = {
        tier: tier.name,
        day,
        subject: e.subject === undefined ? null : subjectHash(this.pepper, e.subject),
      };
      slots[i] = r;
      const name = slotName(r);
      if (!this.cache.has(name)) missing.set(name, r);
    }
    if (missing.size > 0) {
      const reqs = [...missing.values()];
      const keys = await this.source(reqs);
      for (const [i, r] of reqs.entries()) this.cache.set(slotName(r), keys[i] as SlotKey);
    }
    let sealedCount = 0;
    for (const r of slots) if (r) sealedCount++;
    // Salts for the whole batch in one call to the CSPRNG (each seal takes its own bytes).
    const random = sealedCount > 0 ? randomBytes(sealedCount * SEAL_RANDOM) : undefined;
    let nextRandom = 0;
    const out: Buffer[] = new Array(events.length);
    const digests: Buffer[] = new Array(events.length);
    const used = new Set<string>();
    const receivedText = timeDefaulted ? formatMicros(received) : undefined;
    for (let i = 0; i < events.length; i++) {
      const e = events[i] as Event;
      const r = slots[i];
      const digest = (bytes: Buffer) => {
        digests[i] = eventDigest(this.digestKey, e, bytes, timeDefaulted?.[i] ? receivedText : undefined);
      };
      try {
        if (!r) out[i] = buildLeaf(e, ingest, received, digest);
        else {
          const k = this.cache.get(slotName(r)) as SlotKey;
          used.add(k.id);
          keyOf[i] = k.id;
          const sk = this.sealerFor(k);
          const rnd = (random as Buffer).subarray(nextRandom, nextRandom + SEAL_RANDOM);
          nextRandom += SEAL_RANDOM;
          out[i] = buildSealedLeaf(e, ingest, received, k.id, (plain, aad) => sk.seal(rnd, plain, aad), digest);
        }
      } catch (err) {
        if (err instanceof SteleError && events.length > 1) throw inEvent(err, i);
        throw err;
      }
    }
    return { leaves: out, digests, keyIds: [...used], tiers, keyOf };
  }

  private sealerFor(k: SlotKey): SealingKey {
    let sk = this.sealers.get(k.id);
    if (!sk) {
      sk = new SealingKey(k.key);
      this.sealers.set(k.id, sk);
    }
    return sk;
  }
}
