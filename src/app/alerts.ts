/**
 * Alerts as code (the policy's `alerts:` section): each rule's query is tested on every entry as
 * it is prepared (src/index/alert-rules.ts, on the fields and words search sees), and the matches
 * are counted here once the entry is durable, over a sliding window (in steps of 1/120 of it) per group, and when more than `threshold` match, the alert fires once for that window: a
 * `stele.alert` event is appended, and each of the rule's notifiers gets a webhook (JSON, or the
 * Slack-compatible shape), signed with HMAC-SHA256 when it has a secret, retried with backoff
 * while the receiver is down. Firings are not evaluated again from the index: a restart forgets
 * the windows and the deliveries still pending (the stele.alert events stay).
 */
import { createHmac } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Env } from '../core/config/env.js';
import { parseQuery } from '../index/query.js';
import type { AlertHit } from '../ingest/append.js';
import type { AlertRule, Notifier, Policy } from '../policy/types.js';

export { ALERT_ACTION } from '../index/alert-rules.js';

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

/** A query's parse error, or null: the policy loader's check of alerts.rules.*.query. */
export function queryProblem(q: string): string | null {
  try {
    parseQuery(q);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
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
  /** The clock (ms), for tests. */
  now?: () => number;
}

/** A firing's delivery, for tests and metrics. */
export interface Delivery {
  rule: string;
  notifier: string;
  ok: boolean;
  attempts: number;
  status: number | null;
}

/**
 * A window is counted in this many steps, so what a (rule, group) holds is bounded whatever the
 * rate: an entry up to 1/WINDOW_STEPS of the window older than the window may still count.
 */
const WINDOW_STEPS = 120;
/** How often windows idle for longer than their rule's window are dropped. */
const SWEEP_MS = 60_000;

/** One (rule, group)'s counts: (step, matches) for the steps that had matches, oldest first. */
interface Window {
  steps: number[];
  counts: number[];
  total: number;
  /** The newest matches' indices (at most MAX_LISTED). */
  last: number[];
  firedAt: number;
  windowMs: number;
}

export class Alerting {
  private rulesFor = '';
  private byName = new Map<string, AlertRule>();
  private readonly windows = new Map<string, Window>();
  private lastSweep = 0;
  private readonly pending = new Set<Promise<void>>();
  private stopped = false;
  /** Counters for /metrics: firings by rule, and the time spent testing entries against the rules and counting the matches (their cost to ingest). */
  readonly fired = new Map<string, number>();
  evaluationSeconds = 0;
  readonly deliveries: Delivery[] = [];
  private readonly now: () => number;

  constructor(private readonly o: AlertingOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Whether any rule is in force (entries are then tested against the rules as they are prepared). */
  get active(): boolean {
    return this.o.policy().alerts.rules.length > 0;
  }

  /** (rule, group) windows held now. */
  get windowCount(): number {
    return this.windows.size;
  }

  private rules(): Map<string, AlertRule> {
    const p = this.o.policy();
    if (p.sha256 !== this.rulesFor) {
      this.byName = new Map(p.alerts.rules.map((r) => [r.name, r]));
      this.rulesFor = p.sha256;
      // A reloaded policy's rules count afresh.
      this.windows.clear();
    }
    return this.byName;
  }

  /**
   * Counts the matches of one acknowledged batch (a retry's repeated entries are not given again);
   * a match of a rule no longer in force (the policy was reloaded while the batch was prepared) is
   * not counted.
   */
  observe(hits: readonly AlertHit[], ruleSeconds: number): void {
    if (this.stopped) return;
    const started = performance.now();
    const rules = this.rules();
    const now = this.now();
    for (const h of hits) {
      const rule = rules.get(h.rule);
      if (rule) this.count(rule, h.group, h.index, now);
    }
    if (now - this.lastSweep >= SWEEP_MS) this.sweep(now);
    this.evaluationSeconds += ruleSeconds + (performance.now() - started) / 1000;
  }

  private count(rule: AlertRule, group: string | null, idx: number, now: number): void {
    const key = `${rule.name}\u0000${group ?? ''}`;
    let w = this.windows.get(key);
    if (!w) {
      w = { steps: [], counts: [], total: 0, last: [], firedAt: Number.NEGATIVE_INFINITY, windowMs: rule.windowMs };
      this.windows.set(key, w);
    }
    // A clock stepped back counts in the newest step rather than reorder the steps.
    const step = Math.max(Math.floor((now * WINDOW_STEPS) / rule.windowMs), w.steps.at(-1) ?? Number.NEGATIVE_INFINITY);
    while (w.steps.length && (w.steps[0] as number) <= step - WINDOW_STEPS) {
      w.steps.shift();
      w.total -= w.counts.shift() as number;
    }
    if (w.steps.at(-1) === step) w.counts[w.counts.length - 1] = (w.counts.at(-1) as number) + 1;
    else {
      w.steps.push(step);
      w.counts.push(1);
    }
    w.total++;
    w.last.push(idx);
    if (w.last.length > MAX_LISTED) w.last.shift();
    // Once a window: it fires again only when a window has passed since it last did.
    if (w.total <= rule.threshold || w.firedAt > now - rule.windowMs) return;
    w.firedAt = now;
    const firing: Firing = {
      rule: rule.name,
      query: rule.query,
      group_by: rule.groupBy,
      group,
      count: w.total,
      threshold: rule.threshold,
      window_ms: rule.windowMs,
      entries: w.last.slice(-Math.min(w.total, MAX_LISTED)),
      at: new Date(now).toISOString(),
    };
    this.fired.set(rule.name, (this.fired.get(rule.name) ?? 0) + 1);
    this.track(this.fire(rule, firing));
  }

  /** Drops the windows with no match and no firing within their window (one per group ever seen would grow without end). */
  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [key, w] of this.windows) {
      const newest = ((w.steps.at(-1) ?? Number.NEGATIVE_INFINITY) + 1) * (w.windowMs / WINDOW_STEPS);
      if (newest <= now - w.windowMs && w.firedAt <= now - w.windowMs) this.windows.delete(key);
    }
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
      const ts = String(Math.floor(this.now() / 1000));
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
