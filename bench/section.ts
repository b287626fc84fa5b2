/**
 * BENCHMARKS.md holds one section per benchmark between `<!-- bench:NAME -->` and
 * `<!-- /bench:NAME -->`: each run rewrites its own and leaves the others as they are.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BENCHMARKS_MD = fileURLToPath(new URL('../../BENCHMARKS.md', import.meta.url));

/** The markers of section `name`. */
export const sectionMarkers = (name: string) => ({ begin: `<!-- bench:${name} -->`, end: `<!-- /bench:${name} -->` });

/** Replaces section `name` (its markers included in `md`) in BENCHMARKS.md, or appends it. */
export function writeSection(name: string, md: string): void {
  const { begin, end } = sectionMarkers(name);
  const before = existsSync(BENCHMARKS_MD) ? readFileSync(BENCHMARKS_MD, 'utf8') : '# Benchmarks\n';
  const a = before.indexOf(begin);
  const b = before.indexOf(end);
  let next = a >= 0 && b > a ? before.slice(0, a) + md.trimEnd() + before.slice(b + end.length) : `${before.trimEnd()}\n\n${md}`;
  if (!next.endsWith('\n')) next += '\n';
  writeFileSync(BENCHMARKS_MD, next);
}

/** A numeric command-line option (`--name 200_000`; underscores allowed), else `dflt`; a bad value stops the run. */
export function numberOption(name: string, dflt: number, args: readonly string[] = process.argv.slice(2)): number {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const n = Number(String(args[i + 1]).replaceAll('_', ''));
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${args[i + 1]}`);
  return n;
}
