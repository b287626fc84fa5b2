/**
 * Trusted time (RFC 3161): the checkpoint the server serves is timestamped by each configured TSA,
 * periodically (when it changed since the last time) and on demand (POST /v1/timestamps). Each
 * token goes into the log itself as a `stele.timestamp` event holding the checkpoint note and the
 * token, so it is kept with the log's own guarantees, on every storage driver, and evidence bundles
 * carry the newest ones (with a consistency proof to their checkpoint): a third party can then
 * check, with the TSA's certificate alone, that every entry below that size existed by that time.
 */
import { createHash } from 'node:crypto';
import { requestTimestamp } from '../timestamp/client.js';

export const TIMESTAMP_ACTION = 'stele.timestamp';

/** What a stele.timestamp event's data holds. */
export interface TimestampRecord {
  tsa: string;
  /** The checkpoint's tree size, and the signed checkpoint note timestamped (its SHA-256 is in the token). */
  size: number;
  checkpoint: string;
  /** The time-stamp token, DER, base64. */
  token: string;
  gen_time: string;
  serial: string;
}

export interface TimestampingOptions {
  tsas: readonly string[];
  /** The checkpoint note to timestamp (the one the server serves) and its size. */
  checkpoint: () => { note: string; size: number };
  /** Appends the stele.timestamp event; resolves with its index. */
  record: (r: TimestampRecord) => Promise<number>;
  report?: (msg: string) => void;
}

export class Timestamping {
  private last: string | null = null;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: TimestampingOptions) {}

  /**
   * Timestamps the served checkpoint with every TSA (unless `force` is false and it was already
   * done for this checkpoint); resolves with the records made and their log indices. A TSA that
   * fails is reported and skipped; with `force`, its error is thrown when no TSA answered.
   */
  run(force: boolean): Promise<(TimestampRecord & { index: number })[]> {
    const run = this.running.then(() => this.once(force));
    this.running = run.catch(() => {});
    return run;
  }

  private async once(force: boolean): Promise<(TimestampRecord & { index: number })[]> {
    const { note, size } = this.o.checkpoint();
    if (!force && (note === this.last || size === 0)) return [];
    const digest = createHash('sha256').update(note).digest();
    const out: (TimestampRecord & { index: number })[] = [];
    const errors: string[] = [];
    for (const tsa of this.o.tsas) {
      try {
        const t = await requestTimestamp(tsa, digest);
        const r: TimestampRecord = {
          tsa,
          size,
          checkpoint: note,
          token: t.der.toString('base64'),
          gen_time: t.genTime.toISOString(),
          serial: t.serial,
        };
        out.push({ ...r, index: await this.o.record(r) });
      } catch (err) {
        const msg = `timestamp from ${tsa}: ${(err as Error).message}`;
        errors.push(msg);
        this.o.report?.(msg);
      }
    }
    if (out.length) this.last = note;
    if (force && out.length === 0) throw new Error(errors.join('; '));
    return out;
  }

  start(intervalMs: number): void {
    const tick = () => {
      void this.run(false).finally(() => {
        this.timer = setTimeout(tick, intervalMs);
        this.timer.unref();
      });
    };
    this.timer = setTimeout(tick, Math.min(intervalMs, 5_000));
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await this.running;
  }
}
