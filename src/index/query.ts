/**
 * The search query language shared by `stele search` and `GET /v1/events?q=...`:
 *
 *     actor:alice action:emacs.package.* source:emacs outcome:failure since:7d "init.el"
 *
 * Grammar (NOT binds tighter than AND, AND tighter than OR; keywords are upper case only):
 *
 *     query   := [ or ]                        -- empty or blank: matches every entry
 *     or      := and { "OR" and }
 *     and     := unary { [ "AND" ] unary }     -- juxtaposition is AND
 *     unary   := ( "NOT" | "-" ) unary | primary   -- "-" written directly before its term
 *     primary := "(" or ")" | field ":" value | word | word"*" | '"phrase"' | '"phrase"*'
 *     value   := bare text up to a space or parenthesis | '"' quoted '"'
 *
 * Inside quotes `\"`, `\\` and `\*` (a literal star) are escapes; any other backslash is literal.
 * In field values `*` is a wildcard (`*` alone: the field is present). Bare words and phrases are
 * full-text terms; a trailing `*` makes a prefix search.
 *
 * Tokenizer (with positions) → recursive-descent parser → a neutral AST, every value validated.
 * The query store's drivers evaluate the AST their own way (src/storage/fs/query-sql.ts compiles it
 * to SQL with every user string a bound parameter; src/storage/memory/query-store.ts walks it);
 * the helpers at the end say what every driver must agree on.
 */
import { isDuration, parseDuration } from '../core/duration.js';
import { SteleError } from '../core/errors.js';
import { nfc } from '../event/nfc.js';
import { parseMicros } from '../event/record.js';
import type { IndexRow } from '../event/searchable.js';

/** What a field's value tests. Times are kept relative (`agoMs`) until compiled against a clock. */
export type FieldTest =
  | { op: 'eq'; value: string | number }
  | { op: 'glob'; pattern: string }
  | { op: 'present' }
  | { op: 'range'; min: number | null; max: number | null } // inclusive
  | { op: 'since' | 'until'; time: { agoMs: number } | { micros: number } };

export type QueryNode =
  | { kind: 'and' | 'or'; children: QueryNode[] }
  | { kind: 'not'; child: QueryNode }
  | { kind: 'text'; text: string; prefix: boolean }
  | { kind: 'field'; field: string; test: FieldTest };

type FieldKind = 'text' | 'enum' | 'bool' | 'index' | 'time';
interface FieldSpec {
  key: keyof IndexRow;
  kind: FieldKind;
  nullable?: boolean;
  values?: readonly string[];
}

const FIELDS: Record<string, FieldSpec> = {
  actor: { key: 'actor', kind: 'text' },
  type: { key: 'actor_type', kind: 'enum', values: ['human', 'service', 'ai_agent'] },
  on_behalf_of: { key: 'on_behalf_of', kind: 'text', nullable: true },
  verified: { key: 'verified', kind: 'bool' },
  action: { key: 'action', kind: 'text' },
  source: { key: 'source', kind: 'text' },
  host: { key: 'host', kind: 'text', nullable: true },
  resource: { key: 'resource_id', kind: 'text', nullable: true },
  resource_type: { key: 'resource_type', kind: 'text', nullable: true },
  outcome: { key: 'outcome', kind: 'enum', values: ['success', 'failure', 'denied'] },
  subject: { key: 'subject', kind: 'text', nullable: true },
  tier: { key: 'tier', kind: 'text' },
  key: { key: 'key_id', kind: 'text', nullable: true },
  principal: { key: 'principal', kind: 'text' },
  id: { key: 'id', kind: 'text' },
  index: { key: 'idx', kind: 'index' },
  since: { key: 'time', kind: 'time' },
  until: { key: 'time', kind: 'time' },
};
const ALIASES: Record<string, string> = { actor_type: 'type' };
const NFC_FIELDS = new Set(['actor', 'on_behalf_of', 'subject']);

/** The documented field names, for help text and errors (`actor_type` is also accepted for `type`). */
export const QUERY_FIELDS: readonly string[] = Object.freeze(Object.keys(FIELDS));

// ---- errors -----------------------------------------------------------------------------------

const col = (pos: number) => `column ${pos + 1}`;

function fail(position: number, token: string, message: string): never {
  throw new SteleError('bad_query', message, { detail: { position, token } });
}

const quote = (s: string) => JSON.stringify(s);

function orList(values: readonly string[]): string {
  return values.length === 1 ? (values[0] as string) : `${values.slice(0, -1).join(', ')} or ${values.at(-1)}`;
}

// ---- tokenizer --------------------------------------------------------------------------------

type Token =
  | { t: '(' | ')' | '-' | 'AND' | 'OR' | 'NOT'; pos: number; text: string }
  | { t: 'text'; pos: number; text: string; value: string; prefix: boolean }
  /** `parts` is the value split at its wildcard stars (one part: no wildcard). */
  | { t: 'field'; pos: number; text: string; name: string; valuePos: number; valueText: string; parts: string[] };

const SPACE = /\s/;
const FIELD_PREFIX = /^([A-Za-z_][A-Za-z0-9_]*):/;
const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]*:$/;

/** Reads a quoted string starting at q[start] === '"'; returns its parts (split at unescaped `*`) and the end offset. */
function readQuoted(q: string, start: number): { parts: string[]; end: number } {
  const parts: string[] = [];
  let cur = '';
  for (let i = start + 1; i < q.length; i++) {
    const c = q[i] as string;
    if (c === '"') {
      parts.push(cur);
      return { parts, end: i + 1 };
    }
    if (c === '\\' && (q[i + 1] === '"' || q[i + 1] === '\\' || q[i + 1] === '*')) {
      cur += q[++i];
    } else if (c === '*') {
      parts.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  return fail(start, q.slice(start), `unterminated quote at ${col(start)}`);
}

function tokenize(q: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < q.length) {
    const c = q[i] as string;
    if (SPACE.test(c)) {
      i++;
    } else if (c === '(' || c === ')') {
      tokens.push({ t: c, pos: i, text: c });
      i++;
    } else if (c === '-') {
      // Negation only when written directly before its term: a lone "-" is almost surely a typo.
      const next = q[i + 1];
      if (next === undefined || SPACE.test(next) || next === ')') {
        fail(i, c, `"-" at ${col(i)} must be written directly before what it excludes, e.g. -actor:bob`);
      }
      tokens.push({ t: '-', pos: i, text: c });
      i++;
    } else if (c === '"') {
      const { parts, end } = readQuoted(q, i);
      const prefix = q[end] === '*';
      const stop = prefix ? end + 1 : end;
      tokens.push({ t: 'text', pos: i, text: q.slice(i, stop), value: parts.join('*'), prefix });
      i = stop;
    } else {
      let j = i;
      let quoted: { parts: string[]; end: number } | undefined;
      while (j < q.length && !SPACE.test(q[j] as string) && q[j] !== '(' && q[j] !== ')') {
        // `field:"quoted value"`; a quote anywhere else in a word is just a character.
        if (q[j] === '"' && FIELD_NAME.test(q.slice(i, j))) {
          quoted = readQuoted(q, j);
          j = quoted.end;
          break;
        }
        j++;
      }
      const text = q.slice(i, j);
      const field = FIELD_PREFIX.exec(text);
      if (field) {
        const name = field[1] as string;
        const valuePos = i + name.length + 1;
        const valueText = q.slice(valuePos, j);
        const parts = quoted ? quoted.parts : valueText.split('*');
        tokens.push({ t: 'field', pos: i, text, name, valuePos, valueText, parts });
      } else if (text === 'AND' || text === 'OR' || text === 'NOT') {
        tokens.push({ t: text, pos: i, text });
      } else {
        const prefix = text.endsWith('*');
        tokens.push({ t: 'text', pos: i, text, value: prefix ? text.slice(0, -1) : text, prefix });
      }
      i = j;
    }
  }
  return tokens;
}

// ---- parser -----------------------------------------------------------------------------------

// What FTS5's unicode61 tokenizer keeps as token characters (categories L*, N*, Co).
const TOKEN_CHAR = /[\p{L}\p{N}\p{Co}]/u;

/** Escapes GLOB's metacharacters so `text` matches only itself (a part's `*` came from `\*`). */
function globLiteral(text: string): string {
  return text.replace(/[*?[\]]/g, '[$&]');
}

function fieldNode(tok: Extract<Token, { t: 'field' }>): QueryNode {
  const name = tok.name.toLowerCase();
  const field = ALIASES[name] ?? name;
  const spec = FIELDS[field];
  if (!spec) fail(tok.pos, tok.name, `unknown field ${quote(tok.name)} at ${col(tok.pos)} (fields: ${QUERY_FIELDS.join(', ')})`);
  const { parts, valuePos, valueText } = tok;
  const value = parts.join('*');
  if (parts.length === 1 && value === '') fail(tok.pos, tok.text, `${tok.name}: needs a value at ${col(tok.pos)}`);
  const bad = (why: string): never => fail(valuePos, valueText, `${why} at ${col(valuePos)}`);
  const not = `, not ${quote(valueText)}`;
  const node = (test: FieldTest): QueryNode => ({ kind: 'field', field, test });

  switch (spec.kind) {
    case 'text': {
      // Stored in NFC (normalizeEvent), so matched in NFC whichever spelling the query uses.
      const ps = NFC_FIELDS.has(field) ? parts.map(nfc) : parts;
      if (ps.length === 1) return node({ op: 'eq', value: ps[0] as string });
      if (ps.every((p) => p === '')) return node({ op: 'present' });
      return node({ op: 'glob', pattern: ps.map(globLiteral).join('*') });
    }
    case 'enum': {
      const v = value.toLowerCase();
      const values = spec.values as readonly string[];
      if (parts.length !== 1 || !values.includes(v)) bad(`${field} must be ${orList(values)}${not}`);
      return node({ op: 'eq', value: v });
    }
    case 'bool': {
      const v = value.toLowerCase();
      if (parts.length !== 1 || (v !== 'true' && v !== 'false')) bad(`${field} must be true or false${not}`);
      return node({ op: 'eq', value: v === 'true' ? 1 : 0 });
    }
    case 'index': {
      const m = parts.length === 1 ? /^(\d*)(\.\.)?(\d*)$/.exec(value) : null;
      const num = (s: string | undefined) => {
        if (!s) return null;
        const n = Number(s);
        return Number.isSafeInteger(n) ? n : bad(`index ${quote(valueText)} is too large`);
      };
      if (!m || (m[2] === undefined && m[3] !== '') || (m[1] === '' && m[3] === '')) {
        return bad(`index must be a number such as 42 or a range such as 10..20, 10.. or ..20${not}`);
      }
      const min = num(m[1]);
      if (m[2] === undefined) return node({ op: 'eq', value: min as number });
      const max = num(m[3]);
      if (min !== null && max !== null && min > max) bad(`index range ${quote(valueText)} starts after it ends`);
      return node({ op: 'range', min, max });
    }
    case 'time':
      return node({ op: field as 'since' | 'until', time: parseTime(value, parts.length > 1, bad) });
  }
}

function parseTime(v: string, wildcard: boolean, bad: (why: string) => never): { agoMs: number } | { micros: number } {
  const notTime = 'is not a duration (7d, 36h, 1h30m), a date (2026-11-17) or an RFC 3339 time';
  if (wildcard) return bad(`${quote(v)} ${notTime}`);
  try {
    if (isDuration(v)) return { agoMs: parseDuration(v) };
    // A date is midnight UTC of that day. Times past the year 2255 exceed 2^53 µs and round by a
    // few µs as a number, which cannot matter to a search bound.
    if (/^\d{4}-\d{2}-\d{2}$/.test(v)) return { micros: Number(parseMicros(`${v}T00:00:00Z`)) };
    if (/^\d{4}-\d{2}-\d{2}T/.test(v)) return { micros: Number(parseMicros(v)) };
  } catch (e) {
    if (!(e instanceof SteleError)) throw e;
    // parseDuration/parseMicros name the text and the problem; for a date, name only the date.
    return bad(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${quote(v)} is not a valid date` : e.message);
  }
  return bad(`${quote(v)} ${notTime}`);
}

class Parser {
  private i = 0;
  constructor(
    private readonly q: string,
    private readonly tokens: Token[],
  ) {}

  parse(): QueryNode | null {
    if (this.tokens.length === 0) return null;
    const node = this.or();
    const t = this.tokens[this.i];
    // or() stops only at the end or at a ")" nothing opened.
    if (t) fail(t.pos, t.text, `unexpected ")" at ${col(t.pos)} (no "(" before it)`);
    return node;
  }

  /** `after` is the operator or "(" just consumed, which needs a term after it. */
  private or(after?: Token): QueryNode {
    const children = [this.and(after)];
    while (this.tokens[this.i]?.t === 'OR') {
      const op = this.tokens[this.i++] as Token;
      children.push(this.and(op));
    }
    return combine('or', children);
  }

  private and(after?: Token): QueryNode {
    const children = [this.unary(after)];
    for (;;) {
      const t = this.tokens[this.i];
      if (!t || t.t === 'OR' || t.t === ')') break;
      if (t.t === 'AND') this.i++;
      children.push(this.unary(t.t === 'AND' ? t : undefined));
    }
    return combine('and', children);
  }

  private unary(after?: Token): QueryNode {
    const t = this.tokens[this.i];
    if (!t) {
      // Only reached after an operator: parse() and and() never ask for a term past the end otherwise.
      const op = after as Token;
      return fail(op.pos, op.text, `${quote(op.text)} at ${col(op.pos)} needs a term after it`);
    }
    if (t.t === 'OR' || t.t === 'AND' || t.t === ')') {
      if (after?.t === '(' && t.t === ')') fail(after.pos, '()', `empty parentheses at ${col(after.pos)}`);
      const want = after ? `a term after ${quote(after.text)}` : 'a term before it';
      fail(t.pos, t.text, `unexpected ${quote(t.text)} at ${col(t.pos)} (expected ${want})`);
    }
    this.i++;
    switch (t.t) {
      case 'NOT':
      case '-':
        return { kind: 'not', child: this.unary(t) };
      case '(': {
        const inner = this.or(t);
        if (this.tokens[this.i]?.t !== ')') {
          fail(this.q.length, '', `expected ")" at ${col(this.q.length)} to close the "(" at ${col(t.pos)}`);
        }
        this.i++;
        return inner;
      }
      case 'field':
        return fieldNode(t);
      case 'text':
        if (!TOKEN_CHAR.test(t.value)) {
          fail(t.pos, t.text, `${quote(t.text)} at ${col(t.pos)} has no letters or digits to search for`);
        }
        return { kind: 'text', text: t.value, prefix: t.prefix };
    }
  }
}

/** Builds an AND/OR node, flattening nested nodes of the same kind (from parentheses). */
function combine(kind: 'and' | 'or', nodes: QueryNode[]): QueryNode {
  if (nodes.length === 1) return nodes[0] as QueryNode;
  return { kind, children: nodes.flatMap((n) => (n.kind === kind ? n.children : [n])) };
}

/**
 * Parses a query into its AST, or null for an empty (blank) query. Throws SteleError 'bad_query'
 * (status 400, detail `{position, token}`: the 0-based offset and text of the offending token).
 */
export function parseQuery(q: string): QueryNode | null {
  return new Parser(q, tokenize(q)).parse();
}

// ---- helpers over the AST (for the query store's drivers) -------------------------------------

/** The row property (IndexRow, and the SQLite column of the same name) a field tests. */
export function fieldKey(field: string): keyof IndexRow {
  const spec = FIELDS[field];
  if (!spec) throw new Error(`no field ${field}`); // the parser admits only FIELDS
  return spec.key;
}

/** Whether a field's row property may be null (an entry without it): NOT of a test on it must keep such entries. */
export function fieldNullable(field: string): boolean {
  return FIELDS[field]?.nullable === true;
}

/** The µs bound a since:/until: test compares `time` with; `nowMs` anchors relative times (`since:7d`). */
export function timeMicros(time: { agoMs: number } | { micros: number }, nowMs: number): number {
  return 'agoMs' in time ? (nowMs - time.agoMs) * 1000 : time.micros;
}

/**
 * Whether the SQL of `node` can be NULL in a store (a comparison on a column the entry lacks), which
 * NOT must not see: every SQL compiler wraps such a NOT in coalesce.
 */
export function mayBeNull(node: QueryNode): boolean {
  switch (node.kind) {
    case 'and':
    case 'or':
      return node.children.some(mayBeNull);
    case 'field':
      return (node.test.op === 'eq' || node.test.op === 'glob') && fieldNullable(node.field);
    default:
      return false;
  }
}

/** A glob pattern as the parser emits it, in parts: `*` any run, `?` one character, else a literal character (`[c]` is c). */
export function globParts(pattern: string): ('*' | '?' | { literal: string })[] {
  const out: ('*' | '?' | { literal: string })[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*' || c === '?') out.push(c);
    else if (c === '[' && pattern[i + 2] === ']') {
      out.push({ literal: pattern[i + 1] as string });
      i += 2;
    } else out.push({ literal: c });
  }
  return out;
}

/** Fields a gap (the tombstone of an expired or erased entry) has: none says what the event was. */
const GAP_FIELDS: ReadonlySet<string> = new Set(['index', 'tier', 'since', 'until']);

/** Whether a query tests nothing but where an entry is (index, tier, receipt time). */
function testsOnlyPlace(node: QueryNode): boolean {
  switch (node.kind) {
    case 'and':
    case 'or':
      return node.children.every(testsOnlyPlace);
    case 'not':
      return testsOnlyPlace(node.child);
    case 'text':
      return false;
    case 'field':
      return GAP_FIELDS.has(node.field);
  }
}

/**
 * Whether a query may match gaps (the store's tombstones): only when it tests nothing but index:,
 * tier:, since:/until: (null, the empty query, matches everything). A query testing anything
 * about the event matches no gap, even through NOT, so whether a gap is found never depends on
 * what the destroyed entry said. On gaps, since:/until: compare the receipt time.
 */
export function canMatchGaps(root: QueryNode | null): boolean {
  return root === null || testsOnlyPlace(root);
}
