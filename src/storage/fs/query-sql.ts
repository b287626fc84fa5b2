/**
 * The query language (src/index/query.ts) compiled to SQL for the SQLite query store
 * (query-schema.ts). Every user-supplied string and every tier ends up in a bound parameter, never
 * in SQL text, and every full-text term is quoted as an FTS5 string, so user input can never
 * inject SQL or FTS5 syntax.
 */
import { canMatchGaps, fieldKey, mayBeNull, type QueryNode, timeMicros } from '../../index/query.js';
import type { StoreQuery } from '../../index/query-store.js';
import { CODED_COLUMNS, UUID_ID } from './query-schema.js';

/**
 * Columns not stored as their plain values (query-schema.ts): `terms` ids, and `id` (a UUID as its
 * bytes). A table of plain values passes none.
 */
export type CodedColumns = ReadonlySet<string>;
const CODED: CodedColumns = new Set([...CODED_COLUMNS, 'id']);

/** `e.id` as text whether stored as a UUID's bytes or as TEXT. */
const ID_TEXT =
  "(CASE WHEN typeof(e.id) = 'blob' THEN lower(substr(hex(e.id), 1, 8) || '-' || substr(hex(e.id), 9, 4) || '-' || " +
  "substr(hex(e.id), 13, 4) || '-' || substr(hex(e.id), 17, 4) || '-' || substr(hex(e.id), 21)) ELSE e.id END)";

/** A comparison of the id column, which holds a lowercase UUID as its 16 bytes (Terms.encode). */
function idSql(t: { op: 'eq'; value: string | number } | { op: 'glob'; pattern: string }, params: (string | number)[]): string {
  if (t.op === 'glob') {
    params.push(t.pattern);
    return `${ID_TEXT} GLOB ?`;
  }
  const v = String(t.value);
  if (!UUID_ID.test(v)) {
    params.push(v);
    return 'e.id = ?';
  }
  params.push(v.replaceAll('-', ''));
  return 'e.id = unhex(?)';
}

export interface CompiledQuery {
  /** An FTS5 MATCH expression every hit must satisfy (from top-level, non-negated full-text terms ANDed together), or null. */
  match: string | null;
  /** SQL boolean expression over table alias `e` (table `entries` or `gaps`), with `?` placeholders; '1' when the query has no other condition. */
  where: string;
  params: (string | number)[];
}

type TextNode = Extract<QueryNode, { kind: 'text' }>;

/** `text` as an FTS5 string (a phrase of its tokens), so no character of it is FTS5 syntax. */
function ftsTerm(node: TextNode): string {
  // NUL would end FTS5's parse of the string; it is a separator to the tokenizer anyway.
  const s = `"${node.text.replaceAll('"', '""').replaceAll('\0', ' ')}"`;
  return node.prefix ? `${s} *` : s;
}

function sql(node: QueryNode, params: (string | number)[], nowMs: number, coded: CodedColumns): string {
  const sub = (n: QueryNode) => sql(n, params, nowMs, coded);
  switch (node.kind) {
    case 'and':
    case 'or':
      return `(${node.children.map(sub).join(node.kind === 'and' ? ' AND ' : ' OR ')})`;
    case 'not':
      if (node.child.kind === 'text') {
        params.push(ftsTerm(node.child));
        return 'e.idx NOT IN (SELECT rowid FROM fts WHERE fts MATCH ?)';
      }
      // NOT NULL is NULL: without coalesce, -host:x would also drop entries that have no host.
      return mayBeNull(node.child) ? `NOT coalesce(${sub(node.child)}, 0)` : `NOT (${sub(node.child)})`;
    case 'text':
      params.push(ftsTerm(node));
      return 'e.idx IN (SELECT rowid FROM fts WHERE fts MATCH ?)';
    case 'field': {
      const key = fieldKey(node.field);
      const c = `e.${key}`;
      const t = node.test;
      // A coded column holds the term's id: the value is looked up in `terms`. IN, not `= (SELECT …)`:
      // a value no entry has is no term, and IN of nothing is false where `= NULL` would be NULL
      // (which NOT would keep NULL, dropping every row).
      const isCoded = coded.has(key);
      if (key === 'id' && isCoded && (t.op === 'eq' || t.op === 'glob')) return idSql(t, params);
      switch (t.op) {
        case 'eq':
          params.push(t.value);
          return isCoded ? `${c} IN (SELECT id FROM terms WHERE value = ?)` : `${c} = ?`;
        case 'glob':
          params.push(t.pattern);
          return isCoded ? `${c} IN (SELECT id FROM terms WHERE value GLOB ?)` : `${c} GLOB ?`;
        case 'present':
          return `${c} IS NOT NULL`;
        case 'range': {
          const conds: string[] = [];
          if (t.min !== null) {
            conds.push(`${c} >= ?`);
            params.push(t.min);
          }
          if (t.max !== null) {
            conds.push(`${c} <= ?`);
            params.push(t.max);
          }
          return conds.length === 1 ? (conds[0] as string) : `(${conds.join(' AND ')})`;
        }
        case 'since':
        case 'until':
          params.push(timeMicros(t.time, nowMs));
          return t.op === 'since' ? `${c} >= ?` : `${c} < ?`;
      }
    }
  }
}

/** Narrows a compiled query to rows of the given tiers, bound as parameters (a non-empty list). */
function withinTiers(q: CompiledQuery, tiers: readonly string[] | undefined): CompiledQuery {
  if (tiers === undefined) return q;
  const where = `${q.where === '1' ? '' : `(${q.where}) AND `}e.tier IN (${tiers.map(() => '?').join(', ')})`;
  return { ...q, where, params: [...q.params, ...tiers] };
}

/**
 * Compiles a query for `entries`: `match` gathers the full-text terms that every hit must have
 * (top-level, not negated), `where` everything else. The empty query (null) matches every entry
 * (`{match: null, where: '1', params: []}`), and a query of only negations matches everything but
 * what they exclude. `nowMs` anchors relative times (`since:7d`); `coded` names the columns that
 * hold `terms` ids (the store's; a table of plain values, such as bench:query's peer, passes none).
 */
export function compileQuery(root: QueryNode | null, nowMs: number, coded: CodedColumns = CODED): CompiledQuery {
  if (!root) return { match: null, where: '1', params: [] };
  const conjuncts = root.kind === 'and' ? root.children : [root];
  const texts = conjuncts.filter((n): n is TextNode => n.kind === 'text');
  const rest = conjuncts.filter((n) => n.kind !== 'text');
  const params: (string | number)[] = [];
  const where = rest.map((n) => sql(n, params, nowMs, coded)).join(' AND ') || '1';
  return { match: texts.length > 0 ? texts.map(ftsTerm).join(' AND ') : null, where, params };
}

/**
 * A store query compiled for `entries` and for `gaps` (null when it cannot match gaps: such a
 * query names only columns the two tables share), each within its tiers. Null for `entries` too
 * when the tiers are an empty list: nothing to look at.
 */
export function compileStoreQuery(q: StoreQuery): { entries: CompiledQuery; gaps: CompiledQuery | null } | null {
  if (q.tiers?.length === 0) return null;
  const entries = withinTiers(compileQuery(q.root, q.nowMs), q.tiers);
  return { entries, gaps: canMatchGaps(q.root) ? entries : null };
}
