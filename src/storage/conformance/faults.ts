import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SteleError } from '../../core/errors.js';
import { plural } from '../../core/plural.js';
import { Log } from '../../log/log.js';
import type { SequencedEntry } from '../../log/storage.js';
import { generateKey, newVerifier } from '../../tlog/note.js';
import { verifyLog } from '../../tlog/verify.js';
import type { EmbeddedBackend, FaultSpec } from '../backend.js';
import { openEmbedded } from '../open.js';
import type { DriverUnderTest } from './driver.js';

/** A failure at each step of the write path, each after a few calls succeeded. */
export const FAULTS: readonly FaultSpec[] = [
  { op: 'appendSequenced', after: 3 },
  { op: 'writeTiles', after: 3 },
  { op: 'writeCheckpoint', after: 3 },
  { op: 'syncTiles', after: 2 },
  { op: 'ids.flush', after: 1 },
];

const ORIGIN = 'conformance.test/faults';
const keys = generateKey(ORIGIN);
const verifier = newVerifier(keys.vkey);

function openLog(b: EmbeddedBackend): Promise<Log> {
  return Log.open({
    storage: b.log(),
    ids: b.ids(),
    integratorThread: () => b.spawn('integrator', undefined),
    skey: keys.skey,
    verifier,
    origin: ORIGIN,
    options: { checkpointIntervalMs: 5, syncIntervalMs: 10 },
  });
}

const batch = (n: number): SequencedEntry[] =>
  Array.from({ length: n }, () => {
    const id = randomUUID();
    return { id, leaf: Buffer.from(`entry ${id}`) };
  });

/**
 * What "the log stops cleanly" means, checked for a failure injected at each step of the write
 * path (FAULTS) through the faults driver over `d`:
 *   - once the failure is seen, every append is refused with 503 log_unavailable;
 *   - nothing acknowledged is lost: the same backend reopened without the fault recovers every
 *     acknowledged entry at its index, and its tiles verify against its last signed checkpoint
 *     (Log.open itself refuses a tree that does not reproduce it);
 *   - no unacknowledged entry is half-visible: each is either wholly in the log (readable at an
 *     index, its id known) or not at all.
 */
export function faultConformance(d: DriverUnderTest): void {
  describe(`${d.name}: a failure at each step stops the log cleanly`, () => {
    test('a checkpoint moved by another writer stops the log (the compare-and-swap refuses its next one)', async () => {
      const b = await d.create();
      const log = await openLog(b);
      try {
        await log.append(batch(3));
        const mine = await log.waitForCheckpoint(3);
        // Another integrator (a lease lost and taken over) publishes its own checkpoint.
        const other = b.tileStore();
        await other.writeCheckpoint(mine.note, `${mine.note}\n`);
        await log.append(batch(3));
        await assert.rejects(log.waitForCheckpoint(6), /stored checkpoint is not the one this writer last published/);
        await assert.rejects(log.append(batch(1)), (err: SteleError) => err.code === 'log_unavailable' && err.status === 503);
      } finally {
        await log.close().catch(() => {});
      }
    });

    for (const fail of FAULTS) {
      test(`${fail.op} fails after ${fail.after} calls`, async () => {
        const inner = await d.create();
        const faulty = openEmbedded({ driver: 'faults', inner: inner.spec, fail });
        let unlock = faulty.lock();
        const log = await openLog(faulty);
        const acked = new Map<number, SequencedEntry>();
        const unacked: SequencedEntry[] = [];
        let stopped: SteleError | undefined;
        for (let round = 0; round < 400 && !stopped; round++) {
          const entries = batch(40);
          try {
            for (const [i, index] of (await log.append(entries)).entries()) acked.set(index, entries[i] as SequencedEntry);
          } catch (err) {
            stopped = err as SteleError;
            unacked.push(...entries);
          }
          await sleep(2);
        }
        assert.ok(stopped, 'the injected fault stopped the log');
        assert.ok(acked.size > 0, 'appends were acknowledged before the fault');
        for (const err of [stopped, await log.append(batch(1)).catch((e: SteleError) => e)]) {
          assert.equal((err as SteleError).code, 'log_unavailable', String(err));
          assert.equal((err as SteleError).status, 503);
        }
        await log.close().catch(() => {});
        unlock();

        const healthy = d.reopen(inner);
        unlock = healthy.lock();
        const again = await openLog(healthy);
        await sleep(30); // a thread of the first log that outlived close() would write now, beside this one's
        try {
          const size = again.size;
          assert.ok(size >= acked.size, `${plural(size, 'entry', 'entries')} recovered of ${acked.size} acknowledged`);
          for (const [index, e] of acked) assert.deepEqual(await again.entry(index), e.leaf, `entry ${index}`);
          // Appending the acknowledged again finds them; the unacknowledged are in the log wholly or not at all.
          const known = await again.append([...acked.values()]);
          assert.deepEqual(known, [...acked.keys()]);
          const retried = await again.append(unacked);
          for (const [i, index] of retried.entries()) {
            if (index < size) assert.deepEqual(await again.entry(index), unacked[i]?.leaf, `recovered entry ${index}`);
          }
          await again.waitForCheckpoint(again.size);
          const { checkpoint } = await verifyLog(healthy.tiles(), verifier);
          assert.equal(checkpoint.size, again.size);
        } finally {
          await again.close();
          unlock();
        }
      });
    }
  });
}
