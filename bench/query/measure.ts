/**
 * Timing loops: each case (a query type and one of its values) runs the way the server runs it
 * (`SqliteQueryStore.searchEntries(compileQuery(q, now), { limit: 50, order: 'desc' })`), next to the raw limit
 * (the same SQL and parameters as a statement prepared once on a second connection, so no query
 * compilation and no SQL preparation per call) and, where given, the peer. Every round visits the
 * cases in a fresh shuffled order and alternates which implementation goes first; the first
 * rounds are warm-up and not recorded.
 */
import type Database from 'better-sqlite3';
import { parseQuery } from '../../src/index/query.js';
import type { QueryStore, SearchPage } from '../../src/index/query-store.js';
import type { SqliteQueryStore } from '../../src/storage/fs/query-store.js';
import { rng } from '../../test/helpers/prng.js';
import { percentileSorted, sortedCopy } from '../ingest/stats.js';
import { ROW_COLUMNS } from './build.js';
import { compileQuery } from './compile.js';
import { likePattern, type QueryType } from './queries.js';

export const PAGE: SearchPage = { limit: 50, order: 'desc' };

export interface Case {
  type: QueryType;
  value: string;
  /** The SQL SqliteQueryStore.searchEntries ran, and its parameters (captured from the store's connection). */
  sql: string;
  params: unknown[];
  /** EXPLAIN QUERY PLAN of that SQL with those parameters, one step per line ("  " per level). */
  plan: string[];
  /** Entries the query matches in the store (SqliteQueryStore.countEntries). */
  matches: number;
  /** Indices of the first page, newest first. */
  firstPage: number[];
}

export interface Summary {
  n: number;
  median: number;
  p95: number;
  max: number;
}

export function summarise(xs: readonly number[]): Summary {
  const s = sortedCopy(xs);
  return { n: s.length, median: percentileSorted(s, 50), p95: percentileSorted(s, 95), max: s[s.length - 1] ?? Number.NaN };
}

type Db = Database.Database;
type Stmt = Database.Statement;

/** Runs one SqliteQueryStore.searchEntries while recording the SQL it prepared and the parameters it bound. */
function capture(store: SqliteQueryStore, value: string): { sql: string; params: unknown[]; rows: { idx: number }[] } {
  const db = (store as unknown as { db: Db }).db;
  if (!db || typeof db.prepare !== 'function')
    throw new Error('SqliteQueryStore no longer keeps its connection in `db`: update capture()');
  const prepare = db.prepare;
  let sql: string | undefined;
  let params: unknown[] | undefined;
  db.prepare = function (this: Db, source: string) {
    const st = prepare.call(this, source);
    sql = source;
    const all = st.all.bind(st);
    (st as unknown as { all: (...a: unknown[]) => unknown }).all = (...a: unknown[]) => {
      params = a;
      return (all as (...x: unknown[]) => unknown)(...a);
    };
    return st;
  } as Db['prepare'];
  try {
    const rows = store.searchEntries(compileQuery(value, Date.now()), PAGE) as { idx: number }[];
    if (sql === undefined || params === undefined) throw new Error('SqliteQueryStore.searchEntries prepared no statement');
    return { sql, params, rows };
  } finally {
    db.prepare = prepare;
  }
}

export function explain(db: Db, sql: string, params: readonly unknown[]): string[] {
  const rows = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { id: number; parent: number; detail: string }[];
  const depth = new Map<number, number>([[0, -1]]);
  return rows.map((r) => {
    const d = (depth.get(r.parent) ?? -1) + 1;
    depth.set(r.id, d);
    return `${'  '.repeat(d)}${r.detail}`;
  });
}

export function prepareCases(store: SqliteQueryStore, raw: Db, types: readonly QueryType[]): Case[] {
  const out: Case[] = [];
  for (const type of types) {
    for (const value of type.values) {
      const { sql, params, rows } = capture(store, value);
      const firstPage = rows.map((r) => r.idx);
      const again = (raw.prepare(sql).all(...params) as { idx: number }[]).map((r) => r.idx);
      if (again.join() !== firstPage.join()) throw new Error(`raw SQL and SqliteQueryStore.searchEntries disagree on ${value}`);
      out.push({
        type,
        value,
        sql,
        params,
        plan: explain(raw, sql, params),
        matches: store.countEntries(compileQuery(value, Date.now())),
        firstPage,
      });
    }
  }
  return out;
}

/** One implementation's way of running a case once; returns the rows' indices. */
export type Runner = (c: Case) => { idx: number }[] | Promise<{ idx: number }[]>;

export function steleRunner(store: SqliteQueryStore): Runner {
  return (c) => store.searchEntries(compileQuery(c.value, Date.now()), PAGE);
}

/**
 * A case as the index thread runs it: QueryStore.search (entries and the gaps the query matches),
 * on one file or on the partitions.
 */
export function searchRunner(store: QueryStore): Runner {
  return async (c) =>
    (await store.search({ root: parseQuery(c.value), nowMs: Date.now() }, PAGE)).map((m) => (m.kind === 'entry' ? m.row : m.gap));
}

/** The raw limit: the captured SQL, prepared once per case on `raw`, bound and stepped. */
export function rawRunner(raw: Db): Runner {
  const stmts = new Map<Case, Stmt>();
  return (c) => {
    let st = stmts.get(c);
    if (!st) {
      st = raw.prepare(c.sql);
      stmts.set(c, st);
    }
    return st.all(...c.params) as { idx: number }[];
  };
}

export interface PeerCase {
  sql: string;
  params: unknown[];
  plan: string[];
}

/**
 * The peer's statement for a case: field queries keep Stele's WHERE (the same columns exist in the
 * peer table) and run over the table alone; full text becomes `text LIKE '%…%'`. Same columns
 * returned, same order, same page size.
 */
export function peerCase(peer: Db, c: Case): PeerCase {
  const cols = ROW_COLUMNS.map((k) => `e.${k}`).join(', ');
  let sql: string;
  let params: unknown[];
  if (c.type.kind === 'text') {
    sql = `SELECT ${cols} FROM entries e WHERE e.text LIKE ? ORDER BY e.idx DESC LIMIT ?`;
    params = [likePattern(c.value), PAGE.limit];
  } else {
    const q = compileQuery(c.value, Date.now(), new Set());
    sql = `SELECT ${cols} FROM entries e WHERE (${q.where}) ORDER BY e.idx DESC LIMIT ?`;
    params = [...q.params, PAGE.limit];
  }
  return { sql, params, plan: explain(peer, sql, params) };
}

export function peerRunner(peer: Db, cases: Map<Case, PeerCase>): Runner {
  const stmts = new Map<Case, Stmt>();
  return (c) => {
    let st = stmts.get(c);
    const pc = cases.get(c) as PeerCase;
    if (!st) {
      st = peer.prepare(pc.sql);
      stmts.set(c, st);
    }
    return st.all(...pc.params) as { idx: number }[];
  };
}

export type Samples = Map<string, Map<Case, number[]>>;

/**
 * `rounds` recorded rounds after `warmup` unrecorded ones. Within a round every case runs once per
 * runner, cases in a shuffled order, runners rotated from case to case.
 */
export async function runRounds(
  cases: readonly Case[],
  runners: Record<string, Runner>,
  rounds: number,
  warmup: number,
  seed: number,
  onRound?: (r: number) => void,
): Promise<Samples> {
  const r = rng(seed);
  const names = Object.keys(runners);
  const samples: Samples = new Map(names.map((n) => [n, new Map(cases.map((c) => [c, [] as number[]]))]));
  let turn = 0;
  for (let round = 0; round < warmup + rounds; round++) {
    const order = [...cases];
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [order[i], order[j]] = [order[j] as Case, order[i] as Case];
    }
    for (const c of order) {
      turn++;
      for (let k = 0; k < names.length; k++) {
        const name = names[(k + turn) % names.length] as string;
        const run = runners[name] as Runner;
        const t0 = performance.now();
        const rows = await run(c);
        const ms = performance.now() - t0;
        if (rows.length > PAGE.limit) throw new Error('page too long');
        if (round >= warmup) samples.get(name)?.get(c)?.push(ms);
      }
    }
    onRound?.(round);
  }
  return samples;
}
