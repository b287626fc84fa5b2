/**
 * AWS CloudTrail records → Stele events, for `stele import cloudtrail` (log files delivered to S3:
 * `{"Records": [...]}`, usually gzipped) and `POST /v1/sources/cloudtrail` (EventBridge events whose
 * `detail` is a CloudTrail record, one or a list; a log file's `{"Records": [...]}` is accepted too).
 *
 * `data` keeps the CloudTrail record itself under its AWS field names (size-bounded: see
 * `fitEvent`); the event fields are derived from it by the rules below (docs/sources/cloudtrail.md).
 * Pure functions; the I/O of the import lives in cloudtrail-files.ts and src/cli/commands/import.ts.
 */
import { SteleError } from '../core/errors.js';
import { TIME_PATTERN } from '../event/schema.js';
import { clip, fitEvent } from './fit.js';
import { derivedId } from './ids.js';

type Json = Record<string, unknown>;
type Actor = { id: string; type: 'human' | 'service'; on_behalf_of?: string };

export interface CloudTrailOptions {
  /** `source.agent`: how the record reached Stele (`cloudtrail` for log files, `eventbridge`). */
  agent: string;
}

/** The event id of a CloudTrail record, whichever way it arrives (log file or EventBridge). */
export const cloudtrailEventId = (eventID: string) => derivedId('aws.cloudtrail', eventID);

// ---------------------------------------------------------------------------------------------
// Checking records

function bad(path: string, message: string): SteleError {
  return new SteleError('invalid_source_event', `${path}: ${message}`);
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

const join = (path: string, k: string) => (path ? `${path}.${k}` : k);

function optString(o: Json, k: string, path: string): string | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw bad(join(path, k), `must be a string, not ${typeName(v)}`);
  return v;
}

function reqString(o: Json, k: string, path: string): string {
  const v = optString(o, k, path);
  if (v === undefined) throw bad(join(path, k), 'is required');
  if (v === '') throw bad(join(path, k), 'must not be empty');
  return v;
}

function optObject(o: Json, k: string, path: string): Json | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw bad(join(path, k), `must be an object, not ${typeName(v)}`);
  return v;
}

const TIME = new RegExp(TIME_PATTERN);
const IDENTITY_STRINGS = ['type', 'arn', 'userName', 'principalId', 'accountId', 'invokedBy'];

/** The checked fields of a CloudTrail record that the mapping reads. */
export interface CloudTrailRecord {
  eventID: string;
  eventTime: string;
  eventSource: string;
  eventName: string;
  eventType?: string;
  eventVersion?: string;
  userIdentity?: Json;
  errorCode?: string;
  errorMessage?: string;
  recipientAccountId?: string;
  requestParameters?: Json;
  responseElements?: Json;
  resources?: Json[];
}

/** Checks a record's structure; errors name `path` and the field (e.g. `Records[3].userIdentity: must be an object`). */
export function checkRecord(rec: unknown, path: string): CloudTrailRecord {
  if (!isObject(rec)) throw bad(path, `must be an object (a CloudTrail record), not ${typeName(rec)}`);
  const eventTime = reqString(rec, 'eventTime', path);
  if (!TIME.test(eventTime) || Number.isNaN(Date.parse(eventTime))) {
    throw bad(
      join(path, 'eventTime'),
      `must be an RFC 3339 time such as 2026-03-02T02:31:09Z, got ${JSON.stringify(clip(eventTime, 64))}`,
    );
  }
  const out: CloudTrailRecord = {
    eventID: reqString(rec, 'eventID', path),
    eventTime,
    eventSource: reqString(rec, 'eventSource', path),
    eventName: reqString(rec, 'eventName', path),
  };
  for (const k of ['eventType', 'eventVersion', 'errorCode', 'errorMessage', 'recipientAccountId'] as const) {
    const v = optString(rec, k, path);
    if (v !== undefined) out[k] = v;
  }
  for (const k of ['awsRegion', 'sourceIPAddress', 'userAgent']) optString(rec, k, path);
  for (const k of ['requestParameters', 'responseElements'] as const) {
    const v = optObject(rec, k, path);
    if (v) out[k] = v;
  }
  optObject(rec, 'additionalEventData', path);
  const ui = optObject(rec, 'userIdentity', path);
  if (ui) {
    const p = join(path, 'userIdentity');
    for (const k of IDENTITY_STRINGS) optString(ui, k, p);
    const sc = optObject(ui, 'sessionContext', p);
    if (sc) {
      optString(sc, 'sourceIdentity', `${p}.sessionContext`);
      const issuer = optObject(sc, 'sessionIssuer', `${p}.sessionContext`);
      if (issuer) for (const k of IDENTITY_STRINGS) optString(issuer, k, `${p}.sessionContext.sessionIssuer`);
    }
    const obo = optObject(ui, 'onBehalfOf', p);
    if (obo) optString(obo, 'userId', `${p}.onBehalfOf`);
    out.userIdentity = ui;
  } else if (out.eventType !== 'AwsCloudTrailInsight') {
    throw bad(join(path, 'userIdentity'), 'is required (an object)');
  }
  const resources = rec.resources;
  if (resources !== undefined && resources !== null) {
    if (!Array.isArray(resources)) throw bad(join(path, 'resources'), `must be a list, not ${typeName(resources)}`);
    resources.forEach((r, i) => {
      if (!isObject(r)) throw bad(`${join(path, 'resources')}[${i}]`, `must be an object, not ${typeName(r)}`);
      optString(r, 'ARN', `${join(path, 'resources')}[${i}]`);
      optString(r, 'type', `${join(path, 'resources')}[${i}]`);
    });
    out.resources = resources as Json[];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Mapping

/**
 * An API operation name in the AWS CLI's form: `DescribeDBInstances` → `describe-db-instances`,
 * `AssumeRoleWithSAML` → `assume-role-with-saml`, `ListObjectsV2` → `list-objects-v2` (botocore's
 * xform_name with `-`).
 */
export function kebab(name: string): string {
  let n = name;
  const special = /[A-Z]{2,}s$/.exec(n);
  if (special) n = `${n.slice(0, -special[0].length)}-${special[0].toLowerCase()}`;
  n = n.replace(/(.)([A-Z][a-z]+)/g, '$1-$2').replace(/([a-z0-9])([A-Z])/g, '$1-$2');
  return n.toLowerCase();
}

function segment(s: string): string {
  let t = s.toLowerCase().replace(/[^a-z0-9_-]+/g, '-');
  if (!/^[a-z0-9]/.test(t)) t = `x${t}`;
  return t.length > 60 ? t.slice(0, 60) : t;
}

/** `s3.amazonaws.com` → `s3`. */
export const awsService = (eventSource: string) => segment(eventSource.replace(/\.amazonaws\.com(\.cn)?$/, ''));

/** `aws.<service>.<operation>`: `aws.iam.create-user`, `aws.s3.put-object`, `aws.signin.console-login`. */
export const awsAction = (eventSource: string, eventName: string) =>
  `aws.${awsService(eventSource)}.${segment(kebab(eventName))}`;

const str = (o: Json | undefined, k: string): string | undefined => {
  const v = o?.[k];
  return typeof v === 'string' && v !== '' ? v : undefined;
};

/**
 * Who did it: the accountable identity (a person where CloudTrail names one, else the workload) as
 * `actor`, and whose authority it used — the assumed role, the federating IAM user, or for
 * trusted identity propagation the person an application acted for — as `on_behalf_of`.
 */
export function awsActor(ui: Json | undefined, eventSource: string): Actor {
  if (!ui) return { id: eventSource, type: 'service' };
  const type = str(ui, 'type');
  const arn = str(ui, 'arn');
  const sc = isObject(ui.sessionContext) ? ui.sessionContext : undefined;
  const issuer = isObject(sc?.sessionIssuer) ? (sc.sessionIssuer as Json) : undefined;
  const obo = isObject(ui.onBehalfOf) ? ui.onBehalfOf : undefined;
  const fallback = arn ?? str(ui, 'principalId') ?? str(ui, 'accountId') ?? 'unknown';
  const withIssuer = (a: Actor): Actor => {
    const by = str(issuer, 'arn');
    return by && by !== a.id ? { ...a, on_behalf_of: by } : a;
  };
  switch (type) {
    case 'Root':
      return { id: arn ?? `arn:aws:iam::${str(ui, 'accountId') ?? 'unknown'}:root`, type: 'human' };
    case 'IAMUser':
      return { id: arn ?? str(ui, 'userName') ?? fallback, type: 'human' };
    case 'AssumedRole': {
      // arn:aws:sts::<account>:assumed-role/<role>/<session>
      const m = /:assumed-role\/([^/]+)\/(.+)$/.exec(arn ?? '');
      const role = m?.[1] ?? str(issuer, 'userName') ?? '';
      const session = m?.[2] ?? str(ui, 'principalId')?.split(':')[1];
      const sourceIdentity = str(sc, 'sourceIdentity');
      if (role.startsWith('AWSReservedSSO_') && session) return withIssuer({ id: session, type: 'human' });
      if (sourceIdentity) return withIssuer({ id: sourceIdentity, type: 'human' });
      const person = str(obo, 'userId');
      if (person) return { id: fallback, type: 'service', on_behalf_of: person };
      if (session?.includes('@')) return withIssuer({ id: session, type: 'human' });
      return withIssuer({ id: fallback, type: 'service' });
    }
    case 'FederatedUser':
      return withIssuer({ id: fallback, type: 'human' });
    case 'IdentityCenterUser':
      return { id: str(ui, 'userName') ?? str(obo, 'userId') ?? fallback, type: 'human' };
    case 'SAMLUser':
      return { id: str(ui, 'userName') ?? fallback, type: 'human' };
    case 'WebIdentityUser':
      return { id: str(ui, 'userName') ?? fallback, type: 'service' };
    case 'AWSService':
      return { id: str(ui, 'invokedBy') ?? eventSource, type: 'service' };
    case 'AWSAccount': {
      // Another account's principal: "<account>:<principal id>".
      const account = str(ui, 'accountId');
      const principal = str(ui, 'principalId');
      return { id: arn ?? (account && principal ? `${account}:${principal}` : fallback), type: 'service' };
    }
    case 'Unknown':
      return { id: str(ui, 'userName') ?? str(ui, 'principalId') ?? 'unknown', type: 'human' };
    default: {
      const invokedBy = str(ui, 'invokedBy');
      return { id: invokedBy ?? fallback, type: 'service' };
    }
  }
}

/** The last part of an error code (`Client.UnauthorizedOperation` → `UnauthorizedOperation`) that means "refused". */
const DENIED =
  /^(AccessDenied|AllAccessDisabled|UnauthorizedOperation|Unauthorized|UnauthorizedAccess|AuthFailure|AuthorizationError|NotAuthorized|Forbidden|InvalidClientTokenId|SignatureDoesNotMatch|UnrecognizedClient|InvalidAccessKeyId|IncompleteSignature|MissingAuthenticationToken|ExpiredToken|InvalidToken)(Exception)?$/i;

/** Sign-in events whose `Failure` is an authentication failure. */
const SIGN_IN = new Set(['ConsoleLogin', 'CheckMfa']);

/** denied for authorisation and authentication errors, failure for any other error, success otherwise. */
export function awsOutcome(r: Pick<CloudTrailRecord, 'errorCode' | 'errorMessage' | 'eventName' | 'responseElements'>) {
  const code = r.errorCode;
  if (code) {
    const last = code.slice(code.lastIndexOf('.') + 1);
    return DENIED.test(last) || /AccessDenied/i.test(code) ? 'denied' : 'failure';
  }
  if (r.responseElements?.[r.eventName] === 'Failure') return SIGN_IN.has(r.eventName) ? 'denied' : 'failure';
  return r.errorMessage ? 'failure' : 'success';
}

/** The first of the record's `resources`, else an S3 bucket or object named in the request, else none. */
export function awsResource(r: CloudTrailRecord): { type: string; id: string } | undefined {
  for (const res of r.resources ?? []) {
    const arn = str(res, 'ARN');
    if (arn) return { type: clip(str(res, 'type') ?? 'aws', 128), id: clip(arn, 2048) };
  }
  const bucket = str(r.requestParameters, 'bucketName');
  if (bucket) {
    const key = str(r.requestParameters, 'key');
    return key
      ? { type: 'AWS::S3::Object', id: clip(`arn:aws:s3:::${bucket}/${key}`, 2048) }
      : { type: 'AWS::S3::Bucket', id: clip(`arn:aws:s3:::${bucket}`, 2048) };
  }
  return undefined;
}

/** Maps one CloudTrail record (checked here; errors name `path`). */
export function cloudtrailEvent(rec: unknown, path: string, opts: CloudTrailOptions): Json {
  const r = checkRecord(rec, path);
  const insight = r.eventType === 'AwsCloudTrailInsight' && !r.userIdentity;
  const a = insight ? { id: 'cloudtrail.amazonaws.com', type: 'service' as const } : awsActor(r.userIdentity, r.eventSource);
  const actor: Json = { id: clip(a.id, 256), type: a.type };
  if (a.on_behalf_of) actor.on_behalf_of = clip(a.on_behalf_of, 256);
  const outcome = insight ? 'success' : awsOutcome(r);
  const account = r.recipientAccountId ?? str(r.userIdentity, 'accountId');
  const event: Json = {
    id: cloudtrailEventId(r.eventID),
    time: r.eventTime,
    actor,
    action: insight
      ? `aws.insight.${awsService(r.eventSource)}.${segment(kebab(r.eventName))}`
      : awsAction(r.eventSource, r.eventName),
    source: {
      kind: 'cloudtrail',
      ...(account ? { host: clip(account, 255) } : {}),
      agent: opts.agent,
      ...(r.eventVersion ? { version: clip(r.eventVersion, 64) } : {}),
    },
  };
  const resource = awsResource(r);
  if (resource) event.resource = resource;
  event.outcome = outcome;
  if (outcome !== 'success') {
    const reason = r.errorMessage ?? r.errorCode ?? `${r.eventName}: Failure`;
    event.reason = clip(reason, 4096);
  }
  const data: Json = {};
  for (const [k, v] of Object.entries(rec as Json)) if (v !== null) data[k] = v;
  event.data = data;
  fitEvent(event, data, ['responseElements', 'additionalEventData', 'serviceEventDetails', 'requestParameters']);
  return event;
}

// ---------------------------------------------------------------------------------------------
// Request bodies and log files

/** detail-types EventBridge gives CloudTrail events: "AWS API Call via CloudTrail", "AWS Console Sign In via CloudTrail", ... */
const VIA_CLOUDTRAIL = / via CloudTrail$/;

/**
 * The CloudTrail records of a `POST /v1/sources/cloudtrail` body, each with the path errors name:
 * one EventBridge event (`detail`), a list of them (`[i].detail`), or a log file (`Records[i]`).
 */
export function cloudtrailBodyRecords(body: unknown): { record: unknown; path: string }[] {
  if (Array.isArray(body)) return body.map((e, i) => envelopeRecord(e, `[${i}]`));
  if (isObject(body) && Array.isArray(body.Records)) return body.Records.map((record, i) => ({ record, path: `Records[${i}]` }));
  if (isObject(body) && ('detail' in body || 'detail-type' in body)) return [envelopeRecord(body, '')];
  throw new SteleError(
    'invalid_source_event',
    'the body must be an EventBridge event ({"detail-type": "AWS API Call via CloudTrail", "detail": {...}}), ' +
      'a list of them, or a CloudTrail log file ({"Records": [...]})',
  );
}

function envelopeRecord(e: unknown, path: string): { record: unknown; path: string } {
  if (!isObject(e)) throw bad(path || 'the body', `must be an EventBridge event (an object), not ${typeName(e)}`);
  const dt = e['detail-type'];
  if (typeof dt !== 'string' || !VIA_CLOUDTRAIL.test(dt)) {
    throw bad(
      path ? `${path}["detail-type"]` : 'detail-type',
      `${JSON.stringify(typeof dt === 'string' ? clip(dt, 128) : (dt ?? null))} is not a CloudTrail event ` +
        '(expected "AWS API Call via CloudTrail" or another "... via CloudTrail" type)',
    );
  }
  if (!isObject(e.detail))
    throw bad(join(path, 'detail'), `must be an object (the CloudTrail record), not ${typeName(e.detail)}`);
  return { record: e.detail, path: join(path, 'detail') };
}
