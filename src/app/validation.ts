/**
 * The server's own periodic validation (issue 15): it re-verifies the log it serves — each new
 * checkpoint incrementally (only the entries and tiles past the last verified one, and that they
 * extend it), the whole log on a schedule — and checks that the policy in force is applied: every
 * data key whose retention has passed (by more than a retention run's period) is destroyed unless
 * a hold keeps it, the key store has every data key the verified entries name, no key a hold
 * covers was destroyed after the hold was placed, no role is limited
 * to tiers while a tier is unencrypted, and the query store is not ahead of the log. Each run is appended as a
 * `stele.validation.run` event with its outcome and what it covered, so the checks are on record
 * like everything else; a failure is also the server's to raise (logged, and in /metrics).
 */
import type { Principal } from '../core/principal.js';
import { decodeLeaf } from '../event/record.js';
import { VerifyError, verifyLog } from '../tlog/verify.js';
import { dueForExpiry, heldButDestroyed } from './forget.js';
import type { Stele } from './stele.js';

export interface ValidationRun {
  ok: boolean;
  kind: 'full' | 'incremental';
  /** The verified tree: from the size last verified (0 for a full run) to this checkpoint's. */
  from: number;
  to: number;
  checks: string[];
  problems: string[];
  /** When it ran (ms since the epoch) and how long it took (s). */
  at: number;
  seconds: number;
  /** The stele.validation.run entry. */
  index: number;
}

/** Keys may be this late past their retention before it is a problem: a run's period and an hour. */
const RETENTION_SLACK_MS = 3_600_000;

export class Validator {
  /**
   * The checkpoint the next incremental run starts from. At start, the one the log recovered to:
   * recovery already replayed the write-ahead log to reproduce it, and a full run at start would
   * spend minutes of the main thread on a large log just when the server comes up; the first full
   * run comes `fullEveryMs` later (or on demand).
   */
  private verified: string;
  private lastFull: number;
  last: ValidationRun | null = null;

  constructor(
    private readonly stele: Stele,
    private readonly by: Principal,
    private readonly fullEveryMs: number,
  ) {
    this.verified = stele.log.checkpoint.note;
    this.lastFull = Date.now();
  }

  /** One run: full when due (or asked), else incremental since the last verified checkpoint. */
  async run(opts: { full?: boolean; nowMs?: number } = {}): Promise<ValidationRun> {
    const s = this.stele;
    const at = opts.nowMs ?? Date.now();
    const t0 = performance.now();
    const full = opts.full === true || at - this.lastFull >= this.fullEveryMs;
    const checks: string[] = [];
    const problems: string[] = [];
    const source = { readTile: s.log.readTile.bind(s.log), readCheckpoint: async () => s.log.checkpoint.note };
    let from = 0;
    let to = s.log.checkpoint.size;
    /** The data keys the verified entries name, and the first entry naming each. */
    const named = new Map<string, number>();
    const onEntry = (index: number, entry: Uint8Array) => {
      let key: string | undefined;
      try {
        key = decodeLeaf(entry).key;
      } catch {
        return; // the log check itself reports a leaf that does not decode where it matters: its hash
      }
      if (key && !named.has(key)) named.set(key, index);
    };
    try {
      const since = this.verified;
      const r = await verifyLog(source, s.verifier, { since, onEntry, ...(full ? {} : { resume: true }) });
      from = full ? 0 : Number(since.split('\n')[1]);
      to = r.checkpoint.size;
      this.verified = r.note;
      if (full) this.lastFull = at;
      checks.push(full ? 'log: every entry and tile' : 'log: the entries and tiles since the last verified checkpoint');
    } catch (err) {
      if (!(err instanceof VerifyError)) throw err;
      problems.push(`log: ${err.message}`);
    }
    const { expire } = await dueForExpiry(s.forget, at - RETENTION_SLACK_MS - s.policy.retention.scheduleMs);
    checks.push("retention: keys past their tier's keep are destroyed");
    if (expire.length) {
      const days = [...new Set(expire.map((k) => `${k.tier}/${k.day}`))].slice(0, 5).join(', ');
      problems.push(`retention: ${expire.length} data key(s) past their tier's keep are still active and not held (${days})`);
    }
    checks.push('keys: the key store knows every data key the verified entries name');
    const ids = [...named.keys()];
    const found = await s.keys.known(ids);
    const unknown = ids.filter((_, i) => !found[i]);
    if (unknown.length)
      problems.push(
        `keys: ${unknown.length} data key(s) named by entries are not in the key store (${unknown
          .slice(0, 5)
          .map((k) => `${k} in entry ${named.get(k)}`)
          .join(', ')})`,
      );
    checks.push('holds: no key an active hold (on a tier, subject or time) covers was destroyed after it was placed');
    const broken = await heldButDestroyed(s.forget);
    if (broken.length)
      problems.push(
        `holds: ${broken.length} data key(s) destroyed while a hold covered them (${broken
          .slice(0, 5)
          .map((b) => `${b.tier}/${b.day} under ${b.holds.join(', ')}`)
          .join('; ')})`,
      );
    checks.push('policy: no role is limited to tiers while a tier is unencrypted (its events would be public anyway)');
    const plain = s.policy.retention.tiers.filter((t) => !t.encrypt).map((t) => t.name);
    const limited = s.policy.roles.filter((r) => r.tiers.length > 0).map((r) => r.name);
    if (plain.length && limited.length)
      problems.push(`policy: roles ${limited.join(', ')} are limited to tiers, but tier(s) ${plain.join(', ')} are unencrypted`);
    checks.push('index: the query store is not ahead of the log');
    if (s.index.indexedThrough > s.log.size)
      problems.push(`index: the query store has ${s.index.indexedThrough} entries, the log ${s.log.size}`);
    const ok = problems.length === 0;
    const seconds = (performance.now() - t0) / 1000;
    const index = await s.audit.record(
      'stele.validation.run',
      this.by,
      { outcome: ok ? 'ok' : 'failed', kind: full ? 'full' : 'incremental', from, to, checks, problems },
      // The event's own outcome, so `action:stele.validation.run outcome:failure` finds (and alerts on) failures.
      { outcome: ok ? 'success' : 'failure' },
    );
    this.last = { ok, kind: full ? 'full' : 'incremental', from, to, checks, problems, at, seconds, index };
    return this.last;
  }
}

/** One run of `stele monitor` (another process, often another machine), as it reports it. */
export interface OutsideRun {
  ok: boolean;
  kind: 'full' | 'incremental';
  /** The checkpoint verified (absent when the run failed before one was). */
  size?: number;
  root?: string;
  /** What it verified: the URL, bucket or directory it read. */
  where: string;
  error?: string;
  seconds: number;
}

/**
 * Records a monitor's run as a `stele.validation.run` event by the monitor's principal (what it
 * says it found, under its name: a claim, like any event), with the event's outcome failure when
 * verification failed, so the policy's alert rules on failures fire for it as for the server's own.
 */
export function recordOutsideRun(s: Stele, by: Principal, r: OutsideRun): Promise<number> {
  return s.audit.record(
    'stele.validation.run',
    by,
    {
      outcome: r.ok ? 'ok' : 'failed',
      kind: r.kind,
      reporter: 'stele monitor',
      where: r.where,
      ...(r.size === undefined ? {} : { to: r.size }),
      ...(r.root === undefined ? {} : { root: r.root }),
      checks: [
        r.kind === 'full'
          ? 'log: every entry and tile, from outside'
          : 'log: the entries and tiles since the last verified checkpoint, from outside',
      ],
      problems: r.error ? [r.error] : [],
      seconds: r.seconds,
    },
    { outcome: r.ok ? 'success' : 'failure' },
  );
}
