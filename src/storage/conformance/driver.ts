import type { SteleError } from '../../core/errors.js';
import type { EmbeddedBackend } from '../backend.js';

/**
 * A driver as the conformance suite sees it: how to make a fresh, empty backend, and how to open
 * the same one again as a restarted process would (from its spec, with nothing kept in between
 * but what the driver stores).
 */
export interface DriverUnderTest {
  name: string;
  create(): Promise<EmbeddedBackend>;
  reopen(backend: EmbeddedBackend): EmbeddedBackend;
}

/** An assert.rejects / assert.throws matcher for a SteleError with `code`. */
export const withCode =
  (code: string) =>
  (err: unknown): boolean =>
    (err as SteleError).code === code;

/** What the conformance suites are given of a driver's stores. */
export interface Driver<R> {
  /** Opens the store, empty. */
  open(): Promise<R> | R;
  /** Closes `r` and opens the same store again (drivers that persist); absent: nothing persists. */
  reopen?(r: R): Promise<R> | R;
  /**
   * Every byte the driver keeps of the store last opened (its files, say): what is destroyed or
   * forgotten must not be found there. Absent: the driver keeps nothing outside the process.
   */
  stored?(): Buffer;
}

/** Whether `needle` is anywhere in what the driver keeps (false when it keeps nothing outside memory). */
export function kept<R>(d: Driver<R>, needle: Buffer | string): boolean {
  return d.stored ? d.stored().includes(needle) : false;
}
