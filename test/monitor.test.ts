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
import { appendHttp, CLI, cleanup, getJson, initDir, makeEvent, SteleServer, sleep, tempDir } from './helpers/stele.js';

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
});
