import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { SteleError } from '../core/errors.js';
import { type CompiledQuery, compileQuery, parseQuery, QUERY_FIELDS } from './query.js';
import { SCHEMA_SQL } from './schema.js';

const NOW = Date.UTC(2026, 10, 20, 12); // 2026-11-20T12:00:00Z
const us = (iso: string) => Date.parse(iso) * 1000;

interface Row {
  id?: string;
  time?: number;
  actor?: string;
  actor_type?: string;
  on_behalf_of?: string;
  verified?: number;
  action?: string;
  source?: string;
  host?: string;
  resource_type?: string;
  resource_id?: string;
  outcome?: string;
  subject?: string;
  tier?: string;
  key_id?: string;
  principal?: string;
  text: string;
}

// Index = position. Rows without a time sit far in the past (2026-10-01 plus idx hours).
const ROWS: Row[] = [
  /* 0 */ {
    actor: 'alice',
    action: 'emacs.package.install',
    source: 'emacs',
    host: 'laptop',
    resource_type: 'package',
    resource_id: 'magit',
    principal: 'oidc:alice',
    time: us('2026-11-10T12:00:00Z'),
    text: 'installed magit from melpa; init.el updated',
  },
  /* 1 */ {
    actor: 'alice',
    action: 'emacs.package.remove',
    source: 'emacs',
    host: 'laptop',
    resource_type: 'package',
    resource_id: 'evil',
    outcome: 'failure',
    time: us('2026-11-14T12:00:00Z'),
    text: 'removing evil failed: init.el is locked',
  },
  /* 2 */ {
    actor: 'bob',
    verified: 1,
    action: 'git.commit',
    source: 'git',
    host: 'ci-01',
    resource_type: 'repo',
    resource_id: 'stele',
    subject: 'PR-7',
    tier: 'audit',
    key_id: 'k1',
    principal: 'apikey:ci',
    time: us('2026-11-17T12:00:00Z'),
    text: 'fix the query parser near the cursor',
  },
  /* 3 */ {
    actor: 'Alice Smith',
    action: 'git.push',
    source: 'git',
    resource_type: 'repo',
    resource_id: 'stele',
    time: us('2026-11-18T12:00:00Z'),
    text: 'pushed main to origin',
  },
  /* 4 */ {
    actor: 'deploy-bot',
    actor_type: 'service',
    action: 'k8s.apply',
    source: 'kubernetes',
    resource_type: 'deployment',
    resource_id: 'api',
    outcome: 'denied',
    time: us('2026-11-17T00:00:00Z'),
    text: 'apply denied by policy',
  },
  /* 5 */ {
    actor: 'claude',
    actor_type: 'ai_agent',
    on_behalf_of: 'alice',
    action: 'emacs.edit',
    source: 'emacs',
    host: 'laptop',
    resource_type: 'file',
    resource_id: 'init.el',
    time: us('2026-11-19T00:00:00Z'), // exactly 36h before NOW
    text: 'edited init.el with claude',
  },
  /* 6 */ { resource_id: 'a?b', time: us('2026-11-17T00:00:00Z') - 1, text: 'question mark resource' },
  /* 7 */ { resource_id: 'a[1]', text: 'bracket resource' },
  /* 8 */ { resource_id: 'axb', text: 'plain resource' },
  /* 9 */ { text: 'near a b' },
  /* 10 */ { resource_id: 'a1', text: 'col x' },
  /* 11 */ { text: 'x or y and not z' },
  /* 12 */ { text: 'quote a"b here' },
];
const ALL = ROWS.map((_, i) => i);
const allBut = (...xs: number[]) => ALL.filter((i) => !xs.includes(i));

const db = new Database(':memory:');
after(() => db.close());
db.exec(SCHEMA_SQL);
{
  const insert = db.prepare(
    `INSERT INTO entries VALUES (:idx, :id, :time, :time, :actor, :actor_type, :on_behalf_of, :verified, :action, :source,
       :host, :resource_type, :resource_id, :outcome, :subject, :tier, :key_id, :principal)`,
  );
  const insertText = db.prepare('INSERT INTO fts (rowid, text) VALUES (?, ?)');
  for (const [idx, r] of ROWS.entries()) {
    insert.run({
      idx,
      id: r.id ?? `ev-${idx}`,
      time: r.time ?? us('2026-10-01T00:00:00Z') + idx * 3_600_000_000,
      actor: r.actor ?? 'carol',
      actor_type: r.actor_type ?? 'human',
      on_behalf_of: r.on_behalf_of ?? null,
      verified: r.verified ?? 0,
      action: r.action ?? 'misc.noop',
      source: r.source ?? 'cli',
      host: r.host ?? null,
      resource_type: r.resource_type ?? null,
      resource_id: r.resource_id ?? null,
      outcome: r.outcome ?? 'success',
      subject: r.subject ?? null,
      tier: r.tier ?? 'standard',
      key_id: r.key_id ?? null,
      principal: r.principal ?? 'local',
    });
    insertText.run(idx, r.text);
  }
}

/** The store's two statement shapes (with a cursor), as the task defines them. */
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

function search(q: string): number[] {
  const { sql, params } = statement(compileQuery(q, NOW));
  return (db.prepare(sql).all(...params) as { idx: number }[]).map((r) => r.idx).sort((a, b) => a - b);
}

function check(cases: [string, number[]][]): void {
  for (const [q, want] of cases) assert.deepEqual(search(q), want, q);
}

describe('fields', () => {
  test('actor, exact and quoted', () => {
    check([
      ['actor:alice', [0, 1]],
      ['actor:"Alice Smith"', [3]],
      ['actor:Alice', []], // values are case-sensitive
      ['Actor:bob', [2]], // field names are not
    ]);
  });

  test('type (and actor_type), validated and case-folded', () => {
    check([
      ['type:service', [4]],
      ['actor_type:ai_agent', [5]],
      ['type:HUMAN', allBut(4, 5)],
    ]);
  });

  test('on_behalf_of, verified, source, host, tier, key, principal, subject, id', () => {
    check([
      ['on_behalf_of:alice', [5]],
      ['verified:true', [2]],
      ['verified:false', allBut(2)],
      ['source:emacs', [0, 1, 5]],
      ['host:laptop', [0, 1, 5]],
      ['tier:audit', [2]],
      ['key:k1', [2]],
      ['principal:oidc:alice', [0]], // a value may itself contain ":"
      ['subject:PR-7', [2]],
      ['id:ev-3', [3]],
    ]);
  });

  test('resource is resource_id; resource_type', () => {
    check([
      ['resource:stele', [2, 3]],
      ['resource:init.el', [5]],
      ['resource_type:repo', [2, 3]],
    ]);
  });

  test('outcome, validated and case-folded', () => {
    check([
      ['outcome:failure', [1]],
      ['outcome:Denied', [4]],
      ['outcome:success', allBut(1, 4)],
    ]);
  });

  test('index: single, closed and open ranges (inclusive)', () => {
    check([
      ['index:4', [4]],
      ['index:10..12', [10, 11, 12]],
      ['index:3..3', [3]],
      ['index:..1', [0, 1]],
      ['index:11..', [11, 12]],
    ]);
  });
});

describe('wildcards', () => {
  test('prefix, infix, suffix and case-sensitivity', () => {
    check([
      ['action:emacs.package.*', [0, 1]],
      ['action:emacs.*', [0, 1, 5]],
      ['action:*.package.*', [0, 1]],
      ['action:*.push', [3]],
      ['action:emacs*edit', [5]],
      ['actor:alice*', [0, 1]],
      ['actor:Alice*', [3]],
      ['id:ev-1*', [1, 10, 11, 12]],
      ['principal:apikey:*', [2]],
    ]);
  });

  test('* alone means the field is present; negated, absent', () => {
    check([
      ['on_behalf_of:*', [5]],
      ['host:*', [0, 1, 2, 5]],
      ['subject:*', [2]],
      ['key:*', [2]],
      ['-host:*', allBut(0, 1, 2, 5)],
      ['actor:*', ALL],
    ]);
  });

  test('GLOB metacharacters in values are literal', () => {
    check([
      ['resource:a?b', [6]], // not axb
      ['resource:a[1]', [7]], // not a1
      ['resource:a?*', [6]],
      ['resource:a[*', [7]],
      ['resource:*1]', [7]],
      ['resource:a*', [4, 6, 7, 8, 10]],
    ]);
  });

  test('quoted values keep wildcards; \\* is a literal star', () => {
    check([
      ['actor:"Alice *"', [3]],
      ['actor:"Alice\\*"', []],
    ]);
    assert.deepEqual(compileQuery('actor:"a\\*b*"', NOW).params, ['a[*]b*']);
  });

  test('a literal-prefix GLOB compiles to GLOB with the pattern as is, and uses the index', () => {
    const c = compileQuery('action:emacs.package.*', NOW);
    assert.deepEqual(c, { match: null, where: 'e.action GLOB ?', params: ['emacs.package.*'] });
    const { sql, params } = statement(c);
    const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail);
    assert.ok(
      plan.some((d) => d.includes('entries_action')),
      plan.join('\n'),
    );
  });
});

describe('time', () => {
  test('durations ago: since inclusive, until exclusive', () => {
    check([
      ['since:7d', [1, 2, 3, 4, 5, 6]],
      ['since:1w', [1, 2, 3, 4, 5, 6]],
      ['since:36h', [5]], // exactly 36h ago is included
      ['since:1d12h', [5]],
      ['since:2160m', [5]],
      ['until:36h', allBut(5)],
    ]);
  });

  test('dates are midnight UTC', () => {
    check([
      ['since:2026-11-17', [2, 3, 4, 5]], // 4 is at midnight exactly; 6 a microsecond before
      ['until:2026-11-17', allBut(2, 3, 4, 5)],
    ]);
  });

  test('RFC 3339 times, with offsets and fractions', () => {
    check([
      ['since:2026-11-17T13:00:00+01:00', [2, 3, 5]],
      ['until:2026-11-17T00:00:00.000001Z', allBut(2, 3, 5)],
      ['since:2026-11-16T23:59:59.999999Z until:2026-11-17T00:00:00Z', [6]],
      ['since:1w until:2026-11-17T12:00:00Z', [1, 4, 6]],
    ]);
  });

  test('times are numeric microsecond parameters', () => {
    assert.deepEqual(compileQuery('since:1h until:2026-11-17', NOW), {
      match: null,
      where: 'e.time >= ? AND e.time < ?',
      params: [(NOW - 3_600_000) * 1000, us('2026-11-17T00:00:00Z')],
    });
  });
});

describe('boolean operators', () => {
  test('implicit and explicit AND', () => {
    check([
      ['actor:alice outcome:failure', [1]],
      ['actor:alice AND outcome:failure', [1]],
      ['source:emacs host:laptop actor:claude', [5]],
    ]);
  });

  test('OR, and AND binding tighter than OR', () => {
    check([
      ['actor:bob OR actor:claude', [2, 5]],
      ['actor:bob OR actor:alice outcome:failure', [1, 2]],
      ['actor:alice OR actor:bob AND verified:false', [0, 1]],
      ['outcome:failure OR outcome:denied OR type:ai_agent', [1, 4, 5]],
    ]);
  });

  test('parentheses group', () => {
    check([
      ['(actor:bob OR actor:alice) outcome:failure', [1]],
      ['(actor:bob OR actor:alice) AND (source:git OR outcome:failure)', [1, 2]],
      ['((actor:claude))', [5]],
    ]);
  });

  test('NOT and - bind tighter than AND', () => {
    check([
      ['NOT actor:alice source:emacs', [5]],
      ['-actor:alice source:emacs', [5]],
      ['NOT (actor:alice source:emacs)', allBut(0, 1)],
      ['-(actor:alice OR actor:bob)', allBut(0, 1, 2)],
      ['-source:emacs OR actor:alice', allBut(5)],
      ['--actor:bob', [2]],
      ['NOT -actor:bob', [2]],
    ]);
  });

  test('a query of only negations is allowed', () => {
    check([
      ['-actor:alice', allBut(0, 1)],
      ['-actor:alice -actor:bob NOT source:emacs', allBut(0, 1, 2, 5)],
    ]);
  });

  test('negating a nullable field keeps the entries without it', () => {
    check([
      ['-host:laptop', allBut(0, 1, 5)],
      ['-subject:PR-7', allBut(2)],
      ['-resource:a*', allBut(4, 6, 7, 8, 10)],
      ['-(host:laptop OR actor:bob)', allBut(0, 1, 2, 5)],
    ]);
  });

  test('lower-case and/or/not are words, not operators', () => {
    check([
      ['or', [11]],
      ['and', [11]],
      ['x or y', [11]],
      ['actor:bob or', []], // "or" is a term no entry of bob has
    ]);
  });

  test('an empty or blank query matches everything', () => {
    assert.deepEqual(compileQuery('', NOW), { match: null, where: '1', params: [] });
    assert.deepEqual(compileQuery(' \t\n', NOW), { match: null, where: '1', params: [] });
    assert.deepEqual(search(''), ALL);
    assert.equal(parseQuery('  '), null);
  });
});

describe('full text', () => {
  test('words and phrases; top-level terms go to match', () => {
    check([
      ['init.el', [0, 1, 5]],
      ['"init.el"', [0, 1, 5]],
      ['init.el claude', [5]],
      ['"edited init.el"', [5]],
      ['"init.el edited"', []], // a phrase keeps its word order
      ['CLAUDE', [5]],
    ]);
    assert.deepEqual(compileQuery('init.el claude source:emacs', NOW), {
      match: '"init.el" AND "claude"',
      where: 'e.source = ?',
      params: ['emacs'],
    });
  });

  test('prefix search', () => {
    check([
      ['remov*', [1]],
      ['"with cl"*', [5]],
      ['res*', [6, 7, 8]],
    ]);
    assert.equal(compileQuery('init*', NOW).match, '"init" *');
  });

  test('terms under OR or negated go to where as fts subqueries', () => {
    check([
      ['claude OR policy', [4, 5]],
      ['-init.el', allBut(0, 1, 5)],
      ['NOT init.el', allBut(0, 1, 5)],
      ['init.el -claude', [0, 1]],
      ['source:emacs (claude OR melpa)', [0, 5]],
      ['actor:bob OR claude', [2, 5]],
      ['-(edited init.el)', allBut(5)],
    ]);
    assert.deepEqual(compileQuery('init.el -claude', NOW), {
      match: '"init.el"',
      where: 'e.idx NOT IN (SELECT rowid FROM fts WHERE fts MATCH ?)',
      params: ['"claude"'],
    });
  });

  test('FTS5 syntax in the query is taken literally', () => {
    check([
      ['"NEAR(a b)"', [9]],
      ['NEAR', [2, 9]],
      ['NEAR(a b)', [9]], // NEAR AND (a AND b), as words
      ['a"b', [9, 12]], // a quote inside a word is a character
      ['"a\\"b"', [9, 12]],
      ['"col:x"', [10]], // not a column filter
      ['"x\\" OR \\"y"', [11]], // one phrase x or y, not x OR y
      ['^init', [0, 1, 5]], // not "first token"
      ['"text:init"', []],
      ['"{text}:init"', []],
    ]);
  });
});

describe('errors', () => {
  function fails(q: string, position: number, token: string, message: RegExp): void {
    assert.throws(
      () => compileQuery(q, NOW),
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

// The SQL vocabulary compileQuery may emit: anything else in `where` would be user text.
const SQL_WORDS = new Set(
  ['?', '=', '>=', '<=', '<', '0', '1', 'NOT', 'AND', 'OR', 'IN', 'SELECT', 'rowid', 'FROM', 'fts', 'WHERE', 'MATCH'].concat(
    ['GLOB', 'IS', 'NULL', 'coalesce', 'e.idx', 'e.time'],
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
        c = compileQuery(pieces.join(''), NOW);
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
