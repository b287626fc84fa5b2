/**
 * `stele serve` start-up failures through the real CLI: a busy port is one clear line and a
 * non-zero exit, before any data directory is created or locked.
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
