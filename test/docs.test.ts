/**
 * The documentation holds together: the README stays a newcomer's page (short, shows the set-up and
 * the test command CI runs), every page under docs/ and every client's README is reachable from it,
 * and every relative link, anchors included, points at something that exists. Moving a section or
 * renaming a heading then fails here rather than leaving a dead link.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ERROR_STATUS } from '../src/core/errors.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Markdown files under a folder of the repository, as paths relative to its root. */
function markdownUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) out.push(...markdownUnder(path));
    else if (name.endsWith('.md')) out.push(path);
  }
  return out;
}

const PAGES = ['README.md', ...markdownUnder('docs'), ...markdownUnder('contrib'), 'clients/emacs/README.md'].map((p) =>
  normalize(p),
);

/** Text outside fenced code blocks: a `#` comment in a shell block is no heading, a `[x](y)` in code no link. */
function prose(path: string): string {
  let fenced = false;
  return readFileSync(join(ROOT, path), 'utf8')
    .split('\n')
    .filter((line) => {
      if (line.startsWith('```')) fenced = !fenced;
      return !fenced && !line.startsWith('```');
    })
    .join('\n');
}

/** The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens. */
function anchors(path: string): Set<string> {
  const out = new Set<string>();
  for (const m of prose(path).matchAll(/^#+ (.*)$/gm))
    out.add(
      (m[1] as string)
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\- _]/gu, '')
        .replace(/ /g, '-'),
    );
  return out;
}

/** The relative links of a page, resolved to repository paths (a folder stands for its README.md). */
function links(path: string): { href: string; target: string; anchor: string }[] {
  const out = [];
  for (const m of prose(path).matchAll(/\]\(([^)\s]+)\)/g)) {
    const href = m[1] as string;
    if (/^[a-z]+:/.test(href)) continue;
    const [file = '', anchor = ''] = href.split('#');
    let target = file === '' ? path : normalize(join(dirname(path), file));
    if (existsSync(join(ROOT, target, 'README.md'))) target = join(target, 'README.md');
    out.push({ href, target, anchor });
  }
  return out;
}

test('the README is a short first page with the set-up and the test command CI runs', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const lines = readme.split('\n').length - 1;
  assert.ok(lines < 300, `README.md has ${lines} lines: move detail to docs/`);
  const ci = readFileSync(join(ROOT, '.ci/run'), 'utf8');
  assert.match(ci, /^npm test$/m);
  for (const command of ['npm install && npm start', 'npm test', 'npm link'])
    assert.ok(readme.includes(command), `README.md does not show ${command}`);
});

test('every relative link of the docs points at a file that exists, and at a heading it has', () => {
  const dead: string[] = [];
  for (const page of PAGES)
    for (const { href, target, anchor } of links(page)) {
      if (!existsSync(join(ROOT, target))) dead.push(`${page}: ${href} (no ${target})`);
      else if (anchor !== '' && target.endsWith('.md') && !anchors(target).has(anchor))
        dead.push(`${page}: ${href} (no heading #${anchor} in ${target})`);
    }
  assert.deepEqual(dead, []);
});

test('every page of docs/, contrib/ and the Emacs client is reachable from the README', () => {
  const seen = new Set<string>();
  const todo = ['README.md'];
  for (let page = todo.pop(); page !== undefined; page = todo.pop()) {
    if (seen.has(page) || !page.endsWith('.md') || !existsSync(join(ROOT, page))) continue;
    seen.add(page);
    for (const { target } of links(page)) todo.push(target);
  }
  assert.deepEqual(
    PAGES.filter((p) => !seen.has(p)),
    [],
  );
});

test('docs/http-api.md lists every error code with the status ERROR_STATUS gives it, and no other', () => {
  const page = prose('docs/http-api.md');
  const section = page.slice(page.indexOf('\n## Errors\n'));
  const documented: Record<string, number> = {};
  for (const m of section.matchAll(/^\| `([a-z0-9_]+)` \| (\d{3}) \|/gm)) documented[m[1] as string] = Number(m[2]);
  assert.deepEqual(documented, { ...ERROR_STATUS });
});
