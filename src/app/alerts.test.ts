import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Principal } from '../core/principal.js';
import { entryRow, ftsText } from '../event/searchable.js';
import type { Event } from '../event/types.js';
import { type RuleHit, RuleMatcher } from '../index/alert-rules.js';
import { parsePolicy } from '../policy/policy.js';
import { Alerting, type Firing, queryProblem } from './alerts.js';

const POLICY = parsePolicy(
  `version: 1
alerts:
  notifiers:
    none: { url: 'http://127.0.0.1:9/unused' }
  rules:
    exports: { query: 'action:stele.access.export', group_by: actor, window: 1h, threshold: 2, notify: [none] }
    outsiders: { query: 'action:stele.access.read resource:restricted', except: ['group:sre', 'key:auditor'], notify: [none] }
    validation: { query: 'action:stele.validation.run outcome:failure', notify: [none] }
`,
  'test.yaml',
  { queryProblem },
);

const user = (id: string, groups: string[] = []): Principal => ({ kind: 'user', id, method: 'oidc', groups, roles: [] });
const key = (id: string): Principal => ({ kind: 'apikey', id, method: 'apikey', groups: [], roles: [] });

function event(action: string, actor: string, extra: Partial<Event> = {}): Event {
  return {
    id: '00000000-0000-4000-8000-000000000000',
    time: '2026-12-07T00:00:00Z',
    action,
    actor: { id: actor, type: 'human', verified: true },
    source: { kind: 'stele', host: 'h', agent: 'stele' },
    outcome: 'success',
    ...extra,
  } as Event;
}

function harness() {
  const fired: Firing[] = [];
  const clock = { now: Date.parse('2026-12-07T10:00:00Z') };
  const a = new Alerting({
    now: () => clock.now,
    policy: () => POLICY,
    record: async (f) => {
      fired.push(f);
      return 1000 + fired.length;
    },
    env: {},
    origin: 'test/log',
  });
  const rules = new RuleMatcher(POLICY);
  let idx = 0;
  // What an append does: the rules tested as the entry is prepared, the hits counted once durable.
  const append = (e: Event, by: Principal) => {
    const i = idx++;
    const hits: RuleHit[] = [];
    rules.match(0, entryRow(e, 1n, 'general', null, by.id), ftsText(e), by, hits);
    a.observe(
      hits.map((h) => ({ index: i, rule: h.rule, group: h.group })),
      0,
    );
    return i;
  };
  return { a, fired, append, clock };
}

describe('alert rules', () => {
  test('more than the threshold within the window, per group, fires once a window', async () => {
    const { a, fired, append } = harness();
    for (let i = 0; i < 2; i++) append(event('stele.access.export', 'alice'), user('alice'));
    for (let i = 0; i < 2; i++) append(event('stele.access.export', 'bob'), user('bob'));
    assert.equal(fired.length, 0, 'two each: not more than the threshold');
    append(event('stele.access.export', 'alice'), user('alice'));
    append(event('stele.access.export', 'alice'), user('alice'));
    await a.stop();
    assert.equal(fired.length, 1, 'alice passed it, once; bob did not');
    assert.deepEqual([fired[0]?.rule, fired[0]?.group, fired[0]?.count], ['exports', 'alice', 3]);
    assert.deepEqual(fired[0]?.entries, [0, 1, 4]);
  });

  test('matches older than the window stop counting; it fires again once a window has passed since it did', async () => {
    const { a, fired, append, clock } = harness();
    const HOUR = 3_600_000;
    for (let i = 0; i < 2; i++) append(event('stele.access.export', 'carol'), user('carol'));
    clock.now += HOUR + 60_000;
    append(event('stele.access.export', 'carol'), user('carol'));
    append(event('stele.access.export', 'carol'), user('carol'));
    assert.equal(fired.length, 0, 'the first two fell out of the hour');
    clock.now += 60_000;
    append(event('stele.access.export', 'carol'), user('carol'));
    assert.equal(fired.length, 1);
    assert.deepEqual([fired[0]?.count, fired[0]?.entries], [3, [2, 3, 4]], 'only the matches within the window are listed');
    clock.now += 60_000;
    for (let i = 0; i < 5; i++) append(event('stele.access.export', 'carol'), user('carol'));
    assert.equal(fired.length, 1, 'once a window');
    clock.now += HOUR;
    for (let i = 0; i < 3; i++) append(event('stele.access.export', 'carol'), user('carol'));
    await a.stop();
    assert.equal(fired.length, 2, 'a window after the first firing');
  });

  test("a group's window is dropped once idle for longer than its window: what alerting holds stays bounded", async () => {
    const { a, append, clock } = harness();
    for (let i = 0; i < 1000; i++) append(event('stele.access.export', `user${i}`), user(`user${i}`));
    assert.equal(a.windowCount, 1000);
    clock.now += 2 * 3_600_000;
    append(event('stele.access.export', 'dave'), user('dave'));
    assert.equal(a.windowCount, 1, 'only the group seen within the hour');
    await a.stop();
  });

  test('except: members of a group, or a named key, do not count; anyone else does', async () => {
    const { a, fired, append } = harness();
    const read = event('stele.access.read', 'x', { resource: { type: 'stele.tier', id: 'restricted' } } as Partial<Event>);
    append(read, user('sam', ['sre']));
    append(read, key('auditor'));
    append(event('stele.access.read', 'x', { resource: { type: 'stele.tier', id: 'general' } } as Partial<Event>), user('eve'));
    assert.equal(fired.length, 0);
    append(read, user('eve', ['interns']));
    await a.stop();
    assert.deepEqual(
      fired.map((f) => f.rule),
      ['outsiders'],
    );
  });

  test('a validation failure fires; a passing run does not; the firings themselves are never counted', async () => {
    const { a, fired, append } = harness();
    append(event('stele.validation.run', 'stele'), key('stele'));
    append(event('stele.validation.run', 'stele', { outcome: 'failure' }), key('stele'));
    append(event('stele.alert', 'stele', { outcome: 'failure' }), key('stele'));
    await a.stop();
    assert.deepEqual(
      fired.map((f) => f.rule),
      ['validation'],
    );
  });

  test('a query that does not parse is a policy problem naming the rule', () => {
    assert.throws(
      () =>
        parsePolicy(
          "version: 1\nalerts:\n  notifiers: { n: { url: 'http://x/' } }\n  rules:\n    r: { query: 'actor:(', notify: [n] }\n",
          'p.yaml',
          {
            queryProblem,
          },
        ),
      /p\.yaml:5:\d+: alerts\.rules\.r\.query: the query does not parse/,
    );
  });
});
