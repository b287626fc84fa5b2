/**
 * `stele.policy.yaml`, policy as code: reading, validating and compiling it into `Policy`, a plain
 * JSON object (structured-cloneable, so it can be posted to worker threads).
 *
 * Every problem in a file is reported at once, each with file:line:column and the path of the
 * offending value, e.g.
 *   stele.policy.yaml:9:13: retention.tiers[0].keep: "90x" is not a duration (90d, 36h, forever)
 * The schema (./schema.ts) settles the shape; the checks here add what a schema cannot say.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { type Document, isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import { isDuration, parseDuration } from '../duration.js';
import { SteleError } from '../errors.js';
import { policySchema, TIER_NAME_PATTERN } from './schema.js';

/** A retention tier, compiled. */
export interface Tier {
  name: string;
  /** How long its events are kept, in ms; null = forever. */
  keepMs: number | null;
  /** Whether its events are sealed with data keys. Always true when `keepMs` is not null. */
  encrypt: boolean;
  /** Action globs; empty when the tier has no `match` (it then receives only default-tier events). */
  actions: string[];
  /** Source-kind globs; empty = any source. */
  sources: string[];
}

export interface RetentionPolicy {
  /** How often the retention job runs, in ms. */
  scheduleMs: number;
  /** Name of the tier for events no tier matches; always one of `tiers`. */
  defaultTier: string;
  /** In file order, the order they are tried. */
  tiers: Tier[];
}

/** A loaded policy: plain JSON, safe to structuredClone / postMessage. */
export interface Policy {
  version: 1;
  /** The file it was read from (as given), or "built-in". */
  source: string;
  /** SHA-256 (hex) of the file's bytes, recorded in the log when the server loads the policy. */
  sha256: string;
  retention: RetentionPolicy;
}

/** One problem in a policy file; `line` and `column` are 1-based, `path` like `retention.tiers[0].keep` ("" for the whole file). */
export interface PolicyProblem {
  file: string;
  line: number;
  column: number;
  path: string;
  message: string;
}

export const MIN_KEEP_MS = 86_400_000;
export const MIN_SCHEDULE_MS = 60_000;
export const DEFAULT_SCHEDULE_MS = 3_600_000;
/** Policy files larger than this are refused unread. */
export const MAX_POLICY_BYTES = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Locating a JSON path in the YAML document

type Segment = string;

/** Maps JSON paths of the parsed value back to positions in the YAML source. */
class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /**
   * The display path of `segs` and the offset to report: the value's start, or its key's with
   * `atKey` (or when the value is empty); for a path that does not exist, the deepest existing
   * ancestor's start.
   */
  find(segs: readonly Segment[], atKey = false): { path: string; line: number; column: number } {
    let node: unknown = this.doc.contents;
    let offset = start(node) ?? 0;
    let path = '';
    // Inside an alias the nodes sit at the anchor, elsewhere in the file: report the alias instead.
    let viaAlias = false;
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i] as string;
      const last = i === segs.length - 1;
      if (isAlias(node)) {
        node = node.resolve(this.doc);
        viaAlias = true;
      }
      if (isSeq(node)) {
        path += `[${seg}]`;
        node = node.items[Number(seg)];
        if (!viaAlias) offset = start(node) ?? offset;
      } else if (isMap(node)) {
        path = joinKey(path, seg);
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === seg);
        if (!pair) {
          node = undefined;
          continue;
        }
        const keyAt = start(pair.key) ?? offset;
        node = pair.value;
        const valueAt = start(node);
        const empty = isScalar(node) && node.value === null && node.range?.[0] === node.range?.[1];
        if (!viaAlias) offset = (last && atKey) || empty || valueAt === undefined ? keyAt : valueAt;
      } else {
        path = /^[0-9]+$/.test(seg) ? `${path}[${seg}]` : joinKey(path, seg);
        node = undefined;
      }
    }
    const pos = this.lines.linePos(offset);
    return { path, line: Math.max(pos.line, 1), column: Math.max(pos.col, 1) };
  }

  position(offset: number): { line: number; column: number } {
    const pos = this.lines.linePos(offset);
    return { line: Math.max(pos.line, 1), column: Math.max(pos.col, 1) };
  }
}

function start(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
  return range ? range[0] : undefined;
}

function joinKey(path: string, key: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path ? `${path}.${key}` : key;
}

function pointerSegments(pointer: string): Segment[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

// ---------------------------------------------------------------------------------------------
// Schema errors in words

const ajv = new Ajv2020({ allErrors: true, strict: true, verbose: true });
const validate = ajv.compile(policySchema);

const defs = policySchema.$defs;
const retentionProps = policySchema.properties.retention.properties;

/** Pattern failures, keyed by the (sub)schema of the property (ajv's schemaPath is relative to a $ref). */
const SHAPES = new Map<unknown, (q: string) => string>([
  [defs.tier.properties.keep, (q) => `${q} is not a duration (90d, 36h, forever)`],
  [retentionProps.schedule, (q) => `${q} is not a duration (30m, 1h, 1d)`],
  [defs.tier.properties.name, (q) => `${q} is not a tier name: use lower-case letters, digits, _ and -, starting with a letter`],
  [defs.glob, (q) => `${q} is not a pattern: use lower-case letters, digits, ., _, - and * (any run of characters)`],
]);

const REQUIRED: Record<string, string> = {
  version: 'missing: a policy file starts with "version: 1"',
  name: 'missing: every tier needs a name',
  keep: 'missing: every tier needs keep (a duration such as 90d, or forever)',
  default: 'missing: name the tier for events that no tier matches',
  tiers: 'missing: list at least one tier',
  actions: 'missing: match needs actions (globs such as k8s.*; * matches every action)',
};

const TYPES: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  boolean: 'true or false',
  integer: 'an integer',
  number: 'a number',
};

function what(v: unknown): string {
  if (v === null || v === undefined) return 'empty';
  if (Array.isArray(v)) return 'a list';
  switch (typeof v) {
    case 'string':
      return `the string ${JSON.stringify(v)}`;
    case 'number':
      return `the number ${v}`;
    case 'boolean':
      return String(v);
    case 'object':
      return 'a mapping';
    default:
      return typeof v;
  }
}

/** Levenshtein distance, for "did you mean" on short keys. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        (prev[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[b.length] as number;
}

interface Finding {
  segs: Segment[];
  atKey?: boolean;
  message: string;
}

function explain(e: ErrorObject, data: unknown): Finding {
  const segs = pointerSegments(e.instancePath);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(p.additionalProperty);
      const allowed = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      const near = allowed.find((a) => editDistance(a, key) <= 2);
      const hint = near ? `did you mean ${near}? ` : '';
      return { segs: [...segs, key], atKey: true, message: `unknown key (${hint}allowed here: ${allowed.join(', ')})` };
    }
    case 'required': {
      const key = String(p.missingProperty);
      return { segs: [...segs, key], message: REQUIRED[key] ?? 'missing (required)' };
    }
    case 'type':
      if (segs.length === 0) {
        const message =
          data === null || data === undefined
            ? 'the file is empty: a policy file starts with "version: 1"'
            : `the policy must be a mapping (version: 1, retention: ...), not ${what(data)}`;
        return { segs, message };
      }
      return { segs, message: `must be ${TYPES[String(p.type)] ?? String(p.type)}, not ${what(e.data)}` };
    case 'const':
      return { segs, message: `must be ${JSON.stringify(p.allowedValue)}, not ${what(e.data)}` };
    case 'pattern': {
      const shape = SHAPES.get(e.parentSchema);
      return { segs, message: shape ? shape(JSON.stringify(e.data)) : `${JSON.stringify(e.data)} ${e.message}` };
    }
    case 'minLength':
      if (e.parentSchema === defs.glob) return { segs, message: 'empty pattern: use * to match everything' };
      return { segs, message: 'must not be empty' };
    case 'maxLength':
      return { segs, message: `is longer than ${p.limit} characters` };
    case 'minItems':
      if (segs.at(-1) === 'tiers') return { segs, message: 'list at least one tier' };
      return { segs, message: `list at least ${p.limit === 1 ? 'one pattern' : `${p.limit} items`}` };
    case 'maxItems':
      return { segs, message: `has more than ${p.limit} items` };
    default:
      return { segs, message: e.message ?? 'is invalid' };
  }
}

// ---------------------------------------------------------------------------------------------
// Checks beyond the schema

const TIER_NAME_RE = new RegExp(TIER_NAME_PATTERN);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Duration in ms, or undefined after reporting why not (e.g. too long). Only for text matching the pattern. */
function durationMs(text: string, segs: Segment[], report: (f: Finding) => void): number | undefined {
  try {
    return parseDuration(text);
  } catch (err) {
    if (!(err instanceof SteleError)) throw err;
    report({ segs, message: err.message });
    return undefined;
  }
}

/**
 * What the schema cannot say: unique tier names, `default` naming a tier, minimum schedule and keep,
 * and expiring tiers encrypted. Runs on any value (checks only parts of the right shape, the schema
 * reports the rest), so one pass reports everything.
 */
function semanticFindings(data: unknown, locate: Locator): Finding[] {
  const out: Finding[] = [];
  const report = (f: Finding) => out.push(f);
  if (!isObject(data) || !isObject(data.retention)) return out;
  const r = data.retention;

  if (typeof r.schedule === 'string' && isDuration(r.schedule)) {
    const segs = ['retention', 'schedule'];
    const ms = durationMs(r.schedule, segs, report);
    if (ms !== undefined && ms < MIN_SCHEDULE_MS) {
      report({ segs, message: `${r.schedule} is too often: run the retention job at most every 1m` });
    }
  }

  const tiers = Array.isArray(r.tiers) ? r.tiers : [];
  const names = new Map<string, number>();
  let allNamed = true;
  tiers.forEach((t, i) => {
    const base = ['retention', 'tiers', String(i)];
    if (!isObject(t)) {
      allNamed = false;
      return;
    }
    if (typeof t.name === 'string' && TIER_NAME_RE.test(t.name)) {
      const first = names.get(t.name);
      if (first === undefined) names.set(t.name, i);
      else {
        const was = locate.find(['retention', 'tiers', String(first), 'name']);
        report({ segs: [...base, 'name'], message: `duplicate tier name "${t.name}" (also ${was.path} at line ${was.line})` });
      }
    } else allNamed = false;

    if (typeof t.keep === 'string' && t.keep !== 'forever' && isDuration(t.keep)) {
      const ms = durationMs(t.keep, [...base, 'keep'], report);
      if (ms !== undefined && ms < MIN_KEEP_MS) {
        report({ segs: [...base, 'keep'], message: `${t.keep} is too short: a tier keeps its events at least 1d` });
      }
      if (t.encrypt === false) {
        report({
          segs: [...base, 'encrypt'],
          message:
            `a tier that expires (keep: ${t.keep}) must be encrypted: events expire by destroying their data keys, ` +
            'and an unencrypted leaf can never be forgotten; remove "encrypt: false" or keep the tier forever',
        });
      }
    }
  });

  if (typeof r.default === 'string' && allNamed && tiers.length > 0 && !names.has(r.default)) {
    report({
      segs: ['retention', 'default'],
      message: `${JSON.stringify(r.default)} is not one of the tiers (${[...names.keys()].join(', ')})`,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parsing

function problemsError(problems: PolicyProblem[]): SteleError {
  const lines = problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.path ? `${p.path}: ` : ''}${p.message}`);
  return new SteleError('bad_policy', lines.join('\n'), 400, { problems });
}

const YAML_MESSAGES: Partial<Record<string, string>> = {
  MULTIPLE_DOCS: 'the file holds more than one YAML document (a second "---"); a policy is one document',
  DUPLICATE_KEY: 'duplicate key: keys in a mapping must be unique',
};

function compile(text: string, file: string, sha256: string): Policy {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const locate = new Locator(doc, lines);
  const problems: PolicyProblem[] = [];

  // A file that is not YAML gets only its syntax errors: what follows them would be guesswork.
  for (const e of doc.errors) {
    const pos = locate.position(e.pos[0]);
    problems.push({ file, ...pos, path: '', message: `YAML: ${YAML_MESSAGES[e.code] ?? e.message}` });
  }
  if (problems.length > 0) throw problemsError(problems);
  for (const w of doc.warnings) {
    const pos = locate.position(w.pos[0]);
    problems.push({ file, ...pos, path: '', message: `YAML: ${w.message}` });
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // Alias expansion bombs ("Excessive alias count") and the like.
    throw problemsError([{ file, line: 1, column: 1, path: '', message: `YAML: ${(err as Error).message}` }]);
  }

  const findings: Finding[] = [];
  if (!validate(data)) for (const e of validate.errors ?? []) findings.push(explain(e, data));
  findings.push(...semanticFindings(data, locate));

  const seen = new Set<string>();
  for (const f of findings) {
    const { path, line, column } = locate.find(f.segs, f.atKey);
    const key = `${line}:${column}:${path}:${f.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push({ file, line, column, path, message: f.message });
  }
  if (problems.length > 0) {
    problems.sort((a, b) => a.line - b.line || a.column - b.column);
    throw problemsError(problems);
  }
  return build(data as PolicyFile, file, sha256);
}

/** The shape of a file that passed every check. */
interface PolicyFile {
  version: 1;
  retention?: {
    schedule?: string;
    default: string;
    tiers: { name: string; keep: string; encrypt?: boolean; match?: { actions: string[]; sources?: string[] } }[];
  };
}

function defaultRetention(): RetentionPolicy {
  return {
    scheduleMs: DEFAULT_SCHEDULE_MS,
    defaultTier: 'default',
    tiers: [{ name: 'default', keepMs: null, encrypt: true, actions: [], sources: [] }],
  };
}

function build(f: PolicyFile, source: string, sha256: string): Policy {
  const r = f.retention;
  const retention: RetentionPolicy = r
    ? {
        scheduleMs: r.schedule === undefined ? DEFAULT_SCHEDULE_MS : parseDuration(r.schedule),
        defaultTier: r.default,
        tiers: r.tiers.map((t) => ({
          name: t.name,
          keepMs: t.keep === 'forever' ? null : parseDuration(t.keep),
          encrypt: t.encrypt ?? true,
          actions: [...(t.match?.actions ?? [])],
          sources: [...(t.match?.sources ?? [])],
        })),
      }
    : defaultRetention();
  return { version: 1, source, sha256, retention };
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Parses and checks policy text; `file` names it in problems and becomes `Policy.source`.
 * `sha256` is of the text's UTF-8 bytes. Throws SteleError 'bad_policy' (400) listing every
 * problem one per line, with `detail.problems: PolicyProblem[]`.
 */
export function parsePolicy(text: string, file: string): Policy {
  return compile(text, file, sha256Hex(Buffer.from(text, 'utf8')));
}

/**
 * Reads and checks a policy file; `Policy.sha256` is of its bytes as stored. Throws SteleError
 * 'policy_missing' (404) when there is no such file (the server then uses DEFAULT_POLICY),
 * 'bad_policy' (400) for an unreadable or invalid one.
 */
export function loadPolicyFile(path: string): Policy {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SteleError('policy_missing', `${path}: no such policy file`, 404, { file: path });
    if (code === 'EISDIR' || code === 'EACCES' || code === 'EPERM' || code === 'ENOTDIR') {
      const message = `cannot read the policy file (${code})`;
      throw problemsError([{ file: path, line: 1, column: 1, path: '', message }]);
    }
    throw err;
  }
  if (bytes.length > MAX_POLICY_BYTES) {
    throw problemsError([{ file: path, line: 1, column: 1, path: '', message: `larger than ${MAX_POLICY_BYTES} bytes` }]);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw problemsError([{ file: path, line: 1, column: 1, path: '', message: 'not UTF-8 text' }]);
  }
  return compile(text, path, sha256Hex(bytes));
}

// ---------------------------------------------------------------------------------------------
// Built-in policies

/** The policy used when there is no policy file: its `sha256` is of this text. */
export const DEFAULT_POLICY_YAML = `# The built-in policy, used when there is no stele.policy.yaml: every event is kept forever, encrypted.
version: 1
retention:
  default: default
  tiers:
    - name: default
      keep: forever
`;

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** One tier `default`, kept forever, encrypted. Frozen; `source` is "built-in". */
export const DEFAULT_POLICY: Policy = deepFreeze(parsePolicy(DEFAULT_POLICY_YAML, 'built-in'));

/** The commented starter file `stele init` writes. */
export const STARTER_POLICY_YAML = `# stele.policy.yaml: the policy of this Stele log, as code. Keep it in version control and check
# it with \`stele policy check\`. The server records each policy it loads in the log with its SHA-256.
version: 1

retention:
  # How often the server runs the retention job that expires events (a duration, at least 1m).
  schedule: 1h
  # The tier for events that no tier below matches.
  default: compliance
  # An event goes to the first tier, in this order, whose match fits. In the globs, * matches any
  # run of characters (dots included) and every other character only itself.
  tiers:
    - name: operational
      keep: 90d            # a duration (at least 1d, e.g. 90d, 26w, 7y) or forever
      match:
        actions: ["k8s.*", "emacs.buffer.*"]
        # sources: ["kubernetes"]   # optional source.kind globs: then action AND source must match
    - name: compliance
      keep: forever
      # encrypt: true      # the default. Expiring tiers must be encrypted (events expire by destroying
      #                    # their data keys); only a tier kept forever may store events in the clear.
`;

/** "forever", or the duration in the largest unit that divides it exactly (90d, 36h, 1y). */
export function formatKeep(keepMs: number | null): string {
  if (keepMs === null) return 'forever';
  return formatDuration(keepMs);
}

const UNITS: [string, number][] = [
  ['y', 365 * 86_400_000],
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
];

/** Milliseconds as a duration `parseDuration` reads back: 90d, 36h, 1y, 1500ms. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of UNITS) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}
