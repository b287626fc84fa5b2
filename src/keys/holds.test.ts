import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { defaultOutcome, SERVER, selfEvent } from '../app/self-event.js';
import { SteleError } from '../core/errors.js';
import { HoldStore, refuseNaming } from './holds.js';
import { subjectHash } from './subject.js';

const pepper = randomBytes(32);

describe('what the log keeps of a legal hold', () => {
  test('the hold event names subject and actor only by their keyed hash', () => {
    const holds = new HoldStore(new Database(':memory:'), pepper);
    const h = holds.add({ subject: 'erin@example.com', actor: 'erin@example.com', tier: 'compliance' }, 'case 17', 'admin');
    const rec = holds.record(h);
    assert.deepEqual(rec, {
      hold: h.id,
      tier: 'compliance',
      actor_hash: subjectHash(pepper, 'erin@example.com'),
      subject_hash: subjectHash(pepper, 'erin@example.com'),
    });
    assert.ok(!JSON.stringify(rec).includes('erin'));
  });

  test('after an erasure, a released hold keeps the actor it named only as a hash', () => {
    const db = new Database(':memory:');
    const holds = new HoldStore(db, pepper);
    const h = holds.add({ actor: 'erin@example.com' }, 'case 18', 'admin');
    holds.release(h.id, 'closed', 'admin');
    holds.forgetSubject('erin@example.com');
    const after = holds.get(h.id);
    assert.equal(after?.actor, `#h:${subjectHash(pepper, 'erin@example.com')}`);
    assert.equal(JSON.stringify(db.prepare('SELECT * FROM holds').all()).includes('erin'), false);
    // Its record still carries the same hash.
    assert.equal(holds.record(after as NonNullable<typeof after>).actor_hash, subjectHash(pepper, 'erin@example.com'));
  });

  test('a reason that names the subject is refused (it would outlive the erasure)', () => {
    const holds = new HoldStore(new Database(':memory:'), pepper);
    assert.throws(
      () => holds.add({ subject: 'erin@example.com' }, 'complaint by ERIN@example.com', 'admin'),
      (e: unknown) => e instanceof SteleError && e.code === 'bad_hold' && /names the data subject/.test(e.message),
    );
    assert.equal(holds.list().length, 0, 'nothing was added');
    const h = holds.add({ subject: 'erin@example.com' }, 'case 19', 'admin');
    assert.throws(() => holds.release(h.id, 'erin@example.com settled', 'admin'), /names the data subject/);
    assert.equal(holds.get(h.id)?.released, null);
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
