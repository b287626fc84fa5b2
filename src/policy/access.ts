/**
 * Access decisions: who may append, vouch, read, search, export, erase, hold and administer, decided
 * by Cedar (@cedar-policy/cedar-wasm) from the policy's roles (compiled to permit policies, see
 * ./cedar.ts) and the optional stele.cedar beside the policy file.
 *
 * A principal is in the roles whose `members` list it (`user:<id>`, `key:<name>`, `cert:<CN>`,
 * `service:<id>`, `sub:<issuer>#<sub>`, or `*`), the roles of its groups (`group:<name>`, through a Stele::Group entity),
 * and the roles of its credential (`Principal.roles`, an API key's --role). Decisions are memoised
 * per (principal, action, resource attributes the policies read), so exporting a million entries
 * that share a few attribute tuples asks Cedar a few times.
 *
 * Principals of kind `local` (the CLI working on the data directory itself, without a server) are
 * always allowed: whoever can open the data directory can already read its keys and rewrite its
 * files, so a policy could not stop them, only pretend to.
 */
import { createHash } from 'node:crypto';
import type { CedarValueJson, EntityJson, EntityUidJson } from '@cedar-policy/cedar-wasm/nodejs';
import { SteleError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import { subjectHash } from '../keys/subject.js';
import {
  type Cedar,
  type CompiledPolicy,
  cedar,
  cedarSchemaText,
  checkCedarText,
  LOG_ID,
  NAMESPACE,
  rolePolicies,
} from './cedar.js';
import type { Policy, PolicyProblem, RoleAction } from './policy.js';
import { ROLE_ACTIONS } from './schema.js';

/** What may be asked: a role's actions, and `vouch` (submit an event whose actor is someone else). */
export type AccessAction = RoleAction | 'vouch';

export const ACCESS_ACTIONS: readonly AccessAction[] = [...ROLE_ACTIONS, 'vouch'];

/** An entry as read, searched or exported: the attributes Cedar policies may test (all strings). */
export interface EntryResource {
  type: 'Entry';
  /** Its retention tier. */
  tier: string;
  action: string;
  /** Its source.kind. */
  source: string;
  /** Its actor.id. */
  actor: string;
  /** Its actor.type: human, service or ai_agent. */
  actor_type: string;
  /** success, failure or denied. */
  outcome: string;
  /** Who wrote it: the leaf's ingest principal. */
  principal: string;
  /** The hash of its subject (as the key store computes it), "" when it has none. */
  subject_hash: string;
}

/** An event being appended (append, vouch). */
export interface EventResource {
  type: 'Event';
  action: string;
  /** Its source.kind. */
  source: string;
  /** Its actor.id. */
  actor: string;
}

/** What an action is on: the whole log (search, export, erase, hold, admin, and read as such), an event, an entry. */
export type AccessResource = { type: 'Log' } | EventResource | EntryResource;

/** A decision; `policies` are the ids of the policies that determined it (the permits that allowed it, or the forbids that refused it). */
export interface Decision {
  readonly allowed: boolean;
  readonly policies: readonly string[];
  /** Cedar's evaluation errors (a policy that errs is skipped), or why the request was malformed. */
  readonly errors: readonly string[];
}

/** Distinct (principal, action, resource) decisions remembered before the memo starts over. */
export const DECISION_CACHE_LIMIT = 10_000;

/** The resource types each action applies to (the schema's appliesTo). */
const APPLIES: Record<AccessAction, readonly AccessResource['type'][]> = {
  append: ['Event'],
  vouch: ['Event'],
  read: ['Log', 'Entry'],
  search: ['Log', 'Entry'],
  export: ['Log', 'Entry'],
  erase: ['Log'],
  hold: ['Log'],
  admin: ['Log'],
  metrics: ['Log'],
};

const ENTRY_ATTRS = ['tier', 'action', 'source', 'actor', 'actor_type', 'outcome', 'principal', 'subject_hash'] as const;
const EVENT_ATTRS = ['action', 'source', 'actor'] as const;

const ENTITY_TYPE: Record<Exclude<Principal['kind'], 'local'>, string> = {
  user: `${NAMESPACE}::User`,
  service: `${NAMESPACE}::Service`,
  apikey: `${NAMESPACE}::ApiKey`,
  cert: `${NAMESPACE}::Cert`,
};

/** Member prefixes of the policy file → principal kinds. */
const MEMBER_KINDS: Record<string, Principal['kind']> = { user: 'user', key: 'apikey', cert: 'cert', service: 'service' };

/**
 * Whether `p` is what a role-member string names (`user:`, `key:`, `cert:`, `service:`,
 * `sub:<issuer>#<sub>`, `group:`, `*`), by the rule roles use: for alert exceptions.
 */
export function isMember(p: Principal, member: string): boolean {
  if (member === '*') return p.kind !== 'local';
  const colon = member.indexOf(':');
  const prefix = member.slice(0, colon);
  const id = member.slice(colon + 1);
  if (prefix === 'group') return p.groups.includes(id);
  if (prefix === 'sub') return p.method === 'oidc' && `${p.issuer}#${p.sub}` === id;
  return MEMBER_KINDS[prefix] === p.kind && p.id === id;
}

/** A principal as Cedar sees it, computed once per Principal object. */
interface PrincipalInfo {
  /** Unambiguous key of everything that can change a decision about it. */
  key: string;
  uid: EntityUidJson;
  entities: EntityJson[];
}

const DECIDED_LOCAL: Decision = Object.freeze({ allowed: true, policies: Object.freeze(['local']), errors: Object.freeze([]) });

/** A principal's subject_hash without a pepper: equal to no entry's (those are 32 hex digits, or ""). */
export const NO_SUBJECT_HASH = '-';

export class Authorizer {
  private readonly c: Cedar;
  private readonly setId: string;
  private readonly staticPolicies: Record<string, string>;
  private readonly memo = new Map<string, Decision>();
  private readonly tierMemo = new Map<string, string[]>();
  private readonly principals = new WeakMap<Principal, PrincipalInfo>();
  private readonly tiers: string[];
  /** The attributes of Entry / Event resources the memo keys on: those some policy reads (all, if that cannot be told). */
  private readonly entryAttrs: readonly string[];
  private readonly eventAttrs: readonly string[];
  /** Whether a policy that can apply to an Entry reads an attribute of it other than tier (see entryDependent). */
  private readonly entryDecidedByMore: boolean;
  /** Membership from the policy file. */
  private readonly rolesOf = new Map<string, string[]>();
  private readonly groupRoles = new Map<string, string[]>();
  private readonly everyone: string[] = [];
  private cedarCalls = 0;

  private constructor(
    policy: Policy,
    private readonly schema: string,
    private readonly policies: CompiledPolicy[],
    private readonly pepper: Buffer | undefined,
  ) {
    this.c = cedar();
    this.tiers = policy.retention.tiers.map((t) => t.name);
    this.staticPolicies = Object.fromEntries(policies.map((p) => [p.id, p.text]));
    const digest = createHash('sha256');
    for (const p of policies) digest.update(`${p.id}\n${p.text}\n\n`);
    this.setId = `stele:${digest.digest('hex')}`;
    const pre = this.c.preparsePolicySet(this.setId, { staticPolicies: this.staticPolicies });
    if (pre.type === 'failure')
      throw new Error(`Cedar refused the compiled policies: ${pre.errors.map((e) => e.message).join('; ')}`);

    for (const r of policy.roles) {
      for (const m of r.members) {
        if (m === '*') add(this.everyone, r.name);
        else {
          const colon = m.indexOf(':');
          const prefix = m.slice(0, colon);
          const id = m.slice(colon + 1);
          if (prefix === 'group') push(this.groupRoles, id, r.name);
          else if (prefix === 'sub') push(this.rolesOf, `sub\u0000${id}`, r.name);
          else push(this.rolesOf, `${MEMBER_KINDS[prefix]}\u0000${id}`, r.name);
        }
      }
    }
    const used = resourceAttributes(this.c, policies);
    this.entryAttrs = used === null ? ENTRY_ATTRS : ENTRY_ATTRS.filter((a) => a === 'tier' || used.has(a));
    this.eventAttrs = used === null ? EVENT_ATTRS : EVENT_ATTRS.filter((a) => used.has(a));
    const forEntries = resourceAttributes(
      this.c,
      policies.filter((p) => mayApplyToEntries(this.c, p)),
    );
    this.entryDecidedByMore = forEntries === null || [...forEntries].some((a) => a !== 'tier');
  }

  /**
   * Compiles `policy` (its roles and its stele.cedar) for Cedar. `pepper`, the log's subject pepper,
   * gives users their `subject_hash` (without it, NO_SUBJECT_HASH). Throws SteleError 'bad_policy'
   * listing every problem if Cedar refuses any policy.
   */
  static create(policy: Policy, opts: { pepper?: Buffer } = {}): Authorizer {
    const schema = cedarSchemaText(policy);
    const generated = rolePolicies(policy.roles);
    const c = cedar();
    const problems: PolicyProblem[] = [];
    const checked = c.validate({
      schema,
      policies: { staticPolicies: Object.fromEntries(generated.map((p) => [p.id, p.text])) },
      validationSettings: { mode: 'strict' },
    });
    if (checked.type === 'failure') {
      for (const e of checked.errors)
        problems.push({ file: policy.source, line: 1, column: 1, path: 'roles', message: e.message });
    } else {
      for (const e of checked.validationErrors) {
        problems.push({ file: policy.source, line: 1, column: 1, path: 'roles', message: `${e.policyId}: ${e.error.message}` });
      }
    }
    let custom: CompiledPolicy[] = [];
    if (policy.cedar) {
      const result = checkCedarText(policy.cedar.text, policy.cedar.source, policy);
      problems.push(...result.problems);
      custom = result.policies;
    }
    if (problems.length > 0) {
      const lines = problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.path ? `${p.path}: ` : ''}${p.message}`);
      throw new SteleError('bad_policy', lines.join('\n'), { detail: { problems } });
    }
    return new Authorizer(policy, schema, [...generated, ...custom], opts.pepper);
  }

  /**
   * Whether a decision on an entry can depend on more than its tier (some policy reads another of
   * its attributes). When not, readableTiers() decides every entry, and a query filtered by tier
   * shows exactly what the principal may see.
   */
  get entryDependent(): boolean {
    return this.entryDecidedByMore;
  }

  /** How many times Cedar was asked (decisions not served by the memo), for tests and benchmarks. */
  get evaluations(): number {
    return this.cedarCalls;
  }

  /** Whether `p` may do `action` on `resource`, and which policies say so. Principals are taken as immutable. */
  decide(p: Principal, action: AccessAction, resource: AccessResource): Decision {
    if (p.kind === 'local') return DECIDED_LOCAL;
    const applies = APPLIES[action];
    if (applies === undefined) return refused(`unknown action ${JSON.stringify(action)}`);
    if (!applies.includes(resource.type)) return refused(`${action} does not apply to ${resource.type}`);
    const bad = malformed(resource);
    if (bad) return refused(bad);

    const who = this.principal(p);
    const key = `${who.key}\u0000${action}\u0000${this.resourceKey(resource)}`;
    const hit = this.memo.get(key);
    if (hit) return hit;

    const decision = this.evaluate(who, action, resource);
    if (this.memo.size >= DECISION_CACHE_LIMIT) this.memo.clear();
    this.memo.set(key, decision);
    return decision;
  }

  allowed(p: Principal, action: AccessAction, resource: AccessResource): boolean {
    return this.decide(p, action, resource).allowed;
  }

  /**
   * The tiers whose entries `p` might be allowed to see through `action` (read, search or export),
   * in policy order: Cedar evaluates the request partially, with only the entry's tier known, and a
   * tier is left out only when the answer is deny whatever the entry's other attributes. A
   * pre-filter for queries: each entry found must still be checked with decide().
   */
  readableTiers(p: Principal, action: AccessAction): string[] {
    if (!APPLIES[action]?.includes('Entry')) throw new TypeError(`${action} does not apply to entries`);
    if (p.kind === 'local') return [...this.tiers];
    const who = this.principal(p);
    const key = `${who.key}\u0000${action}`;
    let tiers = this.tierMemo.get(key);
    if (!tiers) {
      tiers = this.tiers.filter((t) => this.mayReadTier(who, action, t));
      if (this.tierMemo.size >= DECISION_CACHE_LIMIT) this.tierMemo.clear();
      this.tierMemo.set(key, tiers);
    }
    return [...tiers];
  }

  /** The Cedar schema and the policy set (roles' policies first, then stele.cedar's, each with its @id). */
  describe(): { schema: string; policies: string } {
    return { schema: this.schema, policies: `${this.policies.map((p) => p.text).join('\n\n')}\n` };
  }

  private evaluate(who: PrincipalInfo, action: AccessAction, resource: AccessResource): Decision {
    this.cedarCalls++;
    const answer = this.c.statefulIsAuthorized({
      principal: who.uid,
      action: { type: `${NAMESPACE}::Action`, id: action },
      resource: resourceUid(resource),
      context: {},
      preparsedPolicySetId: this.setId,
      entities: resource.type === 'Log' ? who.entities : [...who.entities, resourceEntity(resource)],
    });
    if (answer.type === 'failure') return refused(...answer.errors.map((e) => e.message));
    const { decision, diagnostics } = answer.response;
    return Object.freeze({
      allowed: decision === 'allow',
      policies: Object.freeze([...diagnostics.reason]),
      errors: Object.freeze(diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`)),
    });
  }

  private mayReadTier(who: PrincipalInfo, action: AccessAction, tier: string): boolean {
    this.cedarCalls++;
    const unknown = (name: string) => ({ __extn: { fn: 'unknown', arg: name } });
    const attrs: Record<string, CedarValueJson> = {};
    for (const a of ENTRY_ATTRS) attrs[a] = a === 'tier' ? tier : unknown(a);
    const uid = { type: `${NAMESPACE}::Entry`, id: 'entry' };
    const answer = this.c.isAuthorizedPartial({
      principal: who.uid,
      action: { type: `${NAMESPACE}::Action`, id: action },
      resource: uid,
      context: {},
      policies: { staticPolicies: this.staticPolicies },
      entities: [...who.entities, { uid, attrs, parents: [{ type: `${NAMESPACE}::Tier`, id: tier }] }],
    });
    return answer.type === 'residuals' && answer.response.decision !== 'deny';
  }

  private principal(p: Principal): PrincipalInfo {
    const known = this.principals.get(p);
    if (known) return known;
    const kind = p.kind as Exclude<Principal['kind'], 'local'>;
    const groups = [...new Set(p.groups)].sort();
    const roles = new Set<string>(p.roles);
    for (const r of this.rolesOf.get(`${kind}\u0000${p.id}`) ?? []) roles.add(r);
    for (const r of this.everyone) roles.add(r);
    // sub:<issuer>#<sub>: one account of one issuer, whatever its email says.
    if (p.method === 'oidc' && p.issuer !== undefined && p.sub !== undefined) {
      for (const r of this.rolesOf.get(`sub\u0000${p.issuer}#${p.sub}`) ?? []) roles.add(r);
    }
    const issuer = p.issuer ?? '';
    const uid = { type: ENTITY_TYPE[kind], id: p.id };
    const attrs: Record<string, CedarValueJson> =
      kind === 'user'
        ? { id: p.id, issuer, subject_hash: this.pepper ? subjectHash(this.pepper, p.id) : NO_SUBJECT_HASH }
        : kind === 'apikey'
          ? { id: p.id }
          : { id: p.id, issuer };
    const role = (name: string) => ({ type: `${NAMESPACE}::Role`, id: name });
    const group = (name: string) => ({ type: `${NAMESPACE}::Group`, id: name });
    const entities: EntityJson[] = [
      { uid, attrs, parents: [...groups.map(group), ...[...roles].sort().map(role)] },
      ...groups.map((g) => ({ uid: group(g), attrs: {}, parents: (this.groupRoles.get(g) ?? []).map(role) })),
    ];
    const info = { key: JSON.stringify([kind, p.id, issuer, p.sub ?? null, groups, [...p.roles].sort()]), uid, entities };
    this.principals.set(p, info);
    return info;
  }

  private resourceKey(r: AccessResource): string {
    switch (r.type) {
      case 'Log':
        return 'L';
      case 'Event':
        return `V${JSON.stringify(this.eventAttrs.map((a) => r[a as keyof EventResource]))}`;
      case 'Entry':
        return `E${JSON.stringify(this.entryAttrs.map((a) => r[a as keyof EntryResource]))}`;
    }
  }
}

function refused(...errors: string[]): Decision {
  return Object.freeze({ allowed: false, policies: Object.freeze([]), errors: Object.freeze(errors) });
}

/** Why a resource cannot be judged (a missing attribute would make Cedar skip a forbid), or undefined. */
function malformed(r: AccessResource): string | undefined {
  const attrs = r.type === 'Entry' ? ENTRY_ATTRS : r.type === 'Event' ? EVENT_ATTRS : [];
  for (const a of attrs) {
    const v = (r as unknown as Record<string, unknown>)[a];
    if (typeof v !== 'string') return `${r.type}.${a} must be a string, not ${v === undefined ? 'missing' : typeof v}`;
  }
  return undefined;
}

function resourceUid(r: AccessResource): EntityUidJson {
  switch (r.type) {
    case 'Log':
      return { type: `${NAMESPACE}::Log`, id: LOG_ID };
    case 'Event':
      return { type: `${NAMESPACE}::Event`, id: 'event' };
    case 'Entry':
      return { type: `${NAMESPACE}::Entry`, id: 'entry' };
  }
}

function resourceEntity(r: EventResource | EntryResource): EntityJson {
  if (r.type === 'Event') {
    return { uid: resourceUid(r), attrs: { action: r.action, source: r.source, actor: r.actor }, parents: [] };
  }
  const attrs: Record<string, CedarValueJson> = {};
  for (const a of ENTRY_ATTRS) attrs[a] = r[a];
  return { uid: resourceUid(r), attrs, parents: [{ type: `${NAMESPACE}::Tier`, id: r.tier }] };
}

function add(list: string[], v: string): void {
  if (!list.includes(v)) list.push(v);
}

function push(map: Map<string, string[]>, key: string, v: string): void {
  const list = map.get(key);
  if (list) add(list, v);
  else map.set(key, [v]);
}

/** Whether a policy's scope can match an Entry resource: not when it is only for appending/vouching, or only for Events or the Log. */
function mayApplyToEntries(c: Cedar, p: CompiledPolicy): boolean {
  const json = c.policyToJson(p.text);
  if (json.type === 'failure') return true;
  const { action, resource } = json.json as {
    action: { op: string; entity?: { id: string }; entities?: { id: string }[] };
    resource: { op: string; entity_type?: string; entity?: { type: string } };
  };
  const entryActions = (ids: string[]) => ids.some((id) => APPLIES[id as AccessAction]?.includes('Entry') ?? true);
  if (action.op === '==' && action.entity && !entryActions([action.entity.id])) return false;
  if (action.op === 'in' && action.entities && !entryActions(action.entities.map((e) => e.id))) return false;
  if (resource.op === 'is' && resource.entity_type !== undefined && resource.entity_type !== `${NAMESPACE}::Entry`) return false;
  if (resource.op === '==' && resource.entity && resource.entity.type !== `${NAMESPACE}::Entry`) return false;
  return true;
}

/**
 * The attributes of `resource` that any policy reads (`resource.x`, `resource has x`), or null when a
 * policy reaches attributes some other way (then every attribute counts). Attributes no policy
 * reads cannot change a decision, so the memo leaves them out of its key.
 */
function resourceAttributes(c: Cedar, policies: readonly CompiledPolicy[]): Set<string> | null {
  const used = new Set<string>();
  let opaque = false;
  const walk = (x: unknown): void => {
    if (opaque || typeof x !== 'object' || x === null) return;
    if (Array.isArray(x)) {
      for (const v of x) walk(v);
      return;
    }
    const o = x as Record<string, unknown>;
    for (const op of ['.', 'has'] as const) {
      const node = o[op] as { left?: unknown; attr?: unknown } | undefined;
      if (node && typeof node === 'object' && 'left' in node && 'attr' in node) {
        const left = node.left as { Var?: unknown };
        if (left && typeof left === 'object' && 'Var' in left) {
          if (left.Var === 'resource') {
            const attr = Array.isArray(node.attr) ? node.attr[0] : node.attr;
            used.add(String(attr));
          }
        } else opaque = true;
      }
    }
    for (const v of Object.values(o)) walk(v);
  };
  for (const p of policies) {
    const json = c.policyToJson(p.text);
    if (json.type === 'failure') return null;
    walk(json.json.conditions);
  }
  return opaque ? null : used;
}
