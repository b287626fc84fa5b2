/**
 * Interoperability with a reference implementation: Go's golang.org/x/mod/sumdb/note and
 * sumdb/tlog (Debian's golang-golang-x-mod-dev) check a log that a real `stele serve` wrote, and
 * Stele checks proofs that x/mod produced. The Go side is test/interop/verifier/main.go.
 *
 * Needs `go` and the x/mod source tree (apt-get install golang-go golang-golang-x-mod-dev). Without
 * them the suite is skipped, except under CI=true where that is a failure.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseCheckpoint } from '../../src/tlog/checkpoint.js';
import { leafHash } from '../../src/tlog/hash.js';
import { newVerifier, openNote } from '../../src/tlog/note.js';
import { rootFromInclusionProof, verifyConsistency, verifyInclusion } from '../../src/tlog/proof.js';
import { entriesPath, tilePath } from '../../src/tlog/tile.js';
import { rng } from '../helpers/prng.js';

// This file runs from dist/test/interop/; the Go source is not compiled, so it stays in test/.
const VERIFIER_SRC = fileURLToPath(new URL('../../../test/interop/verifier/main.go', import.meta.url));
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const XMOD = process.env.STELE_XMOD_SRC ?? '/usr/share/gocode/src/golang.org/x/mod';
const INSTALL = 'apt-get install -y golang-go golang-golang-x-mod-dev';

/** Enough for 273 full level-0 tiles, a full level-1 tile (65,536 entries) and a level-2 tile. */
const TOTAL = 70_000;
const BATCH = 1000;
const ORIGIN = 'interop.example/stele/log';

function prerequisiteProblem(): string | null {
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.error || go.status !== 0) return `the Go toolchain ("go") is not on PATH (${INSTALL})`;
  if (!existsSync(join(XMOD, 'sumdb', 'tlog', 'tlog.go')) || !existsSync(join(XMOD, 'sumdb', 'note', 'note.go'))) {
    return `golang.org/x/mod source not found under ${XMOD} (${INSTALL}, or set STELE_XMOD_SRC)`;
  }
  return null;
}

const problem = prerequisiteProblem();
if (problem !== null && process.env.CI === 'true') {
  test('Go interop prerequisites', () => assert.fail(`CI must run the Go interop test: ${problem}`));
}

// ---- helpers --------------------------------------------------------------------------------------

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion, collecting its output; never rejects on a non-zero exit. */
function run(cmd: string, args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }),
    );
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

const uuid = (r: () => number) => {
  const h = Array.from({ length: 32 }, () => Math.floor(r() * 16).toString(16)).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

/**
 * Varied events: every actor type, outcomes, optional fields, non-ASCII text, sizes from tiny to
 * ~12 KB, and now and then a retry of an earlier event with its id (which appends nothing: a
 * repeated id with other content would be refused with 409).
 */
function makeEvent(r: () => number, i: number, withIds: Record<string, unknown>[]): Record<string, unknown> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  if (r() < 0.002 && withIds.length > 0) return pick(withIds);
  const type = pick(['human', 'service', 'ai_agent'] as const);
  const e: Record<string, unknown> = {
    actor: {
      id: pick(['alice@example.com', 'svc-deploy', 'Zoë Ñúñez', 'agent-7']),
      type,
      ...(type === 'ai_agent' ? { on_behalf_of: 'bob' } : {}),
    },
    action: pick(['git.commit', 'emacs.package.install', 'k8s.configmaps.update', 'db.rows.delete', 'auth.login_failed']),
    source:
      r() < 0.5 ? { kind: 'git' } : { kind: 'kubernetes', host: `node-${i % 17}`, agent: 'stele-webhook', version: '0.1.0' },
    outcome: pick(['success', 'failure', 'denied'] as const),
  };
  if (r() < 0.3) {
    e.id = r() < 0.5 ? uuid(r) : uuid(r).toUpperCase();
    withIds.push(e);
  }
  if (r() < 0.3) e.time = `2026-0${1 + (i % 9)}-1${i % 10}T0${i % 10}:15:03.${String(i % 1000).padStart(3, '0')}+02:00`;
  if (r() < 0.5) e.resource = { type: 'repository', id: `https://git.example/${i}/ü/${'x'.repeat(i % 300)}` };
  if (r() < 0.2)
    e.reason = pick(['ticket CHG-1234', 'rollback ↩', 'emoji 🚀 and U+2028 \u2028 here', 'quote " and \\ backslash']);
  if (r() < 0.1) e.approval = { by: 'carol', ticket: `CHG-${i}` };
  if (r() < 0.1) e.subject = `subject-${i}`;
  if (r() < 0.05) e.attachments = [{ sha256: 'ab'.repeat(32), name: 'diff.patch', size: i, media_type: 'text/x-diff' }];
  const size = r() < 0.02 ? Math.floor(r() * 6000) : Math.floor(r() * 200);
  if (r() < 0.8)
    e.data = {
      i,
      n: r() * 1e6,
      ok: r() < 0.5,
      nested: { list: [1, 'two', null, { three: 3 }] },
      pad: 'é'.repeat(size),
      ctl: '\u0001\t',
    };
  return e;
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const unb64 = (s: string) => Buffer.from(s, 'base64');

interface InclusionProof {
  index: number;
  size: number;
  leaf_hash: string;
  proof: string[];
}
interface ConsistencyProof {
  from: number;
  to: number;
  proof: string[];
}
interface Summary {
  ok: boolean;
  origin: string;
  key_name: string;
  size: number;
  root: string;
  bundles_checked: number;
  tiles_checked: Record<string, number>;
  tiles_checked_total: number;
  beyond_checkpoint: string[];
  ignored_files: string[];
  proofs_checked: { inclusion: number; consistency: number };
  roots: Record<string, string>;
  own_inclusion: (InclusionProof & { root: string })[];
  own_consistency: (ConsistencyProof & { root_from: string; root_to: string })[];
}

// ---- the suite ------------------------------------------------------------------------------------

describe('interop with golang.org/x/mod (sumdb/note, sumdb/tlog)', { skip: problem ?? false, timeout: 300_000 }, () => {
  let tmp: string;
  let verifierBin: string;
  let dataDir: string;
  let vkey: string;
  let token: string;
  let base: string;
  let server: ChildProcess | null = null;
  let serverExit: Promise<number | null>;
  let size: number;
  let root: Buffer;
  const steleInclusion: InclusionProof[] = [];
  const steleConsistency: ConsistencyProof[] = [];
  let summary: Summary;
  let buildMs = 0;

  const get = async (path: string): Promise<unknown> => {
    const res = await fetch(`${base}${path}`);
    const body = await res.text();
    assert.equal(res.status, 200, `GET ${path}: ${body}`);
    return JSON.parse(body) as unknown;
  };
  const post = (body: string, type = 'application/x-ndjson') =>
    fetch(`${base}/v1/events`, { method: 'POST', body, headers: { 'content-type': type, authorization: `Bearer ${token}` } });
  const verify = (logDir: string, proofs?: string) =>
    run(verifierBin, ['-log', logDir, '-vkey', vkey, ...(proofs ? ['-proofs', proofs] : [])]);

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'stele-go-interop-'));

    // Build the verifier once, in module mode against Debian's x/mod tree: no module proxy here,
    // and a private GOCACHE/GOPATH so the build touches nothing outside tmp.
    const src = join(tmp, 'verifier');
    mkdirSync(src);
    copyFileSync(VERIFIER_SRC, join(src, 'main.go'));
    writeFileSync(
      join(src, 'go.mod'),
      `module stele.test/interop/verifier\n\ngo 1.17\n\nrequire golang.org/x/mod v0.0.0\n\nreplace golang.org/x/mod => ${XMOD}\n`,
    );
    verifierBin = join(tmp, 'verifier-bin');
    const t0 = performance.now();
    const build = await run('go', ['build', '-o', verifierBin, '.'], {
      cwd: src,
      env: {
        ...process.env,
        GOFLAGS: '-mod=mod -modcacherw',
        GOPROXY: 'off',
        GOSUMDB: 'off',
        GOTOOLCHAIN: 'local',
        GOWORK: 'off',
        GO111MODULE: 'on',
        GOCACHE: join(tmp, 'gocache'),
        GOPATH: join(tmp, 'gopath'),
      },
    });
    assert.equal(build.code, 0, `go build of the x/mod verifier failed:\n${build.stderr}`);
    buildMs = Math.round(performance.now() - t0);

    dataDir = join(tmp, 'data');
    const init = await run(process.execPath, [CLI, 'init', '--dir', dataDir, '--origin', ORIGIN, '--json']);
    assert.equal(init.code, 0, init.stderr);
    const created = JSON.parse(init.stdout) as { vkey: string; token: string | null };
    vkey = created.vkey;
    token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    assert.equal(created.token, token);
    // Most events are sealed (the default); bulk.* stays in the clear, so the log mixes both kinds
    // of leaf and one plain leaf can be made exactly 65,535 bytes (base64 moves in steps of 4).
    writeFileSync(
      join(dataDir, 'stele.policy.yaml'),
      'version: 1\nretention:\n  default: sealed\n  tiers:\n    - name: plain\n      keep: forever\n      encrypt: false\n' +
        '      match:\n        actions: ["bulk.*"]\n    - name: sealed\n      keep: forever\n',
    );

    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const child = spawn(
      process.execPath,
      [CLI, 'serve', '--dir', dataDir, '--listen', `127.0.0.1:${port}`, '--log-level', 'warn'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    server = child;
    serverExit = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`stele serve did not start:\n${output}`)), 15_000);
      const onData = (b: Buffer) => {
        output += b.toString('utf8');
        if (output.includes('Stele is listening on')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`stele serve exited with ${code}:\n${output}`));
      });
    });
  });

  after(async () => {
    if (server && server.exitCode === null && server.signalCode === null) {
      server.kill('SIGTERM');
      const timer = setTimeout(() => server?.kill('SIGKILL'), 10_000);
      await serverExit;
      clearTimeout(timer);
    }
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test(`appends ${TOTAL} varied events over HTTP and waits for a checkpoint covering them`, async (t) => {
    const r = rng(0x5e1e);
    const t0 = performance.now();
    let highest = -1;
    const withIds: Record<string, unknown>[] = [];
    for (let start = 0; start < TOTAL; start += BATCH) {
      const lines: string[] = [];
      for (let i = start; i < Math.min(TOTAL, start + BATCH); i++) lines.push(JSON.stringify(makeEvent(r, i, withIds)));
      const res = await post(`${lines.join('\n')}\n`);
      const body = await res.text();
      assert.equal(res.status, 200, body);
      for (const e of (JSON.parse(body) as { entries: { index: number }[] }).entries) highest = Math.max(highest, e.index);
    }
    const appendMs = performance.now() - t0;

    // Length-prefix edge: a leaf of exactly 65,535 bytes (the uint16 maximum) is stored; one byte
    // more is refused. The padding is found from a probe, since the record wraps the event.
    const big = (pad: number, id: string) =>
      JSON.stringify({
        id,
        time: '2026-11-22T10:15:03Z',
        actor: { id: 'big', type: 'service' },
        action: 'bulk.import',
        source: { kind: 'http' },
        outcome: 'success',
        data: { pad: 'x'.repeat(pad) },
      });
    const probe = (await (await post(big(60_000, uuid(r)), 'application/json')).json()) as { entries: { index: number }[] };
    const probeIndex = (probe.entries[0] as { index: number }).index;
    const probeLeaf = Buffer.from(
      await (await fetch(`${base}/v1/entries/${probeIndex}`, { headers: { accept: 'application/octet-stream' } })).arrayBuffer(),
    );
    const exact = 60_000 + (65_535 - probeLeaf.length);
    const max = await post(big(exact, uuid(r)), 'application/json');
    assert.equal(max.status, 200, await max.clone().text());
    const maxIndex = ((await max.json()) as { entries: { index: number }[] }).entries[0]?.index as number;
    const maxLeaf = Buffer.from(
      await (await fetch(`${base}/v1/entries/${maxIndex}`, { headers: { accept: 'application/octet-stream' } })).arrayBuffer(),
    );
    assert.equal(maxLeaf.length, 65_535);
    const over = await post(big(exact + 1, uuid(r)), 'application/json');
    assert.equal(over.status, 413, 'a 65,536-byte leaf cannot be length-prefixed in a bundle and must be refused');
    highest = Math.max(highest, maxIndex);

    // Repeated ids answer with earlier indices, so the log is somewhat shorter than TOTAL + 2.
    const want = highest + 1;
    const deadline = Date.now() + 30_000;
    let health: { size: number; checkpoint_size: number };
    for (;;) {
      health = (await get('/healthz')) as typeof health;
      if (health.checkpoint_size >= want || Date.now() > deadline) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.equal(health.checkpoint_size, health.size, 'no checkpoint covered every entry within 30 s');
    const note = await (await fetch(`${base}/log/checkpoint`)).text();
    const cp = parseCheckpoint(openNote(note, [newVerifier(vkey)]).text);
    size = cp.size;
    root = cp.root;
    assert.equal(size, want);
    assert.ok(size >= 65_536 + 256, `log size ${size} is too small for a full level-1 tile`);
    t.diagnostic(
      `go build ${buildMs} ms; appended ${TOTAL} events in ${TOTAL / BATCH} NDJSON batches in ${Math.round(appendMs)} ms; log size ${size}`,
    );
  });

  test('collects inclusion and consistency proofs from the HTTP API and the CLI', async () => {
    const r = rng(42);
    const sizes = [1, 2, 3, 7, 255, 256, 257, 1000, 65_535, 65_536, 65_537, 65_536 + 256, size - 1, size];
    for (let k = 0; k < 20; k++) sizes.push(1 + Math.floor(r() * size));
    for (const s of sizes) {
      for (const index of new Set([0, s - 1, Math.floor(r() * s), Math.floor(s / 2)])) {
        steleInclusion.push((await get(`/v1/proofs/inclusion?index=${index}&size=${s}`)) as InclusionProof);
      }
      for (const from of new Set([1, Math.floor(s / 2) || 1, s])) {
        if (from <= s) steleConsistency.push((await get(`/v1/proofs/consistency?from=${from}&to=${s}`)) as ConsistencyProof);
      }
      steleConsistency.push((await get(`/v1/proofs/consistency?from=${s}`)) as ConsistencyProof); // to = latest
    }
    // Defaults (size / to = latest checkpoint), and the empty proofs of RFC 9162.
    steleInclusion.push((await get(`/v1/proofs/inclusion?index=${size - 1}`)) as InclusionProof);
    steleConsistency.push((await get(`/v1/proofs/consistency?from=0&to=${size}`)) as ConsistencyProof);
    steleConsistency.push((await get(`/v1/proofs/consistency?from=${size}&to=${size}`)) as ConsistencyProof);

    // `stele prove` reads the tiles over HTTP, a different path from the server's own.
    const cli = await Promise.all([
      run(process.execPath, [CLI, 'prove', '--url', base, '--vkey', vkey, '--index', '65535', '--size', '65537']),
      run(process.execPath, [CLI, 'prove', '--url', base, '--vkey', vkey, '--index', String(size - 2)]),
      run(process.execPath, [CLI, 'prove', '--url', base, '--vkey', vkey, '--from', '65536', '--to', String(size)]),
      run(process.execPath, [CLI, 'prove', '--url', base, '--vkey', vkey, '--from', '300', '--to', String(size - 100)]),
    ]);
    for (const c of cli) {
      assert.equal(c.code, 0, c.stderr);
      const p = JSON.parse(c.stdout) as Partial<InclusionProof & ConsistencyProof>;
      if (p.index !== undefined) steleInclusion.push(p as InclusionProof);
      else steleConsistency.push(p as ConsistencyProof);
    }
    assert.ok(steleInclusion.length > 50 && steleConsistency.length > 50);
  });

  test("x/mod accepts Stele's verifier key, checkpoint, every bundle and tile, and every proof", async (t) => {
    assert.equal(vkey, readFileSync(join(dataDir, 'keys', 'log.vkey'), 'utf8').trim());
    // The log is quiescent from here on: the integrator writes (and removes obsolete partial tiles)
    // only when entries arrive, so files do not change under the verifier.
    // Only the fields the Go side declares: it refuses unknown ones, so a renamed field fails loudly.
    const proofsFile = join(tmp, 'proofs.json');
    writeFileSync(
      proofsFile,
      JSON.stringify({
        inclusion: steleInclusion.map(({ index, size, leaf_hash, proof }) => ({ index, size, leaf_hash, proof })),
        consistency: steleConsistency.map(({ from, to, proof }) => ({ from, to, proof })),
      }),
    );
    const t0 = performance.now();
    const res = await verify(join(dataDir, 'log'), proofsFile);
    const ms = Math.round(performance.now() - t0);
    assert.equal(res.code, 0, `the x/mod verifier failed:\n${res.stderr}`);
    summary = JSON.parse(res.stdout) as Summary;
    t.diagnostic(
      `x/mod verifier: ${ms} ms, size ${summary.size}, ${summary.bundles_checked} bundles, tiles per level ${JSON.stringify(summary.tiles_checked)}, ` +
        `${summary.proofs_checked.inclusion}+${summary.proofs_checked.consistency} Stele proofs, ` +
        `${summary.own_inclusion.length}+${summary.own_consistency.length} own proofs`,
    );
    assert.equal(summary.ok, true);
    assert.equal(summary.origin, ORIGIN);
    assert.equal(summary.key_name, ORIGIN);
    assert.equal(summary.size, size);
    assert.equal(summary.root, b64(root));
    assert.deepEqual(summary.ignored_files, [], 'files under tile/ that are not C2SP paths');
    assert.deepEqual(summary.beyond_checkpoint, [], 'tiles or bundles past the checkpoint of a quiescent log');
    assert.ok(summary.bundles_checked >= Math.ceil(size / 256));
    // Level 0 and 1 have full tiles plus a partial; level 2 a partial of one hash.
    assert.ok((summary.tiles_checked['0'] ?? 0) >= Math.ceil(size / 256));
    assert.ok((summary.tiles_checked['1'] ?? 0) >= 2);
    assert.ok((summary.tiles_checked['2'] ?? 0) >= 1);
    assert.equal(summary.tiles_checked['3'], undefined);
    assert.deepEqual(summary.proofs_checked, { inclusion: steleInclusion.length, consistency: steleConsistency.length });
  });

  test("Stele verifies x/mod's own proofs, which equal Stele's, over the same roots", async () => {
    const goRoot = (s: number) => unb64(summary.roots[String(s)] ?? assert.fail(`x/mod gave no root for size ${s}`));
    assert.deepEqual(goRoot(size), root);
    for (const p of summary.own_inclusion) {
      const proof = p.proof.map(unb64);
      const r = unb64(p.root);
      assert.deepEqual(r, goRoot(p.size));
      if (p.size === size) assert.deepEqual(r, root);
      verifyInclusion(unb64(p.leaf_hash), p.index, p.size, proof, r);
      // RFC 6962 proofs are unique, so Stele's must be the same hashes; and the root Stele's
      // proof implies must be x/mod's root for that size.
      const mine = (await get(`/v1/proofs/inclusion?index=${p.index}&size=${p.size}`)) as InclusionProof;
      assert.deepEqual(mine.proof, p.proof, `inclusion proof of ${p.index} in ${p.size}`);
      assert.equal(mine.leaf_hash, p.leaf_hash);
      assert.deepEqual(rootFromInclusionProof(unb64(mine.leaf_hash), p.index, p.size, mine.proof.map(unb64)), r);
    }
    for (const p of summary.own_consistency) {
      const [r1, r2] = [unb64(p.root_from), unb64(p.root_to)];
      assert.deepEqual(r1, goRoot(p.from));
      assert.deepEqual(r2, goRoot(p.to));
      verifyConsistency(p.from, p.to, p.proof.map(unb64), r1, r2);
      const mine = (await get(`/v1/proofs/consistency?from=${p.from}&to=${p.to}`)) as ConsistencyProof;
      assert.deepEqual(mine.proof, p.proof, `consistency proof from ${p.from} to ${p.to}`);
    }
    // Stele's leaf hash of raw entries equals x/mod's RecordHash over the bundles.
    for (const p of summary.own_inclusion.slice(0, 10)) {
      const leaf = await fetch(`${base}/v1/entries/${p.index}`, { headers: { accept: 'application/octet-stream' } });
      assert.equal(b64(leafHash(Buffer.from(await leaf.arrayBuffer()))), p.leaf_hash);
    }
    assert.ok(summary.own_inclusion.length > 50 && summary.own_consistency.length > 50);
  });

  test('the x/mod verifier rejects a tampered bundle, tile, checkpoint, proof or key', async (t) => {
    // A copy, so the live server's files are never touched.
    const copy = join(tmp, 'tampered-log');
    cpSync(join(dataDir, 'log'), copy, { recursive: true });
    const flip = async (rel: string, offset: number, expect: RegExp) => {
      const path = join(copy, rel);
      const orig = readFileSync(path);
      const bad = Buffer.from(orig);
      bad[offset] = (bad[offset] as number) ^ 0x01;
      writeFileSync(path, bad);
      const res = await verify(copy);
      writeFileSync(path, orig);
      assert.notEqual(res.code, 0, `the verifier accepted ${rel} with byte ${offset} flipped`);
      assert.match(res.stderr, expect);
    };
    // Byte 10 is inside the first entry's bytes (past its 2-byte length prefix).
    await flip(entriesPath(100), 10, /rebuilt from the entry bundles has root .* the signed checkpoint says/);
    // Hash tiles do not feed the rebuilt root, so these are caught only by the byte-for-byte check.
    await flip(tilePath(1, 0), 5 * 32 + 7, /tile\/1\/000: hash 5 is/);
    await flip(tilePath(0, 3), 0, /tile\/0\/003: hash 0 is/);
    // Partial bundles other than the tip's (older widths, kept until the next sync) are not read to
    // rebuild the tree either; when the live log left one, it must match the entries too.
    const tip = entriesPath(Math.floor(size / 256), size % 256);
    const stale = readdirSync(join(copy, 'tile', 'entries'), { recursive: true, encoding: 'utf8' })
      .map((f) => `tile/entries/${f.split(sep).join('/')}`)
      .find((f) => f.includes('.p/') && f !== tip);
    if (stale) await flip(stale, 10, /disagrees with the entries the signed root commits to/);
    t.diagnostic(stale ? `tampered stale partial bundle ${stale} rejected` : 'no stale partial bundle to tamper with');
    await flip('checkpoint', 0, /note.Open/);
    assert.equal((await verify(copy)).code, 0, 'restored copy verifies again');

    const badProofs = join(tmp, 'bad-proofs.json');
    const { index, size: s, leaf_hash, proof } = steleInclusion.find((x) => x.proof.length > 3) as InclusionProof;
    const bad = proof.with(2, b64(Buffer.alloc(32, 7)));
    writeFileSync(badProofs, JSON.stringify({ inclusion: [{ index, size: s, leaf_hash, proof: bad }], consistency: [] }));
    const res = await verify(copy, badProofs);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /tlog.CheckRecord/);

    const otherKey = await run(process.execPath, [CLI, 'init', '--dir', join(tmp, 'other'), '--origin', ORIGIN, '--json']);
    const wrong = await run(verifierBin, ['-log', copy, '-vkey', (JSON.parse(otherKey.stdout) as { vkey: string }).vkey]);
    assert.notEqual(wrong.code, 0, 'a checkpoint accepted under another key');
    assert.match(wrong.stderr, /note.Open/);
  });

  test('stele serve stops cleanly on SIGTERM, and the log it leaves still verifies', async () => {
    (server as ChildProcess).kill('SIGTERM');
    assert.equal(await serverExit, 0);
    // Shutdown syncs and removes obsolete partial tiles: what remains must still be complete.
    const res = await verify(join(dataDir, 'log'));
    assert.equal(res.code, 0, res.stderr);
    const final = JSON.parse(res.stdout) as Summary;
    assert.equal(final.size, size);
    assert.equal(final.root, b64(root));
  });
});
