/**
 * Where a function or class of Stele's source is declared, looked up when the report is written.
 * The report's suggestions name code, and code moves (src/log/durable.ts became src/durable.ts and
 * the report kept the old path), so they ask for the file instead of spelling it; the tests check
 * that every name the report looks up is found.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: this file runs as dist/bench/ingest/code-refs.js. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

let sources: Map<string, string> | undefined;

/** Every non-test .ts file under src/, by repository-relative path (read once). */
function sourceFiles(): Map<string, string> {
  if (sources) return sources;
  sources = new Map();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) sources?.set(relative(ROOT, p), readFileSync(p, 'utf8'));
    }
  };
  walk(join(ROOT, 'src'));
  return sources;
}

const esc = (s: string) => s.replace(/[$]/g, '\\$');

/** A top-level function, class or const named `name`. */
const declaration = (name: string) =>
  new RegExp(`^(?:export\\s+)?(?:(?:async\\s+)?function\\*?|class|const|let)\\s+${esc(name)}\\b`, 'm');

/** A method (or property) `name` of a class body: indented, with optional modifiers. */
const member = (name: string) =>
  new RegExp(`^\\s+(?:(?:private|protected|public|static|readonly|async|get|set)\\s+)*${esc(name)}\\s*(?:<[^>]*>)?[(=:]`, 'm');

/**
 * The file declaring `name` (a function, class or const) or `Class.member`, e.g.
 * `where('syncDir')` is 'src/durable.ts'; undefined when nothing declares it.
 */
export function findDeclaration(name: string): string | undefined {
  const [outer, inner] = name.split('.', 2) as [string, string | undefined];
  for (const [path, text] of sourceFiles()) {
    const m = declaration(outer).exec(text);
    if (!m) continue;
    if (inner === undefined || member(inner).test(text.slice(m.index))) return path;
  }
  return undefined;
}

/** The file declaring `name`, for a suggestion's text; a name no longer found says so instead of a wrong path. */
export function where(name: string): string {
  return findDeclaration(name) ?? `(${name} is no longer in src/: this suggestion is out of date)`;
}
