/**
 * The query language as the search box shows it: tokens to colour (fields, values, words,
 * phrases, operators), the word being typed for completion. Display only: the server parses.
 */

/** The search fields (src/index/query.ts). */
export const FIELDS = [
  'actor',
  'type',
  'on_behalf_of',
  'verified',
  'action',
  'source',
  'host',
  'resource',
  'resource_type',
  'outcome',
  'subject',
  'tier',
  'key',
  'principal',
  'id',
  'index',
  'since',
  'until',
] as const;

export type TokenKind = 'field' | 'value' | 'word' | 'phrase' | 'op' | 'paren' | 'space';

export interface Token {
  kind: TokenKind;
  text: string;
  start: number;
}

export function tokens(q: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const push = (kind: TokenKind, end: number) => {
    out.push({ kind, text: q.slice(i, end), start: i });
    i = end;
  };
  while (i < q.length) {
    const c = q[i] as string;
    if (/\s/.test(c)) {
      let j = i;
      while (j < q.length && /\s/.test(q[j] as string)) j++;
      push('space', j);
    } else if (c === '(' || c === ')') push('paren', i + 1);
    else if (c === '"') {
      let j = i + 1;
      while (j < q.length && q[j] !== '"') j += q[j] === '\\' ? 2 : 1;
      push('phrase', Math.min(q.length, j + 1) + (q[j + 1] === '*' ? 1 : 0));
    } else {
      let j = i;
      while (j < q.length && !/[\s()]/.test(q[j] as string)) {
        if (q[j] === '"') {
          j++;
          while (j < q.length && q[j] !== '"') j++;
        }
        j++;
      }
      const word = q.slice(i, Math.min(j, q.length));
      const m = /^(-?)([A-Za-z_][A-Za-z0-9_]*):/.exec(word);
      if (m) {
        push('field', i + (m[0] as string).length);
        if (i < j) push('value', Math.min(j, q.length));
      } else if (/^(AND|OR|NOT)$/.test(word)) push('op', j);
      else push('word', Math.min(j, q.length));
    }
  }
  return out;
}

/**
 * What completes the word ending at `caret`, and where that word starts: field names (`act` →
 * `actor:`), or, after `field:`, the values of that field seen recently (`actor:al` →
 * `actor:alice@example.com`).
 */
export function completions(
  q: string,
  caret: number,
  recent: Readonly<Record<string, readonly string[]>> = {},
): { from: number; options: string[] } {
  let from = caret;
  while (from > 0 && !/[\s()]/.test(q[from - 1] as string)) from--;
  if (q[from] === '-') from++;
  const word = q.slice(from, caret);
  const m = /^([A-Za-z_]+):(.*)$/.exec(word);
  if (m) {
    const [, field = '', partial = ''] = m;
    const options = (recent[field] ?? [])
      .filter((v) => v.toLowerCase().startsWith(partial.replace(/^"/, '').toLowerCase()) && quoteValue(v) !== partial)
      .slice(0, 8)
      .map((v) => `${field}:${quoteValue(v)}`);
    return { from, options };
  }
  if (word.length === 0 || !/^[A-Za-z_]+$/.test(word) || q[caret] === ':') return { from, options: [] };
  return { from, options: FIELDS.filter((f) => f.startsWith(word.toLowerCase()) && f !== word).map((f) => `${f}:`) };
}

/** A value as the query language reads it: bare when it can be, else quoted (escaping backslash, quote and the wildcard). */
export function quoteValue(v: string): string {
  return /^[\w@.:/-]+$/.test(v) ? v : `"${v.replace(/[\\"*]/g, (c) => `\\${c}`)}"`;
}
