import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalBytes } from '../event/canonical.js';
import type { Event } from '../event/types.js';
import { digestKey, eventDigest } from './digest.js';

const key = digestKey(Buffer.alloc(32, 1));
const base: Event = {
  id: '0193a5f0-7c1e-7d2a-9b3c-4d5e6f708192',
  time: '2026-11-22T10:15:03.140211Z',
  actor: { id: 'alice@example.com', type: 'human', verified: false },
  action: 'git.commit',
  source: { kind: 'git', agent: 'stele-hook', host: 'laptop' },
  outcome: 'success',
  data: { source: { agent: 'inside data' }, q: 'a "quoted\\\\" value' },
  subject: 'x"source":{"agent":"y',
};
const d = (e: Event, defaulted?: string) => eventDigest(key, e, canonicalBytes(e), defaulted);

test('a retry matches; a change anywhere else does not', () => {
  assert.deepEqual(d(base), d(structuredClone(base)));
  for (const change of [
    (e: Event) => (e.action = 'git.push'),
    (e: Event) => (e.actor.verified = true),
    (e: Event) => (e.source.kind = 'emacs'),
    (e: Event) => (e.source.host = 'other'),
    (e: Event) => ((e.data as { source: { agent: string } }).source.agent = 'changed'),
    (e: Event) => (e.subject = 'y'),
    (e: Event) => (e.time = '2026-11-22T10:15:03.140212Z'),
  ]) {
    const e = structuredClone(base);
    change(e);
    assert.notDeepEqual(d(e), d(base), String(change));
  }
});

test('source.agent (the delivery path) and a time the server filled in are left out', () => {
  const other = { ...base, source: { ...base.source, agent: 'eventbridge' } };
  assert.deepEqual(d(other), d(base));
  const none = { ...base, source: { kind: 'git', host: 'laptop' } };
  assert.deepEqual(d(none), d(base));
  const at = (t: string) => ({ ...base, time: t });
  assert.deepEqual(
    d(at('2026-01-01T00:00:00.000001Z'), '2026-01-01T00:00:00.000001Z'),
    d(at('2027-01-01T00:00:00.000002Z'), '2027-01-01T00:00:00.000002Z'),
  );
  // A client's own time is part of the event, even when it equals another request's receipt time.
  assert.notDeepEqual(d(at('2026-01-01T00:00:00.000001Z')), d(at('2026-01-01T00:00:00.000001Z'), '2026-01-01T00:00:00.000001Z'));
});

test('digests stay what data directories already hold (pinned bytes)', () => {
  assert.equal(d(base).toString('hex'), '7b3c9da8adbd7170768ad68e95c0658b');
  const at = { ...base, time: '2026-01-01T00:00:00.000001Z' };
  assert.equal(d(at, '2026-01-01T00:00:00.000001Z').toString('hex'), '65a05bfbc732b3f7fb9b81dc835db8e4');
  assert.equal(d({ ...base, source: { kind: 'git' } }).toString('hex'), 'e41461543c2558a01675c47ea39fafba');
});
