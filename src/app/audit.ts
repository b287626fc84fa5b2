/**
 * The log audits its own use: every read, search, export, erasure, hold change, key change and
 * policy load is appended as a `stele.*` event before the answer goes out, and denied requests are
 * recorded too — coalesced, so a flood of bad tokens costs one event per second per (who, reason)
 * instead of one fsync each, and cannot slow down legitimate appends.
 *
 * These records outlive any erasure (they are sealed under their tier's day key, not a subject's),
 * so what they keep of a query is rewritten here, in one place: a `query` is stored with every
 * identifying value as its keyed hash (see audit-query.ts), and a denied request keeps its path and
 * parameter names, with the caller's text (messages, reasons) clipped to CLIP_CHARS.
 */

import type { Principal } from '../core/principal.js';
import { clip, recordedQuery, recordedRequest } from './audit-query.js';
import { type Outcome, SERVER, selfEvent } from './self-event.js';

export type AppendSelf = (events: unknown[], by: Principal) => Promise<{ index: number }[]>;

/** One refused request, as the server saw it. */
export interface Denial {
  /** Who, when the request authenticated (403); absent for 401. */
  principal?: Principal;
  ip: string;
  method: string;
  url: string;
  status: number;
  code: string;
  /** Short machine-readable cause, e.g. expired, bad_signature, revoked_key, forbidden. */
  reason: string;
  message: string;
}

interface Bucket {
  first: Denial;
  count: number;
  firstAt: string;
  lastAt: string;
  urls: Set<string>;
}

/** Distinct (who, reason) pairs held between flushes; beyond it, denials are only counted. */
const MAX_BUCKETS = 1000;
const MAX_URLS = 5;

export class Audit {
  private buckets = new Map<string, Bucket>();
  private dropped = 0;
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly append: AppendSelf,
    /** The key store's subject pepper: identifying query values are stored as their keyed hash. */
    private readonly pepper: Buffer,
    private readonly flushMs = 1000,
    private readonly onError: (err: Error) => void = () => {},
  ) {}

  /** Appends one stele.* event about what `by` did and waits until it is durable. */
  async record(
    action: string,
    by: Principal,
    data: Record<string, unknown>,
    opts: { reason?: string | undefined; resource?: { type: string; id: string }; outcome?: Outcome } = {},
  ): Promise<number> {
    const kept = typeof data.query === 'string' ? { ...data, query: recordedQuery(data.query, this.pepper) } : data;
    const [e] = await this.append([selfEvent(action, by, kept, opts.reason, opts.outcome, opts.resource)], by);
    return (e as { index: number }).index;
  }

  /** Notes a denied request; written within `flushMs` as one stele.access.denied event per (who, reason). */
  denied(raw: Denial): void {
    // Clipped on arrival: a held bucket then costs at most a few hundred bytes, however long the lie.
    const d: Denial = {
      ...raw,
      message: clip(raw.message),
      code: clip(raw.code, 64),
      reason: clip(raw.reason, 64),
      ip: clip(raw.ip, 64),
    };
    const who = d.principal ? `${d.principal.method}:${d.principal.id}` : `ip:${d.ip}`;
    const key = `${who}\0${d.status}\0${d.reason}`;
    const now = new Date().toISOString();
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= MAX_BUCKETS) {
        this.dropped++;
        this.schedule();
        return;
      }
      b = { first: d, count: 0, firstAt: now, lastAt: now, urls: new Set() };
      this.buckets.set(key, b);
    }
    b.count++;
    b.lastAt = now;
    if (b.urls.size < MAX_URLS) b.urls.add(recordedRequest(d.method, d.url, this.pepper));
    this.schedule();
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, this.flushMs);
    this.timer.unref();
  }

  /** Writes the pending denials now. */
  flush(): Promise<void> {
    const buckets = [...this.buckets.values()];
    const dropped = this.dropped;
    this.buckets = new Map();
    this.dropped = 0;
    if (buckets.length === 0 && dropped === 0) return this.flushing;
    const events = buckets.map((b) => {
      const d = b.first;
      // An unauthenticated caller is named by address and written by the server; an authenticated
      // one is the actor (and the ingest principal) of its own denial.
      const by = d.principal ?? SERVER;
      // Messages and reasons quote what the caller sent (an 8 KB iss, a made-up key name): clipped
      // in denied().
      const message = d.message;
      const e = selfEvent(
        'stele.access.denied',
        by,
        {
          status: d.status,
          code: d.code,
          reason: d.reason,
          message,
          ip: d.ip,
          count: b.count,
          first: b.firstAt,
          last: b.lastAt,
          requests: [...b.urls],
        },
        message,
        'denied',
      );
      return { by, event: d.principal ? e : { ...e, actor: { id: `ip:${d.ip}`, type: 'service' } } };
    });
    if (dropped > 0) {
      events.push({
        by: SERVER,
        event: selfEvent(
          'stele.access.denied',
          SERVER,
          { overflow: true, count: dropped },
          'more distinct denied callers than one event each',
          'denied',
        ),
      });
    }
    const run = this.flushing.then(async () => {
      for (const e of events) {
        try {
          await this.append([e.event], e.by);
        } catch (err) {
          this.onError(err as Error);
        }
      }
    });
    this.flushing = run;
    return run;
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.flush();
  }
}
