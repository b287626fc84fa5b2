/**
 * Witnessing end to end: a real `stele witness` process, `stele serve --witness` submitting its
 * checkpoints, and `stele verify --witness` requiring the cosignature. The split view: a second
 * server with a copy of the same data directory (so the same signing key) shows another history;
 * without witnesses a client cannot tell, with the witness it is refused, because the witness
 * cosigns one history only.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatCheckpoint, parseCheckpoint } from '../src/tlog/checkpoint.js';
import { newSigner, newVerifier, openNote, signNote } from '../src/tlog/note.js';
import {
  appendHttp,
  CLI,
  cleanup,
  type DataDir,
  getJson,
  getText,
  initDir,
  makeEvent,
  runStele,
  SteleServer,
  sleep,
  tempDir,
} from './helpers/stele.js';

/** `stele witness` as a child process: its URL and cosigner key once it listens. */
async function startWitness(
  dir: string,
  logs: string[],
): Promise<{ url: string; vkey: string; proc: ChildProcess; output: () => string }> {
  const proc = spawn(
    process.execPath,
    [CLI, 'witness', '--dir', dir, '--name', 'witness.test/w1', '--listen', '127.0.0.1:0', ...logs.flatMap((l) => ['--log', l])],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const url = /listening on (http:\/\/\S+)/.exec(out)?.[1];
    const vkey = /cosigner key: (\S+)/.exec(out)?.[1];
    if (url && vkey) return { url, vkey, proc, output: () => out };
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`stele witness did not start:\n${out}`);
    await sleep(20);
  }
}

const sizeOf = (note: string, vkey: string) => parseCheckpoint(openNote(note, [newVerifier(vkey)]).text).size;

describe('witnessing (c2sp.org/tlog-witness, tlog-cosignature)', { timeout: 180_000 }, () => {
  let data: DataDir;
  let copy: string;
  let witness: Awaited<ReturnType<typeof startWitness>>;
  const servers: SteleServer[] = [];
  before(async () => {
    data = await initDir('witness.test/log');
    // The attacker's second log: the same directory, so the same signing key, before any entry.
    copy = join(tempDir(), 'copy');
    cpSync(data.dir, copy, { recursive: true });
    witness = await startWitness(join(tempDir(), 'w'), [data.vkey]);
  });
  after(async () => {
    for (const s of servers) await s.kill();
    witness?.proc.kill('SIGKILL');
    await cleanup();
  });

  test('the witness answers the spec: 409 with its size as text/x.tlog.size, JSON refusals, a size limit', async () => {
    const res = await fetch(`${witness.url}/add-checkpoint`, { method: 'POST', body: 'old 0\n\nnot a checkpoint\n' });
    assert.equal(res.status, 404, 'an unknown origin');
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /unknown log/);
    // A checkpoint of the log (signed with its key) claiming to follow a size the witness never cosigned.
    const skey = readFileSync(join(data.dir, 'keys', 'log.key'), 'utf8').trim();
    const one = signNote(formatCheckpoint({ origin: 'witness.test/log', size: 1, root: Buffer.alloc(32, 7), extensions: [] }), [
      newSigner(skey),
    ]);
    const stale = await fetch(`${witness.url}/add-checkpoint`, { method: 'POST', body: `old 1\n\n${one}` });
    assert.equal(stale.status, 409);
    assert.equal(stale.headers.get('content-type'), 'text/x.tlog.size');
    assert.equal(await stale.text(), '0\n', 'it has cosigned nothing of this log yet');
    const malformed = await fetch(`${witness.url}/add-checkpoint`, { method: 'POST', body: 'olde 0\n\nx' });
    assert.equal(malformed.status, 400);
    const big = await fetch(`${witness.url}/add-checkpoint`, { method: 'POST', body: 'x'.repeat(70_000) });
    assert.equal(big.status, 413);
  });

  test('a witnessed server serves cosigned checkpoints; stele verify --witness accepts them', async () => {
    const srv = await SteleServer.start(data.dir, {
      checkpointIntervalMs: 100,
      args: ['--witness', `${witness.vkey}@${witness.url}`],
    });
    servers.push(srv);
    const acked = await appendHttp(
      srv.url,
      data.token,
      Array.from({ length: 30 }, (_, n) => makeEvent(undefined, n)),
    );
    const last = Math.max(...acked.map((a) => a.index));
    let note = '';
    const deadline = Date.now() + 30_000;
    for (;;) {
      note = await getText(`${srv.url}/log/checkpoint`);
      if (note.includes('— witness.test/w1 ') && sizeOf(note, data.vkey) > last) break;
      assert.ok(Date.now() < deadline, `no cosigned checkpoint covering ${last} in 30 s:\n${note}\n${srv.output}`);
      await sleep(100);
    }
    const health = await getJson<{ witnesses: { quorum: number; ok: number; cosigned_at: string | null } }>(`${srv.url}/healthz`);
    assert.equal(health.witnesses.quorum, 1);
    assert.equal(health.witnesses.ok, 1);
    assert.ok(health.witnesses.cosigned_at);
    const ok = await runStele(['verify', '--url', srv.url, '--vkey', data.vkey, '--witness', witness.vkey]);
    assert.equal(ok.code, 0, ok.output);
    assert.match(ok.stdout, /cosigned by 1 of 1 witnesses/);
    const w = await getJson<{ logs: Record<string, { size: number }> }>(`${witness.url}/healthz`);
    assert.ok((w.logs['witness.test/log']?.size ?? 0) > last, 'the witness recorded the log');
    // /metrics has what the sample dashboard plots of the witnesses.
    const metrics = await (await fetch(`${srv.url}/metrics`, { headers: { authorization: `Bearer ${data.token}` } })).text();
    const dashboard = readFileSync(fileURLToPath(new URL('../../deploy/grafana/stele.json', import.meta.url)), 'utf8');
    const plotted = new Set([...dashboard.matchAll(/\bstele_witness_[a-z_]+/g)].map((m) => m[0]));
    assert.ok(plotted.size >= 2);
    for (const name of plotted) assert.match(metrics, new RegExp(`^${name}\\{witness="witness.test/w1"\\} `, 'm'), name);
  });

  test('a split view is caught: the second history gets no cosignature, and verify --witness refuses it', async () => {
    const fork = await SteleServer.start(copy, {
      checkpointIntervalMs: 100,
      args: ['--witness', `${witness.vkey}@${witness.url}`],
    });
    servers.push(fork);
    // A longer, different history under the same key.
    await appendHttp(
      fork.url,
      data.token,
      Array.from({ length: 80 }, (_, n) => makeEvent(undefined, 1000 + n)),
    );
    const deadline = Date.now() + 30_000;
    while (!/does not verify|a fork/.test(witness.output() + fork.output)) {
      assert.ok(Date.now() < deadline, `the witness never refused the fork:\n${witness.output()}\n${fork.output}`);
      await sleep(100);
    }
    const note = await getText(`${fork.url}/log/checkpoint`);
    assert.ok(!note.includes('— witness.test/w1 '), 'no cosignature on the fork');
    // Without a witness the fork is a perfectly good log: nothing tells a client it is a second history.
    const alone = await runStele(['verify', '--url', fork.url, '--vkey', data.vkey]);
    assert.equal(alone.code, 0, alone.output);
    const refused = await runStele(['verify', '--url', fork.url, '--vkey', data.vkey, '--witness', witness.vkey]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.output, /0 of the 1 witness cosignatures required \(missing: witness\.test\/w1\+[0-9a-f]{8}\)/);
    // The honest log still verifies with the witness.
    const honest = await runStele(['verify', '--url', servers[0]?.url as string, '--vkey', data.vkey, '--witness', witness.vkey]);
    assert.equal(honest.code, 0, honest.output);
    const m = await getJson<{ witnesses: { ok: number } }>(`${fork.url}/healthz`);
    assert.equal(m.witnesses.ok, 0, 'the fork sees its witness failing');
  });

  test('bad witness options are refused before anything starts', async () => {
    const dir = join(tempDir(), 'd');
    const r = await runStele(['serve', '--dir', dir, '--listen', '127.0.0.1:0', '--witness', 'no-at-sign']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--witness: witness 1 must be <verifier key>@<URL>/);
    const q = await runStele([
      'verify',
      '--url',
      'http://127.0.0.1:9',
      '--vkey',
      data.vkey,
      '--witness',
      witness.vkey,
      '--witness-quorum',
      '2',
    ]);
    assert.notEqual(q.code, 0);
    assert.match(q.stderr, /--witness-quorum must be 1 to 1/);
  });
});
