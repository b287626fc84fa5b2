/**
 * `stele.policy.yaml`, policy as code: reading, validating and compiling it into `Policy`, a plain
 * JSON object (structured-cloneable, so it can be posted to worker threads): retention tiers, the
 * trusted OIDC issuers (`identity`), the roles, and the text of the optional companion Cedar file
 * (`stele.cedar` beside it), which is validated here against the Cedar schema of the policy
 * (./cedar.ts) so that every problem of both files is found at load time. ./access.ts turns a Policy
 * into access decisions.
 *
 * Every problem in a file is reported at once, each with file:line:column and the path of the
 * offending value, e.g.
 *   stele.policy.yaml:9:13: retention.tiers[0].keep: "90x" is not a duration (90d, 36h, forever)
 * The schema (./schema.ts) settles the shape; the checks here add what a schema cannot say.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { type Document, isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import { isDuration, parseDuration } from '../core/duration.js';
import { SteleError } from '../core/errors.js';
import type { IssuerConfig } from '../core/principal.js';
import { checkCedarSyntax, checkCedarText } from './cedar.js';
import {
  DEFAULT_JWS_ALGORITHMS,
  JWS_ALGORITHMS,
  policySchema,
  ROLE_ACTIONS,
  ROLE_NAME_PATTERN,
  TIER_NAME_PATTERN,
} from './schema.js';
import type {
  AlertPolicy,
  AlertRule,
  CedarFile,
  IdentityPolicy,
  Policy,
  PolicyProblem,
  RetentionPolicy,
  Role,
  RoleAction,
  Tier,
} from './types.js';

export type { CedarFile, IdentityPolicy, Policy, PolicyProblem, RetentionPolicy, Role, RoleAction, Tier };

export const MIN_KEEP_MS = 86_400_000;
/** An issuer's clock_skew is at most this (5m). */
export const MAX_CLOCK_SKEW_MS = 300_000;
export const DEFAULT_CLOCK_SKEW_MS = 30_000;
/** The companion Cedar file's name, looked for beside the policy file. */
export const CEDAR_FILE_NAME = 'stele.cedar';
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

// Union types: an issuer's audience is a string or a list.
const ajv = new Ajv2020({ allErrors: true, strict: true, verbose: true, allowUnionTypes: true });
const validate = ajv.compile(policySchema);

const defs = policySchema.$defs;
const retentionProps = policySchema.properties.retention.properties;
const issuerProps = defs.issuer.properties;

/** Pattern failures, keyed by the (sub)schema of the property (ajv's schemaPath is relative to a $ref). */
const SHAPES = new Map<unknown, (q: string) => string>([
  [defs.tier.properties.keep, (q) => `${q} is not a duration (90d, 36h, forever)`],
  [retentionProps.schedule, (q) => `${q} is not a duration (30m, 1h, 1d)`],
  [defs.tier.properties.name, (q) => `${q} is not a tier name: use lower-case letters, digits, _ and -, starting with a letter`],
  [defs.glob, (q) => `${q} is not a pattern: use lower-case letters, digits, ., _, - and * (any run of characters)`],
  [
    policySchema.properties.roles.propertyNames,
    (q) => `${q} is not a role name: use lower-case letters, digits, _ and -, starting with a letter`,
  ],
  [
    defs.role.properties.tiers.items,
    (q) => `${q} is not a tier name: use lower-case letters, digits, _ and -, starting with a letter`,
  ],
  [
    defs.member,
    (q) =>
      `${q} is not a member: use user:<id>, group:<name>, key:<API key name>, cert:<CN>, service:<client id>, ` +
      'sub:<issuer>#<sub>, or * for every authenticated principal',
  ],
  [issuerProps.clock_skew, (q) => `${q} is not a duration (30s, 2m)`],
  [issuerProps.actor_claim, (q) => `${q} is not a claim name`],
  [issuerProps.groups_claim, (q) => `${q} is not a claim name`],
  [issuerProps.service_claim, (q) => `${q} is not a claim name`],
  [issuerProps.require.propertyNames, (q) => `${q} is not a claim name`],
  [issuerProps.service_clients.items, (q) => `${q} is not a client id`],
]);

/** Values of an `enum`, and how to say that a value is not one of them. */
const ENUMS = new Map<unknown, (q: string, v: unknown) => string>([
  [
    defs.action,
    (q, v) => `${q} is not an action (${hint(v, ROLE_ACTIONS)}allowed: ${ROLE_ACTIONS.join(', ')}; vouching is given by vouch)`,
  ],
  [
    defs.algorithm,
    (q, v) =>
      typeof v === 'string' && (v.toLowerCase() === 'none' || /^HS[0-9]*$/i.test(v))
        ? `${q} is refused: tokens must be signed with the issuer's private key, so neither "none" nor the ` +
          `shared-secret HMAC algorithms (HS*) are accepted; use ${JWS_ALGORITHMS.join(', ')}`
        : `${q} is not a supported JWS algorithm (${hint(v, JWS_ALGORITHMS)}supported: ${JWS_ALGORITHMS.join(', ')})`,
  ],
]);

function hint(v: unknown, allowed: readonly string[]): string {
  if (typeof v !== 'string') return '';
  const near = allowed.find((a) => a.toLowerCase() === v.toLowerCase() || editDistance(a, v) <= 2);
  return near ? `did you mean ${near}? ` : '';
}

const REQUIRED: Record<string, string> = {
  version: 'missing: a policy file starts with "version: 1"',
  name: 'missing: every tier needs a name',
  keep: 'missing: every tier needs keep (a duration such as 90d, or forever)',
  default: 'missing: name the tier for events that no tier matches',
  tiers: 'missing: list at least one tier',
  actions: 'missing: match needs actions (globs such as k8s.*; * matches every action)',
  issuer: 'missing: the exact iss value of its tokens, e.g. https://keycloak.example.com/realms/acme',
  audience: 'missing: the aud value (or a list of them) its tokens carry for this server',
};

const TYPES: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  boolean: 'true or false',
  integer: 'an integer',
  number: 'a number',
};

function typeNames(t: unknown): string {
  const list = Array.isArray(t) ? t.map(String) : [String(t)];
  return list.map((x) => TYPES[x] ?? x).join(' or ');
}

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

function explain(e: ErrorObject, data: unknown): Finding | undefined {
  const segs = pointerSegments(e.instancePath);
  const p = e.params as Record<string, unknown>;
  if (e.propertyName !== undefined) {
    // A key that is not a valid name (propertyNames); ajv also adds a summary error, skipped below.
    const at = [...segs, e.propertyName];
    const q = JSON.stringify(e.propertyName);
    if (e.keyword === 'pattern') {
      const shape = SHAPES.get(e.parentSchema);
      return { segs: at, atKey: true, message: shape ? shape(q) : `${q} ${e.message}` };
    }
    if (e.keyword === 'maxLength') return { segs: at, atKey: true, message: `is longer than ${p.limit} characters` };
    if (e.keyword === 'minLength') return { segs: at, atKey: true, message: 'must not be empty' };
    return { segs: at, atKey: true, message: e.message ?? 'is not a valid name' };
  }
  switch (e.keyword) {
    case 'propertyNames':
      return undefined;
    case 'enum': {
      const say = ENUMS.get(e.parentSchema);
      const q = JSON.stringify(e.data);
      if (say) return { segs, message: say(q, e.data) };
      return { segs, message: `${q} is not one of ${(p.allowedValues as unknown[]).map(String).join(', ')}` };
    }
    case 'uniqueItems': {
      const later = Number(p.i);
      const earlier = Number(p.j);
      const item = (e.data as unknown[])[later];
      return { segs: [...segs, String(later)], message: `${JSON.stringify(item)} is listed twice (also item ${earlier + 1})` };
    }
    case 'maxProperties':
      return { segs, message: `has more than ${p.limit} entries` };
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
      return { segs, message: `must be ${typeNames(p.type)}, not ${what(e.data)}` };
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
      if (segs.at(-1) === 'audience') return { segs, message: 'list at least one audience' };
      if (segs.at(-1) === 'algorithms') return { segs, message: 'list at least one algorithm' };
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

const ROLE_NAME_RE = new RegExp(ROLE_NAME_PATTERN);
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Why `text` is not an acceptable issuer or JWKS URL, or undefined. */
function urlProblem(text: string, isIssuer: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `${JSON.stringify(text)} is not a URL`;
  }
  const local = url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname);
  if (url.protocol !== 'https:' && !local) {
    return `${JSON.stringify(text)} must use https (plain http only for 127.0.0.1, localhost or [::1])`;
  }
  if (url.username || url.password) return `${JSON.stringify(text)} must not carry a user name or password`;
  if (isIssuer && (url.search || url.hash)) return `${JSON.stringify(text)}: an issuer has no query or fragment`;
  return undefined;
}

/** Issuer URLs on https and listed once, JWKS URLs on https, clock skew at most 5m. */
function identityFindings(data: unknown, locate: Locator): Finding[] {
  const out: Finding[] = [];
  if (!isObject(data) || !isObject(data.identity) || !Array.isArray(data.identity.issuers)) return out;
  const seen = new Map<string, number>();
  data.identity.issuers.forEach((i, n) => {
    if (!isObject(i)) return;
    const base = ['identity', 'issuers', String(n)];
    if (typeof i.issuer === 'string' && i.issuer !== '') {
      const problem = urlProblem(i.issuer, true);
      if (problem) out.push({ segs: [...base, 'issuer'], message: problem });
      const first = seen.get(i.issuer);
      if (first === undefined) seen.set(i.issuer, n);
      else {
        const was = locate.find(['identity', 'issuers', String(first), 'issuer']);
        out.push({
          segs: [...base, 'issuer'],
          message: `issuer ${i.issuer} is listed twice (also ${was.path} at line ${was.line})`,
        });
      }
    }
    if (typeof i.jwks_uri === 'string' && i.jwks_uri !== '') {
      const problem = urlProblem(i.jwks_uri, false);
      if (problem) out.push({ segs: [...base, 'jwks_uri'], message: problem });
    }
    if (typeof i.clock_skew === 'string' && isDuration(i.clock_skew)) {
      const ms = durationMs(i.clock_skew, [...base, 'clock_skew'], (f) => out.push(f));
      if (ms !== undefined && ms > MAX_CLOCK_SKEW_MS) {
        out.push({ segs: [...base, 'clock_skew'], message: `${i.clock_skew} is too long: tolerate at most 5m of clock skew` });
      }
    }
  });
  return out;
}

/** `sub:` members name a configured issuer and a subject: `sub:<issuer>#<sub>`. */
function memberFindings(data: unknown): Finding[] {
  const out: Finding[] = [];
  if (!isObject(data) || !isObject(data.roles)) return out;
  const issuers = new Set<string>();
  if (isObject(data.identity) && Array.isArray(data.identity.issuers)) {
    for (const i of data.identity.issuers) if (isObject(i) && typeof i.issuer === 'string') issuers.add(i.issuer);
  }
  for (const [name, r] of Object.entries(data.roles)) {
    if (!isObject(r) || !Array.isArray(r.members)) continue;
    r.members.forEach((m, n) => {
      if (typeof m !== 'string' || !m.startsWith('sub:')) return;
      const { issuer, sub } = splitSubMember(m);
      const segs = ['roles', name, 'members', String(n)];
      if (issuer === '' || sub === '') {
        out.push({
          segs,
          message: `${JSON.stringify(m)} is not sub:<issuer>#<sub> (e.g. sub:https://idp.example.com#248289761001)`,
        });
      } else if (!issuers.has(issuer)) {
        const known = [...issuers];
        out.push({
          segs,
          message: `${JSON.stringify(m)} names issuer ${issuer}, which is not one of identity.issuers (${known.length > 0 ? known.join(', ') : 'none'}): it would never match`,
        });
      }
    });
  }
  return out;
}

/**
 * The issuer and subject of a `sub:<issuer>#<sub>` member: split at the first `#`, since an issuer
 * has no fragment and a subject may hold any character.
 */
export function splitSubMember(member: string): { issuer: string; sub: string } {
  const rest = member.slice('sub:'.length);
  const hash = rest.indexOf('#');
  return hash < 0 ? { issuer: '', sub: '' } : { issuer: rest.slice(0, hash), sub: rest.slice(hash + 1) };
}

/** Member kinds whose ids come from OIDC tokens, which the verifier normalises to NFC. */
const OIDC_MEMBER = /^(?:user|group|service|sub):/;

/** A member as compared with principals: OIDC ids in NFC, so "josé" in either spelling is one member. */
export function normalizeMember(member: string): string {
  return OIDC_MEMBER.test(member) ? member.normalize('NFC') : member;
}

/** The tier names of a file, or null when its retention section is not valid enough to tell. */
function tierNames(data: Record<string, unknown>): string[] | null {
  if (data.retention === undefined) return ['default'];
  if (!isObject(data.retention) || !Array.isArray(data.retention.tiers)) return null;
  const names: string[] = [];
  for (const t of data.retention.tiers) {
    if (!isObject(t) || typeof t.name !== 'string' || !TIER_NAME_RE.test(t.name)) return null;
    names.push(t.name);
  }
  return names;
}

const ENTRY_ACTIONS: readonly string[] = ['read', 'search', 'export'];

/**
 * The names of tiers stored in the clear. Their leaves are public (the tiles under /log/ and
 * /v1/entries are served to anyone, as verification needs), so a role's `tiers` can hide them from
 * nobody: a policy restricting a role's tiers must encrypt every tier, or it promises what it cannot keep.
 */
function unencryptedTiers(data: Record<string, unknown>): string[] {
  if (!isObject(data.retention) || !Array.isArray(data.retention.tiers)) return [];
  return data.retention.tiers.flatMap((t) => (isObject(t) && t.encrypt === false && typeof t.name === 'string' ? [t.name] : []));
}

/** Roles grant something, name existing tiers, and restrict tiers only when they read. */
function roleFindings(data: unknown): Finding[] {
  const out: Finding[] = [];
  if (!isObject(data) || !isObject(data.roles)) return out;
  const tiers = tierNames(data);
  const unencrypted = unencryptedTiers(data);
  for (const [name, r] of Object.entries(data.roles)) {
    if (!ROLE_NAME_RE.test(name) || !isObject(r)) continue;
    const base = ['roles', name];
    const actions = Array.isArray(r.actions) ? r.actions : [];
    const vouch = Array.isArray(r.vouch) ? r.vouch : [];
    if (r.actions !== undefined && !Array.isArray(r.actions)) continue;
    if (actions.length === 0 && vouch.length === 0) {
      out.push({
        segs: base,
        atKey: true,
        message: `the role grants nothing: list its actions (${ROLE_ACTIONS.join(', ')}) or the events it may vouch for`,
      });
    }
    if (!Array.isArray(r.tiers)) continue;
    if (!actions.some((a) => ENTRY_ACTIONS.includes(a as string))) {
      out.push({
        segs: [...base, 'tiers'],
        atKey: true,
        message: 'tiers restricts read, search and export, which this role does not allow',
      });
    }
    for (const t of unencrypted) {
      out.push({
        segs: [...base, 'tiers'],
        atKey: true,
        message:
          `role "${name}" restricts the tiers it reads, but tier "${t}" is unencrypted (encrypt: false): its events are ` +
          'public, readable by anyone without credentials under /log/ and /v1/entries, so no role can restrict them; ' +
          `encrypt tier "${t}" (remove "encrypt: false") while any role restricts tiers`,
      });
    }
    if (tiers) {
      r.tiers.forEach((t, i) => {
        if (typeof t === 'string' && TIER_NAME_RE.test(t) && !tiers.includes(t)) {
          out.push({
            segs: [...base, 'tiers', String(i)],
            message: `${JSON.stringify(t)} is not one of the tiers (${tiers.join(', ')})`,
          });
        }
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parsing

function problemsError(problems: PolicyProblem[]): SteleError {
  const lines = problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.path ? `${p.path}: ` : ''}${p.message}`);
  return new SteleError('bad_policy', lines.join('\n'), { detail: { problems } });
}

const YAML_MESSAGES: Partial<Record<string, string>> = {
  MULTIPLE_DOCS: 'the file holds more than one YAML document (a second "---"); a policy is one document',
  DUPLICATE_KEY: 'duplicate key: keys in a mapping must be unique',
};

/**
 * Checks the YAML text and, when given, the companion Cedar file: every problem of both is reported
 * together, the YAML file's first. The Cedar file is validated against the schema of the policy it
 * accompanies (its tier and role names), so when the YAML is invalid only its syntax is checked.
 */
function compile(
  text: string,
  file: string,
  sha256: string,
  cedar: CedarFile | null,
  queryProblem?: (q: string) => string | null,
): Policy {
  const { problems, data } = checkYaml(text, file, queryProblem);
  if (problems.length > 0) {
    if (cedar) problems.push(...checkCedarSyntax(cedar.text, cedar.source));
    throw problemsError(problems);
  }
  const policy = build(data as PolicyFile, file, sha256, cedar);
  if (cedar) {
    const cedarProblems = checkCedarText(cedar.text, cedar.source, policy).problems;
    if (cedarProblems.length > 0) throw problemsError(cedarProblems);
  }
  return policy;
}

/** The problems of a policy file's text (sorted by position), and its value when it is YAML at all. */
function checkYaml(
  text: string,
  file: string,
  queryProblem?: (q: string) => string | null,
): { problems: PolicyProblem[]; data: unknown } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const locate = new Locator(doc, lines);
  const problems: PolicyProblem[] = [];

  // A file that is not YAML gets only its syntax errors: what follows them would be guesswork.
  for (const e of doc.errors) {
    const pos = locate.position(e.pos[0]);
    problems.push({ file, ...pos, path: '', message: `YAML: ${YAML_MESSAGES[e.code] ?? e.message}` });
  }
  if (problems.length > 0) return { problems, data: undefined };
  for (const w of doc.warnings) {
    const pos = locate.position(w.pos[0]);
    problems.push({ file, ...pos, path: '', message: `YAML: ${w.message}` });
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // Alias expansion bombs ("Excessive alias count") and the like.
    return { problems: [{ file, line: 1, column: 1, path: '', message: `YAML: ${(err as Error).message}` }], data: undefined };
  }

  const findings: Finding[] = [];
  if (!validate(data)) {
    for (const e of validate.errors ?? []) {
      const f = explain(e, data);
      if (f) findings.push(f);
    }
  }
  findings.push(...semanticFindings(data, locate));
  findings.push(...identityFindings(data, locate));
  findings.push(...roleFindings(data));
  findings.push(...memberFindings(data));
  findings.push(...alertFindings(data, queryProblem));

  const seen = new Set<string>();
  for (const f of findings) {
    const { path, line, column } = locate.find(f.segs, f.atKey);
    const key = `${line}:${column}:${path}:${f.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push({ file, line, column, path, message: f.message });
  }
  problems.sort((a, b) => a.line - b.line || a.column - b.column);
  return { problems, data };
}

interface IssuerFile {
  issuer: string;
  audience: string | string[];
  actor_claim?: string;
  require_email_verified?: boolean;
  require_at_jwt?: boolean;
  service_clients?: string[];
  groups_claim?: string;
  service_claim?: string;
  algorithms?: string[];
  clock_skew?: string;
  require?: Record<string, string>;
  jwks_uri?: string;
  console?: { client_id: string; label?: string; scopes?: string[]; params?: Record<string, string> };
}

interface RoleFile {
  members?: string[];
  actions?: RoleAction[];
  tiers?: string[];
  vouch?: string[];
}

/** The shape of a file that passed every check. */
interface PolicyFile {
  version: 1;
  retention?: {
    schedule?: string;
    default: string;
    tiers: { name: string; keep: string; encrypt?: boolean; match?: { actions: string[]; sources?: string[] } }[];
  };
  identity?: { issuers?: IssuerFile[] };
  roles?: Record<string, RoleFile>;
  alerts?: {
    notifiers?: Record<string, { url: string; format?: 'json' | 'slack'; secret_env?: string }>;
    rules?: Record<
      string,
      { query: string; window?: string; threshold?: number; group_by?: AlertRule['groupBy']; except?: string[]; notify: string[] }
    >;
  };
}

/** An alert's window when it names none. */
const DEFAULT_ALERT_WINDOW_MS = 3_600_000;

function buildAlerts(a: PolicyFile['alerts']): AlertPolicy {
  return {
    notifiers: Object.entries(a?.notifiers ?? {}).map(([name, n]) => ({
      name,
      url: n.url,
      format: n.format ?? 'json',
      secretEnv: n.secret_env ?? null,
    })),
    rules: Object.entries(a?.rules ?? {}).map(([name, r]) => ({
      name,
      query: r.query,
      windowMs: r.window === undefined ? DEFAULT_ALERT_WINDOW_MS : parseDuration(r.window),
      threshold: r.threshold ?? 0,
      groupBy: r.group_by ?? null,
      except: (r.except ?? []).map(normalizeMember),
      notify: [...r.notify],
    })),
  };
}

/**
 * The alerts' problems a schema cannot see: a notifier that does not exist, and (with a checker
 * from the query language's layer) a query that does not parse.
 */
function alertFindings(data: unknown, queryProblem?: (q: string) => string | null): Finding[] {
  const out: Finding[] = [];
  if (!isObject(data) || !isObject(data.alerts)) return out;
  const notifiers = isObject(data.alerts.notifiers) ? Object.keys(data.alerts.notifiers) : [];
  const rules = isObject(data.alerts.rules) ? data.alerts.rules : {};
  for (const [name, r] of Object.entries(rules)) {
    if (!isObject(r)) continue;
    if (Array.isArray(r.notify))
      r.notify.forEach((n, i) => {
        if (typeof n === 'string' && !notifiers.includes(n))
          out.push({
            segs: ['alerts', 'rules', name, 'notify', String(i)],
            message: `no notifier named ${JSON.stringify(n)} in alerts.notifiers`,
          });
      });
    if (typeof r.query === 'string' && queryProblem) {
      const p = queryProblem(r.query);
      if (p) out.push({ segs: ['alerts', 'rules', name, 'query'], message: `the query does not parse: ${p}` });
    }
  }
  return out;
}

function defaultRetention(): RetentionPolicy {
  return {
    scheduleMs: DEFAULT_SCHEDULE_MS,
    defaultTier: 'default',
    tiers: [{ name: 'default', keepMs: null, encrypt: true, actions: [], sources: [] }],
  };
}

/**
 * The roles of a policy file without `roles`: admin and writer, held through API keys' own roles.
 * Both vouch for every action, as every bearer token could before roles existed: a key (a git
 * hook, a webhook) writes what people did, with actor.verified false.
 */
export function defaultRoles(): Role[] {
  return [
    { name: 'admin', members: [], actions: [...ROLE_ACTIONS], tiers: [], vouch: ['*'] },
    { name: 'writer', members: [], actions: ['append'], tiers: [], vouch: ['*'] },
  ];
}

function buildIssuer(i: IssuerFile): IssuerConfig {
  return {
    issuer: i.issuer,
    audience: typeof i.audience === 'string' ? [i.audience] : [...i.audience],
    actorClaim: i.actor_claim ?? 'email',
    // Absent options keep the verifier's defaults (email must be verified; typ JWT or at+jwt; services by sub).
    ...(i.require_email_verified === undefined ? {} : { requireEmailVerified: i.require_email_verified }),
    ...(i.require_at_jwt === undefined ? {} : { requireAtJwt: i.require_at_jwt }),
    ...(i.service_clients === undefined ? {} : { serviceClients: i.service_clients.map((c) => c.normalize('NFC')) }),
    groupsClaim: i.groups_claim ?? 'groups',
    serviceClaim: i.service_claim ?? 'client_id',
    algorithms: [...(i.algorithms ?? DEFAULT_JWS_ALGORITHMS)],
    clockSkewS: (i.clock_skew === undefined ? DEFAULT_CLOCK_SKEW_MS : parseDuration(i.clock_skew)) / 1000,
    require: { ...(i.require ?? {}) },
    ...(i.jwks_uri === undefined ? {} : { jwksUri: i.jwks_uri }),
    ...(i.console === undefined
      ? {}
      : {
          console: {
            clientId: i.console.client_id,
            label: i.console.label ?? i.issuer,
            scopes: [...(i.console.scopes ?? ['openid', 'email', 'groups'])],
            params: { ...(i.console.params ?? {}) },
          },
        }),
  };
}

function build(f: PolicyFile, source: string, sha256: string, cedar: CedarFile | null): Policy {
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
  const identity: IdentityPolicy = { issuers: (f.identity?.issuers ?? []).map(buildIssuer) };
  const roles: Role[] = f.roles
    ? Object.entries(f.roles).map(([name, r]) => ({
        name,
        members: [...new Set((r.members ?? []).map(normalizeMember))],
        actions: [...(r.actions ?? [])],
        tiers: [...(r.tiers ?? [])],
        vouch: [...(r.vouch ?? [])],
      }))
    : defaultRoles();
  return {
    version: 1,
    source,
    sha256,
    retention,
    identity,
    roles,
    cedar: cedar ? { ...cedar } : null,
    alerts: buildAlerts(f.alerts),
  };
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Parses and checks policy text; `file` names it in problems and becomes `Policy.source`.
 * `sha256` is of the text's UTF-8 bytes. `opts.cedar` is the text of a companion Cedar file and the
 * name to report its problems under (`Policy.cedar.sha256` is of its UTF-8 bytes). Throws
 * SteleError 'bad_policy' (400) listing every problem one per line, with
 * `detail.problems: PolicyProblem[]`.
 */
export function parsePolicy(
  text: string,
  file: string,
  opts: { cedar?: { text: string; source: string }; queryProblem?: (q: string) => string | null } = {},
): Policy {
  const c = opts.cedar;
  const cedar = c ? { source: c.source, sha256: sha256Hex(Buffer.from(c.text, 'utf8')), text: c.text } : null;
  return compile(text, file, sha256Hex(Buffer.from(text, 'utf8')), cedar, opts.queryProblem);
}

/**
 * Reads and checks a policy file; `Policy.sha256` is of its bytes as stored. The companion Cedar
 * file is `opts.cedar` when given (it must then exist), else `stele.cedar` in the same directory
 * when there is one. Throws SteleError 'policy_missing' (404) when there is no policy file (the
 * server then uses DEFAULT_POLICY), 'bad_policy' (400) for an unreadable or invalid one, or an
 * unreadable or invalid Cedar file.
 */
export function loadPolicyFile(path: string, opts: { cedar?: string; queryProblem?: (q: string) => string | null } = {}): Policy {
  const yaml = readText(path, 'policy');
  if (!yaml) throw new SteleError('policy_missing', `${path}: no such policy file`, { detail: { file: path } });
  const cedarPath = opts.cedar ?? join(dirname(path), CEDAR_FILE_NAME);
  const cedar = readText(cedarPath, 'Cedar');
  if (!cedar && opts.cedar !== undefined) {
    throw problemsError([{ file: cedarPath, line: 1, column: 1, path: '', message: 'no such Cedar file' }]);
  }
  const cedarFile = cedar ? { source: cedarPath, sha256: sha256Hex(cedar.bytes), text: cedar.text } : null;
  return compile(yaml.text, path, sha256Hex(yaml.bytes), cedarFile, opts.queryProblem);
}

/** A file's bytes and UTF-8 text, or null when it does not exist; bad_policy when it cannot be read as text. */
function readText(path: string, what: 'policy' | 'Cedar'): { bytes: Buffer; text: string } | null {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'EISDIR' || code === 'EACCES' || code === 'EPERM' || code === 'ENOTDIR') {
      const message = `cannot read the ${what} file (${code})`;
      throw problemsError([{ file: path, line: 1, column: 1, path: '', message }]);
    }
    throw err;
  }
  if (bytes.length > MAX_POLICY_BYTES) {
    throw problemsError([{ file: path, line: 1, column: 1, path: '', message: `larger than ${MAX_POLICY_BYTES} bytes` }]);
  }
  try {
    return { bytes, text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
  } catch {
    throw problemsError([{ file: path, line: 1, column: 1, path: '', message: 'not UTF-8 text' }]);
  }
}

// ---------------------------------------------------------------------------------------------
// Built-in policies

/** The policy used when there is no policy file: its `sha256` is of this text. */
export const DEFAULT_POLICY_YAML = `# The built-in policy, used when there is no stele.policy.yaml: every event is kept forever, encrypted;
# API keys act through the roles they were created with (stele keys create --role writer); no OIDC issuer.
version: 1
retention:
  default: default
  tiers:
    - name: default
      keep: forever
roles:
  admin:
    actions: [append, read, search, export, erase, hold, admin, metrics]
    vouch: ["*"]
  writer:
    actions: [append]
    vouch: ["*"]
`;

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** One tier `default`, kept forever, encrypted; roles admin and writer without members. Frozen; `source` is "built-in". */
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

# Who may sign in with an OpenID Connect token, besides API keys and client certificates. Tokens are
# checked against the issuer's keys (found through its discovery document, or jwks_uri).
# identity:
#   issuers:
#     - issuer: https://keycloak.example.com/realms/acme   # the exact iss of its tokens (https)
#       audience: stele                                    # aud: a string or a list
#       # actor_claim: email       # identifies a person: user:<value> (default email, only with email_verified: true)
#       # require_email_verified: true  # false trusts unverified addresses: anyone could claim anyone's
#       #                               # address at the IdP and hold their roles
#       # require_at_jwt: false    # true: every token must have the header typ at+jwt (RFC 9068)
#       # groups_claim: groups     # the user's groups: group:<name> (default groups)
#       # service_claim: client_id # a token without the actor claim is a service: service:<value>, when its
#       # service_clients: [ci]    # sub is its client id, or (when listed) only these clients
#       # algorithms: [RS256, ES256]   # default RS256, PS256, ES256, EdDSA; none and HS* are refused
#       # clock_skew: 30s          # at most 5m
#       # require: { tid: "..." }  # claims that must have exactly these values
#       # console: { client_id: stele-console, label: Acme SSO }  # sign-in to the console at / (a
#       #                          # public client with PKCE; redirect URI https://<this server>/)

# Who may do what. A principal holds the roles that list it in members, and the roles of its credential
# (an API key made with "stele keys create --role writer"). Members: user:<id>, group:<name>,
# key:<API key name>, cert:<client certificate CN>, service:<client id>, sub:<issuer>#<sub> (one OIDC
# account of one issuer), or * (every authenticated principal).
# Actions: append, read, search, export, erase, hold, admin, metrics (GET /metrics). Access is decided by Cedar: each role becomes
# permit policies, and a stele.cedar file beside this one may add permits and forbids (stele policy check
# --show-cedar prints them all).
# vouch: action globs of the events a member may write with someone else as the actor (a git hook writing
# what a developer did); such events keep actor.verified false. Without vouch, a member may only write
# events whose actor is itself.
roles:
  admin:
    actions: [append, read, search, export, erase, hold, admin, metrics]
    vouch: ["*"]
    # members: [group:sre, user:root@example.com]
  writer:
    actions: [append]
    vouch: ["*"]
  # monitoring:                 # Prometheus: stele keys create --name prometheus --role monitoring
  #   actions: [metrics]
  # auditor:
  #   members: [group:audit]
  #   actions: [read, search, export]
  #   tiers: [compliance]          # read, search and export only entries of these tiers
  # k8s:
  #   members: [key:k8s-webhook]
  #   actions: [append]
  #   vouch: ["k8s.*"]             # may write k8s.* events whose actor is someone else
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
