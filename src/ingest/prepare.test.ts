import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Principal } from '../core/principal.js';
import { parseMicros } from '../event/record.js';
import { ftsText, indexRow, readNote } from '../event/searchable.js';
import { openEntry } from '../index/reader.js';
import { KeyStore } from '../keys/keystore.js';
import { masterKeyId } from '../keys/master.js';
import { parsePolicy } from '../policy/policy.js';
import { MemoryKeyRecords } from '../storage/memory/keys.js';
import { prepareEvents } from './prepare.js';
import { Sealing } from './sealing.js';

const POLICY = parsePolicy(
  [
    'version: 1',
    'retention:',
    '  default: sealed',
    '  tiers:',
    '    - {name: sealed, keep: 90d}',
    '    - {name: clear, keep: forever, encrypt: false, match: {actions: ["git.*"], sources: [git]}}',
    '',
  ].join('\n'),
  'p.yaml',
);

const principal: Principal = { kind: 'apikey', id: 'ci-bot', method: 'apikey', groups: [], roles: ['writer'] } as Principal;

const events = [
  // Keys out of order, integer-like keys (JavaScript lists those first), nesting, non-ASCII text.
  {
    action: 'emacs.package.install',
    actor: { type: 'human', id: 'alice@example.com' },
    source: { kind: 'emacs', host: 'laptöp' },
    outcome: 'success',
    data: { z: 1, '10': 'ten', '9': ['nine', { b: true, a: 2.5 }], ä: 'Zürich' },
  },
  // An unencrypted tier, a resource, no time (the server fills it in).
  {
    action: 'git.commit',
    actor: { id: 'bob', type: 'human' },
    source: { kind: 'git' },
    resource: { type: 'repo', id: 'stele' },
    outcome: 'success',
    data: { message: 'fix: "quoted" words\nand lines' },
  },
  // A subject: sealed under its own key, whatever the tier says.
  {
    time: '2026-12-01T10:00:00.123Z',
    action: 'git.push',
    actor: { id: 'ai-1', type: 'ai_agent', on_behalf_of: 'alice@example.com' },
    source: { kind: 'git' },
    subject: 'erin@example.com',
    outcome: 'failure',
  },
];

test("an entry's index note gives the row and text that opening its leaf gives", async () => {
  const master = Buffer.alloc(32, 3);
  const keys = await KeyStore.open(new MemoryKeyRecords(), [{ id: masterKeyId(master), key: master }]);
  const sealing = new Sealing(POLICY, keys.subjectPepper, (reqs) => keys.slots(reqs));
  const received = parseMicros('2026-12-06T12:00:00.000001Z');
  const { entries } = await prepareEvents(events, principal, received, sealing);
  assert.equal(entries.length, 3);
  for (const [i, e] of entries.entries()) {
    assert.ok(e.note, `event ${i} has a note`);
    const opened = await openEntry(keys, 40 + i, e.leaf);
    const tier = opened.record.key ? (keys.cached(opened.record.key)?.info.tier as string) : 'clear';
    const fromLeaf = { row: indexRow(40 + i, opened.record, opened.event, tier, opened.ingest), text: ftsText(opened.event) };
    assert.deepEqual(readNote(40 + i, e.note), fromLeaf, `event ${i}`);
  }
  // The test covers both kinds of leaf and the subject's key.
  const rows = entries.map((e, i) => readNote(i, e.note as Buffer).row);
  assert.deepEqual(
    rows.map((r) => [r.tier, r.key_id === null]),
    [
      ['sealed', false],
      ['clear', true],
      ['clear', false],
    ],
  );
});

test("the log's own events carry no note: the index opens their leaves (erasure records are read there)", async () => {
  const master = Buffer.alloc(32, 4);
  const keys = await KeyStore.open(new MemoryKeyRecords(), [{ id: masterKeyId(master), key: master }]);
  const sealing = new Sealing(POLICY, keys.subjectPepper, (reqs) => keys.slots(reqs));
  const own = {
    action: 'stele.erasure',
    actor: { id: 'stele', type: 'service' },
    source: { kind: 'stele' },
    outcome: 'success',
    data: {},
  };
  const local: Principal = { kind: 'local', id: 'stele', method: 'local', groups: [], roles: [] } as Principal;
  const { entries } = await prepareEvents([own], local, parseMicros('2026-12-06T12:00:00.000001Z'), sealing);
  assert.equal(entries[0]?.note, undefined);
});
