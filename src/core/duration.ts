import { SteleError } from './errors.js';

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  y: 365 * 86_400_000,
};

const DURATION_RE = /^(?:\d+(?:ms|s|m|h|d|w|y))+$/;
const PART_RE = /(\d+)(ms|s|m|h|d|w|y)/g;

/**
 * A duration such as `90d`, `36h`, `1h30m` or `500ms` → milliseconds (`y` is 365 days). Throws
 * SteleError 'bad_duration' naming the text when it is not one.
 */
export function parseDuration(text: string): number {
  if (!DURATION_RE.test(text)) {
    throw new SteleError('bad_duration', `${JSON.stringify(text)} is not a duration such as 90d, 36h, 1h30m or 500ms`);
  }
  let ms = 0;
  for (const m of text.matchAll(PART_RE)) ms += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  if (!Number.isSafeInteger(ms)) throw new SteleError('bad_duration', `${JSON.stringify(text)} is too long a duration`);
  return ms;
}

export function isDuration(text: string): boolean {
  return DURATION_RE.test(text);
}
