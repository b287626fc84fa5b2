/**
 * Alerts as code (the policy's `alerts:` section): each rule's query is evaluated on every entry as
 * it is appended (its index note: the fields and words search sees), counted over a sliding window
 * per group, and when more than `threshold` match, the alert fires once for that window: a
 * `stele.alert` event is appended, and each of the rule's notifiers gets a webhook (JSON, or the
 * Slack-compatible shape), signed with HMAC-SHA256 when it has a secret, retried with backoff
 * while the receiver is down. Firings are not evaluated again from the index: a restart forgets
 * the windows and the deliveries still pending (the stele.alert events stay).
 */
import { createHmac } from 'node:crypto';
import type { Env } from '../core/config/env.js';
import type { Principal } from '../core/principal.js';
import { readNote } from '../event/searchable.js';
import { predicate, type Subject } from '../index/match.js';
import { parseQuery } from '../index/query.js';
import { tokenize } from '../index/unicode61.js';
import { isMember } from '../policy/access.js';
import type { AlertRule, Notifier, Policy } from '../policy/types.js';

/** The action of the events that record firings (never counted themselves). */
export const ALERT_ACTION = 'stele.alert';

/** One firing, as recorded and delivered. */
export interface Firing {
  rule: string;
  query: string;
  group_by: AlertRule['groupBy'];
  group: string | null;
  /** Matches within the window when it fired (more than the threshold). */
  count: number;
  threshold: number;
  window_ms: number;
  /** Log indices of the matches that made it fire (at most MAX_LISTED). */
  entries: number[];
  at: string;
}

/** Entries a firing lists. */
const MAX_LISTED = 50;
/** Delivery attempts of one webhook, with the backoff between them doubling from 1 s to 5 min. */
const MAX_ATTEMPTS = 12;
const MAX_BACKOFF_MS = 300_000;

const groupField: Record<NonNullable<AlertRule['groupBy']>, string> = {
  actor: 'actor',
  principal: 'principal',
  action: 'action',
  source: 'source',
  host: 'host',
  tier: 'tier',
  subject: 'subject',
  resource: 'resource_id',
};

/** A query's parse error, or null: the policy loader's check of alerts.rules.*.query. */
export function queryProblem(q: string): string | null {
  try {
    parseQuery(q);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

interface Compiled {
  rule: AlertRule;
  test: (s: Subject) => boolean;
}

export interface AlertingOptions {
  /** The policy in force (read at each batch: a reload takes effect at once). */
  policy: () => Policy;
  /** Appends the stele.alert event of a firing; resolves with its index. */
  record: (f: Firing) => Promise<number>;
  /** Where the notifiers' secrets are (secret_env). */
  env: Env;
  /** Delivery failures and the like, for the server's log. */
  report?: (msg: string) => void;
  /** The log's origin, named in deliveries. */
  origin: string;
}

/** A firing's delivery, for tests and metrics. */
export interface Delivery {
  rule: string;
  notifier: string;
  ok: boolean;
  attempts: number;
  status: number | null;
}

export class Alerting {
  private compiledFor = '';
  private compiled: Compiled[] = [];
  /** Per (rule, group): times (ms) and indices of matches in the window; when it last fired. */
  private readonly windows = new Map<string, { hits: { t: number; idx: number }[]; seen: Set<number>; firedAt: number }>();
  private readonly pending = new Set<Promise<void>>();
  private stopped = false;
  /** Counters for /metrics. */
  readonly fired = new Map<string, number>();
  readonly deliveries: Delivery[] = [];

  constructor(private readonly o: AlertingOptions) {}

  /** Whether any rule is in force (appends then carry the index notes this evaluates). */
  get active(): boolean {
    return this.o.policy().alerts.rules.length > 0;
  }

  private rules(): Compiled[] {
    const p = this.o.policy();
    if (p.sha256 !== this.compiledFor) {
      this.compiled = p.alerts.rules.map((rule) => {
        const root = parseQuery(rule.query);
        return { rule, test: root === null ? () => true : predicate(root, Date.now()) };
      });
      this.compiledFor = p.sha256;
    }
    return this.compiled;
  }

  /**
   * Counts the entries of one acknowledged batch (indices `first`…, written by `by`), each by its
   * index note; an entry without one (notes were not wanted when it was prepared) is not counted.
   */
  observe(indices: readonly number[], notes: readonly (Buffer | undefined)[], by: Principal): void {
    const rules = this.rules();
    if (rules.length === 0 || this.stopped) return;
    const now = Date.now();
    for (let i = 0; i < indices.length; i++) {
      const note = notes[i];
      if (!note) continue;
      const { row, text } = readNote(indices[i] as number, note);
      if (row.action === ALERT_ACTION) continue;
      let tokens: string[] | undefined;
      const subject: Subject = {
        row: row as unknown as Record<string, unknown>,
        get tokens() {
          tokens ??= tokenize(text);
          return tokens;
        },
      };
      for (const c of rules) {
        if (c.rule.except.some((m) => isMember(by, m))) continue;
        if (!c.test(subject)) continue;
        const g = c.rule.groupBy ? String(subject.row[groupField[c.rule.groupBy]] ?? '') : null;
        this.count(c.rule, g, row.idx, now);
      }
    }
  }

  private count(rule: AlertRule, group: string | null, idx: number, now: number): void {
    const key = `${rule.name}\u0000${group ?? ''}`;
    let w = this.windows.get(key);
    if (!w) {
      w = { hits: [], seen: new Set(), firedAt: Number.NEGATIVE_INFINITY };
      this.windows.set(key, w);
    }
    // A retried append answers the indices it had: the same entry is counted once.
    if (w.seen.has(idx)) return;
    w.hits.push({ t: now, idx });
    w.seen.add(idx);
    const from = now - rule.windowMs;
    while ((w.hits[0]?.t ?? now) < from) w.seen.delete((w.hits.shift() as { idx: number }).idx);
    // Once a window: it fires again only when a window has passed since it last did.
    if (w.hits.length <= rule.threshold || w.firedAt > from) return;
    w.firedAt = now;
    const firing: Firing = {
      rule: rule.name,
      query: rule.query,
      group_by: rule.groupBy,
      group,
      count: w.hits.length,
      threshold: rule.threshold,
      window_ms: rule.windowMs,
      entries: w.hits.slice(-MAX_LISTED).map((h) => h.idx),
      at: new Date(now).toISOString(),
    };
    this.fired.set(rule.name, (this.fired.get(rule.name) ?? 0) + 1);
    this.track(this.fire(rule, firing));
  }

  private track(p: Promise<void>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  private async fire(rule: AlertRule, firing: Firing): Promise<void> {
    let event: number | null = null;
    try {
      event = await this.o.record(firing);
    } catch (err) {
      this.o.report?.(`alert ${rule.name}: recording it failed: ${(err as Error).message}`);
    }
    const notifiers = this.o.policy().alerts.notifiers;
    await Promise.all(
      rule.notify.map(async (name) => {
        const n = notifiers.find((x) => x.name === name);
        if (n) await this.deliver(n, firing, event);
      }),
    );
  }

  private async deliver(n: Notifier, firing: Firing, event: number | null): Promise<void> {
    const body = JSON.stringify(
      n.format === 'slack'
        ? {
            text: `Stele alert *${firing.rule}* on ${this.o.origin}: ${firing.count} entries matched \`${firing.query}\` within ${Math.round(firing.window_ms / 60_000)} min${firing.group === null ? '' : ` (${firing.group_by} ${firing.group})`}, more than ${firing.threshold}; entries ${firing.entries.slice(-10).join(', ')}${event === null ? '' : `; recorded as entry ${event}`}`,
          }
        : { log: this.o.origin, ...firing, event },
    );
    // A variable the policy names (not one of the settings table's): read from the Env given.
    const secret = n.secretEnv ? this.o.env[n.secretEnv] || undefined : undefined;
    if (n.secretEnv && !secret) this.o.report?.(`notifier ${n.name}: $${n.secretEnv} is not set; sending unsigned`);
    let status: number | null = null;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      if (this.stopped) break;
      const ts = String(Math.floor(Date.now() / 1000));
      const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'stele-alerts' };
      if (secret) {
        headers['x-stele-timestamp'] = ts;
        headers['x-stele-signature'] = `sha256=${createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex')}`;
      }
      try {
        const res = await fetch(n.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) });
        status = res.status;
        await res.arrayBuffer();
        // A 4xx other than 408/429 will not get better by retrying.
        if (res.ok || (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429)) {
          this.deliveries.push({ rule: firing.rule, notifier: n.name, ok: res.ok, attempts: attempt, status });
          if (!res.ok) this.o.report?.(`alert ${firing.rule} to ${n.name}: refused with HTTP ${res.status}`);
          return;
        }
      } catch {
        status = null;
      }
      await this.sleep(Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (attempt - 1)));
    }
    this.deliveries.push({ rule: firing.rule, notifier: n.name, ok: false, attempts: MAX_ATTEMPTS, status });
    this.o.report?.(
      `alert ${firing.rule} to ${n.name}: not delivered after ${MAX_ATTEMPTS} attempts (last: ${status ?? 'no answer'})`,
    );
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      t.unref();
    });
  }

  /** Stops retrying; waits for what is in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.pending]);
  }
}
