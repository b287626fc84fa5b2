import assert from 'node:assert/strict';
import { test } from 'node:test';
import { commitEventId, derivedId } from './ids.js';

// Vectors checked by hand with sha256sum: printf 'stele:git.commit:0123…4567' | sha256sum
// = 0adedf6237a5884e3c508f69…; version nibble 8 and variant 10 set: 884e stays, 3c50 → bc50.
test('derived ids match the published vectors (stele.el and the git hooks compute the same)', () => {
  assert.equal(commitEventId('0123456789abcdef0123456789abcdef01234567'), '0adedf62-37a5-884e-bc50-8f690a200306');
  assert.equal(commitEventId('0123456789ABCDEF0123456789ABCDEF01234567'), '0adedf62-37a5-884e-bc50-8f690a200306');
  assert.equal(derivedId('k8s.audit', 'a1b2c3:ResponseComplete'), 'a67bdf23-cd65-8b82-9bd6-56d591db67eb');
  assert.match(derivedId('x', 'y'), /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});
