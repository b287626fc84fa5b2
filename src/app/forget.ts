/**
 * Forgetting without breaking proofs (DESIGN.md guarantee 5): retention expiry and right to
 * erasure destroy data keys and drop the query store's rows; leaves and hashes stay, so every
 * proof still verifies, and the sealed events can no longer be opened by anyone. Each run, hold
 * change and erasure is itself appended to the log as a stele.* event.
 */

import { SteleError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import { nfc } from '../event/nfc.js';
import { type Hold, type HoldCriteria, HoldStore, refuseNaming } from '../keys/holds.js';
import { type KeyInfo, type KeyStore, utcDay } from '../keys/keystore.js';
import { subjectHashes } from '../keys/subject.js';
import { formatKeep, type Policy } from '../policy/policy.js';
import { selfEvent } from './self-event.js';

export interface ForgetContext {
  keys: KeyStore;
  holds: HoldStore;
  index: { deleteKeys(ids: string[]): Promise<number>; keysOfActors(actors: string[]): Promise<string[]> };
  /**
   * Resolves once the query store has every entry appended so far (503 index_behind past its
   * bound): which keys a legal hold covers, and how many events an erasure removes, are read there.
   */
  caughtUp(): Promise<void>;
  policy(): Policy;
  append(events: unknown[], by: Principal): Promise<{ index: number }[]>;
}

export interface RetentionReport {
  /** Index of the stele.retention.run event. */
  event: number;
  expired: { tier: string; day: string; keys: number }[];
  expiredKeys: number;
  /** Query-store rows removed with them. */
  entries: number;
  /** Keys past their tier's keep but kept by a legal hold. */
  held: { key: string; tier: string; day: string; holds: string[] }[];
}

export interface ErasureReport {
  event: number;
  keys: number;
  entries: number;
  /** Events made unreadable: the query-store entries removed (0 when no readable event carries the subject). */
  events: number;
  /** Set when nothing carried the subject (the request is recorded all the same). */
  message?: string;
}

/** What an erasure says when no readable event carries the subject. */
export const NO_EVENTS = 'no events carry this subject (none were recorded, or they were already erased or expired)';

/** Active holds' actors → the keys sealing their entries. */
async function actorKeys(ctx: Pick<ForgetContext, 'holds' | 'index'>): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const a of await ctx.holds.heldActors()) out.set(a, new Set(await ctx.index.keysOfActors([a])));
  return out;
}

/**
 * The active data keys the policy's retention has expired at `nowMs`, and those a legal hold keeps
 * (a day's key expires once the whole day is older than its tier's keep).
 */
export async function dueForExpiry(
  ctx: Pick<ForgetContext, 'keys' | 'holds' | 'policy' | 'index'>,
  nowMs: number,
): Promise<{ expire: KeyInfo[]; held: RetentionReport['held'] }> {
  const covering = await ctx.holds.covering(await actorKeys(ctx));
  const expire: KeyInfo[] = [];
  const held: RetentionReport['held'] = [];
  for (const tier of ctx.policy().retention.tiers) {
    if (tier.keepMs === null) continue;
    const cutoffDay = utcDay(BigInt(nowMs - tier.keepMs) * 1000n);
    for (const k of await ctx.keys.activeBefore(tier.name, cutoffDay)) {
      const holds = covering(k);
      if (holds.length) held.push({ key: k.id, tier: k.tier, day: k.day, holds: holds.map((h) => h.id) });
      else expire.push(k);
    }
  }
  return { expire, held };
}

/**
 * Keys destroyed (expired or erased) after an active legal hold covering them was placed: what a
 * hold must never let happen. Holds on an actor are not checked here: which keys were an actor's
 * is read from the query store, which forgets a key's rows when it is destroyed.
 */
export async function heldButDestroyed(
  ctx: Pick<ForgetContext, 'keys' | 'holds'>,
): Promise<{ key: string; tier: string; day: string; holds: string[] }[]> {
  const covering = await ctx.holds.covering(new Map());
  const out: { key: string; tier: string; day: string; holds: string[] }[] = [];
  for (const state of ['expired', 'erased'] as const)
    for (const k of await ctx.keys.select({ state })) {
      const destroyed = k.destroyed === null ? Number.NaN : Date.parse(k.destroyed);
      const holds = covering(k).filter((h) => h.actor === null && Date.parse(h.created) < destroyed);
      if (holds.length) out.push({ key: k.id, tier: k.tier, day: k.day, holds: holds.map((h) => h.id) });
    }
  return out;
}

/** Destroys the data keys of every (tier, day) past its tier's keep, except those under a legal hold. */
export async function runRetention(ctx: ForgetContext, by: Principal, nowMs = Date.now()): Promise<RetentionReport> {
  await ctx.caughtUp();
  const policy = ctx.policy();
  const { expire, held } = await dueForExpiry(ctx, nowMs);
  const ids = expire.map((k) => k.id);
  await ctx.keys.destroy(ids, 'expired', `retention (policy ${policy.sha256.slice(0, 16)})`);
  const entries = await ctx.index.deleteKeys(ids);
  const groups = new Map<string, { tier: string; day: string; keys: number }>();
  for (const k of expire) {
    const g = groups.get(`${k.tier}/${k.day}`) ?? { tier: k.tier, day: k.day, keys: 0 };
    g.keys++;
    groups.set(`${k.tier}/${k.day}`, g);
  }
  const expired = [...groups.values()];
  const tiers = policy.retention.tiers.map((t) => `${t.name} ${formatKeep(t.keepMs)}`);
  const [ev] = await ctx.append(
    [
      selfEvent('stele.retention.run', by, {
        policy_sha256: policy.sha256,
        tiers,
        expired,
        expired_keys: ids.length,
        entries,
        held: held.map((h) => ({ tier: h.tier, day: h.day, holds: h.holds })),
      }),
    ],
    by,
  );
  return { event: (ev as { index: number }).index, expired, expiredKeys: ids.length, entries, held };
}

/**
 * Right to erasure: destroys every data key of the subject (the events about them in every tier
 * and day), removes their rows from the query store, and appends a stele.erasure event saying who,
 * why and how many — never the subject itself. Refused while a legal hold covers any of them.
 */
export async function eraseSubject(ctx: ForgetContext, given: string, reason: string, by: Principal): Promise<ErasureReport> {
  if (!given) throw new SteleError('bad_erasure', 'name the data subject to erase');
  if (!reason.trim()) throw new SteleError('bad_erasure', 'an erasure needs a reason');
  // Events store their subject in NFC (normalizeEvent): erase whichever spelling was given.
  const subject = nfc(given);
  const [hash, ...legacy] = subjectHashes(ctx.keys.subjectPepper, subject) as [string, ...string[]];
  refuseNaming(reason, subject, 'bad_erasure', "the erasure's reason");
  await ctx.caughtUp();
  const keys = (await Promise.all([hash, ...legacy].map((h) => ctx.keys.activeForSubject(h)))).flat();
  const covering = await ctx.holds.covering(await actorKeys(ctx));
  const blocking = new Set<string>();
  for (const k of keys) for (const h of covering(k)) blocking.add(h.id);
  // A hold naming the subject blocks even when nothing about them is stored yet.
  for (const h of await ctx.holds.list()) if (h.subject !== null && nfc(h.subject) === subject) blocking.add(h.id);
  if (blocking.size) {
    throw new SteleError('held', `a legal hold covers this subject (${[...blocking].join(', ')}); release it first`, {
      detail: {
        holds: [...blocking],
      },
    });
  }
  const ids = keys.map((k) => k.id);
  // Before destroy(), whose WAL truncation also scrubs this update; holds placed before subjects
  // were normalised may hold the spelling given.
  await ctx.holds.forgetSubject(subject);
  if (given !== subject) await ctx.holds.forgetSubject(given);
  await ctx.keys.destroy(ids, 'erased', reason);
  const entries = await ctx.index.deleteKeys(ids);
  const [ev] = await ctx.append([selfEvent('stele.erasure', by, { subject_hash: hash, keys: ids.length, entries }, reason)], by);
  const index = (ev as { index: number }).index;
  // No data key of the subject: nothing about them was sealed (or it is gone already). Still
  // recorded above, so the log shows the request was made and answered.
  if (ids.length === 0) return { event: index, keys: 0, entries, events: 0, message: NO_EVENTS };
  return { event: index, keys: ids.length, entries, events: entries };
}

export async function addHold(
  ctx: ForgetContext,
  c: HoldCriteria,
  reason: string,
  by: Principal,
): Promise<Hold & { event: number }> {
  if (c.tier !== undefined && !ctx.policy().retention.tiers.some((t) => t.name === c.tier)) {
    throw new SteleError('bad_hold', `no tier named ${JSON.stringify(c.tier)} in the policy`);
  }
  // Matched against stored events, whose actor and subject are NFC (normalizeEvent).
  const criteria: HoldCriteria = { ...c };
  if (c.actor !== undefined) criteria.actor = nfc(c.actor);
  if (c.subject !== undefined) criteria.subject = nfc(c.subject);
  const hold = await ctx.holds.add(criteria, reason, by.id);
  const [ev] = await ctx.append([selfEvent('stele.hold.add', by, ctx.holds.record(hold), reason)], by);
  return { ...hold, event: (ev as { index: number }).index };
}

export async function releaseHold(
  ctx: ForgetContext,
  id: string,
  reason: string,
  by: Principal,
): Promise<Hold & { event: number }> {
  const hold = await ctx.holds.release(id, reason, by.id);
  const [ev] = await ctx.append([selfEvent('stele.hold.release', by, ctx.holds.record(hold), reason)], by);
  return { ...hold, event: (ev as { index: number }).index };
}

export { HoldStore };
