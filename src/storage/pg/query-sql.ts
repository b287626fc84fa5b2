/**
 * The query language (src/index/query.ts) compiled to PostgreSQL for the PostgreSQL query store
 * (query-store.ts). As in the SQLite store's compiler, every user-supplied string and tier is a
 * bound parameter, never SQL text. Full text is matched on a tsvector of the tokens FTS5's
 * unicode61 tokenizer would make (src/index/unicode61.ts, with their positions), so a word, a
 * prefix and a phrase mean exactly what they mean to the SQLite store: a phrase is the tsquery
 * `'a' <-> 'b'`, a prefix `'b':*`.
 */
import { fieldKey, globParts, mayBeNull, type QueryNode, timeMicros } from '../../index/query.js';
import { tokenize } from '../../index/unicode61.js';

export interface PgCompiled {
  /** SQL boolean expression over table alias `e`, with $n placeholders numbered from `first`. */
  where: string;
  params: unknown[];
}

/** A lexeme as tsvector and tsquery input read it: quoted, so no character of it is syntax. */
export const lexeme = (t: string) => `'${t.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;

/** PostgreSQL keeps a lexeme of at most 2,046 bytes; a longer token cannot be searched for (docs/operations.md). */
const MAX_LEXEME_BYTES = 2046;
/** Positions above this are stored as it (PostgreSQL's limit): phrases are exact within an event's first 16,383 tokens. */
const MAX_POSITION = 16_383;

/** The tsvector input text of `text`: each token with its positions (1-based, as FTS5 counts them from 0). */
export function tsvectorOf(text: string): string {
  const at = new Map<string, number[]>();
  tokenize(text).forEach((t, i) => {
    if (Buffer.byteLength(t) > MAX_LEXEME_BYTES) return;
    const ps = at.get(t);
    const p = Math.min(i + 1, MAX_POSITION);
    if (!ps) at.set(t, [p]);
    else if (ps.length < 256 && ps[ps.length - 1] !== p) ps.push(p);
  });
  return [...at].map(([t, ps]) => `${lexeme(t)}:${ps.join(',')}`).join(' ');
}

/** The tsquery of a word or phrase (its last token a prefix when `prefix`), or null when it has no token (it matches nothing). */
export function tsqueryOf(text: string, prefix: boolean): string | null {
  const want = tokenize(text);
  if (want.length === 0) return null;
  return want.map((t, i) => `${lexeme(t)}${prefix && i === want.length - 1 ? ':*' : ''}`).join(' <-> ');
}

/** SQLite's GLOB as a LIKE pattern (escape `\`; the patterns query.ts emits). */
export function likeOf(glob: string): string {
  const lit = (c: string) => (c === '%' || c === '_' || c === '\\' ? `\\${c}` : c);
  return globParts(glob)
    .map((p) => (p === '*' ? '%' : p === '?' ? '_' : lit(p.literal)))
    .join('');
}

/**
 * Compiles a query for table `e` (entries, or gaps: the columns they share). `first` is the number
 * of the first placeholder. The empty query (null) is TRUE.
 */
export function compilePg(root: QueryNode | null, nowMs: number, first = 1): PgCompiled {
  const params: unknown[] = [];
  const bind = (v: unknown) => {
    params.push(v);
    return `$${first + params.length - 1}`;
  };
  const sql = (node: QueryNode): string => {
    switch (node.kind) {
      case 'and':
      case 'or':
        return `(${node.children.map(sql).join(node.kind === 'and' ? ' AND ' : ' OR ')})`;
      case 'not':
        // NOT NULL is NULL: without coalesce, -host:x would also drop entries that have no host.
        return mayBeNull(node.child) ? `NOT coalesce(${sql(node.child)}, false)` : `NOT (${sql(node.child)})`;
      case 'text': {
        const q = tsqueryOf(node.text, node.prefix);
        return q === null ? 'FALSE' : `e.tokens @@ ${bind(q)}::tsquery`;
      }
      case 'field': {
        const c = `e.${fieldKey(node.field)}`;
        const t = node.test;
        switch (t.op) {
          case 'eq':
            return `${c} = ${bind(t.value)}`;
          case 'glob':
            // COLLATE "C": byte order and byte equality, as SQLite's GLOB, whatever the database's collation.
            return `${c} LIKE ${bind(likeOf(t.pattern))} COLLATE "C"`;
          case 'present':
            return `${c} IS NOT NULL`;
          case 'range': {
            const conds: string[] = [];
            if (t.min !== null) conds.push(`${c} >= ${bind(t.min)}`);
            if (t.max !== null) conds.push(`${c} <= ${bind(t.max)}`);
            return conds.length === 1 ? (conds[0] as string) : `(${conds.join(' AND ')})`;
          }
          case 'since':
          case 'until':
            return `${c} ${t.op === 'since' ? '>=' : '<'} ${bind(timeMicros(t.time, nowMs))}`;
        }
      }
    }
  };
  return { where: root === null ? 'TRUE' : sql(root), params };
}
