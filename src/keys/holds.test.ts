import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { defaultOutcome, SERVER, selfEvent } from '../app/self-event.js';
import { SteleError } from '../core/errors.js';
import { MemoryHoldRecords } from '../storage/memory/holds.js';
import { HoldStore, refuseNaming } from './holds.js';
import { subjectHash } from './subject.js';

const pepper = randomBytes(32);

describe('what the log keeps of a legal hold', () => {
  test('the hold event names subject and actor only by their keyed hash', async () => {
    const holds = new HoldStore(new MemoryHoldRecords(), pepper);
    const h = await holds.add({ subject: 'erin@example.com', actor: 'erin@example.com', tier: 'compliance' }, 'case 17', 'admin');
    const rec = holds.record(h);
    assert.deepEqual(rec, {
      hold: h.id,
      tier: 'compliance',
      actor_hash: subjectHash(pepper, 'erin@example.com'),
      subject_hash: subjectHash(pepper, 'erin@example.com'),
    });
    assert.ok(!JSON.stringify(rec).includes('erin'));
  });

  test('after an erasure, a released hold keeps the actor it named only as a hash', async () => {
    const records = new MemoryHoldRecords();
    const holds = new HoldStore(records, pepper);
    const h = await holds.add({ actor: 'erin@example.com' }, 'case 18', 'admin');
    await holds.release(h.id, 'closed', 'admin');
    await holds.forgetSubject('erin@example.com');
    const after = await holds.get(h.id);
    assert.equal(after?.actor, `#h:${subjectHash(pepper, 'erin@example.com')}`);
    assert.equal(JSON.stringify(await records.list(true)).includes('erin'), false);
    // Its record still carries the same hash.
    assert.equal(holds.record(after as NonNullable<typeof after>).actor_hash, subjectHash(pepper, 'erin@example.com'));
  });

  test('a reason that names the subject is refused (it would outlive the erasure)', async () => {
    const holds = new HoldStore(new MemoryHoldRecords(), pepper);
    await assert.rejects(
      () => holds.add({ subject: 'erin@example.com' }, 'complaint by ERIN@example.com', 'admin'),
      (e: unknown) => e instanceof SteleError && e.code === 'bad_hold' && /names the data subject/.test(e.message),
    );
    assert.equal((await holds.list()).length, 0, 'nothing was added');
    const h = await holds.add({ subject: 'erin@example.com' }, 'case 19', 'admin');
    await assert.rejects(() => holds.release(h.id, 'erin@example.com settled', 'admin'), /names the data subject/);
    assert.equal((await holds.get(h.id))?.released, null);
    assert.doesNotThrow(() => refuseNaming('ticket 42', 'erin@example.com', 'bad_erasure', 'the reason'));
  });
});

describe('self-event outcomes', () => {
  test('refusals are denied, refused changes failures, the rest successes', () => {
    assert.equal(defaultOutcome('stele.access.denied'), 'denied');
    assert.equal(defaultOutcome('stele.policy.refused'), 'failure');
    assert.equal(defaultOutcome('stele.access.search'), 'success');
    assert.equal(selfEvent('stele.policy.refused', SERVER, {}).outcome, 'failure');
    assert.equal(selfEvent('stele.access.export.end', SERVER, {}, undefined, 'failure').outcome, 'failure');
  });
});
