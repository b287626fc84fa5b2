import { SteleError } from '../errors.js';

/** An integer option at least `min`, or a clear error naming the option. */
export function intOption(name: string, v: string, min = 0): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isSafeInteger(n) || n < min) {
    throw new SteleError('bad_option', `${name} must be an integer of at least ${min}, got "${v}"`);
  }
  return n;
}
