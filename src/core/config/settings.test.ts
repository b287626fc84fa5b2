/**
 * The settings table holds together with what reads it: docs/configuration.md shows it, and no
 * module but env.ts reads the environment (so every variable is in the table, with its default).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { helpText, SETTINGS, settingsMarkdown } from './settings.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

test('docs/configuration.md shows the settings table between its markers', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'configuration.md'), 'utf8');
  const m = /<!-- settings:begin[^>]*-->\n([\s\S]*?)\n<!-- settings:end -->/.exec(doc);
  assert.ok(m, 'docs/configuration.md has <!-- settings:begin --> … <!-- settings:end -->');
  assert.equal(m[1], settingsMarkdown(), 'put this table between the markers (it is made from src/core/config/settings.ts)');
});

/** The .ts files under a folder, tests and test data apart. */
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(path));
    else if (/\.ts$/.test(e.name) && !/\.test(data)?\.ts$/.test(e.name)) out.push(path);
  }
  return out;
}

test('only src/core/config/env.ts reads process.env', () => {
  const readers = sources(join(ROOT, 'src'))
    .map((f) => relative(ROOT, f))
    .filter((f) => /\bprocess\s*(\.\s*env\b|\[\s*['"`]env['"`]\s*\])/.test(readFileSync(join(ROOT, f), 'utf8')));
  assert.deepEqual(readers, [join('src', 'core', 'config', 'env.ts')]);
});

test('help text: the description, then the variable and the default', () => {
  assert.equal(helpText('dir'), 'data directory (default: $STELE_DIR or ./stele-data)');
  assert.equal(helpText('url', 'server URL'), 'server URL (default: $STELE_URL or http://127.0.0.1:7433)');
  assert.equal(helpText('tlsKey'), SETTINGS.tlsKey.doc);
});
