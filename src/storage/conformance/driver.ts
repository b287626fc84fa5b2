import type { SteleError } from '../../core/errors.js';
import type { Backend } from '../backend.js';

/**
 * A driver as the conformance suite sees it: how to make a fresh, empty backend, and how to open
 * the same one again as a restarted process would (from its spec, with nothing kept in between
 * but what the driver stores).
 */
export interface DriverUnderTest {
  name: string;
  create(): Promise<Backend>;
  reopen(backend: Backend): Backend;
}

/** An assert.rejects / assert.throws matcher for a SteleError with `code`. */
export const withCode =
  (code: string) =>
  (err: unknown): boolean =>
    (err as SteleError).code === code;
