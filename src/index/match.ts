/**
 * A parsed query (src/index/query.ts) evaluated on one entry's fields and full-text tokens, exactly
 * as the SQLite store's SQL and FTS5 evaluate it (the conformance suite holds the two to the same
 * answers): the memory store's whole search, and what can confirm a candidate a coarser index found.
 */
import { fieldKey, globParts, type QueryNode, timeMicros } from './query.js';
import { tokenize } from './unicode61.js';

/**
 * What the AST's tests read: a readable entry's row and tokens, or a gap (only place fields);
 * `asciiLower`, when given, is the entry's text lowercased if it is all ASCII (else null): a word
 * it does not contain cannot be among the tokens, which spares tokenizing most entries.
 */
export type Subject = { row: Record<string, unknown>; tokens: readonly string[]; readonly asciiLower?: string | null };

/** SQLite's GLOB as a RegExp (the patterns query.ts emits). */
function globRegExp(pattern: string): RegExp {
  const re = globParts(pattern)
    .map((p) => (p === '*' ? '[\\s\\S]*' : p === '?' ? '[\\s\\S]' : literal(p.literal)))
    .join('');
  return new RegExp(`^${re}$`, 'u');
}

const literal = (s: string) => s.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');

/** Whether `tokens` hold the phrase `want` (its last token a prefix when `prefix`) at consecutive positions. */
function hasPhrase(tokens: readonly string[], want: readonly string[], prefix: boolean): boolean {
  if (want.length === 0) return false;
  const last = want.length - 1;
  outer: for (let i = 0; i + want.length <= tokens.length; i++) {
    for (let k = 0; k < want.length; k++) {
      const t = tokens[i + k] as string;
      const w = want[k] as string;
      if (k === last && prefix ? !t.startsWith(w) : t !== w) continue outer;
    }
    return true;
  }
  return false;
}

/** The AST as a predicate; a test on a field an entry lacks (null) is false, and NOT of it true, as in SQL with coalesce. */
export function predicate(node: QueryNode, nowMs: number): (s: Subject) => boolean {
  switch (node.kind) {
    case 'and': {
      const cs = node.children.map((c) => predicate(c, nowMs));
      return (s) => cs.every((c) => c(s));
    }
    case 'or': {
      const cs = node.children.map((c) => predicate(c, nowMs));
      return (s) => cs.some((c) => c(s));
    }
    case 'not': {
      const c = predicate(node.child, nowMs);
      return (s) => !c(s);
    }
    case 'text': {
      const want = tokenize(node.text);
      // unicode61 folds case and diacritics: only in ASCII text is each token a substring of the lowercased text.
      return (s) => {
        const lower = s.asciiLower;
        if (lower && want.some((w) => !lower.includes(w))) return false;
        return hasPhrase(s.tokens, want, node.prefix);
      };
    }
    case 'field': {
      const key = fieldKey(node.field);
      const t = node.test;
      switch (t.op) {
        case 'eq':
          return (s) => s.row[key] === t.value;
        case 'glob': {
          const re = globRegExp(t.pattern);
          return (s) => typeof s.row[key] === 'string' && re.test(s.row[key] as string);
        }
        case 'present':
          return (s) => s.row[key] !== null && s.row[key] !== undefined;
        case 'range':
          return (s) => {
            const v = s.row[key] as number;
            return (t.min === null || v >= t.min) && (t.max === null || v <= t.max);
          };
        case 'since':
        case 'until': {
          const bound = timeMicros(t.time, nowMs);
          return t.op === 'since' ? (s) => (s.row[key] as number) >= bound : (s) => (s.row[key] as number) < bound;
        }
      }
    }
  }
}
