import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Principal } from '../core/principal.js';
import { entryRow, ftsText } from '../event/searchable.js';
import type { Event } from '../event/types.js';
import { parsePolicy } from '../policy/policy.js';
import { type RuleHit, RuleMatcher } from './alert-rules.js';
import { parseQuery } from './query.js';

const policy = parsePolicy(
  `version: 1
alerts:
  notifiers: { n: { url: 'http://127.0.0.1:9/' } }
  rules:
    word:   { query: 'deploy', group_by: actor, notify: [n] }
    prefix: { query: 'deploy*', group_by: resource, notify: [n] }
    phrase: { query: '"prod cluster"', notify: [n] }
`,
  'p.yaml',
  {
    queryProblem: (q) => {
      try {
        parseQuery(q);
        return null;
      } catch (err) {
        return (err as Error).message;
      }
    },
  },
);
const by: Principal = { kind: 'apikey', id: 'ci', method: 'apikey', groups: [], roles: [] };

function hits(message: string, action = 'ci.run'): string[] {
  const e = {
    id: '0190a1b2-c3d4-7e5f-8a9b-000000000001',
    time: '2026-12-07T00:00:00Z',
    action,
    actor: { id: 'alice', type: 'human', verified: true },
    source: { kind: 'ci' },
    resource: { type: 'service', id: 'web' },
    outcome: 'success',
    data: { message },
  } as unknown as Event;
  const out: RuleHit[] = [];
  new RuleMatcher(policy).match(3, entryRow(e, 1n, 'general', null, 'ci'), ftsText(e), by, out);
  assert.ok(out.every((h) => h.at === 3));
  return out.map((h) => `${h.rule}:${h.group ?? ''}`);
}

test('words match as search matches them: whole tokens, any case, diacritics folded, prefixes and phrases', () => {
  assert.deepEqual(hits('Deploy started'), ['word:alice', 'prefix:web']);
  assert.deepEqual(hits('DEPLOY'), ['word:alice', 'prefix:web']);
  assert.deepEqual(hits('déploy in progress'), ['word:alice', 'prefix:web'], 'non-ASCII text is tokenized, not prefiltered');
  assert.deepEqual(hits('deployment'), ['prefix:web'], 'a longer word is not the word');
  assert.deepEqual(hits('redeploy'), [], 'nor is a word that contains it');
  assert.deepEqual(hits('to the Prod  Cluster now'), ['phrase:']);
  assert.deepEqual(hits('cluster prod'), [], 'a phrase is in order');
});

test('the events that record firings never match', () => {
  assert.deepEqual(hits('deploy', 'stele.alert'), []);
});
