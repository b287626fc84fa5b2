/**
 * The Emacs client (clients/emacs/stele.el and stele-verify.el, issues 5 and 17): static checks and
 * its ERT suite, end to end.
 *
 * - the package's files byte-compile with `byte-compile-error-on-warn`, is checkdoc clean and package-lint
 *   clean (Debian's elpa-package-lint; its outdated "Emacs 28 is unreleased" warning is ignored);
 * - clients/emacs/test/stele-test.el runs in a batch Emacs (on the compiled package) against what
 *   this file starts: a real `stele serve` whose policy trusts a real OpenID provider
 *   (test/helpers/idp.ts, with refresh tokens), a writer API key in a temporary authinfo file, and a
 *   small HTTP endpoint through which the ERT suite has a browser approve `stele-login`'s device
 *   code. The ERT tests check every event family against what the server stored.
 *
 * Needs `emacs` (28.1+) and, for the lint, elpa-package-lint (apt-get install emacs-nox
 * elpa-package-lint elpa-magit elpa-use-package git). Without Emacs the suite is skipped, except
 * under CI=true where that is a failure.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { approveDevice, type Idp, startIdp } from './helpers/idp.js';
import { cleanup, type DataDir, initDir, runStele, SteleServer, tempDir } from './helpers/stele.js';

/** This file runs from dist/test/; the Lisp is not compiled by tsc, so it is read from the source tree. */
const LISP = fileURLToPath(new URL('../../clients/emacs/', import.meta.url));
const EMACS = process.env.EMACS ?? 'emacs';
const SITE_LISP = process.env.STELE_SITE_LISP ?? '/usr/share/emacs/site-lisp/elpa';
const INSTALL = 'apt-get install -y emacs-nox elpa-package-lint elpa-magit elpa-use-package git';
const USER = 'alice@acme.test';
/** The files of the stele package. */
const FILES = ['stele.el', 'stele-verify.el'];

function emacsProblem(): string | null {
  const r = spawnSync(EMACS, ['--batch', '-Q', '--eval', '(princ emacs-version)'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return `Emacs ("${EMACS}") is not installed (${INSTALL})`;
  const [major = 0, minor = 0] = r.stdout.trim().split('.').map(Number);
  if (major < 28 || (major === 28 && minor < 1)) return `Emacs ${r.stdout.trim()} is older than 28.1`;
  if (spawnSync('git', ['--version']).status !== 0) return `git is not installed (${INSTALL})`;
  return null;
}

/** The directory of Debian's package-lint, or null. */
function packageLintDir(): string | null {
  if (!existsSync(SITE_LISP)) return null;
  const d = readdirSync(SITE_LISP).find((n) => /^package-lint-\d/.test(n));
  return d ? join(SITE_LISP, d) : null;
}

const problem = emacsProblem();
if (problem !== null && process.env.CI === 'true') {
  test('Emacs client prerequisites', () => assert.fail(`CI must run the Emacs client tests: ${problem}`));
}

interface Run {
  code: number | null;
  output: string;
}

/** Runs emacs with ARGS (and extra environment), killed after `timeoutMs`. */
function runEmacs(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const c = spawn(EMACS, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => {
      output += d;
    });
    c.stderr.setEncoding('utf8').on('data', (d: string) => {
      output += d;
    });
    const timer = setTimeout(() => {
      output += `\n[killed after ${timeoutMs} ms]`;
      c.kill('SIGKILL');
    }, timeoutMs);
    c.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    c.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

const tail = (s: string, n = 6000) => (s.length > n ? `…${s.slice(-n)}` : s);

function policyYaml(idp: Idp): string {
  return `version: 1
identity:
  issuers:
    - issuer: ${idp.issuer}
      audience: ${idp.audience}
roles:
  admin:  { actions: [append, read, search, export, erase, hold, admin], vouch: ["*"] }
  writer: { actions: [append], vouch: ["*"] }
  people: { members: ["*"], actions: [append] }
retention:
  default: compliance
  tiers:
    - name: compliance
      keep: forever
`;
}

/** A URL on which nothing listens: a port the kernel gave us, then closed. */
async function deadUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

describe('Emacs client (clients/emacs/stele.el)', { skip: problem ?? false, timeout: 300_000 }, () => {
  let compiled: string;
  let compileRun: Run;
  let idp: Idp;
  let data: DataDir;
  let server: SteleServer;
  let approver: Server;
  let approverUrl: string;
  let home: string;
  let apiKey: string;

  before(async () => {
    // Byte-compile into a temporary directory (the source tree stays clean); the ERT suite
    // runs on the compiled package, as installed packages do.
    compiled = tempDir('stele-el-');
    for (const f of FILES) copyFileSync(join(LISP, f), join(compiled, f));
    compileRun = await runEmacs([
      '--batch',
      '-Q',
      '-L',
      compiled,
      '--eval',
      '(setq byte-compile-error-on-warn t)',
      '-f',
      'batch-byte-compile',
      ...FILES.map((f) => join(compiled, f)),
    ]);

    idp = await startIdp({ users: [{ email: USER, groups: ['dev'] }], refreshTokens: true });
    data = await initDir('emacs.test/log');
    writeFileSync(join(data.dir, 'stele.policy.yaml'), policyYaml(idp));
    server = await SteleServer.start(data.dir, { checkpointIntervalMs: 20 });
    const made = await runStele([
      'keys',
      'create',
      '--name',
      'emacs',
      '--role',
      'writer',
      '--url',
      server.url,
      '--token',
      data.token,
    ]);
    const key = /stele_[A-Za-z0-9_-]+/.exec(made.stdout)?.[0];
    assert.ok(made.code === 0 && key, `stele keys create failed: ${made.output}`);
    apiKey = key;

    home = tempDir('stele-emacs-home-');
    mkdirSync(join(home, '.emacs.d'));
    const host = new URL(server.url).hostname;
    writeFileSync(join(home, 'authinfo'), `machine ${host} login stele-api-key password ${apiKey}\n`, { mode: 0o600 });

    // The browser of the device flow: the ERT suite posts the verification URL here.
    approver = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => {
        body += d;
      });
      req.on('end', () => {
        void (async () => {
          try {
            const { url, user_code } = JSON.parse(body) as { url: string; user_code?: string };
            await approveDevice(url, USER, user_code);
            res.writeHead(200, { 'content-type': 'application/json' }).end('{"approved":true}');
          } catch (err) {
            res.writeHead(500, { 'content-type': 'text/plain' }).end(String((err as Error).stack ?? err));
          }
        })();
      });
    });
    await new Promise<void>((r) => approver.listen(0, '127.0.0.1', () => r()));
    approverUrl = `http://127.0.0.1:${(approver.address() as AddressInfo).port}/approve`;
  });

  after(async () => {
    await new Promise<void>((r) => (approver ? approver.close(() => r()) : r()));
    await cleanup();
    await idp?.close();
  });

  test('stele.el and stele-verify.el byte-compile with no warning', () => {
    assert.equal(compileRun.code, 0, compileRun.output);
    assert.doesNotMatch(compileRun.output, /Warning|Error/, compileRun.output);
    for (const f of FILES) assert.ok(existsSync(join(compiled, `${f}c`)), f);
  });

  test('stele.el and stele-verify.el are checkdoc clean', async () => {
    for (const f of FILES) {
      const r = await runEmacs([
        '--batch',
        '-Q',
        '-l',
        join(LISP, 'test', 'stele-checks.el'),
        '-f',
        'stele-checks-checkdoc',
        join(LISP, f),
      ]);
      assert.equal(r.code, 0, `${f}: ${r.output}`);
    }
  });

  test('stele.el and stele-verify.el are package-lint clean', async (t) => {
    const dir = packageLintDir();
    if (!dir) {
      if (process.env.CI === 'true') assert.fail(`package-lint is not installed (${INSTALL})`);
      t.skip(`package-lint is not installed (${INSTALL})`);
      return;
    }
    const loadPath = readdirSync(SITE_LISP)
      .filter((n) => /^(package-lint|let-alist)-\d/.test(n))
      .flatMap((n) => ['-L', join(SITE_LISP, n)]);
    for (const f of FILES) {
      const r = await runEmacs([
        '--batch',
        '-Q',
        ...loadPath,
        '-l',
        join(LISP, 'test', 'stele-checks.el'),
        '-f',
        'stele-checks-package-lint',
        join(LISP, f),
      ]);
      assert.equal(r.code, 0, `${f}: ${r.output}`);
    }
  });

  test('ERT suite against a real server and identity provider', { timeout: 240_000 }, async (t) => {
    assert.equal(compileRun.code, 0, `stele.el did not compile:\n${compileRun.output}`);
    const env: Record<string, string> = {
      HOME: home,
      // Every temporary file the suite makes (spools, repositories, archives) goes here, removed by cleanup().
      TMPDIR: tempDir('stele-emacs-tmp-'),
      STELE_TEST_URL: server.url,
      STELE_TEST_ADMIN_TOKEN: data.token,
      STELE_TEST_AUTHINFO: join(home, 'authinfo'),
      STELE_TEST_VKEY: data.vkey,
      STELE_TEST_DEAD_URL: await deadUrl(),
      STELE_TEST_ISSUER: idp.issuer,
      STELE_TEST_CLIENT_ID: idp.clients.device.id,
      STELE_TEST_SCOPES: 'openid email groups offline_access events:write events:read',
      STELE_TEST_RESOURCE: idp.resource,
      STELE_TEST_USER: USER,
      STELE_TEST_APPROVER: approverUrl,
      STELE_TEST_EMACS: EMACS,
      STELE_TEST_LISP_DIR: compiled,
      STELE_TEST_SITE_LISP: SITE_LISP,
    };
    const started = Date.now();
    const r = await runEmacs(
      [
        '--batch',
        '-Q',
        '-L',
        compiled,
        '-l',
        'ert',
        '-l',
        join(LISP, 'test', 'stele-test.el'),
        // STELE_ERT_SELECTOR (a regexp of test names) runs only some tests, for development.
        ...(process.env.STELE_ERT_SELECTOR
          ? ['--eval', `(ert-run-tests-batch-and-exit ${JSON.stringify(process.env.STELE_ERT_SELECTOR)})`]
          : ['-f', 'ert-run-tests-batch-and-exit']),
      ],
      env,
      200_000,
    );
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const summary = /^Ran \d+ tests?, .*$/m.exec(r.output)?.[0] ?? '(no ERT summary)';
    t.diagnostic(`${summary} in ${seconds} s`);
    for (const m of r.output.matchAll(/STELE-BENCH (.*)$/gm)) t.diagnostic(m[1] ?? '');
    for (const m of r.output.matchAll(/^\s+(passed|SKIPPED|FAILED)\s+\d+\/\d+\s+(\S+)\s+\(([\d.]+) sec\)/gm)) {
      t.diagnostic(`${m[1]} ${m[2]} (${Number(m[3]).toFixed(1)} s)`);
    }
    assert.equal(r.code, 0, `ERT failed (${summary}):\n${tail(r.output, 20000)}`);
    assert.match(summary, /Ran \d+ tests, \d+ results as expected, 0 unexpected/);
  });
});
