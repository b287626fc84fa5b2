/**
 * API tokens off the command line (issue 11, point 5, "Secrets on command lines"): every client
 * command takes --token-file <path>, --token-file - (standard input) and $STELE_TOKEN_FILE, so a
 * key never has to appear in /proc/<pid>/cmdline; --token stays, documented as leaking.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CLI, cleanup, type DataDir, initDir, makeEvent, runStele, SteleServer, tempDir } from './helpers/stele.js';

let data: DataDir;
let server: SteleServer;
let tokenFile: string;

/** `stele <args>` with `input` on standard input and extra environment; never rejects on a non-zero exit. */
function stele(args: string[], input = '', env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const c = spawn(process.execPath, [CLI, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, STELE_TOKEN: '', STELE_TOKEN_FILE: '', STELE_DIR: '/nonexistent', ...env },
    });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    c.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => c.kill('SIGKILL'), 60_000);
    c.on('error', reject);
    c.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    c.stdin.end(input);
  });
}

before(async () => {
  data = await initDir('token-file.test/log');
  server = await SteleServer.start(data.dir, { checkpointIntervalMs: 20 });
  tokenFile = join(tempDir(), 'stele.token');
  writeFileSync(tokenFile, `${data.token}\n`, { mode: 0o600 });
});
after(cleanup);

test('append and search with --token-file <path>: the key is not on the command line', async () => {
  const ev = makeEvent();
  const a = await stele(['append', '--url', server.url, '--token-file', tokenFile, JSON.stringify(ev)]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(JSON.parse(a.stdout).id, ev.id);
  const s = await stele(['search', '--url', server.url, '--token-file', tokenFile, '--json', `id:${ev.id}`]);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, new RegExp(ev.id as string));
  assert.equal(a.stderr, '', 'no warning for an owner-only file');
});

test('--token-file - reads the token from standard input (CRLF and blank lines tolerated)', async () => {
  const s = await stele(['keys', 'list', '--url', server.url, '--token-file', '-', '--json'], `\r\n${data.token}\r\n`);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, /"admin"/);
  const ev = makeEvent();
  const a = await stele(['append', '--url', server.url, '--token-file', '-', JSON.stringify(ev)], data.token);
  assert.equal(a.code, 0, a.stderr);
  // Events and token cannot both come from standard input.
  const both = await stele(['append', '--url', server.url, '--token-file', '-'], data.token);
  assert.notEqual(both.code, 0);
  assert.match(both.stderr, /--token-file - reads the token from standard input/);
});

test('$STELE_TOKEN_FILE, and clear errors for an empty, missing or doubled token', async () => {
  const s = await stele(['hold', 'list', '--url', server.url, '--json'], '', { STELE_TOKEN_FILE: tokenFile });
  assert.equal(s.code, 0, s.stderr);
  const empty = join(tempDir(), 'empty.token');
  writeFileSync(empty, '\n\n', { mode: 0o600 });
  const e = await stele(['search', '--url', server.url, '--token-file', empty]);
  assert.notEqual(e.code, 0);
  assert.match(e.stderr, /the token file \S+ holds no token/);
  const missing = await stele(['search', '--url', server.url, '--token-file', join(tempDir(), 'nope')]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /cannot read the token file .*ENOENT/);
  const both = await runStele(['search', '--url', server.url, '--token', data.token, '--token-file', tokenFile]);
  assert.notEqual(both.code, 0);
  assert.match(both.output, /either --token or --token-file, not both/);
  const none = await stele(['search', '--url', server.url]);
  assert.match(none.stderr, /no token: pass --token-file/);
});

test('a token file others may read still works, with a warning', async () => {
  const open = join(tempDir(), 'open.token');
  writeFileSync(open, data.token);
  chmodSync(open, 0o644);
  const s = await stele(['search', '--url', server.url, '--token-file', open, '--json']);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stderr, /readable by others \(mode 644\); chmod 600 it/);
});
