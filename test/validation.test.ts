/**
 * The server's self-validation against a real `stele serve`: each run is a stele.validation.run
 * event (the first in full, then incremental, covering what it verified); an entry altered on disk
 * after the last verified checkpoint makes the next run fail, on record and in /metrics.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { appendHttp, cleanup, getJson, initDir, makeEvent, SteleServer, sleep } from './helpers/stele.js';

interface Run {
  index: number;
  event: { outcome: string; data: { outcome: string; kind: string; from: number; to: number; problems: string[] } };
}

describe('self-validation', { timeout: 120_000 }, () => {
  after(cleanup);

  test('each run is on record; an alteration after the last verified checkpoint fails the next run', async () => {
    const data = await initDir('validation.test/log');
    const srv = await SteleServer.start(data.dir, { checkpointIntervalMs: 20, args: ['--validate-interval', '5s'] });
    try {
      const runs = async () =>
        (
          await getJson<{ hits: Run[] }>(
            `${srv.url}/v1/events?q=${encodeURIComponent('action:stele.validation.run')}&order=asc&limit=100`,
            30_000,
            data.token,
          )
        ).hits;
      const until = async (pred: (r: Run[]) => boolean, what: string) => {
        const deadline = Date.now() + 40_000;
        for (;;) {
          const r = await runs();
          if (pred(r)) return r;
          assert.ok(Date.now() < deadline, `${what}: ${JSON.stringify(r.map((x) => x.event.data))}`);
          await sleep(200);
        }
      };
      const first = await until((r) => r.length >= 1, 'no validation run');
      // The first run starts from the checkpoint the server recovered to; the whole log is verified every --validate-full-every.
      assert.deepEqual([first[0]?.event.data.outcome, first[0]?.event.data.kind], ['ok', 'incremental']);
      await appendHttp(
        srv.url,
        data.token,
        Array.from({ length: 50 }, (_, k) => makeEvent(undefined, k)),
      );
      // Right after a run: 600 entries, so a full bundle lies past what it verified, altered on disk.
      const before = await until((r) => r.some((x) => x.event.data.kind === 'incremental'), 'no incremental run');
      const verifiedTo = before.at(-1)?.event.data.to as number;
      await appendHttp(
        srv.url,
        data.token,
        Array.from({ length: 600 }, (_, k) => makeEvent(undefined, k)),
      );
      for (;;) {
        const h = await getJson<{ checkpoint_size: number }>(`${srv.url}/healthz`);
        if (h.checkpoint_size >= verifiedTo + 600) break;
        await sleep(20);
      }
      const bundle = Math.ceil(verifiedTo / 256); // wholly past what was verified, and full
      const file = join(data.dir, 'log', 'tile', 'entries', String(bundle).padStart(3, '0'));
      const bytes = readFileSync(file);
      bytes[100] = (bytes[100] as number) ^ 1;
      writeFileSync(file, bytes);
      const after = await until((r) => r.some((x) => x.event.data.outcome === 'failed'), 'the alteration was not found');
      const failed = after.find((x) => x.event.data.outcome === 'failed') as Run;
      assert.equal(failed.event.data.kind, 'incremental');
      assert.equal(failed.event.outcome, 'failure', 'the event itself says it failed (alert rules select on outcome)');
      const found = await getJson<{ hits: Run[] }>(
        `${srv.url}/v1/events?q=${encodeURIComponent('action:stele.validation.run outcome:failure')}`,
        30_000,
        data.token,
      );
      assert.ok(found.hits.some((h) => h.index === failed.index));
      assert.match(failed.event.data.problems.join('\n'), new RegExp(`log: entry ${bundle * 256 + '\\\\d*'}|does not match`));
      const metrics = await (await fetch(`${srv.url}/metrics`, { headers: { authorization: `Bearer ${data.token}` } })).text();
      assert.match(metrics, /^stele_validation_ok 0$/m);
    } finally {
      await srv.stop();
    }
  });
});
