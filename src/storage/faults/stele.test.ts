import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { initDataDir } from '../../app/datadir.js';
import { SERVER } from '../../app/self-event.js';
import { openStele, openSteleOn } from '../../app/stele.js';
import type { SteleError } from '../../core/errors.js';
import { openEmbedded } from '../open.js';

const dir = mkdtempSync(join(tmpdir(), 'stele-faults-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const event = (n: number) => ({
  actor: { id: 'alice@example.com', type: 'human' },
  action: 'faults.test',
  source: { kind: 'test' },
  outcome: 'success',
  data: { n },
});

test('a whole Stele on a failing backend refuses appends with 503 and, reopened on fs, keeps every acknowledged event', async () => {
  await initDataDir(dir, 'faults.test/stele');
  // The integrator (a worker thread, which reopens the faults backend from its spec) fails to write a checkpoint.
  const fail = { op: 'writeCheckpoint', after: 3 };
  const s = await openSteleOn(openEmbedded({ driver: 'faults', inner: { driver: 'fs', dir }, fail }), dir, {
    checkpointIntervalMs: 5,
  });
  const acked: number[] = [];
  let stopped: SteleError | undefined;
  for (let n = 0; n < 400 && !stopped; n++) {
    try {
      for (const a of await s.append([event(n)], SERVER)) acked.push(a.index);
    } catch (err) {
      stopped = err as SteleError;
    }
    await sleep(5);
  }
  assert.equal(stopped?.code, 'log_unavailable', String(stopped));
  assert.equal(stopped?.status, 503);
  await s.close().catch(() => {});

  const again = await openStele(dir);
  try {
    for (const index of acked) assert.ok(await again.log.entry(index), `entry ${index}`);
    assert.ok(again.log.size > Math.max(...acked));
  } finally {
    await again.close();
  }
});
