import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressKey, WindowLimit } from './auth.js';

test('per-address limits count IPv4 addresses, and IPv6 by /64 network', () => {
  assert.equal(addressKey('203.0.113.9'), '203.0.113.9');
  assert.equal(addressKey('::ffff:203.0.113.9'), '203.0.113.9');
  assert.equal(addressKey('2001:db8:1:2::1'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:db8::1'), addressKey('2001:db8:0:0:ffff::9'));
  assert.notEqual(addressKey('2001:db8:0:1::1'), addressKey('2001:db8:0:2::1'));
});

test('WindowLimit admits `limit` a window per key, then answers the seconds to wait', () => {
  const w = new WindowLimit(2, 10_000);
  assert.deepEqual([w.hit('a', 0), w.hit('a', 1), w.hit('b', 1)], [0, 0, 0]);
  assert.equal(w.hit('a', 2_500), 8);
  assert.equal(w.hit('a', 10_000), 0); // a new window
});
