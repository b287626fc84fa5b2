/**
 * What every query store driver must do (src/index/query-store.ts), as node:test tests registered
 * against a factory of empty stores: the query language's meaning on a fixed set of rows, paging,
 * tiers, tombstones and their erasure links, deletion and the other members. Each driver's test
 * file calls queryStoreConformance (src/storage/query.conformance.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { IndexRow } from '../../event/searchable.js';
import { addTally, type Buckets, emptyTally, FACETS, type Tally } from '../../index/aggregate.js';
import { parseQuery } from '../../index/query.js';
import type { Order, QueryStore, SearchPage, StoreMatch, StoreQuery } from '../../index/query-store.js';

/** An empty store of the driver under test (each call a new one). */
export type OpenQueryStore = () => Promise<QueryStore>;

export const NOW = Date.UTC(2026, 10, 20, 12); // 2026-11-20T12:00:00Z
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
    id: '3f2a9c1e-52d5-487e-88eb-af4dbead6b94',
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
    id: '3F2A9C1E-0000-487E-88EB-AF4DBEAD6B94', // not the lowercase form: the fs driver keeps it as text
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

function fixtureRow(idx: number, r: Row): { row: IndexRow; text: string } {
  const time = r.time ?? us('2026-10-01T00:00:00Z') + idx * 3_600_000_000;
  return {
    row: {
      idx,
      id: r.id ?? `ev-${idx}`,
      time,
      received: time,
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
    },
    text: r.text,
  };
}

/** The query as the index thread asks it (parsed, anchored at NOW). */
export const storeQuery = (q: string, tiers?: readonly string[], nowMs = NOW): StoreQuery => ({
  root: parseQuery(q),
  nowMs,
  ...(tiers ? { tiers } : {}),
});

const idxOf = (m: StoreMatch) => (m.kind === 'entry' ? m.row.idx : m.gap.idx);

/** Every match of `q` in log order, page by page. */
async function pages(store: QueryStore, q: StoreQuery, order: Order, limit: number, bound?: number): Promise<StoreMatch[]> {
  const out: StoreMatch[] = [];
  let cursor: number | undefined;
  for (;;) {
    const page: SearchPage = {
      limit,
      order,
      ...(cursor === undefined ? {} : { cursor }),
      ...(bound === undefined ? {} : { bound }),
    };
    const found = await store.search(q, page);
    out.push(...found);
    if (found.length < limit) return out;
    cursor = idxOf(found.at(-1) as StoreMatch);
  }
}

export function queryStoreConformance(open: OpenQueryStore): void {
  describe('the query language on a fixed set of rows', () => {
    let store: QueryStore;
    before(async () => {
      store = await open();
      await store.insert({ rows: ROWS.map((r, i) => fixtureRow(i, r)), upto: ROWS.length });
    });
    after(() => store.close());

    async function check(cases: [string, number[]][]): Promise<void> {
      for (const [q, want] of cases) {
        const found = await store.search(storeQuery(q), { limit: 100, order: 'asc' });
        assert.deepEqual(found.map(idxOf), want, q);
        assert.deepEqual(await store.count(storeQuery(q)), { entries: want.length, gaps: 0 }, q);
      }
    }

    describe('query language: fields', () => {
      it('id, exact and wildcard, a UUID in either case or any other string', async () => {
        await check([
          ['id:3f2a9c1e-52d5-487e-88eb-af4dbead6b94', [0]],
          ['id:3F2A9C1E-52D5-487E-88EB-AF4DBEAD6B94', []], // ids are case-sensitive
          ['id:3F2A9C1E-0000-487E-88EB-AF4DBEAD6B94', [1]],
          ['id:3f2a9c1e52d5487e88ebaf4dbead6b94', []], // the same bytes without dashes is another id
          ['id:3f2a*', [0]],
          ['id:*6b94', [0]],
          ['id:*6B94', [1]],
          ['id:ev-2', [2]],
          ['id:ev-1*', [10, 11, 12]],
        ]);
        const [hit] = await store.search(storeQuery('id:3f2a*'), { limit: 1, order: 'asc' });
        assert.equal(hit?.kind === 'entry' && hit.row.id, '3f2a9c1e-52d5-487e-88eb-af4dbead6b94');
      });
      it('actor, exact and quoted', async () => {
        await check([
          ['actor:alice', [0, 1]],
          ['actor:"Alice Smith"', [3]],
          ['actor:Alice', []], // values are case-sensitive
          ['Actor:bob', [2]], // field names are not
        ]);
      });

      it('type (and actor_type), validated and case-folded', async () => {
        await check([
          ['type:service', [4]],
          ['actor_type:ai_agent', [5]],
          ['type:HUMAN', allBut(4, 5)],
        ]);
      });

      it('on_behalf_of, verified, source, host, tier, key, principal, subject, id', async () => {
        await check([
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

      it('resource is resource_id; resource_type', async () => {
        await check([
          ['resource:stele', [2, 3]],
          ['resource:init.el', [5]],
          ['resource_type:repo', [2, 3]],
        ]);
      });

      it('outcome, validated and case-folded', async () => {
        await check([
          ['outcome:failure', [1]],
          ['outcome:Denied', [4]],
          ['outcome:success', allBut(1, 4)],
        ]);
      });

      it('index: single, closed and open ranges (inclusive)', async () => {
        await check([
          ['index:4', [4]],
          ['index:10..12', [10, 11, 12]],
          ['index:3..3', [3]],
          ['index:..1', [0, 1]],
          ['index:11..', [11, 12]],
        ]);
      });
    });

    describe('query language: wildcards', () => {
      it('prefix, infix, suffix and case-sensitivity', async () => {
        await check([
          ['action:emacs.package.*', [0, 1]],
          ['action:emacs.*', [0, 1, 5]],
          ['action:*.package.*', [0, 1]],
          ['action:*.push', [3]],
          ['action:emacs*edit', [5]],
          ['actor:alice*', [0, 1]],
          ['actor:Alice*', [3]],
          ['id:ev-1*', [10, 11, 12]],
          ['principal:apikey:*', [2]],
        ]);
      });

      it('* alone means the field is present; negated, absent', async () => {
        await check([
          ['on_behalf_of:*', [5]],
          ['host:*', [0, 1, 2, 5]],
          ['subject:*', [2]],
          ['key:*', [2]],
          ['-host:*', allBut(0, 1, 2, 5)],
          ['actor:*', ALL],
        ]);
      });

      it('GLOB metacharacters in values are literal', async () => {
        await check([
          ['resource:a?b', [6]], // not axb
          ['resource:a[1]', [7]], // not a1
          ['resource:a?*', [6]],
          ['resource:a[*', [7]],
          ['resource:*1]', [7]],
          ['resource:a*', [4, 6, 7, 8, 10]],
        ]);
      });

      it('quoted values keep wildcards; \\* is a literal star', async () => {
        await check([
          ['actor:"Alice *"', [3]],
          ['actor:"Alice\\*"', []],
        ]);
      });
    });

    describe('query language: time', () => {
      it('durations ago: since inclusive, until exclusive', async () => {
        await check([
          ['since:7d', [1, 2, 3, 4, 5, 6]],
          ['since:1w', [1, 2, 3, 4, 5, 6]],
          ['since:36h', [5]], // exactly 36h ago is included
          ['since:1d12h', [5]],
          ['since:2160m', [5]],
          ['until:36h', allBut(5)],
        ]);
      });

      it('dates are midnight UTC', async () => {
        await check([
          ['since:2026-11-17', [2, 3, 4, 5]], // 4 is at midnight exactly; 6 a microsecond before
          ['until:2026-11-17', allBut(2, 3, 4, 5)],
        ]);
      });

      it('RFC 3339 times, with offsets and fractions', async () => {
        await check([
          ['since:2026-11-17T13:00:00+01:00', [2, 3, 5]],
          ['until:2026-11-17T00:00:00.000001Z', allBut(2, 3, 5)],
          ['since:2026-11-16T23:59:59.999999Z until:2026-11-17T00:00:00Z', [6]],
          ['since:1w until:2026-11-17T12:00:00Z', [1, 4, 6]],
        ]);
      });
    });

    describe('query language: boolean operators', () => {
      it('implicit and explicit AND', async () => {
        await check([
          ['actor:alice outcome:failure', [1]],
          ['actor:alice AND outcome:failure', [1]],
          ['source:emacs host:laptop actor:claude', [5]],
        ]);
      });

      it('OR, and AND binding tighter than OR', async () => {
        await check([
          ['actor:bob OR actor:claude', [2, 5]],
          ['actor:bob OR actor:alice outcome:failure', [1, 2]],
          ['actor:alice OR actor:bob AND verified:false', [0, 1]],
          ['outcome:failure OR outcome:denied OR type:ai_agent', [1, 4, 5]],
        ]);
      });

      it('parentheses group', async () => {
        await check([
          ['(actor:bob OR actor:alice) outcome:failure', [1]],
          ['(actor:bob OR actor:alice) AND (source:git OR outcome:failure)', [1, 2]],
          ['((actor:claude))', [5]],
        ]);
      });

      it('NOT and - bind tighter than AND', async () => {
        await check([
          ['NOT actor:alice source:emacs', [5]],
          ['-actor:alice source:emacs', [5]],
          ['NOT (actor:alice source:emacs)', allBut(0, 1)],
          ['-(actor:alice OR actor:bob)', allBut(0, 1, 2)],
          ['-source:emacs OR actor:alice', allBut(5)],
          ['--actor:bob', [2]],
          ['NOT -actor:bob', [2]],
        ]);
      });

      it('a query of only negations is allowed', async () => {
        await check([
          ['-actor:alice', allBut(0, 1)],
          ['-actor:alice -actor:bob NOT source:emacs', allBut(0, 1, 2, 5)],
        ]);
      });

      it('negating a nullable field keeps the entries without it', async () => {
        await check([
          ['-host:laptop', allBut(0, 1, 5)],
          ['-subject:PR-7', allBut(2)],
          ['-resource:a*', allBut(4, 6, 7, 8, 10)],
          ['-(host:laptop OR actor:bob)', allBut(0, 1, 2, 5)],
        ]);
      });

      it('lower-case and/or/not are words, not operators', async () => {
        await check([
          ['or', [11]],
          ['and', [11]],
          ['x or y', [11]],
          ['actor:bob or', []], // "or" is a term no entry of bob has
        ]);
      });

      it('an empty or blank query matches everything', async () => {
        await check([
          ['', ALL],
          [' \t\n', ALL],
        ]);
      });
    });

    describe('query language: full text', () => {
      it('words and phrases; top-level terms go to match', async () => {
        await check([
          ['init.el', [0, 1, 5]],
          ['"init.el"', [0, 1, 5]],
          ['init.el claude', [5]],
          ['"edited init.el"', [5]],
          ['"init.el edited"', []], // a phrase keeps its word order
          ['CLAUDE', [5]],
        ]);
      });

      it('prefix search', async () => {
        await check([
          ['remov*', [1]],
          ['"with cl"*', [5]],
          ['res*', [6, 7, 8]],
        ]);
      });

      it('terms under OR or negated go to where as fts subqueries', async () => {
        await check([
          ['claude OR policy', [4, 5]],
          ['-init.el', allBut(0, 1, 5)],
          ['NOT init.el', allBut(0, 1, 5)],
          ['init.el -claude', [0, 1]],
          ['source:emacs (claude OR melpa)', [0, 5]],
          ['actor:bob OR claude', [2, 5]],
          ['-(edited init.el)', allBut(5)],
        ]);
      });

      it('FTS5 syntax in the query is taken literally', async () => {
        await check([
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
  });

  describe('paging', () => {
    // More entries than the SQLite store's probe window (16,384), with matches common (found in
    // the window), rare (found through its indexes) and absent, and entries the store never got
    // (expired before indexing), so every way a driver answers a page is exercised.
    const N = 16_384 * 2 + 123;
    const T0 = Date.parse('2026-11-01T00:00:00Z') * 1000;
    const rows: IndexRow[] = [];
    let store: QueryStore;

    function row(idx: number): IndexRow {
      const rare = idx % 997 === 0;
      return {
        idx,
        id: `00000000-0000-7000-8000-${String(idx).padStart(12, '0')}`,
        time: T0 + idx * 1_000_000,
        received: T0 + idx * 1_000_000,
        actor: rare ? 'zed' : idx % 2 ? 'alice' : 'bob',
        actor_type: 'human',
        on_behalf_of: null,
        verified: 0,
        action: idx % 3 ? 'emacs.file.save' : 'k8s.pods.delete',
        source: idx % 3 ? 'emacs' : 'kubernetes',
        host: null,
        resource_type: null,
        resource_id: null,
        outcome: idx % 101 === 0 ? 'failure' : 'success',
        subject: null,
        tier: 'compliance',
        key_id: null,
        principal: 'p',
      };
    }

    before(async () => {
      store = await open();
      for (let i = 0; i < N; i++) if (i % 5000 !== 7) rows.push(row(i));
      for (let i = 0; i < rows.length; i += 5000) {
        const batch = rows.slice(i, i + 5000);
        await store.insert({ rows: batch.map((r) => ({ row: r, text: r.action })), upto: (batch.at(-1) as IndexRow).idx + 1 });
      }
    });
    after(() => store.close());

    it('every page of a field query is exactly the matches in log order, whichever way the store answers it', async () => {
      const cases: [string, (r: IndexRow) => boolean][] = [
        ['actor:alice', (r) => r.actor === 'alice'],
        ['actor:zed', (r) => r.actor === 'zed'],
        ['action:k8s.* outcome:failure', (r) => r.action.startsWith('k8s.') && r.outcome === 'failure'],
        ['outcome:failure actor:zed', (r) => r.outcome === 'failure' && r.actor === 'zed'],
        ['actor:nobody', () => false],
        ['', () => true],
      ];
      for (const [q, match] of cases) {
        const want = rows.filter(match).map((r) => r.idx);
        for (const limit of want.length > 2000 ? [1000] : [7, 50, 1000]) {
          assert.deepEqual((await pages(store, storeQuery(q), 'asc', limit)).map(idxOf), want, `${q} asc ${limit}`);
          assert.deepEqual(
            (await pages(store, storeQuery(q), 'desc', limit)).map(idxOf),
            [...want].reverse(),
            `${q} desc ${limit}`,
          );
        }
      }
    });

    it('a bound ends the scan: at or after it descending, before it ascending', async () => {
      const want = rows.filter((r) => r.actor === 'zed').map((r) => r.idx);
      const bound = 20_000;
      const q = storeQuery('actor:zed');
      assert.deepEqual((await pages(store, q, 'desc', 3, bound)).map(idxOf), want.filter((i) => i >= bound).reverse());
      assert.deepEqual(
        (await pages(store, q, 'asc', 3, bound)).map(idxOf),
        want.filter((i) => i < bound),
      );
    });

    it('full-text pages stream in log order too', async () => {
      const want = rows.filter((r) => r.action.startsWith('k8s.')).map((r) => r.idx);
      assert.deepEqual((await pages(store, storeQuery('k8s'), 'desc', 1000)).map(idxOf), [...want].reverse());
      assert.equal((await store.count(storeQuery('"k8s.pods"'))).entries, want.length);
    });

    it('a tally counts every match by bucket of event time and by facet; the span is the first and last event time', async () => {
      // Sorted, so parts (partitions) may come in any order and split a value's count.
      const sorted = (t: Tally) => ({
        entries: t.entries,
        histogram: [...t.histogram].filter(([, n]) => n > 0).sort((a, b) => a[0] - b[0]),
        facets: Object.fromEntries(FACETS.map((f) => [f, [...t.facets[f]].sort((a, b) => (a[0] < b[0] ? -1 : 1))])),
      });
      const b: Buckets = { origin: T0 - 7_000_000, width: 3_600_000_000, count: 10 };
      const cases: [string, (r: IndexRow) => boolean, string[]?][] = [
        ['', () => true],
        ['actor:zed', (r) => r.actor === 'zed'],
        ['k8s', (r) => r.action.startsWith('k8s.')],
        ['outcome:failure OR actor:zed', (r) => r.outcome === 'failure' || r.actor === 'zed'],
        ['-action:emacs.*', (r) => !r.action.startsWith('emacs.')],
        ['actor:nobody', () => false],
        ['', () => true, ['compliance']],
        ['', () => false, ['other']],
        ['', () => false, []],
      ];
      for (const [q, match, tiers] of cases) {
        const want = rows.filter(match);
        const hist = new Map<number, number>();
        const facets = Object.fromEntries(FACETS.map((f) => [f, new Map<string, number>()]));
        for (const r of want) {
          const k = Math.floor((r.time - b.origin) / b.width);
          hist.set(k, (hist.get(k) ?? 0) + 1);
          for (const f of FACETS) facets[f]?.set(r[f], (facets[f]?.get(r[f]) ?? 0) + 1);
        }
        const expected = emptyTally();
        expected.entries = want.length;
        expected.histogram = [...hist];
        for (const f of FACETS) expected.facets[f] = [...(facets[f] ?? [])];
        const got = emptyTally();
        for await (const part of store.tally(storeQuery(q, tiers), b)) addTally(got, part);
        assert.deepEqual(sorted(got), sorted(expected), `${q} ${tiers}`);
        const noHist = emptyTally();
        for await (const part of store.tally(storeQuery(q, tiers), null)) addTally(noHist, part);
        assert.deepEqual(noHist.histogram, [], `${q}: no buckets, no histogram`);
        assert.equal(noHist.entries, want.length);
        assert.deepEqual(
          await store.timeSpan(storeQuery(q, tiers)),
          want.length ? { min: (want[0] as IndexRow).time, max: (want.at(-1) as IndexRow).time } : null,
          `${q} span`,
        );
      }
    });
  });

  describe('tiers, upto and the other members', () => {
    let store: QueryStore;
    before(async () => {
      store = await open();
    });
    after(() => store.close());

    it('upto starts at 0 and is what the last batch said', async () => {
      assert.equal(await store.upto(), 0);
      await store.insert({ rows: ROWS.map((r, i) => fixtureRow(i, r)), upto: ROWS.length + 5 });
      assert.equal(await store.upto(), ROWS.length + 5);
    });

    it('tiers are a filter: only those tiers, an empty list nothing, absent everything', async () => {
      const ids = async (q: string, tiers?: readonly string[]) =>
        (await store.search(storeQuery(q, tiers), { limit: 100, order: 'asc' })).map(idxOf);
      assert.deepEqual(await ids('', ['audit']), [2]);
      assert.deepEqual(await ids('', ['audit', 'standard']), ALL);
      assert.deepEqual(await ids('', ['nope']), []);
      assert.deepEqual(await ids('', []), []);
      assert.deepEqual(await ids('actor:bob', ['standard']), []);
      assert.deepEqual(await ids('init.el', ['standard']), [0, 1, 5]);
      assert.deepEqual(await store.count(storeQuery('', [])), { entries: 0, gaps: 0 });
      assert.deepEqual(await store.count(storeQuery('-tier:audit', ['audit', 'standard'])), {
        entries: ROWS.length - 1,
        gaps: 0,
      });
      // A tier name is never SQL (or anything else): it only ever equals a row's tier.
      assert.deepEqual(await ids('', ["standard') OR 1=1 --"]), []);
    });

    it('keysOfActors lists the data keys of the actors (once each, not the unencrypted)', async () => {
      assert.deepEqual(await store.keysOfActors(['bob']), ['k1']);
      assert.deepEqual(await store.keysOfActors(['alice', 'carol', 'nobody']), []);
    });

    it('a batch that fails leaves the store as it was', async () => {
      const before = await store.count(storeQuery(''));
      await assert.rejects(store.insert({ rows: [fixtureRow(50, { text: 'new' }), fixtureRow(0, { text: 'dup' })], upto: 99 }));
      assert.deepEqual(await store.count(storeQuery('')), before);
      assert.equal(await store.upto(), ROWS.length + 5);
    });

    it('scrubbing ends, optimize runs', async () => {
      for (let i = 0; i < 1000 && (await store.scrubStep()); i++);
      assert.equal(await store.scrubStep(), false);
      await store.scrubbed();
      await store.optimize();
    });
  });

  describe('tombstones', () => {
    const T0 = Date.parse('2026-11-01T00:00:00Z') * 1000;
    function row(idx: number, key: string): IndexRow {
      return {
        idx,
        id: `id-${idx}`,
        time: T0 + idx,
        received: T0 + idx * 1_000_000,
        actor: 'erin',
        actor_type: 'human',
        on_behalf_of: null,
        verified: 0,
        action: 'emacs.file.save',
        source: 'emacs',
        host: null,
        resource_type: null,
        resource_id: `secret-${idx}`,
        outcome: 'success',
        subject: key === 'k-erin' ? 'h-erin' : null,
        tier: 'compliance',
        key_id: key,
        principal: 'p',
      };
    }
    const at = (m: StoreMatch) => (m.kind === 'entry' ? `e${m.row.idx}` : `g${m.gap.idx}`);
    const q = (s: string) => storeQuery(s);

    it('erasing keys turns rows into tombstones: gone from content queries, found by place, linked to the erasure', async () => {
      const store = await open();
      await store.insert({
        rows: [0, 1, 2, 3, 4].map((i) => ({ row: row(i, i % 2 ? 'k-erin' : 'k-day'), text: `secret-${i} word` })),
        upto: 5,
      });
      const tally = async (s: string) => {
        const t = emptyTally();
        for await (const part of store.tally(q(s), null)) addTally(t, part);
        return t;
      };
      assert.equal((await tally('')).entries, 5);
      assert.equal(await store.deleteByKeys(['k-erin'], () => 'erased'), 2);
      const search = async (s: string, page: SearchPage) => (await store.search(q(s), page)).map(at);
      assert.deepEqual(await search('', { limit: 10, order: 'asc' }), ['e0', 'g1', 'e2', 'g3', 'e4']);
      assert.deepEqual(await search('', { limit: 3, order: 'desc' }), ['e4', 'g3', 'e2']);
      assert.deepEqual(await search('', { limit: 3, order: 'desc', cursor: 2 }), ['g1', 'e0']);
      assert.deepEqual(await search('', { limit: 10, order: 'desc', cursor: 4, bound: 2 }), ['g3', 'e2']);
      assert.deepEqual(await search('', { limit: 10, order: 'asc', cursor: 0, bound: 3 }), ['g1', 'e2']);
      assert.deepEqual(await search('word', { limit: 10, order: 'asc' }), ['e0', 'e2', 'e4']);
      assert.deepEqual(await search('secret', { limit: 10, order: 'asc' }), ['e0', 'e2', 'e4']);
      assert.deepEqual(await search('-actor:x', { limit: 10, order: 'asc' }), ['e0', 'e2', 'e4']);
      assert.deepEqual(await search('resource:secret-1', { limit: 10, order: 'asc' }), []);
      assert.deepEqual(await search('tier:compliance index:1..3', { limit: 10, order: 'asc' }), ['g1', 'e2', 'g3']);
      assert.deepEqual(await store.count(q('')), { entries: 3, gaps: 2 });
      // A tally counts entries only (a gap has no event time, actor or action left to count by),
      // and nothing counted before the erasure is counted after it.
      const t = await tally('');
      assert.equal(t.entries, 3);
      assert.equal(
        t.facets.tier.reduce((n, [, c]) => n + c, 0),
        3,
      );
      assert.deepEqual(await store.count(q('word')), { entries: 3, gaps: 0 });
      assert.deepEqual(await store.count(storeQuery('', ['other'])), { entries: 0, gaps: 0 });
      // since: on a gap is its receipt time (entry 3 was received at T0 + 3 s).
      const since = `since:${new Date((T0 + 3_000_000) / 1000).toISOString()}`;
      assert.deepEqual(await search(`${since} -index:4`, { limit: 10, order: 'asc' }), ['g3']);

      // The erasure entry (index 5) links the gaps of the keys it destroyed, before it.
      await store.insert({ rows: [], upto: 6, links: [{ index: 5, keyIds: ['k-erin'] }] });
      const gaps = async () =>
        (await store.search(q(''), { limit: 10, order: 'asc' })).flatMap((m) =>
          m.kind === 'gap' ? [[m.gap.idx, m.gap.state, m.gap.erasure, m.gap.tier, m.gap.time]] : [],
        );
      assert.deepEqual(await gaps(), [
        [1, 'erased', 5, 'compliance', T0 + 1_000_000],
        [3, 'erased', 5, 'compliance', T0 + 3_000_000],
      ]);
      // A later link of the same key does not take them over.
      await store.insert({ rows: [], upto: 7, links: [{ index: 6, keyIds: ['k-erin'] }] });
      assert.deepEqual(
        (await gaps()).map((g) => g[2]),
        [5, 5],
      );
      assert.deepEqual(await store.keysOfActors(['erin']), ['k-day']);
      await store.close();
    });

    it('gaps of a batch are linked by a link of the same batch, only those before it, and replace any of the same index', async () => {
      const store = await open();
      await store.insert({
        rows: [],
        gaps: [
          { idx: 0, time: T0, tier: 'operational', state: 'expired', key_id: 'k1', erasure: null },
          { idx: 1, time: T0, tier: 'operational', state: 'expired', key_id: 'k2', erasure: null },
          { idx: 3, time: T0, tier: 'operational', state: 'expired', key_id: 'k1', erasure: null },
        ],
        links: [{ index: 2, keyIds: ['k1'] }],
        upto: 4,
      });
      await store.insert({
        rows: [],
        gaps: [{ idx: 1, time: T0 + 1, tier: 'operational', state: 'erased', key_id: 'k2', erasure: null }],
        links: [{ index: 4, keyIds: ['k2', 'k1'] }],
        upto: 5,
      });
      const found = await store.search(q(''), { limit: 10, order: 'asc' });
      assert.deepEqual(
        found.map((m) => (m.kind === 'gap' ? [m.gap.idx, m.gap.state, m.gap.erasure] : [])),
        [
          [0, 'expired', 2],
          [1, 'erased', 4],
          [3, 'expired', 4],
        ],
      );
      await store.close();
    });

    it('deleteByKeys says how each key went, and counts only what it turned into tombstones', async () => {
      const store = await open();
      await store.insert({ rows: [0, 1, 2].map((i) => ({ row: row(i, `k${i % 2}`), text: 'x' })), upto: 3 });
      assert.equal(await store.deleteByKeys(['k0', 'k1', 'none'], (k) => (k === 'k0' ? 'expired' : 'erased')), 3);
      assert.equal(await store.deleteByKeys(['k0'], () => 'expired'), 0);
      const found = await store.search(q(''), { limit: 10, order: 'asc' });
      assert.deepEqual(
        found.map((m) => (m.kind === 'gap' ? m.gap.state : m.kind)),
        ['expired', 'erased', 'expired'],
      );
      await store.close();
    });
  });
}
