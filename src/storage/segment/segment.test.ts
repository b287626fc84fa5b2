import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { IndexRow } from '../../event/searchable.js';
import { tokenize } from '../../index/unicode61.js';
import { assertSearches, corpus, queriesFor } from './corpus.fixture.js';
import { BLOCK_ROWS, encodeSegment, rewriteSegment, SegmentReader, TOKEN_GROUP } from './segment.js';

const MAGIC_LENGTH = 'STSEG1\n'.length;

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
