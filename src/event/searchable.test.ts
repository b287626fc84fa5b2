import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ftsText } from './searchable.js';
import type { Event } from './types.js';

const base: Event = {
  id: '01890000-0000-7000-8000-000000000000',
  time: '2026-12-02T00:00:00Z',
  actor: { id: 'alice', type: 'human', verified: true },
  action: 'emacs.file.save',
  source: { kind: 'emacs', host: 'laptop' },
  outcome: 'success',
  data: { 'package-archives': ['melpa'], lines: 12 },
};

test('full text covers every value, data keys included, but not the id nor the event time', () => {
  const words = ftsText(base).split('\n');
  for (const w of ['alice', 'emacs.file.save', 'laptop', 'package-archives', 'melpa', '12']) assert.ok(words.includes(w), w);
  assert.ok(!words.includes(base.id));
  assert.ok(!ftsText(base).includes('2026-12-02'), 'since:/until: find the time, not words');
});

test("the log's own access records are found by their fields, not by the queries they record", () => {
  const search: Event = {
    ...base,
    action: 'stele.access.search',
    source: { kind: 'stele' },
    reason: 'Rarequery4411',
    data: { query: 'subject:erin@example.com Rarequery4411', results: 0 },
  };
  const text = ftsText(search);
  assert.ok(text.includes('stele.access.search') && text.includes('alice'));
  assert.ok(!text.includes('Rarequery4411') && !text.includes('erin@example.com'));
  // Other stele.* events keep their data searchable (a hold's reason, a policy's source).
  const hold = { ...search, action: 'stele.hold.add', reason: 'litigation 2026-17' };
  assert.ok(ftsText(hold).includes('litigation 2026-17'));
});
