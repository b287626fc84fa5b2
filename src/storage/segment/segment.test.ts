import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { IndexRow } from '../../event/searchable.js';
import { predicate } from '../../index/match.js';
import { parseQuery } from '../../index/query.js';
import { tokenize } from '../../index/unicode61.js';
import { searchSegment } from './search.js';
import { BLOCK_ROWS, encodeSegment, rewriteSegment, SegmentReader, TOKEN_GROUP } from './segment.js';
import { ByteReader, ByteWriter } from './varint.js';

test('varints: unsigned and zigzag values up to 2^53 come back; a read past the end throws', () => {
  const values = [0, 1, 127, 128, 16_383, 16_384, 2 ** 31, 1_795_342_503_140_211, Number.MAX_SAFE_INTEGER];
  const w = new ByteWriter();
  for (const v of values) w.uvarint(v);
  const signed = values.filter((v) => v > 0 && v < 2 ** 52);
  for (const v of signed) {
    w.zigzag(-v);
    w.zigzag(v);
  }
  w.string('héllo');
  const r = new ByteReader(w.finish());
  assert.deepEqual(
    values.map(() => r.uvarint()),
    values,
  );
  for (const v of signed) assert.deepEqual([r.zigzag(), r.zigzag()], [-v, v]);
  assert.equal(r.string(), 'héllo');
  assert.ok(r.done);
  assert.throws(() => r.uvarint(), /past the end/);
  assert.throws(() => new ByteWriter().uvarint(-1), RangeError);
  assert.throws(() => new ByteWriter().zigzag(2 ** 52), RangeError);
  assert.throws(() => new ByteReader(Buffer.from([0x80, 0x80])).uvarint(), /past the end/);
});

const MAGIC_LENGTH = 'STSEG1\n'.length;

/** A deterministic mix: nulls, ids that are and are not UUIDs, times that go back, idx gaps, non-ASCII text. */
function corpus(n: number): { row: IndexRow; text: string }[] {
  let seed = 7; // xorshift32
  const rnd = (k: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % k;
  };
  const words = ['deploy', 'init.el', 'Ünïcode', 'straße', 'kube-system', 'alpha', 'beta', 'gamma', 'ошибка', '日本'];
  const out: { row: IndexRow; text: string }[] = [];
  let idx = 10;
  let time = 1_795_000_000_000_000;
  for (let i = 0; i < n; i++) {
    idx += 1 + (rnd(10) === 0 ? rnd(1000) : 0);
    time += rnd(3_000_000) - 1_000_000;
    const hex = Array.from({ length: 32 }, () => '0123456789abcdef'[rnd(16)]).join('');
    const row: IndexRow = {
      idx,
      id:
        rnd(5) === 0
          ? `ext-${i}`
          : `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`,
      time,
      received: time + rnd(5_000_000),
      actor: `user${rnd(50)}@acme.test`,
      actor_type: ['human', 'service', 'ai_agent'][rnd(3)] as string,
      on_behalf_of: rnd(4) === 0 ? `user${rnd(50)}@acme.test` : null,
      verified: rnd(2),
      action: `emacs.${words[rnd(4)]}`,
      source: 'emacs',
      host: rnd(3) === 0 ? null : `host-${rnd(700)}`, // more than 256 in a block: two-byte codes
      resource_type: rnd(2) === 0 ? null : 'file',
      resource_id: rnd(2) === 0 ? null : `/src/${words[rnd(words.length)]}/${i}`,
      outcome: ['success', 'failure', 'denied'][rnd(3)] as string,
      subject: rnd(6) === 0 ? `subject-${rnd(9)}` : null,
      tier: rnd(2) === 0 ? 'operational' : 'compliance',
      key_id: rnd(5) === 0 ? null : `key-${rnd(4)}`,
      principal: `ingest-${rnd(3)}`,
    };
    const word = () => (rnd(3) === 0 ? `w${rnd(600)}` : words[rnd(words.length)]);
    const text = Array.from({ length: 3 + rnd(12) }, word).join(rnd(2) ? ' ' : '\n');
    out.push({ row, text });
  }
  return out;
}

test('a segment gives back every row exactly, over several blocks', () => {
  const rows = corpus(BLOCK_ROWS * 2 + 123);
  const seg = new SegmentReader(encodeSegment(rows));
  assert.equal(seg.rows, rows.length);
  assert.equal(seg.blocks, 3);
  const back = Array.from({ length: seg.blocks }, (_, b) => seg.blockRows(b)).flat();
  assert.deepEqual(
    back,
    rows.map((r) => r.row),
  );
});

test("each block's postings list its rows holding a token, with their positions when kept, as the tokenizer finds them", () => {
  const rows = corpus(BLOCK_ROWS + 3000);
  const want = new Map<string, { row: number; positions: number[] }[]>();
  rows.forEach(({ text }, r) => {
    tokenize(text).forEach((t, p) => {
      const list = want.get(t) ?? [];
      want.set(t, list);
      const last = list[list.length - 1];
      if (last?.row === r) last.positions.push(p);
      else list.push({ row: r, positions: [p] });
    });
  });
  const full = new SegmentReader(encodeSegment(rows, { positions: true }));
  const none = new SegmentReader(encodeSegment(rows));
  // Every block's postings, their rows numbered in the whole segment.
  const postings = (seg: SegmentReader, t: string) =>
    Array.from({ length: seg.blocks }, (_, b) => seg.postings(b, t).map((p) => ({ ...p, row: p.row + b * BLOCK_ROWS }))).flat();
  assert.equal(full.blocks, 2);
  assert.ok(want.size > TOKEN_GROUP, `${want.size} tokens span several groups`);
  for (const [t, list] of want) {
    assert.deepEqual(postings(full, t), list, t);
    assert.deepEqual(
      postings(none, t),
      list.map(({ row }) => ({ row })),
      t,
    );
  }
  for (const absent of ['', '0', 'alphabet', 'zzzz', 'Deploy', 'unicodes']) assert.deepEqual(postings(full, absent), [], absent);
  // The segment's vocabulary names, for every token, exactly the blocks whose postings hold it.
  const vocabulary = new Map<string, number[]>();
  full.forVocabulary('', (t, _id, bs) => vocabulary.set(t, bs) !== undefined);
  assert.deepEqual([...vocabulary.keys()], [...want.keys()].sort());
  for (const [t, bs] of vocabulary)
    assert.deepEqual(
      bs,
      [0, 1].filter((b) => full.postings(b, t).length > 0),
      t,
    );
  assert.ok(want.has('unicode') && want.has('ошибка'), 'diacritics removed as FTS5 does');
});

test('rows out of order, and files that are not whole segments, are refused by name', () => {
  const rows = corpus(10);
  assert.throws(() => encodeSegment([rows[1], rows[0]] as typeof rows), /ascend by idx/);
  const bytes = encodeSegment(rows);
  assert.throws(() => new SegmentReader(bytes.subarray(0, bytes.length - 3)), /no SEG1 trailer/);
  assert.throws(() => new SegmentReader(Buffer.from('hello, world, not a segment')), /no STSEG1 header/);
  const bad = Buffer.from(bytes);
  bad.writeUInt32LE(bytes.length, bytes.length - 8);
  assert.throws(() => new SegmentReader(bad), /directory of \d+ bytes/);
  // A frame of an unknown kind (here the dictionary's first byte) is named, not misread.
  const odd = Buffer.from(bytes);
  odd[MAGIC_LENGTH] = 9;
  assert.throws(() => new SegmentReader(odd).dictionary(), /frame at 7 is of unknown kind 9/);
  const empty = new SegmentReader(encodeSegment([]));
  assert.equal(empty.rows, 0);
  assert.equal(empty.blocks, 0);
  assert.throws(() => empty.postings(0, 'alpha'), /no block 0/);
});

const NOW_MS = 1_795_000_100_000;

/** Queries of every kind the language has, on the corpus's values. */
function queriesFor(rows: { row: IndexRow }[]): string[] {
  const t0 = rows[4000]?.row.time as number;
  return [
    '',
    'alpha',
    'alph*',
    'w1*',
    '"alpha beta"',
    '"deploy gam"*',
    '"init el"',
    'unicode ошибка',
    'actor:user7@acme.test',
    'actor:user1*',
    'host:*',
    'host:host-69*',
    '-host:*',
    'outcome:failure action:emacs.*',
    'type:ai_agent OR verified:true',
    'NOT (alpha OR beta) tier:compliance',
    'resource:/src/alpha/*',
    'subject:*',
    'key:key-1 -outcome:success',
    `since:${new Date(t0 / 1000).toISOString()}`,
    `until:${new Date(t0 / 1000).toISOString()} beta`,
    `index:${rows[100]?.row.idx}..${rows[Math.floor(rows.length * 0.8)]?.row.idx} gamma`,
    `id:${rows[77]?.row.id}`,
    'on_behalf_of:user3@acme.test',
    'principal:ingest-2 straße',
    'nothing-at-all',
    // Answered from the directory for whole blocks: all of them, none of them.
    'since:2000-01-01T00:00:00Z -until:2000-01-01T00:00:00Z',
    'until:2000-01-01T00:00:00Z OR principal:ingest-9',
    `index:0..${rows[100]?.row.idx} OR tier:*`,
  ];
}

/** Every query finds in `seg` what the memory store's matcher finds in `rows`: whole, and page by page from the newest. */
function assertSearches(seg: SegmentReader, rows: { row: IndexRow; text: string }[], queries: string[]): void {
  const subjects = rows.map(({ row, text }) => ({ row: row as unknown as Record<string, unknown>, tokens: tokenize(text) }));
  for (const q of queries) {
    const root = parseQuery(q);
    const test = root ? predicate(root, NOW_MS) : () => true;
    for (const tiers of [undefined, ['operational'], []]) {
      const want = rows
        .filter(
          (_, i) => test(subjects[i] as (typeof subjects)[number]) && (!tiers || tiers.includes(rows[i]?.row.tier as string)),
        )
        .map((r) => r.row.idx);
      const sq = { root, nowMs: NOW_MS, ...(tiers ? { tiers } : {}) };
      const all = searchSegment(seg, sq, { order: 'asc', limit: 1e9 });
      assert.deepEqual(
        all.map((r) => r.idx),
        want,
        `${q} within ${tiers}`,
      );
      // Pages from the newest, each after the previous page's last, give the same in reverse.
      const pages: number[] = [];
      let cursor: number | undefined;
      for (;;) {
        const got = searchSegment(seg, sq, { order: 'desc', limit: 2000, ...(cursor === undefined ? {} : { cursor }) });
        pages.push(...got.map((r) => r.idx));
        if (got.length < 2000) break;
        cursor = got[got.length - 1]?.idx;
      }
      assert.deepEqual(pages, [...want].reverse(), `${q} desc within ${tiers}`);
    }
  }
}

test('a search of a segment finds what the memory store finds, page by page, in both orders, within tiers', () => {
  const rows = corpus(BLOCK_ROWS + 2500);
  const seg = new SegmentReader(encodeSegment(rows, { positions: true }));
  assertSearches(seg, rows, queriesFor(rows));
  const nowMs = NOW_MS;
  const bound = rows[5000]?.row.idx as number;
  assert.deepEqual(
    searchSegment(seg, { root: null, nowMs }, { order: 'desc', limit: 1e9, bound }).map((r) => r.idx),
    rows
      .filter((r) => r.row.idx >= bound)
      .map((r) => r.row.idx)
      .reverse(),
  );
  const noPositions = new SegmentReader(encodeSegment(rows.slice(0, 100)));
  assert.throws(
    () => searchSegment(noPositions, { root: parseQuery('"alpha beta"'), nowMs }, { order: 'desc', limit: 5 }),
    /no token positions/,
  );
});

test('a rewrite without erased rows keeps nothing of them, not even their words or names, and searches as if they never were', () => {
  const rows = corpus(BLOCK_ROWS + 2500);
  // One erased person with words and a name no one else has.
  for (const i of [10, 5000, 9000]) {
    const r = rows[i] as { row: IndexRow; text: string };
    r.row = { ...r.row, actor: 'erased-person@acme.test', key_id: 'key-1' };
    r.text = `${r.text} zanzibarsecret`;
  }
  const seg = new SegmentReader(encodeSegment(rows, { positions: true }));
  assert.ok(seg.token('zanzibarsecret') && seg.dictionary().includes('erased-person@acme.test'));

  const kept = rows.filter((r) => r.row.key_id !== 'key-1');
  const erased = new SegmentReader(rewriteSegment(seg, (row) => row.key_id !== 'key-1'));
  assert.equal(erased.rows, kept.length);
  assert.deepEqual(
    Array.from({ length: erased.blocks }, (_, b) => erased.blockRows(b)).flat(),
    kept.map((r) => r.row),
  );
  assert.equal(erased.token('zanzibarsecret'), null);
  assert.ok(!erased.dictionary().includes('erased-person@acme.test'));
  assert.ok(!erased.dictionary().includes('key-1'));
  assertSearches(erased, kept, queriesFor(kept));

  // A block left with no rows is gone; a segment left with none is empty.
  const first = rows.slice(0, BLOCK_ROWS);
  const lastIdx = first[first.length - 1]?.row.idx as number;
  const head = new SegmentReader(rewriteSegment(seg, (row) => row.idx <= lastIdx));
  assert.equal(head.blocks, 1);
  assertSearches(head, first, ['alpha', '"alpha beta"', 'actor:user7@acme.test']);
  const none = new SegmentReader(rewriteSegment(seg, () => false));
  assert.deepEqual([none.rows, none.blocks, none.dictionary().length, none.token('alpha')], [0, 0, 0, null]);

  // A segment without positions rewrites too.
  const plain = new SegmentReader(rewriteSegment(new SegmentReader(encodeSegment(rows)), (row) => row.key_id !== 'key-1'));
  assert.equal(plain.positions, false);
  assertSearches(plain, kept, ['alpha', 'w1*', 'actor:user1*']);
});
