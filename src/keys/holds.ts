import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { type ErrorCode, SteleError } from '../core/errors.js';
import type { KeyInfo } from './keystore.js';
import { subjectHash } from './subject.js';

/** A legal hold: while active, no key it covers may be expired or erased. Every given criterion must match. */
export interface Hold {
  id: string;
  reason: string;
  tier: string | null;
  actor: string | null;
  subject: string | null;
  /** Keyed hash of `subject` (what events and erasure checks use). */
  subject_hash: string | null;
  /** Event receipt-time range it covers (µs), by the UTC days of the keys. */
  since: number | null;
  until: number | null;
  created: string;
  created_by: string;
  released: string | null;
  released_by: string | null;
  release_reason: string | null;
}

export interface HoldCriteria {
  tier?: string;
  actor?: string;
  subject?: string;
  since?: number;
  until?: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS holds (
  id TEXT PRIMARY KEY,
  reason TEXT NOT NULL,
  tier TEXT,
  actor TEXT,
  subject TEXT,
  subject_hash TEXT,
  since INTEGER,
  until INTEGER,
  created TEXT NOT NULL,
  created_by TEXT NOT NULL,
  released TEXT,
  released_by TEXT,
  release_reason TEXT
);
`;

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

/** Legal holds, kept in the key store's database (they guard its keys). */
export class HoldStore {
  constructor(
    private readonly db: Database.Database,
    private readonly pepper: Buffer,
  ) {
    db.exec(SCHEMA);
  }

  add(c: HoldCriteria, reason: string, by: string): Hold {
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
    const id = randomUUID();
    this.db
      .prepare(
        `INSERT INTO holds (id, reason, tier, actor, subject, subject_hash, since, until, created, created_by)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        id,
        reason,
        c.tier ?? null,
        c.actor ?? null,
        c.subject ?? null,
        c.subject === undefined ? null : subjectHash(this.pepper, c.subject),
        c.since ?? null,
        c.until ?? null,
        new Date().toISOString(),
        by,
      );
    return this.get(id) as Hold;
  }

  get(id: string): Hold | undefined {
    return this.db.prepare(`SELECT ${COLS} FROM holds WHERE id = ?`).get(id) as Hold | undefined;
  }

  list(includeReleased = false): Hold[] {
    const where = includeReleased ? '' : 'WHERE released IS NULL';
    return this.db.prepare(`SELECT ${COLS} FROM holds ${where} ORDER BY created`).all() as Hold[];
  }

  release(id: string, reason: string, by: string): Hold {
    if (!reason.trim()) throw new SteleError('bad_hold', 'releasing a legal hold needs a reason');
    const h = this.get(id);
    if (!h) throw new SteleError('not_found', `no legal hold ${id}`);
    if (h.released) throw new SteleError('already_released', `legal hold ${id} was released at ${h.released}`);
    if (h.subject !== null) refuseNaming(reason, h.subject, 'bad_hold', 'the release reason');
    this.db
      .prepare('UPDATE holds SET released = ?, released_by = ?, release_reason = ? WHERE id = ?')
      .run(new Date().toISOString(), by, reason, id);
    return this.get(id) as Hold;
  }

  /**
   * The active holds covering a key. `keysOfActor` gives, per held actor, the keys sealing that
   * actor's entries (keys are per tier, day and subject, not per actor, so a hold on an actor keeps
   * every key holding one of their events).
   */
  covering(key: KeyInfo, keysOfActor: ReadonlyMap<string, ReadonlySet<string>>): Hold[] {
    const dayStart = Date.parse(`${key.day}T00:00:00Z`) * 1000;
    const dayEnd = dayStart + DAY_US;
    return this.active().filter(
      (h) =>
        (h.tier === null || h.tier === key.tier) &&
        (h.subject_hash === null || h.subject_hash === key.subject) &&
        (h.since === null || dayEnd > h.since) &&
        (h.until === null || dayStart < h.until) &&
        (h.actor === null || (keysOfActor.get(h.actor)?.has(key.id) ?? false)),
    );
  }

  /**
   * After an erasure: released holds keep only the subject's hash, and a released hold on the
   * subject as an actor keeps the actor only as `#h:<hash>` (the same person, named another way).
   */
  forgetSubject(subject: string): void {
    let n = this.db.prepare('UPDATE holds SET subject = NULL WHERE subject = ? AND released IS NOT NULL').run(subject).changes;
    n += this.db
      .prepare('UPDATE holds SET actor = ? WHERE actor = ? AND released IS NOT NULL')
      .run(`#h:${subjectHash(this.pepper, subject.normalize('NFC'))}`, subject).changes;
    if (n > 0) this.db.pragma('wal_checkpoint(TRUNCATE)'); // the old row images go from the WAL too
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
  heldActors(): string[] {
    return [...new Set(this.active().flatMap((h) => (h.actor === null ? [] : [h.actor])))];
  }

  private active(): Hold[] {
    return this.db.prepare(`SELECT ${COLS} FROM holds WHERE released IS NULL`).all() as Hold[];
  }
}

const COLS =
  'id, reason, tier, actor, subject, subject_hash, since, until, created, created_by, released, released_by, release_reason';
