/**
 * `stele --version` and `stele --help` load only the CLI's declarations, not the commands (and
 * through them fastify, Cedar, SQLite, jose...): main.ts imports each command when it runs.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const CLI = fileURLToPath(new URL('./main.js', import.meta.url));
const PACKAGE = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

/** A module-loader hook that prints the URL of every ES module loaded to standard error. */
const HOOK = `data:text/javascript,${encodeURIComponent(
  'export async function load(url, context, next) { process.stderr.write("LOADED " + url + "\\n"); return next(url, context); }',
)}`;
const REGISTER = `data:text/javascript,${encodeURIComponent(`import { register } from 'node:module'; register(${JSON.stringify(HOOK)});`)}`;

async function loaded(args: string[]): Promise<{ stdout: string; modules: string[] }> {
  const r = await promisify(execFile)(process.execPath, ['--import', REGISTER, CLI, ...args]);
  const modules = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('LOADED file:'))
    .map((l) => l.slice('LOADED '.length));
  return { stdout: r.stdout, modules };
}

for (const args of [['--version'], ['--help'], ['policy', '--help']]) {
  test(`stele ${args.join(' ')} loads no command module and no library but commander`, async () => {
    const { stdout, modules } = await loaded(args);
    if (args[0] === '--version') assert.equal(stdout.trim(), PACKAGE.version);
    else assert.match(stdout, /^Usage: stele/);
    assert.ok(
      modules.some((m) => m.endsWith('/cli/main.js')),
      'the hook saw the CLI load',
    );
    const libraries = modules.filter((m) => m.includes('/node_modules/') && !m.includes('/node_modules/commander/'));
    assert.deepEqual(libraries, []);
    const own = modules.filter((m) => !m.includes('/node_modules/'));
    assert.deepEqual(
      own.filter((m) => m.includes('/cli/commands/')),
      [],
    );
    assert.ok(own.length <= 5, `only the CLI's declarations load, not:\n${own.join('\n')}`);
  });
}
