/**
 * RFC 3161 timestamps (src/timestamp) against a real TSA: `openssl ts -reply` behind HTTP
 * (test/helpers/tsa.ts). Skipped without openssl, except under CI=true.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { requestTimestamp } from '../src/timestamp/client.js';
import { certificatesFromPem, verifyTimestamp } from '../src/timestamp/rfc3161.js';
import {
  appendHttp,
  cleanup,
  getJson,
  initDir,
  makeEvent,
  requestJson,
  runStele,
  SteleServer,
  sleep,
  tempDir,
} from './helpers/stele.js';
import { Tsa, tsaProblem } from './helpers/tsa.js';

const problem = tsaProblem();
if (problem !== null && process.env.CI === 'true') test('RFC 3161', () => assert.fail(`CI must run it: ${problem}`));

describe('RFC 3161 timestamps against openssl ts', { skip: problem ?? false, timeout: 60_000 }, () => {
  let tsa: Tsa;
  let other: Tsa;
  before(async () => {
    [tsa, other] = await Promise.all([Tsa.start(), Tsa.start('Another TSA')]);
  });
  after(async () => {
    await tsa?.stop();
    await other?.stop();
    await cleanup();
  });

  const note = Buffer.from('a checkpoint note\n');
  const digest = createHash('sha256').update(note).digest();

  test('a token over a digest verifies against the TSA CA, with its time and serial', async () => {
    const before = Date.now();
    const t = await requestTimestamp(tsa.url, digest);
    const v = await verifyTimestamp(t.der, note, certificatesFromPem(tsa.caPem));
    assert.ok(Math.abs(v.genTime.getTime() - before) < 60_000, `genTime ${v.genTime.toISOString()}`);
    assert.equal(v.serial, t.serial);
    assert.deepEqual(v.digest, digest);
  });

  test('refused: another digest, another TSA as the trusted one, a changed token', async () => {
    const t = await requestTimestamp(tsa.url, digest);
    await assert.rejects(verifyTimestamp(t.der, Buffer.from('another note\n'), certificatesFromPem(tsa.caPem)), /another digest/);
    await assert.rejects(
      verifyTimestamp(t.der, note, certificatesFromPem(other.caPem)),
      /does not chain to a trusted|does not verify/,
    );
    const changed = Buffer.from(t.der);
    // A byte of the signature (near the end of the token) flipped.
    changed[changed.length - 10] = (changed[changed.length - 10] as number) ^ 0xff;
    await assert.rejects(verifyTimestamp(changed, note, certificatesFromPem(tsa.caPem)), /does not verify|not DER/);
  });

  test('stele serve --tsa: checkpoints timestamped on demand, recorded in the log, carried by evidence bundles that verify-bundle checks', async () => {
    const data = await initDir('tsa.test/log');
    const again = await SteleServer.start(data.dir, { args: ['--tsa', tsa.url], checkpointIntervalMs: 100 });
    await appendHttp(
      again.url,
      data.token,
      Array.from({ length: 5 }, (_, n) => makeEvent(undefined, n)),
    );
    // The checkpoint must cover the entries before it is timestamped.
    for (let i = 0; (await getJson<{ size: number; checkpoint_size: number }>(`${again.url}/healthz`)).checkpoint_size < 6; i++) {
      assert.ok(i < 300, 'no checkpoint covering the entries in 30 s');
      await sleep(100);
    }
    try {
      const made = await requestJson(`${again.url}/v1/timestamps`, 'POST', data.token);
      assert.equal(made.status, 200, made.text);
      const [t] = made.body.timestamps as { index: number; size: number; gen_time: string; tsa: string }[];
      assert.ok(t && t.size >= 5, 'the checkpoint covers the entries');
      assert.equal(t.tsa, tsa.url);
      const found = await requestJson(
        `${again.url}/v1/events?q=${encodeURIComponent('action:stele.timestamp')}&after=${t.index}`,
        'GET',
        data.token,
      );
      assert.equal((found.body.hits as unknown[]).length, 1, 'recorded as a stele.timestamp event');

      const res = await fetch(`${again.url}/v1/export?q=&format=bundle`, { headers: { authorization: `Bearer ${data.token}` } });
      assert.equal(res.status, 200);
      const dir = tempDir('bundle-');
      const file = join(dir, 'b.stele-bundle.jsonl');
      writeFileSync(file, await res.text());
      const ca = join(dir, 'tsa-ca.pem');
      writeFileSync(ca, tsa.caPem);
      const ok = await runStele(['verify-bundle', file, '--vkey', data.vkey, '--tsa-ca', ca]);
      assert.equal(ok.code, 0, ok.output);
      assert.match(
        ok.stdout,
        new RegExp(
          `timestamp: ${tsa.url.replace(/[.]/g, '\\.')} says the first ${t.size} entries existed by ${t.gen_time} \\(token verified`,
        ),
      );
      const unchecked = await runStele(['verify-bundle', file, '--vkey', data.vkey]);
      assert.match(unchecked.stdout, /token not checked: give --tsa-ca/);
      const wrongCa = join(dir, 'other-ca.pem');
      writeFileSync(wrongCa, other.caPem);
      const refused = await runStele(['verify-bundle', file, '--vkey', data.vkey, '--tsa-ca', wrongCa]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.output, /the timestamp of .*: (the TSA certificate does not chain|the token does not verify)/);
      // A token moved onto another checkpoint of the log does not fit it.
      const lines = readFileSync(file, 'utf8').split('\n');
      const at = lines.findIndex((l) => l.includes('"type":"timestamp"'));
      const ts = JSON.parse(lines[at] as string);
      const header = JSON.parse(lines[0] as string);
      lines[at] = JSON.stringify({ ...ts, checkpoint: header.checkpoint, consistency: [] });
      writeFileSync(file, lines.join('\n'));
      const moved = await runStele(['verify-bundle', file, '--vkey', data.vkey, '--tsa-ca', ca]);
      assert.notEqual(moved.code, 0);
      assert.match(moved.output, /another digest|another checkpoint/);
    } finally {
      await again.kill();
    }
  });

  test('POST /v1/timestamps without --tsa is 404 no_tsa', async () => {
    const data = await initDir('tsa.test/none');
    const srv = await SteleServer.start(data.dir);
    try {
      const r = await requestJson(`${srv.url}/v1/timestamps`, 'POST', data.token);
      assert.equal(r.status, 404);
      assert.equal((r.body.error as { code: string }).code, 'no_tsa');
    } finally {
      await srv.kill();
    }
  });
});
