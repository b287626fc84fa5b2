/**
 * `stele monitor` against a real `stele serve`: a full verification at start, then each new
 * checkpoint incrementally; an entry altered on the server's disk after the last verified
 * checkpoint raises an ALERT at the next run, and the state file keeps the last good checkpoint.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  appendHttp,
  CLI,
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

interface Line {
  ok: boolean;
  kind: string;
  size?: number;
}

describe('stele monitor', { timeout: 120_000 }, () => {
  after(cleanup);

  test('verifies in full, then each new checkpoint; an alteration after the last verified one is an ALERT', async () => {
    const data = await initDir('monitor.test/log');
    const srv = await SteleServer.start(data.dir, { checkpointIntervalMs: 20 });
    const state = join(tempDir(), 'monitor.state');
    const batch = (n: number) =>
      appendHttp(
        srv.url,
        data.token,
        Array.from({ length: n }, (_, k) => makeEvent(undefined, k)),
      );
    const checkpointAt = async (size: number) => {
      for (;;) {
        const h = await getJson<{ checkpoint_size: number }>(`${srv.url}/healthz`);
        if (h.checkpoint_size >= size) return h.checkpoint_size;
        await sleep(20);
      }
    };
    await batch(300);
    const args = ['monitor', '--url', srv.url, '--vkey', data.vkey, '--state', state, '--interval', '4s', '--json'];
    const mon = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Line[] = [];
    let err = '';
    let buf = '';
    mon.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        lines.push(JSON.parse(buf.slice(0, nl)) as Line);
        buf = buf.slice(nl + 1);
      }
    });
    mon.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    const until = async (pred: () => boolean, what: string) => {
      const deadline = Date.now() + 30_000;
      while (!pred()) {
        assert.ok(Date.now() < deadline, `${what}; lines ${JSON.stringify(lines)}; stderr ${err}`);
        await sleep(20);
      }
    };
    try {
      await until(() => lines.length >= 1, 'no first run');
      assert.equal(lines[0]?.kind, 'full');
      assert.equal(lines[0]?.ok, true);
      const first = lines[0]?.size as number;
      // A new checkpoint: verified incrementally at the next run.
      await batch(300);
      const second = await checkpointAt(first + 300);
      await until(() => lines.some((l) => l.kind === 'incremental' && l.size === second), 'the new checkpoint was not verified');
      const verified = lines.length;
      assert.equal(readFileSync(state, 'utf8').split('\n')[1], String(second), 'the state keeps the last verified checkpoint');
      // Right after a run (the monitor now sleeps 4 s): more entries, one of them altered on disk.
      await batch(300);
      const third = await checkpointAt(second + 300);
      const dir = join(data.dir, 'log', 'tile', 'entries');
      const last = Math.floor((third - 1) / 256);
      const name = String(last).padStart(3, '0');
      const file =
        third % 256 === 0
          ? join(dir, name)
          : join(
              dir,
              `${name}.p`,
              readdirSync(join(dir, `${name}.p`))
                .sort()
                .at(-1) as string,
            );
      const bytes = readFileSync(file);
      bytes[bytes.length - 5] = (bytes[bytes.length - 5] as number) ^ 1;
      writeFileSync(file, bytes);
      assert.equal(lines.length, verified, 'the alteration came before the next run (widen --interval if this fails)');
      await until(() => /ALERT .* incremental verification FAILED: .*does not match/.test(err), 'no ALERT');
      assert.equal(readFileSync(state, 'utf8').split('\n')[1], String(second), 'a failed run keeps the last good checkpoint');
    } finally {
      mon.kill();
      await srv.stop();
    }
  });

  test('--report records each verification in the log as a stele.validation.run by the monitor, a failed one with outcome failure', async () => {
    const data = await initDir('monitor-report.test/log');
    writeFileSync(
      join(data.dir, 'stele.policy.yaml'),
      `version: 1
retention:
  default: general
  tiers:
    - { name: general, keep: forever }
roles:
  admin: { actions: [append, read, search, export, erase, hold, admin, metrics], vouch: ['*'] }
  writer: { actions: [append] }
  monitoring: { actions: [metrics] }
`,
    );
    const srv = await SteleServer.start(data.dir, { checkpointIntervalMs: 20 });
    try {
      await appendHttp(
        srv.url,
        data.token,
        Array.from({ length: 300 }, (_, k) => makeEvent(undefined, k)),
      );
      for (;;) {
        if ((await getJson<{ checkpoint_size: number }>(`${srv.url}/healthz`)).checkpoint_size >= 301) break;
        await sleep(20);
      }
      const key = async (name: string, role: string) => {
        const r = await requestJson(`${srv.url}/v1/keys`, 'POST', data.token, { name, roles: [role] });
        assert.equal(r.status, 201, r.text);
        const file = join(tempDir(), `${name}.key`);
        writeFileSync(file, r.body.key as string, { mode: 0o600 });
        return { key: r.body.key as string, file };
      };
      const monitor = await key('watchtower', 'monitoring');
      const writer = await key('ci', 'writer');
      const runs = async (q: string) =>
        (
          await getJson<{
            hits: { index: number; event: { outcome: string; actor: { id: string }; data: Record<string, unknown> } }[];
          }>(`${srv.url}/v1/events?q=${encodeURIComponent(q)}`, 30_000, data.token)
        ).hits;

      /** One full run of the monitor, recording it in the server's own log. */
      const monitorOnce = () =>
        runStele(['monitor', '--url', srv.url, '--vkey', data.vkey, '--once', '--report', srv.url, '--token-file', monitor.file]);
      const ok = await monitorOnce();
      assert.equal(ok.code, 0, ok.output);
      const [good] = await runs('action:stele.validation.run actor:watchtower');
      assert.equal(good?.event.outcome, 'success');
      assert.equal(good?.event.data.reporter, 'stele monitor');
      assert.equal(good?.event.data.where, srv.url);
      assert.ok((good?.event.data.to as number) >= 301);

      // Only a monitoring role (or admin) may record runs; a malformed report is refused, naming the field.
      const body = { ok: true, kind: 'full', where: 'x', seconds: 1 };
      assert.equal((await requestJson(`${srv.url}/v1/validations`, 'POST', writer.key, body)).status, 403);
      const bad = await requestJson(`${srv.url}/v1/validations`, 'POST', monitor.key, { ...body, kind: 'partial' });
      assert.equal(bad.status, 400);
      assert.match((bad.body.error as { message: string }).message, /"kind" must be/);

      // An entry altered on disk: the monitor's full run fails, and says so in the log. A full
      // bundle, written once and never again, so the alteration stays while the log grows.
      const file = join(data.dir, 'log', 'tile', 'entries', '000');
      const bytes = readFileSync(file);
      bytes[bytes.length - 5] = (bytes[bytes.length - 5] as number) ^ 1;
      writeFileSync(file, bytes);
      const failed = await monitorOnce();
      assert.equal(failed.code, 1, failed.output);
      const [bad2] = await runs('action:stele.validation.run actor:watchtower outcome:failure');
      assert.equal(bad2?.event.data.outcome, 'failed');
      assert.match(String((bad2?.event.data.problems as string[] | undefined)?.[0]), /does not match|hash/);
    } finally {
      await srv.stop();
    }
  });
});
