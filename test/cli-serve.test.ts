/**
 * `stele serve` start-up failures through the real CLI: a busy port or a bad option is one clear
 * line and a non-zero exit, before any data directory is created or locked.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { listenError } from '../src/cli/commands/serve.js';
import { SteleError } from '../src/core/errors.js';
import { cleanup, initDir, runStele, tempDir } from './helpers/stele.js';

let busy: Server;
let port: number;

before(async () => {
  busy = createServer();
  await new Promise<void>((resolve) => busy.listen({ host: '127.0.0.1', port: 0 }, resolve));
  port = (busy.address() as { port: number }).port;
});

after(async () => {
  await new Promise((resolve) => busy.close(resolve));
  await cleanup();
});

test('serve on a busy port: one line, exit 1, no data directory created', async () => {
  const dir = join(tempDir(), 'data');
  const r = await runStele(['serve', '--dir', dir, '--listen', `127.0.0.1:${port}`]);
  assert.equal(r.code, 1, r.output);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, `stele: 127.0.0.1:${port} is already in use (another server?); choose another with --listen\n`);
  assert.equal(existsSync(dir), false, 'no data directory is created for a server that cannot start');
});

test('serve on a busy port with an existing data directory: the directory is left unlocked', async () => {
  const { dir } = await initDir('cli-serve.test/log');
  const r = await runStele(['serve', '--dir', dir, '--listen', `127.0.0.1:${port}`]);
  assert.equal(r.code, 1, r.output);
  assert.match(r.stderr, /^stele: 127\.0\.0\.1:\d+ is already in use/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(existsSync(join(dir, 'LOCK')), false);
});

test('serve with a bad option or variable: one line naming it, exit 1, no data directory created', async () => {
  const dir = join(tempDir(), 'data');
  const cases: [string[], Record<string, string>, string][] = [
    [['--max-connections', '0'], {}, '--max-connections must be an integer of at least 1, got "0"'],
    [['--log-level', 'loud'], {}, '--log-level must be one of fatal, error, warn, info, debug, trace, silent, got "loud"'],
    [['--listen', '127.0.0.1:99999'], {}, '--listen must be host:port, got "127.0.0.1:99999"'],
    [['--idle-timeout', '0s'], {}, '--idle-timeout must be longer than 0, got "0s"'],
    [['--tls-key', 'k.pem'], {}, '--tls-cert and --tls-key go together'],
    [['--dir', ''], {}, '--dir must not be empty'],
    [['--origin', 'no spaces'], {}, 'origin "no spaces" cannot name a signing key: '],
  ];
  for (const [args, env, message] of cases) {
    const r = await runStele(['serve', '--dir', dir, ...args], 60_000, env);
    assert.equal(r.code, 1, r.output);
    assert.ok(r.stderr.startsWith(`stele: ${message}`) && r.stderr.split('\n').length === 2, r.stderr);
    assert.equal(existsSync(dir), false, `${args.join(' ')} created nothing`);
  }
  // $STELE_DIR names the directory; a bad option still creates nothing there.
  const r = await runStele(['serve', '--rate-limit', 'many'], 60_000, { STELE_DIR: dir });
  assert.equal(r.stderr, 'stele: --rate-limit must be an integer of at least 1, got "many"\n');
  assert.equal(existsSync(dir), false);
});

test('an API command with a bad $STELE_URL: one line naming the variable', async () => {
  const r = await runStele(['search', '--token', 't'], 60_000, { STELE_URL: 'stele.example:7433' });
  assert.equal(r.code, 1, r.output);
  assert.equal(r.stderr, 'stele: $STELE_URL must be an http or https URL, got "stele.example:7433"\n');
});

test('listenError: one line for the errors a listen address can cause, others unchanged', () => {
  const err = (code: string) => Object.assign(new Error(code), { code });
  const inUse = listenError('::1', 7433, err('EADDRINUSE'));
  assert.ok(inUse instanceof SteleError);
  assert.equal(inUse.message, '[::1]:7433 is already in use (another server?); choose another with --listen');
  assert.match((listenError('0.0.0.0', 80, err('EACCES')) as Error).message, /^0\.0\.0\.0:80: not allowed to listen there/);
  assert.match(
    (listenError('10.9.9.9', 1, err('EADDRNOTAVAIL')) as Error).message,
    /10\.9\.9\.9 is not an address of this machine/,
  );
  const other = err('EMFILE');
  assert.equal(listenError('127.0.0.1', 1, other), other);
});
