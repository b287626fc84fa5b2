import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Event } from '../event/types.js';
import type { KeyInfo } from '../keys/keystore.js';
import { candidates, destroyedBy, erasureRef } from './erasure.js';

const key = (id: string, k: Partial<KeyInfo>): KeyInfo => ({
  id,
  tier: 'compliance',
  day: '2026-11-01',
  subject: null,
  created: '2026-11-01T00:00:00.000Z',
  state: 'active',
  destroyed: null,
  reason: null,
  ...k,
});
const us = (iso: string) => Date.parse(iso) * 1000;

test('an erasure explains the keys of its subject erased no later than it was received', () => {
  const keys = [
    key('k-erin', { subject: 'h-erin', state: 'erased', destroyed: '2026-11-02T00:00:00.000Z' }),
    key('k-later', { subject: 'h-erin', state: 'erased', destroyed: '2026-11-03T00:00:00.000Z' }),
    key('k-other', { subject: 'h-bob', state: 'erased', destroyed: '2026-11-02T00:00:00.000Z' }),
    key('k-active', { subject: 'h-erin' }),
    key('k-expired', { subject: 'h-erin', state: 'expired', destroyed: '2026-11-02T00:00:00.000Z' }),
  ];
  const ref = { kind: 'erasure', index: 5, received: us('2026-11-02T00:00:01Z'), subjectHash: 'h-erin' } as const;
  assert.deepEqual(destroyedBy(ref, keys), ['k-erin']);
});

test('a retention run explains the expired keys of its (tier, day)s destroyed no later than it was received', () => {
  const keys = [
    key('k1', { tier: 'operational', day: '2026-08-01', state: 'expired', destroyed: '2026-11-02T00:00:00.000Z' }),
    // same slot but held until a later run
    key('k2', { tier: 'operational', day: '2026-08-01', subject: 'h', state: 'expired', destroyed: '2026-11-09T00:00:00.000Z' }),
    key('k3', { tier: 'operational', day: '2026-08-02', state: 'expired', destroyed: '2026-11-02T00:00:00.000Z' }),
  ];
  const slots = [{ tier: 'operational', day: '2026-08-01' }];
  const run = (received: string) => destroyedBy({ kind: 'expiry', index: 2, received: us(received), slots }, keys);
  assert.deepEqual(run('2026-11-02T00:00:01Z'), ['k1']);
  assert.deepEqual(run('2026-11-09T00:00:01Z'), ['k1', 'k2']);
});

test('candidates: the key records an erasure or a retention run can name, read by subject or by slot', () => {
  const erasure = { kind: 'erasure', index: 5, received: 0, subjectHash: 'h-erin' } as const;
  assert.deepEqual(candidates(erasure), [{ state: 'erased', subject: 'h-erin' }]);
  const slots = [
    { tier: 'operational', day: '2026-08-01' },
    { tier: 'debug', day: '2026-08-02' },
  ];
  assert.deepEqual(candidates({ kind: 'expiry', index: 2, received: 0, slots }), [
    { state: 'expired', tier: 'operational', day: '2026-08-01' },
    { state: 'expired', tier: 'debug', day: '2026-08-02' },
  ]);
});

test('only server-written erasure and retention entries name what they destroyed', () => {
  const ev = (action: string, data: unknown, kind = 'stele') => ({ action, source: { kind }, data }) as unknown as Event;
  const at = '2026-11-02T00:00:01Z';
  assert.deepEqual(erasureRef(5, at, ev('stele.erasure', { subject_hash: 'h' })), {
    kind: 'erasure',
    index: 5,
    received: us(at),
    subjectHash: 'h',
  });
  assert.deepEqual(erasureRef(6, at, ev('stele.retention.run', { expired: [{ tier: 't', day: 'd' }, { tier: 1 }] })), {
    kind: 'expiry',
    index: 6,
    received: us(at),
    slots: [{ tier: 't', day: 'd' }],
  });
  assert.equal(erasureRef(5, at, ev('stele.erasure', { subject_hash: 'h' }, 'emacs')), null);
  assert.equal(erasureRef(5, at, ev('stele.retention.run', { expired: [] })), null);
  assert.equal(erasureRef(5, at, ev('git.push', {})), null);
});
