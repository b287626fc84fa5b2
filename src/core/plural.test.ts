import assert from 'node:assert/strict';
import { it } from 'node:test';
import { plural } from './plural.js';

it('plural: singular for one, plural otherwise (zero included)', () => {
  assert.equal(plural(1, 'entry', 'entries'), '1 entry');
  assert.equal(plural(0, 'entry', 'entries'), '0 entries');
  assert.equal(plural(2, 'entry', 'entries'), '2 entries');
  assert.equal(plural(1, 'event'), '1 event');
  assert.equal(plural(3, 'event'), '3 events');
});
