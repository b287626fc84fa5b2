import { randomUUID } from 'node:crypto';
import { type ErrorCode, SteleError } from '../core/errors.js';
import type { Hold, HoldRecords } from './hold-records.js';
import type { KeyInfo } from './key-records.js';
import { subjectHash } from './subject.js';

export type { Hold } from './hold-records.js';

export interface HoldCriteria {
  tier?: string;
  actor?: string;
  subject?: string;
  since?: number;
  until?: number;
}

const DAY_US = 86_400_000_000;

/**
 * Refuses a free-text reason that spells out the data subject it concerns: reasons are kept in
 * the clear in the log (and the key store) after the subject is erased. Catches the plain
 * spelling only (any case, NFC); docs/http-api.md asks operators not to name people in reasons.
 */
export function refuseNaming(reason: string, subject: string, code: ErrorCode, what: string): void {
  const norm = (s: string) => s.normalize('NFC').toLowerCase();
  if (subject.trim() && norm(reason).includes(norm(subject.trim()))) {
    throw new SteleError(
      code,
      `${what} names the data subject; reasons stay in the log after an erasure, so refer to the case instead (a ticket number)`,
    );
  }
}

/** Legal holds (kept by the backend beside the data keys they guard): their rules. */
export class HoldStore {
  constructor(
    private readonly records: HoldRecords,
    private readonly pepper: Buffer,
  ) {}

  async add(c: HoldCriteria, reason: string, by: string): Promise<Hold> {
    if (!reason.trim()) throw new SteleError('bad_hold', 'a legal hold needs a reason');
    if (c.subject !== undefined) refuseNaming(reason, c.subject, 'bad_hold', "the hold's reason");
    if (
      c.tier === undefined &&
      c.actor === undefined &&
      c.subject === undefined &&
      c.since === undefined &&
      c.until === undefined
    ) {
      throw new SteleError('bad_hold', 'a legal hold needs at least one of tier, actor, subject, since, until');
    }
    if (c.since !== undefined && c.until !== undefined && c.since >= c.until) {
      throw new SteleError('bad_hold', 'the hold\'s "since" must be before its "until"');
    }
    const hold: Hold = {
      id: randomUUID(),
      reason,
      tier: c.tier ?? null,
      actor: c.actor ?? null,
      subject: c.subject ?? null,
      subject_hash: c.subject === undefined ? null : subjectHash(this.pepper, c.subject),
      since: c.since ?? null,
      until: c.until ?? null,
      created: new Date().toISOString(),
      created_by: by,
      released: null,
      released_by: null,
      release_reason: null,
    };
    await this.records.insert(hold);
    return hold;
  }

  get(id: string): Promise<Hold | undefined> {
    return this.records.get(id);
  }

  list(includeReleased = false): Promise<Hold[]> {
    return this.records.list(includeReleased);
  }

  async release(id: string, reason: string, by: string): Promise<Hold> {
    if (!reason.trim()) throw new SteleError('bad_hold', 'releasing a legal hold needs a reason');
    const h = await this.get(id);
    if (!h) throw new SteleError('not_found', `no legal hold ${id}`);
    if (h.released) throw new SteleError('already_released', `legal hold ${id} was released at ${h.released}`);
    if (h.subject !== null) refuseNaming(reason, h.subject, 'bad_hold', 'the release reason');
    if (!(await this.records.release(id, new Date().toISOString(), by, reason))) {
      throw new SteleError('already_released', `legal hold ${id} was released meanwhile`);
    }
    return (await this.get(id)) as Hold;
  }

  /**
   * Which active holds cover a key: a test over the holds active now (read once, for a whole
   * retention run or erasure). `keysOfActor` gives, per held actor, the keys sealing that actor's
   * entries (keys are per tier, day and subject, not per actor, so a hold on an actor keeps every
   * key holding one of their events).
   */
  async covering(keysOfActor: ReadonlyMap<string, ReadonlySet<string>>): Promise<(key: KeyInfo) => Hold[]> {
    const active = await this.list();
    return (key) => {
      const dayStart = Date.parse(`${key.day}T00:00:00Z`) * 1000;
      const dayEnd = dayStart + DAY_US;
      return active.filter(
        (h) =>
          (h.tier === null || h.tier === key.tier) &&
          (h.subject_hash === null || h.subject_hash === key.subject) &&
          (h.since === null || dayEnd > h.since) &&
          (h.until === null || dayStart < h.until) &&
          (h.actor === null || (keysOfActor.get(h.actor)?.has(key.id) ?? false)),
      );
    };
  }

  /**
   * After an erasure: released holds keep only the subject's hash, and a released hold on the
   * subject as an actor keeps the actor only as `#h:<hash>` (the same person, named another way).
   */
  async forgetSubject(subject: string): Promise<void> {
    await this.records.forgetReleased(subject, `#h:${subjectHash(this.pepper, subject.normalize('NFC'))}`);
  }

  /**
   * What the log records of a hold (stele.hold.add / release): its criteria, with the subject and
   * the actor only as keyed hashes. The record outlives any erasure; the hold store itself keeps
   * the names only while they are needed (see forgetSubject).
   */
  record(h: Hold): Record<string, unknown> {
    const d: Record<string, unknown> = { hold: h.id };
    if (h.tier !== null) d.tier = h.tier;
    if (h.actor !== null) {
      d.actor_hash = h.actor.startsWith('#h:') ? h.actor.slice(3) : subjectHash(this.pepper, h.actor.normalize('NFC'));
    }
    for (const k of ['since', 'until'] as const) if (h[k] !== null) d[k] = h[k];
    if (h.subject_hash) d.subject_hash = h.subject_hash;
    return d;
  }

  /** Actors named by active holds. */
  async heldActors(): Promise<string[]> {
    return [...new Set((await this.list()).flatMap((h) => (h.actor === null ? [] : [h.actor])))];
  }

  close(): Promise<void> {
    return this.records.close();
  }
}
