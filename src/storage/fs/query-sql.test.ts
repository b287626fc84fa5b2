import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { SteleError } from '../../core/errors.js';
import { parseQuery } from '../../index/query.js';
import { SCHEMA_SQL } from './query-schema.js';
import { type CompiledQuery, compileQuery, compileStoreQuery } from './query-sql.js';

// What the SQL looks like (what each query matches is the conformance suite's: src/storage/conformance/query.ts).

const NOW = Date.UTC(2026, 10, 20, 12); // 2026-11-20T12:00:00Z
const us = (iso: string) => Date.parse(iso) * 1000;
const compile = (q: string) => compileQuery(parseQuery(q), NOW);

const db = new Database(':memory:');
after(() => db.close());
db.exec(SCHEMA_SQL);

/** The store's two statement shapes (with a cursor). */
function statement(c: CompiledQuery): { sql: string; params: (string | number)[] } {
  const cursor = 1_000_000;
  return c.match === null
    ? {
        sql: `SELECT e.* FROM entries e WHERE (${c.where}) AND e.idx < ? ORDER BY e.idx DESC LIMIT 100`,
        params: [...c.params, cursor],
      }
    : {
        sql: `SELECT e.* FROM fts JOIN entries e ON e.idx = fts.rowid WHERE fts MATCH ? AND (${c.where}) AND e.idx < ? ORDER BY e.idx DESC LIMIT 100`,
        params: [c.match, ...c.params, cursor],
      };
}

describe('compiled SQL', () => {
  test('an empty query has no condition', () => {
    assert.deepEqual(compileQuery(null, NOW), { match: null, where: '1', params: [] });
  });

  test('values are parameters; GLOB patterns as the parser escaped them', () => {
    assert.deepEqual(compile('actor:"a\\*b*"').params, ['a[*]b*']);
    assert.deepEqual(compile('actor:alice outcome:failure'), {
      match: null,
      where: 'e.actor IN (SELECT id FROM terms WHERE value = ?) AND e.outcome IN (SELECT id FROM terms WHERE value = ?)',
      params: ['alice', 'failure'],
    });
  });

  test('a literal-prefix GLOB compiles to GLOB with the pattern as is', () => {
    assert.deepEqual(compile('action:emacs.package.*'), {
      match: null,
      where: 'e.action IN (SELECT id FROM terms WHERE value GLOB ?)',
      params: ['emacs.package.*'],
    });
  });

  // The query types of `npm run bench:query` each read an index (schema 4 keeps four: time, actor
  // + time, outcome + action + time, key).
  const plan = (q: string) => {
    const { sql, params } = statement(compile(q));
    return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail).join('\n');
  };
  test('action wildcard + outcome reads entries_outcome', () => {
    assert.match(plan('action:emacs.package.* outcome:denied'), /entries_outcome/);
  });
  test('actor + time range reads entries_actor', () => {
    assert.match(plan('actor:alice since:2026-11-10 until:2026-11-17'), /entries_actor/);
  });
  test('a time range alone reads entries_time', () => {
    assert.match(plan('since:2026-11-10 until:2026-11-17'), /entries_time/);
  });

  test('times are numeric microsecond parameters, anchored at the given now', () => {
    assert.deepEqual(compile('since:1h until:2026-11-17'), {
      match: null,
      where: 'e.time >= ? AND e.time < ?',
      params: [(NOW - 3_600_000) * 1000, us('2026-11-17T00:00:00Z')],
    });
  });

  test('top-level full-text terms go to match, as FTS5 strings', () => {
    assert.deepEqual(compile('init.el claude source:emacs'), {
      match: '"init.el" AND "claude"',
      where: 'e.source IN (SELECT id FROM terms WHERE value = ?)',
      params: ['emacs'],
    });
    assert.equal(compile('init*').match, '"init" *');
    assert.equal(compile('"a\\"b"').match, '"a""b"');
  });

  test('terms under OR or negated go to where as fts subqueries', () => {
    assert.deepEqual(compile('init.el -claude'), {
      match: '"init.el"',
      where: 'e.idx NOT IN (SELECT rowid FROM fts WHERE fts MATCH ?)',
      params: ['"claude"'],
    });
  });

  test('negating a nullable field coalesces, so entries without it stay', () => {
    assert.deepEqual(compile('-host:laptop').where, 'NOT coalesce(e.host IN (SELECT id FROM terms WHERE value = ?), 0)');
    assert.deepEqual(compile('-actor:bob').where, 'NOT (e.actor IN (SELECT id FROM terms WHERE value = ?))');
  });

  test('tiers are bound parameters; an empty list compiles to nothing to run', () => {
    const q = (s: string, tiers?: string[]) =>
      compileStoreQuery({ root: parseQuery(s), nowMs: NOW, ...(tiers ? { tiers } : {}) });
    assert.deepEqual(q('', ["a') OR 1=1 --", 'b'])?.entries, {
      match: null,
      where: 'e.tier IN (?, ?)',
      params: ["a') OR 1=1 --", 'b'],
    });
    assert.deepEqual(q('actor:x', ['a'])?.entries, {
      match: null,
      where: '(e.actor IN (SELECT id FROM terms WHERE value = ?)) AND e.tier IN (?)',
      params: ['x', 'a'],
    });
    assert.equal(q('', []), null);
    assert.equal(q('actor:x')?.gaps, null);
    assert.deepEqual(q('index:3', ['a'])?.gaps, q('index:3', ['a'])?.entries);
  });
});

// The SQL vocabulary compileQuery may emit: anything else in `where` would be user text.
const SQL_WORDS = new Set(
  [
    '?',
    '=',
    '>=',
    '<=',
    '<',
    '0',
    '1',
    'NOT',
    'AND',
    'OR',
    'IN',
    'SELECT',
    'rowid',
    'FROM',
    'fts',
    'WHERE',
    'MATCH',
    'id',
    'terms',
    'value',
  ].concat(
    ['GLOB', 'IS', 'NULL', 'coalesce', 'e.idx', 'e.time', 'e.tier'],
    ['actor', 'actor_type', 'on_behalf_of', 'verified', 'action', 'source', 'host', 'resource_type'].map((c) => `e.${c}`),
    ['resource_id', 'outcome', 'subject', 'tier', 'key_id', 'principal', 'id'].map((c) => `e.${c}`),
  ),
);

test('any input either compiles to SQL SQLite runs, with user text only in parameters, or is a bad_query', () => {
  const piece = fc.constantFrom(
    ...['a', 'b', 'x', ' ', '"', '\\', '*', '(', ')', '-', ':', '?', '[', ']', '.', "'", ';', '\0', 'é'],
    ...['AND', 'OR', 'NOT', 'NEAR', 'actor:', 'host:', 'index:', 'since:', '7d', '2026-11-17', '1..3', 'outcome:denied'],
  );
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
      let c: CompiledQuery;
      try {
        c = compile(pieces.join(''));
      } catch (e) {
        if (e instanceof SteleError && e.code === 'bad_query') return;
        throw e;
      }
      for (const w of c.where.split(/[\s(),]+/)) if (w !== '') assert.ok(SQL_WORDS.has(w), `${w} in ${c.where}`);
      assert.equal(c.where.split('?').length - 1, c.params.length);
      const { sql, params } = statement(c);
      db.prepare(sql).all(...params);
    }),
    { numRuns: 3000 },
  );
});
