/**
 * Kubernetes audit events (`audit.k8s.io/v1`) → Stele events: what `POST /v1/sources/kubernetes`
 * receives from the API server's audit webhook backend (an `EventList`, up to
 * `--audit-webhook-batch-max-size` events) or a single `Event` (one line of the log backend).
 *
 * Two rules shape the code:
 *
 * - The API server retries a refused batch a few times and then drops it with every event in it.
 *   So a batch is refused (400, nothing stored) only for *structural* problems an API server never
 *   produces (wrong kind or apiVersion, a field of the wrong type, a missing required field), with
 *   a message naming the item and field. Values a client controls — object names and namespaces
 *   taken from the URL, the request URI, the Audit-ID header, user agents, X-Forwarded-For,
 *   request bodies — are bounded, never refused: too long is clipped (with a hash of the whole),
 *   too large or too deep is dropped with a note in `data.truncated`.
 * - `data` keeps the audit event itself (minus `kind`/`apiVersion`), under its upstream field
 *   names, so nothing the API server said is lost; the event fields are derived from it.
 *
 * Pure functions: the route (src/server/routes/sources-kubernetes.ts) parses, calls
 * `kubernetesEvents`, and appends the result as the authenticated principal.
 */
import { SteleError } from '../core/errors.js';
import { TIME_PATTERN } from '../event/schema.js';
import { clip, fitEvent } from './fit.js';
import { derivedId } from './ids.js';

export const K8S_API_VERSION = 'audit.k8s.io/v1';
export const K8S_LEVELS: readonly string[] = ['Metadata', 'Request', 'RequestResponse'];
export const K8S_STAGES: readonly string[] = ['RequestReceived', 'ResponseStarted', 'ResponseComplete', 'Panic'];

/** The actor of a request that failed authentication (the audit event's `user` is empty). */
export const UNAUTHENTICATED = 'system:unauthenticated';

type Json = Record<string, unknown>;

export interface KubernetesOptions {
  /** `source.host` of every event: the cluster's name. */
  cluster: string;
}

// ---------------------------------------------------------------------------------------------
// Checking the source payload

function bad(path: string, message: string): SteleError {
  return new SteleError('invalid_source_event', `${path}: ${message}`);
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** An optional field: null counts as absent (Go encodes unset times and pointers as null). */
function opt(o: Json, k: string): unknown {
  const v = o[k];
  return v === null ? undefined : v;
}

function optString(o: Json, k: string, path: string): string | undefined {
  const v = opt(o, k);
  if (v !== undefined && typeof v !== 'string') throw bad(`${path}.${k}`, `must be a string, not ${typeName(v)}`);
  return v;
}

function reqString(o: Json, k: string, path: string, nonEmpty = true): string {
  const v = opt(o, k);
  if (v === undefined) throw bad(`${path}.${k}`, 'is required');
  if (typeof v !== 'string') throw bad(`${path}.${k}`, `must be a string, not ${typeName(v)}`);
  if (nonEmpty && v === '') throw bad(`${path}.${k}`, 'must not be empty');
  return v;
}

function optObject(o: Json, k: string, path: string): Json | undefined {
  const v = opt(o, k);
  if (v !== undefined && !isObject(v)) throw bad(`${path}.${k}`, `must be an object, not ${typeName(v)}`);
  return v;
}

function optStrings(o: Json, k: string, path: string): string[] | undefined {
  const v = opt(o, k);
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw bad(`${path}.${k}`, `must be a list of strings, not ${typeName(v)}`);
  for (let i = 0; i < v.length; i++) {
    if (typeof v[i] !== 'string') throw bad(`${path}.${k}[${i}]`, `must be a string, not ${typeName(v[i])}`);
  }
  return v as string[];
}

function optStringMap(o: Json, k: string, path: string): Record<string, string> | undefined {
  const m = optObject(o, k, path);
  if (!m) return undefined;
  for (const [key, v] of Object.entries(m)) {
    if (typeof v !== 'string') throw bad(`${path}.${k}[${JSON.stringify(key)}]`, `must be a string, not ${typeName(v)}`);
  }
  return m as Record<string, string>;
}

const TIME = new RegExp(TIME_PATTERN);

function optTime(o: Json, k: string, path: string): string | undefined {
  const v = optString(o, k, path);
  if (v !== undefined && (!TIME.test(v) || Number.isNaN(Date.parse(v)))) {
    throw bad(`${path}.${k}`, `must be an RFC 3339 time such as 2026-03-02T02:14:07.412873Z, got ${JSON.stringify(clip(v, 64))}`);
  }
  return v;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

interface UserInfo {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Json;
}

function userInfo(o: Json, k: string, path: string, required: boolean): UserInfo | undefined {
  const u = optObject(o, k, path);
  if (!u) {
    if (required) throw bad(`${path}.${k}`, 'is required (an authentication.k8s.io/v1 UserInfo object)');
    return undefined;
  }
  const p = `${path}.${k}`;
  const out: UserInfo = {};
  const username = optString(u, 'username', p);
  if (username !== undefined) out.username = username;
  const uid = optString(u, 'uid', p);
  if (uid !== undefined) out.uid = uid;
  const groups = optStrings(u, 'groups', p);
  if (groups) out.groups = groups;
  const extra = optObject(u, 'extra', p);
  if (extra) {
    for (const key of Object.keys(extra)) optStrings(extra, key, `${p}.extra`);
    out.extra = extra;
  }
  return out;
}

interface ObjectRef {
  resource?: string;
  namespace?: string;
  name?: string;
  uid?: string;
  apiGroup?: string;
  apiVersion?: string;
  resourceVersion?: string;
  subresource?: string;
}

const OBJECT_REF_FIELDS = ['resource', 'namespace', 'name', 'uid', 'apiGroup', 'apiVersion', 'resourceVersion', 'subresource'];

function objectRef(o: Json, path: string): ObjectRef | undefined {
  const r = optObject(o, 'objectRef', path);
  if (!r) return undefined;
  const out: Record<string, string> = {};
  for (const f of OBJECT_REF_FIELDS) {
    const v = optString(r, f, `${path}.objectRef`);
    if (v !== undefined && v !== '') out[f] = v;
  }
  return out;
}

/** The checked fields of one audit event that the mapping reads. */
interface AuditEvent {
  level: string;
  auditID: string;
  stage: string;
  requestURI: string;
  verb: string;
  user: UserInfo;
  impersonatedUser?: UserInfo;
  sourceIPs?: string[];
  userAgent?: string;
  objectRef?: ObjectRef;
  code?: number;
  statusMessage?: string;
  statusReason?: string;
  requestReceivedTimestamp?: string;
  stageTimestamp?: string;
  annotations?: Record<string, string>;
}

/** Checks one audit event's structure (not the values a client controls) and returns what the mapping needs. */
export function checkAuditEvent(item: unknown, path: string): AuditEvent {
  if (!isObject(item)) throw bad(path, `must be an object (an ${K8S_API_VERSION} Event), not ${typeName(item)}`);
  const level = reqString(item, 'level', path);
  if (!K8S_LEVELS.includes(level))
    throw bad(`${path}.level`, `must be one of ${K8S_LEVELS.join(', ')}, got ${JSON.stringify(clip(level, 64))}`);
  const stage = reqString(item, 'stage', path);
  if (!K8S_STAGES.includes(stage))
    throw bad(`${path}.stage`, `must be one of ${K8S_STAGES.join(', ')}, got ${JSON.stringify(clip(stage, 64))}`);
  const ev: AuditEvent = {
    level,
    auditID: reqString(item, 'auditID', path),
    stage,
    requestURI: reqString(item, 'requestURI', path, false),
    verb: reqString(item, 'verb', path),
    user: userInfo(item, 'user', path, true) as UserInfo,
  };
  const imp = userInfo(item, 'impersonatedUser', path, false);
  if (imp) ev.impersonatedUser = imp;
  const ips = optStrings(item, 'sourceIPs', path);
  if (ips) ev.sourceIPs = ips;
  const ua = optString(item, 'userAgent', path);
  if (ua !== undefined) ev.userAgent = ua;
  const ref = objectRef(item, path);
  if (ref) ev.objectRef = ref;
  const status = optObject(item, 'responseStatus', path);
  if (status) {
    const code = opt(status, 'code');
    if (code !== undefined && !Number.isInteger(code))
      throw bad(`${path}.responseStatus.code`, `must be an integer, not ${typeName(code)}`);
    if (code !== undefined) ev.code = code as number;
    const message = optString(status, 'message', `${path}.responseStatus`);
    if (message) ev.statusMessage = message;
    const reason = optString(status, 'reason', `${path}.responseStatus`);
    if (reason) ev.statusReason = reason;
  }
  const received = optTime(item, 'requestReceivedTimestamp', path);
  if (received) ev.requestReceivedTimestamp = received;
  const staged = optTime(item, 'stageTimestamp', path);
  if (staged) ev.stageTimestamp = staged;
  const ann = optStringMap(item, 'annotations', path);
  if (ann) ev.annotations = ann;
  return ev;
}

// ---------------------------------------------------------------------------------------------
// Mapping

/** `actor.type` of a Kubernetes user name: service accounts, nodes and other `system:` users are services. */
export const k8sActorType = (username: string): 'human' | 'service' => (username.startsWith('system:') ? 'service' : 'human');

/**
 * The event id: a derived UUID of (auditID, stage, requestReceivedTimestamp). A webhook retry
 * resends identical events (same id, stored once), while the Audit-ID header — which the API
 * server takes from the client when present — cannot make a new request collide with an old one's
 * id and so vanish as a "repeat".
 */
export const k8sEventId = (auditID: string, stage: string, requestReceivedTimestamp?: string) =>
  derivedId('k8s.audit', `${auditID}:${stage}:${requestReceivedTimestamp ?? ''}`);

/** One dotted segment of an action: lower case, [a-z0-9_-], starting with a letter or digit, at most 40 characters. */
function segment(s: string): string {
  let t = s.toLowerCase().replace(/[^a-z0-9_-]+/g, '_');
  if (!/^[a-z0-9]/.test(t)) t = `x${t}`;
  return t.length > 40 ? t.slice(0, 40) : t;
}

/** `k8s.<resource>[.<subresource>].<verb>`, or `k8s.nonresource.<verb>` for non-resource URLs. */
export function k8sAction(verb: string, ref?: ObjectRef): string {
  if (!ref?.resource) return `k8s.nonresource.${segment(verb)}`;
  return ['k8s', segment(ref.resource), ...(ref.subresource ? [segment(ref.subresource)] : []), segment(verb)].join('.');
}

/** The resource: `<resource>[.<group>]` and `<namespace>/<name>` (`<namespace>/*`, `*` for collections); the path of a non-resource URL. */
export function k8sResource(requestURI: string, ref?: ObjectRef): { type: string; id: string } {
  if (!ref?.resource) {
    const q = requestURI.indexOf('?');
    return { type: 'nonresource', id: clip((q < 0 ? requestURI : requestURI.slice(0, q)) || '/', 2048) };
  }
  const type = ref.apiGroup ? `${ref.resource}.${ref.apiGroup}` : ref.resource;
  let id: string;
  if (ref.resource === 'namespaces' && ref.name) id = ref.name;
  else if (ref.name) id = ref.namespace ? `${ref.namespace}/${ref.name}` : ref.name;
  else id = ref.namespace ? `${ref.namespace}/*` : '*';
  return { type: clip(type, 128), id: clip(id, 2048) };
}

/** success for codes below 400, denied for 401/403 or an authorizer's forbid, failure otherwise (and for a Panic without a code). */
export function k8sOutcome(ev: Pick<AuditEvent, 'code' | 'stage' | 'annotations'>): 'success' | 'failure' | 'denied' {
  if (ev.annotations?.['authorization.k8s.io/decision'] === 'forbid') return 'denied';
  if (ev.code === undefined) return ev.stage === 'Panic' ? 'failure' : 'success';
  if (ev.code === 401 || ev.code === 403) return 'denied';
  return ev.code >= 400 ? 'failure' : 'success';
}

/** Maps one checked audit event (`item` is the raw object, kept in `data`). */
export function mapAuditEvent(item: Json, ev: AuditEvent, opts: KubernetesOptions): Json {
  const user = ev.user.username || UNAUTHENTICATED;
  const actor: Json = { id: clip(user, 256), type: k8sActorType(user) };
  // The authenticated user is accountable; an impersonated identity is whose authority was used.
  if (ev.impersonatedUser?.username) actor.on_behalf_of = clip(ev.impersonatedUser.username, 256);
  const outcome = k8sOutcome(ev);
  const event: Json = {
    id: k8sEventId(ev.auditID, ev.stage, ev.requestReceivedTimestamp),
  };
  const time = ev.requestReceivedTimestamp ?? ev.stageTimestamp;
  if (time) event.time = time;
  event.actor = actor;
  event.action = k8sAction(ev.verb, ev.objectRef);
  event.source = { kind: 'kubernetes', host: clip(opts.cluster, 255), agent: 'kube-apiserver' };
  event.resource = k8sResource(ev.requestURI, ev.objectRef);
  event.outcome = outcome;
  if (outcome !== 'success') {
    const reason = ev.statusMessage || ev.annotations?.['authorization.k8s.io/reason'] || ev.statusReason;
    if (reason) event.reason = clip(reason, 4096);
  }
  const data: Json = {};
  for (const [k, v] of Object.entries(item)) if (k !== 'kind' && k !== 'apiVersion' && v !== null) data[k] = v;
  event.data = data;
  fitEvent(event, data, ['responseObject', 'requestObject']);
  return event;
}

/**
 * The Stele events of a webhook body: an `audit.k8s.io/v1` `EventList` (items named `items[i]` in
 * errors) or one `Event` (named `event`). Throws SteleError 400 naming the first structural problem.
 */
export function kubernetesEvents(body: unknown, opts: KubernetesOptions): Json[] {
  if (!isObject(body)) {
    throw new SteleError(
      'invalid_source_event',
      `the body must be an ${K8S_API_VERSION} EventList (a JSON object), not ${typeName(body)}`,
    );
  }
  const kind = body.kind;
  const apiVersion = body.apiVersion;
  if (kind !== 'EventList' && kind !== 'Event') {
    throw new SteleError('invalid_source_event', `kind must be EventList (or Event), got ${JSON.stringify(kind ?? null)}`);
  }
  if (apiVersion !== K8S_API_VERSION) {
    throw new SteleError(
      'invalid_source_event',
      `apiVersion must be ${K8S_API_VERSION}, got ${JSON.stringify(apiVersion ?? null)} ` +
        `(run the API server with --audit-webhook-version=${K8S_API_VERSION}, the default)`,
    );
  }
  if (kind === 'Event') return [mapAuditEvent(body, checkAuditEvent(body, 'event'), opts)];
  const items = body.items ?? [];
  if (!Array.isArray(items))
    throw new SteleError('invalid_source_event', `items: must be a list of events, not ${typeName(items)}`);
  return items.map((item, i) => mapAuditEvent(item as Json, checkAuditEvent(item, `items[${i}]`), opts));
}

/** How errors name the i-th event of a webhook body (see `kubernetesEvents`). */
export const kubernetesItemName = (body: unknown) => (i: number) =>
  isObject(body) && body.kind === 'Event' ? 'event' : `items[${i}]`;
