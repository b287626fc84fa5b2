/** For the segment tests: a deterministic corpus of rows and text, queries of every kind, and the check of a search against the memory store's matcher. */
import assert from 'node:assert/strict';
import type { IndexRow } from '../../event/searchable.js';
import { predicate } from '../../index/match.js';
import { parseQuery } from '../../index/query.js';
import { tokenize } from '../../index/unicode61.js';
import { searchSegment } from './search.js';
import type { SegmentReader } from './segment.js';

/** A deterministic mix: nulls, ids that are and are not UUIDs, times that go back, idx gaps, non-ASCII text. */
export function corpus(n: number): { row: IndexRow; text: string }[] {
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

export const NOW_MS = 1_795_000_100_000;

/** Queries of every kind the language has, on the corpus's values. */
export function queriesFor(rows: { row: IndexRow }[]): string[] {
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
export function assertSearches(seg: SegmentReader, rows: { row: IndexRow; text: string }[], queries: string[]): void {
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
