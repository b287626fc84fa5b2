/**
 * What the log's own records keep of a query (stele.access.search / export, stele.access.denied):
 * who searched stays in the clear, whom they searched for does not. A stele.access.* record is
 * sealed under its tier's day key, which no erasure destroys, so a query naming a person would
 * hand the erased person's name back to the next auditor. The query is therefore rewritten from
 * its parsed form (so no quoting trick smuggles a value past the rewrite):
 *
 * - field names, operators, parentheses, and the values of fields that name no one (action,
 *   source, outcome, tier, type, verified, resource_type, key, index, since, until) stay;
 * - the values of every other field (actor, subject, on_behalf_of, principal, resource, host, id)
 *   and every full-text word or phrase (an email or a name is typed as text as often as not)
 *   become `#h:<hex>`, the keyed hash erasure records as `subject_hash` (HMAC-SHA-256 under the
 *   key store's pepper, of the NFC form; full-text terms lower-cased first, as search matches
 *   them). A glob value becomes `#g:<hex>`, the hash of the pattern as typed.
 *
 * An auditor with the key store can still answer "was alice@example.com searched for?" by
 * hashing the value (`stele subject-hash`), but the record itself no longer says it.
 */
import { type FieldTest, parseQuery, type QueryNode } from '../index/query.js';
import { subjectHash } from '../keys/subject.js';
import { formatDuration } from '../policy/policy.js';

/** Fields whose values are kept: they describe the event's kind, place in the log or time, never a person. */
const PLAIN_FIELDS: ReadonlySet<string> = new Set([
  'action',
  'source',
  'outcome',
  'tier',
  'type',
  'verified',
  'resource_type',
  'key',
  'index',
  'since',
  'until',
]);

/** The keyed hash a record stores for `value` (NFC first, so both spellings of a name hash alike). */
export function valueHash(pepper: Buffer, value: string): string {
  return subjectHash(pepper, value.normalize('NFC'));
}

/** A full-text term's hash: search matches words case-insensitively, so the hash does too. */
export function textHash(pepper: Buffer, text: string): string {
  return valueHash(pepper, text.normalize('NFC').toLowerCase());
}

/** A value as the query language reads it back: bare when it can be, else quoted with escapes. */
function literal(v: string): string {
  return /^[^\s()"*]+$/.test(v) &&
    !/^[A-Za-z_][A-Za-z0-9_]*:/.test(v) &&
    v !== 'AND' &&
    v !== 'OR' &&
    v !== 'NOT' &&
    !v.startsWith('-')
    ? v
    : `"${v.replace(/[\\"*]/g, '\\$&')}"`;
}

function micros(us: number): string {
  const ms = Math.floor(us / 1000);
  const rest = us - ms * 1000;
  const iso = new Date(ms).toISOString();
  return rest === 0 ? iso : `${iso.slice(0, -1)}${String(rest).padStart(3, '0')}Z`;
}

function plainTest(field: string, t: FieldTest): string {
  switch (t.op) {
    case 'eq':
      if (field === 'verified') return t.value === 1 ? 'true' : 'false';
      return typeof t.value === 'number' ? String(t.value) : literal(t.value);
    case 'glob':
      // The SQL GLOB pattern: literal metacharacters are bracketed ([*]); readable as it is.
      return t.pattern;
    case 'present':
      return '*';
    case 'range':
      return `${t.min ?? ''}..${t.max ?? ''}`;
    case 'since':
    case 'until':
      return 'agoMs' in t.time ? formatDuration(t.time.agoMs) : micros(t.time.micros);
  }
}

function render(node: QueryNode, pepper: Buffer): string {
  switch (node.kind) {
    case 'and':
      return node.children.map((c) => (c.kind === 'or' ? `(${render(c, pepper)})` : render(c, pepper))).join(' ');
    case 'or':
      return node.children.map((c) => render(c, pepper)).join(' OR ');
    case 'not': {
      const inner = render(node.child, pepper);
      return node.child.kind === 'and' || node.child.kind === 'or' ? `-(${inner})` : `-${inner}`;
    }
    case 'text':
      return `#h:${textHash(pepper, node.text)}${node.prefix ? '*' : ''}`;
    case 'field': {
      const t = node.test;
      let value: string;
      if (PLAIN_FIELDS.has(node.field) || t.op === 'present') value = plainTest(node.field, t);
      else if (t.op === 'glob') value = `#g:${valueHash(pepper, t.pattern)}`;
      else if (t.op === 'eq') value = `#h:${valueHash(pepper, String(t.value))}`;
      else value = '#h:?'; // no other test applies to a text field; never keep what we do not know
      return `${node.field}:${value}`;
    }
  }
}

/**
 * `q` as a self-audit record keeps it (see above). A query that does not parse names nothing the
 * record may keep: it becomes `#unparsed` (such a query is refused before it runs anyway).
 */
export function recordedQuery(q: string, pepper: Buffer): string {
  let root: QueryNode | null;
  try {
    root = parseQuery(q);
  } catch {
    return '#unparsed';
  }
  // A hash is longer than a short word: clipped, so a 4 KB query of one-letter words still fits a leaf.
  return root ? clip(render(root, pepper), MAX_RECORDED_QUERY) : '';
}

/** Longest recorded query (a query may be 4,096 characters; its hashes make it longer). */
const MAX_RECORDED_QUERY = 8192;

/** Longest attacker-controlled text a denied-request record keeps (messages, reasons, paths). */
export const CLIP_CHARS = 200;

/** `s` cut to `max` characters, marked so a reader knows it was cut and how long it was. */
export function clip(s: string, max = CLIP_CHARS): string {
  if (s.length <= max) return s;
  return `${s.slice(0, max)}…[clipped, ${s.length} chars]`;
}

/**
 * A request line as a denied-request record keeps it: the method, the path (clipped), and the
 * names of its query parameters, not their values, except `q`, kept as recordedQuery rewrites it.
 * Values are where a caller's search terms and tokens travel; the path and names say enough of
 * what was asked.
 */
export function recordedRequest(method: string, url: string, pepper: Buffer): string {
  const at = url.indexOf('?');
  const path = at < 0 ? url : url.slice(0, at);
  let params = '';
  if (at >= 0) {
    const names: string[] = [];
    for (const [name, value] of new URLSearchParams(url.slice(at + 1))) {
      names.push(name === 'q' ? `q=${recordedQuery(value, pepper)}` : name);
    }
    params = `?${names.join('&')}`;
  }
  return `${clip(method, 16)} ${clip(path)}${clip(params, 2 * CLIP_CHARS)}`;
}
