/**
 * The Cedar side of policy as code: the Cedar schema of Stele's principals, actions and resources,
 * the permit policies compiled from `roles`, and the checking of a companion `stele.cedar` file
 * against that schema (strict validation), with its problems at file:line:column.
 *
 * The Cedar engine (@cedar-policy/cedar-wasm, ~4 MB of WebAssembly, ~100 ms to instantiate) is
 * loaded on first use, so that importing the policy module (the CLI, ingest workers) stays cheap.
 */

import { createRequire } from 'node:module';
import { basename } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import type * as CedarWasm from '@cedar-policy/cedar-wasm/nodejs';
import type { Policy, PolicyProblem, Role } from './types.js';

export type Cedar = typeof CedarWasm;

let engine: Cedar | undefined;

/**
 * The Cedar engine (its Node build), instantiated on first use.
 *
 * Before loading it, TurboFan's inlining of JS-to-WebAssembly calls is turned off: with it, Node 20
 * (V8 11.3) aborts the whole process ("Fatal error: unreachable code" in
 * Deoptimizer::DoComputeBuiltinContinuation) when optimised code that inlined a call into Cedar is
 * deoptimised during that call, which a few thousand decisions with changing attributes reliably
 * provoke. The flag is read when a function is optimised, so setting it before any Cedar call is
 * optimised takes effect; it costs nanoseconds on calls that take tens of microseconds.
 */
export function cedar(): Cedar {
  if (!engine) {
    setFlagsFromString('--no-turbo-inline-js-wasm-calls');
    engine = createRequire(import.meta.url)('@cedar-policy/cedar-wasm/nodejs') as Cedar;
  }
  return engine;
}

/** The Cedar namespace of every Stele type: Stele::User, Stele::Action::"read", ... */
export const NAMESPACE = 'Stele';

/** The one `Stele::Log` entity: the whole log. */
export const LOG_ID = 'log';

/** A policy with the id Stele gives it (its `@id` annotation, or `role:<name>:<action>`, or `<file>:<line>`). */
export interface CompiledPolicy {
  id: string;
  text: string;
}

/** Ids of the policies compiled from roles start with this; a stele.cedar policy may not use it. */
export const ROLE_POLICY_PREFIX = 'role:';

const PRINCIPALS = '[User, Service, ApiKey, Cert]';

/**
 * The Cedar schema for a policy: its roles and tiers are enumerated entity types, so a policy naming
 * a role or tier that does not exist (`Stele::Tier::"complience"`) is refused by validation.
 */
export function cedarSchemaText(policy: Pick<Policy, 'retention' | 'roles'>): string {
  const list = (names: string[]) => names.map((n) => JSON.stringify(n)).join(', ');
  const roles = policy.roles.map((r) => r.name);
  const tiers = policy.retention.tiers.map((t) => t.name);
  return `namespace ${NAMESPACE} {
  // The roles of stele.policy.yaml. A principal is in a role through its members (directly or through
  // a group) or through its credential (an API key's --role).
  entity Role${roles.length > 0 ? ` enum [${list(roles)}]` : ''};
  // Groups from an OIDC issuer's groups claim.
  entity Group in [Role];
  // A person, from an OIDC token with the actor claim. subject_hash: HMAC of id under the log's
  // subject pepper, the same hash as an event's subject (to match entries about this person).
  entity User in [Group, Role] { id: String, issuer: String, subject_hash: String };
  // A machine identity from an OIDC token without the actor claim (id: the client id).
  entity Service in [Group, Role] { id: String, issuer: String };
  // A Stele API key (id: its name).
  entity ApiKey in [Group, Role] { id: String };
  // A TLS client certificate (id: its subject CN; issuer: the CA's subject).
  entity Cert in [Group, Role] { id: String, issuer: String };

  // The retention tiers of stele.policy.yaml.
  entity Tier enum [${list(tiers)}];
  // The whole log: the resource of search, export, erase, hold and admin as such.
  entity Log enum [${JSON.stringify(LOG_ID)}];
  // A stored entry, as read, searched or exported. principal: who wrote it (the ingest principal);
  // subject_hash: its subject's hash, "" when it has none.
  entity Entry in [Tier] {
    tier: String, action: String, source: String, actor: String, actor_type: String,
    outcome: String, principal: String, subject_hash: String,
  };
  // An event being appended (source: its source.kind; actor: its actor.id).
  entity Event { action: String, source: String, actor: String };

  // Write an event; vouch: write one whose actor is not the principal itself.
  action append, vouch appliesTo { principal: ${PRINCIPALS}, resource: [Event] };
  // On Log: may do it at all; on Entry: may see that entry.
  action read, search, export appliesTo { principal: ${PRINCIPALS}, resource: [Log, Entry] };
  action erase, hold, admin, metrics appliesTo { principal: ${PRINCIPALS}, resource: [Log] };
}
`;
}

const TEMPLATES = 'templates (policies with ?principal or ?resource slots) are not supported: write static policies';

const TIERED: ReadonlySet<string> = new Set(['read', 'search', 'export']);

/**
 * The permit policies of the roles: one per role and action, `@id("role:<name>:<action>")`, and
 * `role:<name>:vouch` for its vouch globs (Cedar's `like`, whose `*` is the glob's `*`; the other
 * characters a glob may hold, [a-z0-9_.-], stand for themselves in both).
 */
export function rolePolicies(roles: readonly Role[]): CompiledPolicy[] {
  const out: CompiledPolicy[] = [];
  for (const r of roles) {
    const who = `principal in ${NAMESPACE}::Role::${JSON.stringify(r.name)}`;
    for (const a of r.actions) {
      const id = `${ROLE_POLICY_PREFIX}${r.name}:${a}`;
      const head = `@id(${JSON.stringify(id)})\npermit(${who}, action == ${NAMESPACE}::Action::${JSON.stringify(a)}, resource)`;
      if (TIERED.has(a) && r.tiers.length > 0) {
        const tiers = r.tiers.map((t) => `${NAMESPACE}::Tier::${JSON.stringify(t)}`).join(', ');
        out.push({ id, text: `${head}\nwhen { resource is ${NAMESPACE}::Log || resource in [${tiers}] };` });
      } else out.push({ id, text: `${head};` });
    }
    if (r.vouch.length > 0) {
      const id = `${ROLE_POLICY_PREFIX}${r.name}:vouch`;
      const like = r.vouch.map((g) => `resource.action like ${JSON.stringify(g)}`).join(' || ');
      out.push({
        id,
        text:
          `@id(${JSON.stringify(id)})\npermit(${who}, action == ${NAMESPACE}::Action::"vouch", resource is ${NAMESPACE}::Event)\n` +
          `when { ${like} };`,
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Problems in a Cedar file

/** Turns Cedar's byte offsets into 1-based line and column (in characters) of `text`. */
class Positions {
  private readonly bytes: Buffer;
  constructor(text: string) {
    this.bytes = Buffer.from(text, 'utf8');
  }
  at(byteOffset: number): { line: number; column: number } {
    const before = this.bytes.subarray(0, Math.max(0, Math.min(byteOffset, this.bytes.length))).toString('utf8');
    const nl = before.lastIndexOf('\n');
    const line = before.split('\n').length;
    return { line, column: [...before.slice(nl + 1)].length + 1 };
  }
}

/** A BOM is not Cedar: it is dropped (columns on line 1 are counted without it, as editors do). */
function withoutBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function problemsOf(errors: readonly CedarWasm.DetailedError[], file: string, pos: Positions): PolicyProblem[] {
  const out: PolicyProblem[] = [];
  const add = (e: CedarWasm.DetailedError) => {
    const loc = e.sourceLocations?.[0];
    const { line, column } = loc ? pos.at(loc.start) : { line: 1, column: 1 };
    let message = e.message
      .replace(/^failed to parse policies from string: /, '')
      .replace(/^static policy set includes a template$/, TEMPLATES)
      .replace(/^for policy `[^`]*`[,:]? ?/, '')
      .replace(/^error parsing policy set: /, '');
    if (loc?.label) message += `: ${loc.label}`;
    if (e.help) message += `; ${e.help}`;
    out.push({ file, line, column, path: '', message });
    for (const r of e.related ?? []) add(r);
  };
  for (const e of errors) add(e);
  return out;
}

function sortProblems(problems: PolicyProblem[]): PolicyProblem[] {
  const seen = new Set<string>();
  return problems
    .filter((p) => {
      const key = `${p.line}:${p.column}:${p.message}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .sort((a, b) => a.line - b.line || a.column - b.column);
}

const NO_ACTION = /unable to find an applicable action/;

/**
 * The validation errors and warnings worth showing, each a problem: a policy's warnings (an action
 * that cannot apply to the resource, an impossible condition: dead policies, never what the
 * author meant) only when it has no errors, and "no applicable action" rather than the "impossible"
 * it implies.
 */
function relevant(
  errors: readonly CedarWasm.ValidationError[],
  warnings: readonly CedarWasm.ValidationError[],
): CedarWasm.DetailedError[] {
  const withErrors = new Set(errors.map((e) => e.policyId));
  const out = errors.map((e) => e.error);
  const byPolicy = new Map<string, CedarWasm.ValidationError[]>();
  for (const w of warnings) {
    if (!withErrors.has(w.policyId)) byPolicy.set(w.policyId, [...(byPolicy.get(w.policyId) ?? []), w]);
  }
  for (const list of byPolicy.values()) {
    const noAction = list.filter((w) => NO_ACTION.test(w.error.message));
    out.push(...(noAction.length > 0 ? noAction : list).map((w) => w.error));
  }
  return out;
}

/** The syntax problems of a Cedar file (for when the policy it accompanies is itself invalid). */
export function checkCedarSyntax(text: string, file: string): PolicyProblem[] {
  const source = withoutBom(text);
  const answer = cedar().checkParsePolicySet({ staticPolicies: source });
  return answer.type === 'success' ? [] : sortProblems(problemsOf(answer.errors, file, new Positions(source)));
}

/**
 * Checks a Cedar file against the schema of `policy` (strict validation: unknown attributes, types,
 * roles, tiers and actions are refused) and gives each of its policies its id: its `@id` annotation,
 * else `<file name>:<line>`. Templates are refused, and so are ids used twice or starting "role:".
 * A file with problems has no policies.
 */
export function checkCedarText(
  text: string,
  file: string,
  policy: Pick<Policy, 'retention' | 'roles'>,
): { problems: PolicyProblem[]; policies: CompiledPolicy[] } {
  const c = cedar();
  const source = withoutBom(text);
  const pos = new Positions(source);
  const fail = (problems: PolicyProblem[]) => ({ problems: sortProblems(problems), policies: [] });

  const parsed = c.checkParsePolicySet({ staticPolicies: source });
  if (parsed.type === 'failure') return fail(problemsOf(parsed.errors, file, pos));

  const answer = c.validate({
    schema: cedarSchemaText(policy),
    policies: { staticPolicies: source },
    validationSettings: { mode: 'strict' },
  });
  if (answer.type === 'failure') return fail(problemsOf(answer.errors, file, pos));
  const problems = problemsOf(relevant(answer.validationErrors, answer.validationWarnings), file, pos);

  const parts = c.policySetTextToParts(source);
  if (parts.type === 'failure') return fail([...problems, ...problemsOf(parts.errors, file, pos)]);
  if (parts.policy_templates.length > 0) {
    problems.push({
      file,
      line: 1,
      column: 1,
      path: '',
      message: TEMPLATES,
    });
    return fail(problems);
  }

  // Cedar numbers the policies of a text policy0, policy1, ... in file order and lists the parts
  // sorted by that id as a string (policy0, policy1, policy10, policy2, ...): undo that order.
  const n = parts.policies.length;
  const byId = Array.from({ length: n }, (_, i) => `policy${i}`).sort();
  const ordered: string[] = new Array(n);
  byId.forEach((id, k) => {
    ordered[Number(id.slice('policy'.length))] = parts.policies[k] as string;
  });

  const name = basename(file);
  const policies: CompiledPolicy[] = [];
  const ids = new Map<string, number>();
  let cursor = 0;
  for (const part of ordered) {
    const at = source.indexOf(part, cursor);
    if (at >= 0) cursor = at + part.length;
    const { line, column } = at >= 0 ? pos.at(Buffer.byteLength(source.slice(0, at), 'utf8')) : { line: 1, column: 1 };
    const json = c.policyToJson(part);
    const annotated = json.type === 'success' ? json.json.annotations?.id : undefined;
    const id = annotated ?? `${name}:${line}`;
    if (annotated?.startsWith(ROLE_POLICY_PREFIX)) {
      problems.push({
        file,
        line,
        column,
        path: '',
        message: `@id(${JSON.stringify(annotated)}): ids starting "${ROLE_POLICY_PREFIX}" are reserved for the policies compiled from roles`,
      });
    } else if (annotated !== undefined && annotated.trim() === '') {
      problems.push({ file, line, column, path: '', message: '@id("") is empty: name the policy, or leave @id out' });
    } else if (ids.has(id)) {
      problems.push({
        file,
        line,
        column,
        path: '',
        message: `@id(${JSON.stringify(id)}) is used twice (also line ${ids.get(id)})`,
      });
    }
    if (!ids.has(id)) ids.set(id, line);
    policies.push({ id, text: annotated === undefined ? `@id(${JSON.stringify(id)})\n${part}` : part });
  }
  if (problems.length > 0) return fail(problems);
  return { problems: [], policies };
}
