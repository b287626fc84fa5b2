import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SteleError } from '../core/errors.js';
import { canMatchGaps, parseQuery, QUERY_FIELDS, timeMicros } from './query.js';

// The meaning of queries (what they match) is the query store's to keep: every driver is checked
// against it in src/storage/conformance/query.ts. Here: what the parser makes and refuses.

const NOW = Date.UTC(2026, 10, 20, 12); // 2026-11-20T12:00:00Z
const us = (iso: string) => Date.parse(iso) * 1000;

describe('the AST', () => {
  test('an empty or blank query is null (matches everything)', () => {
    assert.equal(parseQuery(''), null);
    assert.equal(parseQuery(' \t\n'), null);
  });

  test('fields, values and wildcards', () => {
    assert.deepEqual(parseQuery('Actor:alice'), { kind: 'field', field: 'actor', test: { op: 'eq', value: 'alice' } });
    assert.deepEqual(parseQuery('actor_type:HUMAN'), { kind: 'field', field: 'type', test: { op: 'eq', value: 'human' } });
    assert.deepEqual(parseQuery('verified:true'), { kind: 'field', field: 'verified', test: { op: 'eq', value: 1 } });
    assert.deepEqual(parseQuery('host:*'), { kind: 'field', field: 'host', test: { op: 'present' } });
    // GLOB metacharacters of the value are escaped; `\*` in quotes is a literal star.
    assert.deepEqual(parseQuery('actor:"a\\*b?*"'), {
      kind: 'field',
      field: 'actor',
      test: { op: 'glob', pattern: 'a[*]b[?]*' },
    });
    assert.deepEqual(parseQuery('index:3..'), { kind: 'field', field: 'index', test: { op: 'range', min: 3, max: null } });
  });

  test('times stay relative until a driver anchors them', () => {
    const since = parseQuery('since:1h');
    assert.deepEqual(since, { kind: 'field', field: 'since', test: { op: 'since', time: { agoMs: 3_600_000 } } });
    const until = parseQuery('until:2026-11-17');
    assert.deepEqual(until, {
      kind: 'field',
      field: 'until',
      test: { op: 'until', time: { micros: us('2026-11-17T00:00:00Z') } },
    });
    assert.equal(timeMicros({ agoMs: 3_600_000 }, NOW), (NOW - 3_600_000) * 1000);
    assert.equal(timeMicros({ micros: 5 }, NOW), 5);
  });

  test('operators nest: NOT over AND over OR, parentheses flattened', () => {
    assert.deepEqual(parseQuery('a OR -b c'), {
      kind: 'or',
      children: [
        { kind: 'text', text: 'a', prefix: false },
        {
          kind: 'and',
          children: [
            { kind: 'not', child: { kind: 'text', text: 'b', prefix: false } },
            { kind: 'text', text: 'c', prefix: false },
          ],
        },
      ],
    });
    assert.deepEqual(parseQuery('(a b) "c d"*'), {
      kind: 'and',
      children: [
        { kind: 'text', text: 'a', prefix: false },
        { kind: 'text', text: 'b', prefix: false },
        { kind: 'text', text: 'c d', prefix: true },
      ],
    });
  });

  test('only queries of index:, tier: and since:/until: may match gaps, even through NOT', () => {
    for (const q of [
      '',
      'index:3',
      'index:1..9 tier:compliance',
      '-tier:operational',
      'since:7d',
      'NOT (index:4 OR until:2026-01-01)',
    ]) {
      assert.equal(canMatchGaps(parseQuery(q)), true, q);
    }
    for (const q of [
      'word',
      'index:3 actor:erin',
      '-actor:erin',
      'NOT "secret"',
      'key:k',
      'principal:p',
      'subject:*',
      'index:1 OR outcome:success',
    ]) {
      assert.equal(canMatchGaps(parseQuery(q)), false, q);
    }
  });
});

describe('errors', () => {
  function fails(q: string, position: number, token: string, message: RegExp): void {
    assert.throws(
      () => parseQuery(q),
      (e: unknown) => {
        assert.ok(e instanceof SteleError, `${q}: ${e}`);
        assert.equal(e.code, 'bad_query', q);
        assert.equal(e.status, 400, q);
        assert.deepEqual(e.detail, { position, token }, q);
        assert.match(e.message, message, q);
        return true;
      },
      q,
    );
  }

  test('unknown fields list the known ones', () => {
    fails('actr:alice', 0, 'actr', /^unknown field "actr" at column 1 \(fields: actor, type, on_behalf_of, /);
    fails('init.el http://example.com', 8, 'http', /unknown field "http" at column 9/);
    assert.deepEqual(QUERY_FIELDS.slice(0, 3), ['actor', 'type', 'on_behalf_of']);
    assert.ok(QUERY_FIELDS.includes('since') && QUERY_FIELDS.includes('index'));
  });

  test('quotes and parentheses', () => {
    fails('actor:alice "init.el', 12, '"init.el', /^unterminated quote at column 13$/);
    fails('actor:"alice', 6, '"alice', /^unterminated quote at column 7$/);
    fails('"a\\"', 0, '"a\\"', /unterminated quote/);
    fails('(actor:alice OR actor:bob', 25, '', /^expected "\)" at column 26 to close the "\(" at column 1$/);
    fails('actor:alice)', 11, ')', /^unexpected "\)" at column 12/);
    fails('a ()', 2, '()', /^empty parentheses at column 3$/);
    fails('a (', 2, '(', /^"\(" at column 3 needs a term after it$/);
  });

  test('dangling and misplaced operators', () => {
    fails('actor:alice OR', 12, 'OR', /^"OR" at column 13 needs a term after it$/);
    fails('OR actor:alice', 0, 'OR', /^unexpected "OR" at column 1 \(expected a term before it\)$/);
    fails('a AND OR b', 6, 'OR', /^unexpected "OR" at column 7 \(expected a term after "AND"\)$/);
    fails('a AND', 2, 'AND', /needs a term after it/);
    fails('NOT', 0, 'NOT', /^"NOT" at column 1 needs a term after it$/);
    fails('a (NOT)', 6, ')', /expected a term after "NOT"/);
    fails('a -', 2, '-', /^"-" at column 3 must be written directly before what it excludes/);
    fails('a - b', 2, '-', /directly before/);
  });

  test('empty values', () => {
    fails('actor:', 0, 'actor:', /^actor: needs a value at column 1$/);
    fails('x host: y', 2, 'host:', /^host: needs a value at column 3$/);
    fails('actor:""', 0, 'actor:""', /needs a value/);
  });

  test('validated values', () => {
    fails('outcome:great', 8, 'great', /^outcome must be success, failure or denied, not "great" at column 9$/);
    fails('type:robot', 5, 'robot', /^type must be human, service or ai_agent, not "robot"/);
    fails('actor_type:hum*', 11, 'hum*', /^type must be human/);
    fails('outcome:*', 8, '*', /outcome must be/);
    fails('verified:yes', 9, 'yes', /^verified must be true or false, not "yes" at column 10$/);
    fails('index:x', 6, 'x', /^index must be a number such as 42 or a range/);
    fails('index:..', 6, '..', /index must be a number/);
    fails('index:1..2..3', 6, '1..2..3', /index must be a number/);
    fails('index:-1', 6, '-1', /index must be a number/);
    fails('index:20..10', 6, '20..10', /^index range "20..10" starts after it ends at column 7$/);
    fails('index:99999999999999999999', 6, '99999999999999999999', /is too large/);
  });

  test('times', () => {
    fails(
      'since:7x',
      6,
      '7x',
      /^"7x" is not a duration \(7d, 36h, 1h30m\), a date \(2026-11-17\) or an RFC 3339 time at column 7$/,
    );
    fails('until:7d*', 6, '7d*', /is not a duration/);
    fails('since:yesterday', 6, 'yesterday', /is not a duration/);
    fails('since:2026-02-30', 6, '2026-02-30', /^"2026-02-30" is not a valid date at column 7$/);
    fails('until:2026-11-17T25:00:00Z', 6, '2026-11-17T25:00:00Z', /has no such time of day at column 7$/);
    fails('until:2026-11-17T10:00Z', 6, '2026-11-17T10:00Z', /is not an RFC 3339 date-time/);
    fails('since:9999999999999999y', 6, '9999999999999999y', /too long a duration/);
  });

  test('terms with nothing to search for', () => {
    fails('*', 0, '*', /^"\*" at column 1 has no letters or digits to search for$/);
    fails('init.el &', 8, '&', /no letters or digits/);
    fails('""', 0, '""', /no letters or digits/);
    fails('a OR "!?"*', 5, '"!?"*', /no letters or digits/);
  });
});
