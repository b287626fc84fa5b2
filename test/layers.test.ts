/**
 * The layers of src/, checked on every `npm test` so that an import running back up fails the build.
 * Each top-level folder of src/ is a part; `LAYERS` says, bottom first, which other parts each part
 * may import (a part may always import its own files). The test reads every non-test .ts file under
 * src/, finds its relative import specifiers (static `import … from`, `export … from`, side-effect
 * `import '…'`, dynamic `import('…')`; `import type` counts too: a type is a dependency) and asserts
 *   (a) every import between parts is one `LAYERS` allows, and `LAYERS` itself has no cycle;
 *   (b) no cycle between parts and no cycle between files,
 * naming each offending import by file and line. Tests (`*.test.ts`, `*.testdata.ts`) are not
 * checked: a test may drive its unit through a higher layer.
 *
 * No dependency (dependency-cruiser and the like): a small scanner blanks comments, strings and
 * regular expressions before looking for `import`/`from`, which is enough for this code base.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

/** The floors of the house. Add a new folder here, at the lowest floor its imports allow. */
const FLOOR_0 = ['tlog', 'core'] as const; // pure: Merkle trees and notes; errors, durations, durability, Principal
const FLOOR_1 = ['event'] as const; // the event and its record
const DOMAIN = ['log', 'keys', 'policy', 'auth', 'index', 'ingest', 'export', 'sources', 'witness', 'timestamp'] as const;

export const LAYERS: Readonly<Record<string, readonly string[]>> = {
  tlog: [],
  core: [],
  event: ['core'],
  // The domain parts: each may import the floors below and the domain parts listed.
  log: ['tlog', 'core'],
  keys: ['core', 'event'],
  policy: ['core', 'event', 'keys'],
  auth: ['core', 'event', 'keys', 'policy'],
  index: ['tlog', 'core', 'event', 'log', 'keys', 'policy'],
  // Ingest tests each entry against the alert rules' queries as it prepares it (index/alert-rules.ts).
  ingest: ['tlog', 'core', 'event', 'log', 'keys', 'policy', 'index'],
  export: ['tlog', 'core', 'event', 'log', 'keys', 'timestamp'],
  sources: ['tlog', 'core', 'event', 'ingest'],
  // A witness (c2sp.org/tlog-witness) of any log: Stele's own or another's.
  witness: ['tlog', 'core'],
  // RFC 3161 trusted timestamps (requests, responses, tokens checked against trusted TSAs).
  timestamp: ['core'],
  // Where the stores live: one backend interface, one folder per driver.
  storage: [...FLOOR_0, ...FLOOR_1, ...DOMAIN],
  // The use cases (append, read, search, export, erase, hold, keys, policy reload, retention).
  app: [...FLOOR_0, ...FLOOR_1, ...DOMAIN, 'storage'],
  // The two ways in.
  server: [...FLOOR_0, ...FLOOR_1, ...DOMAIN, 'storage', 'app'],
  cli: [...FLOOR_0, ...FLOOR_1, ...DOMAIN, 'storage', 'app', 'server'],
};

/** One relative import: its specifier and 1-based line. */
export interface Import {
  spec: string;
  line: number;
}

/** The graph the checks run on: file (posix, relative to src/, e.g. `app/stele.ts`) → its imports. */
export type Graph = ReadonlyMap<string, readonly Import[]>;

/**
 * The relative import specifiers of a TypeScript source. Comments, the insides of strings and
 * template literals, and regular expression literals are blanked first (newlines kept, so offsets
 * and lines stay right); then each string literal preceded by `from`, `import` or `import(` is one.
 */
export function importsOf(text: string): Import[] {
  const masked = text.split('');
  const strings: { start: number; end: number }[] = [];
  const blank = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (masked[k] !== '\n') masked[k] = ' ';
  };
  // The last significant character outside comments, to tell a regular expression from a division.
  let prev = '';
  let prevWord = '';
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i] as string;
    const d = text[i + 1];
    if (c === '/' && d === '/') {
      const end = text.indexOf('\n', i);
      const stop = end < 0 ? n : end;
      blank(i, stop);
      i = stop;
    } else if (c === '/' && d === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? n : end + 2;
      blank(i, stop);
      i = stop;
    } else if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < n && text[j] !== c && text[j] !== '\n') j += text[j] === '\\' ? 2 : 1;
      strings.push({ start: i, end: j + 1 });
      blank(i + 1, j);
      i = j + 1;
      prev = c;
      prevWord = '';
    } else if (c === '`') {
      // A template literal: blank it whole, `${…}` included (an import inside one is not a dependency
      // this scanner needs to see).
      let j = i + 1;
      let depth = 0;
      while (j < n) {
        const t = text[j];
        if (t === '\\') j += 2;
        else if (depth === 0 && t === '`') break;
        else if (t === '$' && text[j + 1] === '{') {
          depth++;
          j += 2;
        } else {
          if (t === '}' && depth > 0) depth--;
          j++;
        }
      }
      blank(i + 1, j);
      i = j + 1;
      prev = '`';
      prevWord = '';
    } else if (
      c === '/' &&
      (prev === '' || '(,=:[!&|?{};+-*%<>~^'.includes(prev) || /^(return|typeof|case|in|of|void|throw)$/.test(prevWord))
    ) {
      // A regular expression literal (it may hold quotes): up to the closing unescaped `/` outside a class.
      let j = i + 1;
      let inClass = false;
      while (j < n && text[j] !== '\n') {
        const t = text[j];
        if (t === '\\') j += 2;
        else {
          if (t === '[') inClass = true;
          else if (t === ']') inClass = false;
          else if (t === '/' && !inClass) break;
          j++;
        }
      }
      blank(i + 1, j);
      i = j + 1;
      prev = '/';
      prevWord = '';
    } else {
      if (/\s/.test(c)) {
        i++;
        continue;
      }
      if (/[\w$]/.test(c)) {
        let j = i;
        while (j < n && /[\w$]/.test(text[j] as string)) j++;
        prevWord = text.slice(i, j);
        prev = 'a';
        i = j;
        continue;
      }
      prev = c;
      prevWord = '';
      i++;
    }
  }
  const code = masked.join('');
  const out: Import[] = [];
  for (const s of strings) {
    const before = code.slice(Math.max(0, s.start - 40), s.start);
    if (!/(?:\bfrom|(?<![.\w$])import(?:\s*\()?)\s*$/.test(before)) continue;
    const spec = text.slice(s.start + 1, s.end - 1);
    if (!spec.startsWith('./') && !spec.startsWith('../')) continue;
    out.push({ spec, line: text.slice(0, s.start).split('\n').length });
  }
  return out;
}

/** `app/stele.ts` → `app`; a file directly in src/ is in no part (`(root)`). */
export function partOf(file: string): string {
  const slash = file.indexOf('/');
  return slash < 0 ? '(root)' : file.slice(0, slash);
}

/** The file an import names, relative to src/ (`../core/errors.js` from `app/stele.ts` → `core/errors.ts`). */
export function resolve(from: string, spec: string): string {
  return posix.normalize(posix.join(posix.dirname(from), spec)).replace(/\.js$/, '.ts');
}

/** A cycle in a directed graph, as the list of nodes from the first back to it, or null. */
function findCycle<T>(nodes: Iterable<T>, next: (n: T) => Iterable<T>): T[] | null {
  const state = new Map<T, 'open' | 'done'>();
  const path: T[] = [];
  const visit = (n: T): T[] | null => {
    state.set(n, 'open');
    path.push(n);
    for (const m of next(n)) {
      const s = state.get(m);
      if (s === 'open') return [...path.slice(path.indexOf(m)), m];
      if (s === undefined) {
        const c = visit(m);
        if (c) return c;
      }
    }
    path.pop();
    state.set(n, 'done');
    return null;
  };
  for (const n of nodes) {
    if (state.has(n)) continue;
    const c = visit(n);
    if (c) return c;
  }
  return null;
}

/** Every problem with the layering of `graph` under `layers`, one line each naming file and line. */
export function layerProblems(graph: Graph, layers: Readonly<Record<string, readonly string[]>>): string[] {
  const problems: string[] = [];
  const declared = findCycle(Object.keys(layers), (p) => layers[p] ?? []);
  if (declared) problems.push(`the declared layers have a cycle: ${declared.join(' → ')}`);
  for (const [p, below] of Object.entries(layers)) {
    for (const q of below) if (!(q in layers)) problems.push(`layer ${p} may import ${q}, which is not a declared layer`);
  }

  const at = (file: string, imp: Import) => `src/${file}:${imp.line} imports '${imp.spec}'`;
  // (a) every import between parts is allowed.
  const partEdges = new Map<string, Map<string, string>>(); // part → part → one import, for messages
  for (const [file, imports] of graph) {
    const from = partOf(file);
    if (!(from in layers)) {
      problems.push(`src/${file} is in no declared layer (${from}): move it into one or add its folder to LAYERS`);
      continue;
    }
    for (const imp of imports) {
      const target = resolve(file, imp.spec);
      if (target.startsWith('../')) {
        problems.push(`${at(file, imp)}, outside src/`);
        continue;
      }
      if (!graph.has(target)) {
        problems.push(`${at(file, imp)}: no such file src/${target} (or it is a test)`);
        continue;
      }
      const to = partOf(target);
      if (to === from) continue;
      if (!layers[from]?.includes(to)) {
        problems.push(
          `${at(file, imp)}: ${from} may not import ${to} (${from} may import: ${layers[from]?.join(', ') || 'nothing'})`,
        );
      }
      const m = partEdges.get(from) ?? new Map<string, string>();
      partEdges.set(from, m);
      if (!m.has(to)) m.set(to, at(file, imp));
    }
  }
  // (b) no cycle between parts, whatever LAYERS says, …
  const partCycle = findCycle(partEdges.keys(), (p) => partEdges.get(p)?.keys() ?? []);
  if (partCycle) {
    const steps = partCycle.slice(1).map((q, k) => partEdges.get(partCycle[k] as string)?.get(q));
    problems.push(`the parts form a cycle ${partCycle.join(' → ')}: ${steps.join('; ')}`);
  }
  // … and none between files.
  const lineOf = (a: string, b: string) => graph.get(a)?.find((imp) => resolve(a, imp.spec) === b);
  const fileCycle = findCycle(graph.keys(), (f) =>
    (graph.get(f) ?? []).map((imp) => resolve(f, imp.spec)).filter((t) => graph.has(t)),
  );
  if (fileCycle) {
    const steps = fileCycle.slice(1).map((b, k) => {
      const a = fileCycle[k] as string;
      const imp = lineOf(a, b);
      return imp ? at(a, imp) : `src/${a} → src/${b}`;
    });
    problems.push(`import cycle between files: ${steps.join('; ')}`);
  }
  return problems;
}

/** The real graph: every .ts file under src/ that is not a test. */
function srcGraph(root: string): Map<string, Import[]> {
  const graph = new Map<string, Import[]>();
  const walk = (dir: string) => {
    for (const e of readdirSync(`${root}${dir}`, { withFileTypes: true })) {
      const rel = dir ? `${dir}/${e.name}` : e.name;
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.ts') && !/\.test\.ts$|\.testdata\.ts$/.test(e.name)) {
        graph.set(rel, importsOf(readFileSync(`${root}${rel}`, 'utf8')));
      }
    }
  };
  walk('');
  return graph;
}

// This file runs as dist/test/layers.test.js; the sources are in <repo>/src/.
const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

describe('layers', () => {
  test('src/ imports only downwards, without cycles', () => {
    assert.ok(existsSync(`${SRC}core`), `no sources at ${SRC}`);
    const graph = srcGraph(SRC);
    assert.ok(graph.size > 100, `only ${graph.size} files read from ${SRC}`);
    const problems = layerProblems(graph, LAYERS);
    assert.deepEqual(problems, [], `\n${problems.join('\n')}`);
  });

  test('every folder of src/ is a declared layer', () => {
    const folders = readdirSync(SRC, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    assert.deepEqual(
      folders.filter((f) => !(f in LAYERS)),
      [],
    );
  });

  test('the scanner finds static, re-export, side-effect, type and dynamic imports, and nothing in comments or strings', () => {
    const text = [
      "import { a } from './a.js';", // 1
      "import type { B } from '../core/b.js';", // 2
      'import {', // 3
      '  c,', // 4
      "} from './c.js';", // 5
      "export { d } from './d.js';", // 6
      "export * from './e.js';", // 7
      "import './side.js';", // 8
      "const f = await import('./f.js');", // 9
      "// import { x } from './comment.js';", // 10
      "/* import { y } from './block.js'; */", // 11
      'const s = "import { z } from \'./string.js\'";', // 12
      "const r = /from '.\\/regex.js'/;", // 13
      "const t = `import('./template.js') $" + "{'x'}`;", // 14
      "import { join } from 'node:path';", // 15
      "const m = import.meta.url; const g = a / 2; const h = f('./not-import.js');", // 16
    ].join('\n');
    assert.deepEqual(importsOf(text), [
      { spec: './a.js', line: 1 },
      { spec: '../core/b.js', line: 2 },
      { spec: './c.js', line: 5 },
      { spec: './d.js', line: 6 },
      { spec: './e.js', line: 7 },
      { spec: './side.js', line: 8 },
      { spec: './f.js', line: 9 },
    ]);
  });

  test('the checker fails on an upward import, naming file and line', () => {
    const layers = { core: [], domain: ['core'], app: ['core', 'domain'] };
    const graph: Graph = new Map([
      ['core/errors.ts', [{ spec: '../app/stele.js', line: 3 }]],
      ['domain/log.ts', [{ spec: '../core/errors.js', line: 1 }]],
      ['app/stele.ts', [{ spec: '../domain/log.js', line: 7 }]],
    ]);
    const problems = layerProblems(graph, layers);
    assert.equal(
      problems[0],
      "src/core/errors.ts:3 imports '../app/stele.js': core may not import app (core may import: nothing)",
    );
    // The same import closes a cycle of parts and of files.
    assert.match(problems[1] ?? '', /^the parts form a cycle core → app → domain → core: src\/core\/errors\.ts:3/);
    assert.match(
      problems[2] ?? '',
      /^import cycle between files: src\/core\/errors\.ts:3 imports '\.\.\/app\/stele\.js'; src\/app\/stele\.ts:7/,
    );
    assert.equal(problems.length, 3);
    // Without it, all is well.
    const fixed = new Map(graph);
    fixed.set('core/errors.ts', []);
    assert.deepEqual(layerProblems(fixed, layers), []);
  });

  test('the checker finds a cycle of files inside one part, and a cycle in the declared layers', () => {
    const graph: Graph = new Map([
      ['policy/policy.ts', [{ spec: './cedar.js', line: 22 }]],
      ['policy/cedar.ts', [{ spec: './policy.js', line: 14 }]],
    ]);
    assert.deepEqual(layerProblems(graph, { policy: [] }), [
      "import cycle between files: src/policy/policy.ts:22 imports './cedar.js'; src/policy/cedar.ts:14 imports './policy.js'",
    ]);
    assert.deepEqual(layerProblems(new Map(), { a: ['b'], b: ['a'] }), ['the declared layers have a cycle: a → b → a']);
  });

  test('the checker names files outside any layer and imports of missing files', () => {
    const graph: Graph = new Map([
      ['stray.ts', []],
      ['core/a.ts', [{ spec: './gone.js', line: 2 }]],
    ]);
    assert.deepEqual(layerProblems(graph, { core: [] }), [
      'src/stray.ts is in no declared layer ((root)): move it into one or add its folder to LAYERS',
      "src/core/a.ts:2 imports './gone.js': no such file src/core/gone.ts (or it is a test)",
    ]);
  });
});
