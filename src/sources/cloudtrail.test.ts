/**
 * The CloudTrail mapping, from the log file and EventBridge events in test/fixtures/cloudtrail
 * (every userIdentity type, authorisation and authentication errors, service failures, a digest
 * file and malformed records).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { SteleError } from '../core/errors.js';
import { normalizeEvent, validateEvent } from '../event/normalize.js';
import { buildSealedLeaf, MAX_LEAF_BYTES, nowMicros } from '../event/record.js';
import { SEAL_OVERHEAD } from '../keys/seal.js';
import { awsAction, awsOutcome, cloudtrailBodyRecords, cloudtrailEvent, cloudtrailEventId, kebab } from './cloudtrail.js';
import { findLogFiles, ImportState, parseLogFile } from './cloudtrail-files.js';
import { derivedId } from './ids.js';

/** Parsed JSON of fixtures and answers, read freely by the assertions. */
// biome-ignore lint/suspicious/noExplicitAny: free-form JSON in tests
type Loose = any;

const DIR = new URL('../../../test/fixtures/cloudtrail/', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, DIR));
const load = (name: string): Loose => JSON.parse(read(name).toString('utf8'));
const LOG = readdirSync(DIR).find((f) => /_CloudTrail_eu-west-1_.*\.json$/.test(f)) as string;
const MALFORMED = readdirSync(DIR).find((f) => f.includes('malformedRecords')) as string;
const DIGEST = readdirSync(DIR).find((f) => f.includes('CloudTrail-Digest')) as string;
type Ev = Record<string, Loose>;
const mapAll = (records: unknown[]) => records.map((r, i) => cloudtrailEvent(r, `Records[${i}]`, { agent: 'cloudtrail' }) as Ev);

function sealedSize(e: Ev): number {
  validateEvent(e);
  const leaf = buildSealedLeaf(
    normalizeEvent(e, nowMicros()),
    { principal: 'p'.repeat(200), method: 'apikey' },
    nowMicros(),
    'k'.repeat(64),
    (plain) => Buffer.alloc(plain.length + SEAL_OVERHEAD),
  );
  return leaf.length;
}

test('operation names in the AWS CLI form', () => {
  const cases: [string, string][] = [
    ['PutObject', 'put-object'],
    ['DescribeDBInstances', 'describe-db-instances'],
    ['AssumeRoleWithSAML', 'assume-role-with-saml'],
    ['AssumeRoleWithWebIdentity', 'assume-role-with-web-identity'],
    ['ListObjectsV2', 'list-objects-v2'],
    ['GetBucketAcl', 'get-bucket-acl'],
    ['ListHITs', 'list-hits'],
    ['ConsoleLogin', 'console-login'],
    ['CreateDBClusterSnapshot', 'create-db-cluster-snapshot'],
    ['UpdateFunctionConfiguration20150331v2', 'update-function-configuration20150331v2'],
    ['Decrypt', 'decrypt'],
  ];
  for (const [name, want] of cases) assert.equal(kebab(name), want, name);
  assert.equal(awsAction('s3.amazonaws.com', 'PutObject'), 'aws.s3.put-object');
  assert.equal(
    awsAction('elasticloadbalancing.amazonaws.com', 'DeleteLoadBalancer'),
    'aws.elasticloadbalancing.delete-load-balancer',
  );
  assert.equal(awsAction('ec2.amazonaws.com.cn', 'RunInstances'), 'aws.ec2.run-instances');
  assert.equal(awsAction('partner.example.com', 'Weird Name!'), 'aws.partner-example-com.weird--name-');
});

test('every record of the log file maps to a valid event that fits a sealed leaf', () => {
  const { Records } = load(LOG);
  const events = mapAll(Records);
  assert.equal(events.length, Records.length);
  for (const [i, e] of events.entries()) {
    assert.ok(sealedSize(e) <= MAX_LEAF_BYTES);
    const r = Records[i];
    assert.equal(e.id, derivedId('aws.cloudtrail', r.eventID));
    assert.equal(e.time, r.eventTime);
    assert.deepEqual(e.source, { kind: 'cloudtrail', host: '123456789012', agent: 'cloudtrail', version: r.eventVersion });
    const { responseElements: _r, ...rest } = r;
    const { responseElements: _d, ...data } = e.data;
    assert.deepEqual(data, Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== null)));
  }
});

test('userIdentity → actor: the accountable identity, and whose authority it used as on_behalf_of', () => {
  const byType = new Map<string, Ev[]>();
  const { Records } = load(LOG);
  for (const [i, e] of mapAll(Records).entries()) {
    const t = Records[i].userIdentity.type as string;
    byType.set(t, [...(byType.get(t) ?? []), e]);
  }
  const actors = (t: string) => byType.get(t)?.map((e) => e.actor);
  const sso =
    'arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_PowerUserAccess_4b1c8e2d9f3a7b60';
  assert.deepEqual(actors('AssumedRole'), [
    // IAM Identity Center: the person is the session name
    { id: 'alice@example.com', type: 'human', on_behalf_of: sso },
    { id: 'alice@example.com', type: 'human', on_behalf_of: sso },
    // STS source identity (set by the IdP): the person
    { id: 'bob@example.com', type: 'human', on_behalf_of: 'arn:aws:iam::123456789012:role/OktaAdmin' },
    // workloads: the session
    {
      id: 'arn:aws:sts::123456789012:assumed-role/payments-exporter-role/payments-exporter',
      type: 'service',
      on_behalf_of: 'arn:aws:iam::123456789012:role/service-role/payments-exporter-role',
    },
    {
      id: 'arn:aws:sts::123456789012:assumed-role/github-actions-deploy/GitHubActions',
      type: 'service',
      on_behalf_of: 'arn:aws:iam::123456789012:role/github-actions-deploy',
    },
    // trusted identity propagation: the application acted for an Identity Center user
    {
      id: 'arn:aws:sts::123456789012:assumed-role/AnalyticsAppRole/analytics-app',
      type: 'service',
      on_behalf_of: '544894e8-80c1-707f-60e3-3ba6510dfac1',
    },
  ]);
  assert.deepEqual(actors('Root'), [{ id: 'arn:aws:iam::123456789012:root', type: 'human' }]);
  assert.deepEqual(actors('IAMUser'), [
    { id: 'arn:aws:iam::123456789012:user/ci-legacy', type: 'human' },
    { id: 'HIDDEN_DUE_TO_SECURITY_REASONS', type: 'human' },
  ]);
  assert.deepEqual(actors('FederatedUser'), [
    {
      id: 'arn:aws:sts::123456789012:federated-user/carol',
      type: 'human',
      on_behalf_of: 'arn:aws:iam::123456789012:user/federation-broker',
    },
  ]);
  assert.deepEqual(actors('AWSService'), [{ id: 'lambda.amazonaws.com', type: 'service' }]);
  assert.deepEqual(actors('AWSAccount'), [{ id: '210987654321:AIDA4EXAMPLEPARTNER', type: 'service' }]);
  assert.deepEqual(actors('SAMLUser'), [{ id: 'dave@example.com', type: 'human' }]);
  assert.deepEqual(actors('WebIdentityUser'), [{ id: 'repo:example/payments:ref:refs/heads/main', type: 'service' }]);
  assert.deepEqual(actors('IdentityCenterUser'), [{ id: '544894e8-80c1-707f-60e3-3ba6510dfac1', type: 'human' }]);
  assert.deepEqual(actors('Unknown'), [{ id: 'alice@example.com', type: 'human' }]);
  // an AssumedRole session named by an e-mail address (SAML federation without source identity) is a person
  const r = structuredClone(Records[5]);
  r.userIdentity.arn = 'arn:aws:sts::123456789012:assumed-role/DataAnalyst/dave@example.com';
  assert.deepEqual(cloudtrailEvent(r, 'r', { agent: 'x' }).actor, {
    id: 'dave@example.com',
    type: 'human',
    on_behalf_of: 'arn:aws:iam::123456789012:role/service-role/payments-exporter-role',
  });
});

test('errorCode → outcome: authorisation and authentication errors are denied, other errors failures', () => {
  const { Records } = load(LOG);
  const rows = mapAll(Records).map((e) => [e.action, e.outcome, e.reason?.slice(0, 40)]);
  assert.deepEqual(
    rows.filter((r) => r[1] !== 'success'),
    [
      ['aws.iam.create-user', 'denied', 'User: arn:aws:sts::123456789012:assumed-'],
      ['aws.ec2.run-instances', 'denied', 'You are not authorized to perform this o'],
      ['aws.eks.update-cluster-version', 'failure', 'Rate exceeded'],
      ['aws.signin.console-login', 'denied', 'No username found in supplied account'],
    ],
  );
  const o = (errorCode?: string, extra: Ev = {}) => awsOutcome({ eventName: 'X', ...(errorCode ? { errorCode } : {}), ...extra });
  for (const c of [
    'AccessDenied',
    'AccessDeniedException',
    'Client.UnauthorizedOperation',
    'KMS.AccessDeniedException',
    'InvalidClientTokenId',
    'ExpiredToken',
    'SignatureDoesNotMatch',
    'AuthFailure',
    'UnrecognizedClientException',
    'NotAuthorizedException',
  ]) {
    assert.equal(o(c), 'denied', c);
  }
  for (const c of ['ThrottlingException', 'NoSuchEntity', 'Server.InternalError', 'InvalidParameterValue', 'EntityAlreadyExists'])
    assert.equal(o(c), 'failure', c);
  assert.equal(o(undefined), 'success');
  assert.equal(o(undefined, { eventName: 'CheckMfa', responseElements: { CheckMfa: 'Failure' } }), 'denied');
  assert.equal(o(undefined, { eventName: 'SwitchRole', responseElements: { SwitchRole: 'Failure' } }), 'failure');
});

test('resources: the first ARN the record lists, else the S3 bucket or object of the request', () => {
  const { Records } = load(LOG);
  const ev = mapAll(Records);
  assert.deepEqual(ev[0]?.resource, { type: 'AWS::S3::Bucket', id: 'arn:aws:s3:::payments-exports' });
  assert.deepEqual(ev[5]?.resource, { type: 'AWS::S3::Object', id: 'arn:aws:s3:::payments-exports/daily/2026-03-01.csv.gz' });
  const r = { ...Records[0], resources: undefined, requestParameters: { bucketName: 'b', key: 'k/1' } };
  assert.deepEqual(cloudtrailEvent(r, 'r', { agent: 'x' }).resource, { type: 'AWS::S3::Object', id: 'arn:aws:s3:::b/k/1' });
  assert.equal(ev[1]?.resource, undefined);
});

test('large requestParameters/responseElements are dropped with a note; requestParameters last', () => {
  const { Records } = load(LOG);
  const r = structuredClone(Records[5]);
  r.responseElements = { blob: 'r'.repeat(40_000) };
  r.requestParameters.tags = 't'.repeat(30_000);
  const e = cloudtrailEvent(r, 'r', { agent: 'x' }) as Ev;
  assert.equal(e.data.responseElements, undefined);
  assert.equal(e.data.requestParameters.tags.length, 30_000);
  assert.deepEqual(
    e.data.truncated.map((t: Ev) => t.field),
    ['responseElements'],
  );
  assert.ok(sealedSize(e) <= MAX_LEAF_BYTES);
});

test('CloudTrail Insights events (no userIdentity) map to aws.insight.*', () => {
  const e = cloudtrailEvent(
    {
      eventVersion: '1.08',
      eventTime: '2026-03-02T02:40:00Z',
      awsRegion: 'eu-west-1',
      eventID: '4b5c6d7e-8f9a-4b0c-9d1e-2f3a4b5c6d7e',
      eventType: 'AwsCloudTrailInsight',
      recipientAccountId: '123456789012',
      sharedEventID: '5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f',
      insightDetails: {
        state: 'Start',
        eventSource: 'ec2.amazonaws.com',
        eventName: 'RunInstances',
        insightType: 'ApiCallRateInsight',
      },
      eventCategory: 'Insight',
      eventSource: 'ec2.amazonaws.com',
      eventName: 'RunInstances',
    },
    'r',
    { agent: 'cloudtrail' },
  ) as Ev;
  assert.equal(e.action, 'aws.insight.ec2.run-instances');
  assert.deepEqual(e.actor, { id: 'cloudtrail.amazonaws.com', type: 'service' });
});

test('malformed records are refused with the record and field named', () => {
  const { Records } = load(MALFORMED);
  const results = Records.map((r: unknown, i: number) => {
    try {
      cloudtrailEvent(r, `Records[${i}]`, { agent: 'cloudtrail' });
      return 'ok';
    } catch (e) {
      assert.ok(e instanceof SteleError && e.status === 400);
      return e.message;
    }
  });
  assert.deepEqual(results, [
    'ok',
    'Records[1].eventTime: must be an RFC 3339 time such as 2026-03-02T02:31:09Z, got "03/02/2026 02:12:03"',
    'Records[2].userIdentity: must be an object, not a string',
    'ok',
  ]);
  const base = load(LOG).Records[0];
  const cases: [unknown, string][] = [
    ['x', 'r: must be an object (a CloudTrail record), not a string'],
    [{ ...base, eventID: undefined }, 'r.eventID: is required'],
    [{ ...base, eventSource: '' }, 'r.eventSource: must not be empty'],
    [{ ...base, userIdentity: undefined }, 'r.userIdentity: is required (an object)'],
    [{ ...base, errorCode: 403 }, 'r.errorCode: must be a string, not a number'],
    [{ ...base, requestParameters: 'x' }, 'r.requestParameters: must be an object, not a string'],
    [{ ...base, resources: [{ ARN: 5 }] }, 'r.resources[0].ARN: must be a string, not a number'],
    [
      { ...base, userIdentity: { ...base.userIdentity, sessionContext: { sessionIssuer: { arn: [] } } } },
      'r.userIdentity.sessionContext.sessionIssuer.arn: must be a string, not a list',
    ],
  ];
  for (const [r, message] of cases) assert.throws(() => cloudtrailEvent(r, 'r', { agent: 'x' }), { message });
});

test('request bodies: one EventBridge event, a list, or a log file; anything else is refused', () => {
  const one = cloudtrailBodyRecords(load('eventbridge-api-call.json'));
  assert.deepEqual(
    one.map((r) => r.path),
    ['detail'],
  );
  const many = cloudtrailBodyRecords(load('eventbridge-batch.json'));
  assert.deepEqual(
    many.map((r) => r.path),
    ['[0].detail', '[1].detail'],
  );
  // the EventBridge copy and the log file copy of a record are the same event
  assert.equal(
    cloudtrailEvent(many[0]?.record, 'x', { agent: 'eventbridge' }).id,
    cloudtrailEventId(load(LOG).Records[1].eventID),
  );
  assert.equal(cloudtrailBodyRecords(load(LOG)).length, load(LOG).Records.length);
  assert.throws(() => cloudtrailBodyRecords(load('eventbridge-not-cloudtrail.json')), {
    message:
      'detail-type: "EC2 Instance State-change Notification" is not a CloudTrail event (expected "AWS API Call via CloudTrail" or another "... via CloudTrail" type)',
  });
  assert.throws(
    () => cloudtrailBodyRecords([load('eventbridge-api-call.json'), { 'detail-type': 'AWS API Call via CloudTrail', detail: 3 }]),
    {
      message: '[1].detail: must be an object (the CloudTrail record), not a number',
    },
  );
  assert.throws(() => cloudtrailBodyRecords({ hello: 1 }), /must be an EventBridge event/);
});

test('log files: gzipped or not, digests recognised, garbage refused; directories walked; the journal skips finished files', () => {
  const plain = read(LOG);
  const a = parseLogFile(gzipSync(plain), 'a.json.gz');
  const b = parseLogFile(plain, 'b.json');
  assert.ok(a.kind === 'records' && b.kind === 'records' && a.records.length === b.records.length && a.records.length > 10);
  assert.deepEqual(parseLogFile(read(DIGEST), 'd.json'), { kind: 'digest' });
  assert.throws(() => parseLogFile(Buffer.from('{"Records": 1}'), 'x.json'), {
    message: 'x.json: not a CloudTrail log file (expected an object with a "Records" list)',
  });
  assert.throws(() => parseLogFile(Buffer.from([0x1f, 0x8b, 1, 2, 3]), 'x.json.gz'), /x\.json\.gz: not a valid gzip file/);
  assert.throws(() => parseLogFile(Buffer.from('{"Rec'), 'x.json'), /x\.json: not a JSON CloudTrail log file/);

  const root = mkdtempSync(join(tmpdir(), 'stele-ct-'));
  try {
    const day = join(root, 'AWSLogs', '123456789012', 'CloudTrail', 'eu-west-1', '2026', '03', '02');
    mkdirSync(day, { recursive: true });
    writeFileSync(join(day, 'b_CloudTrail_x.json.gz'), gzipSync(plain));
    writeFileSync(join(day, 'a_CloudTrail_x.json'), plain);
    writeFileSync(join(day, 'a_CloudTrail-Digest_x.json.gz'), gzipSync(read(DIGEST)));
    writeFileSync(join(day, 'notes.txt'), 'x');
    const found = findLogFiles([root, join(day, 'a_CloudTrail_x.json')]);
    assert.deepEqual(
      found.files.map((f) => f.path.slice(day.length + 1)),
      ['a_CloudTrail_x.json', 'b_CloudTrail_x.json.gz'],
    );
    assert.equal(found.digests, 1);
    assert.throws(() => findLogFiles([join(root, 'nope')]), /nope: no such file or directory/);

    const statePath = join(root, 'state', 'journal.jsonl');
    const s1 = new ImportState(statePath);
    const [f1, f2] = found.files;
    assert.ok(f1 && f2 && !s1.isDone(f1));
    s1.markDone({ ...f1, events: 16, malformed: 0 });
    writeFileSync(statePath, `${readFileSync(statePath, 'utf8')}{"path": "torn`); // a crash mid-line
    const s2 = new ImportState(statePath);
    assert.ok(s2.isDone(f1));
    assert.ok(!s2.isDone(f2));
    // a file that changed since (size or mtime) is imported again
    utimesSync(f1.path, new Date(), new Date(Date.now() + 5000));
    const [again] = findLogFiles([f1.path]).files;
    assert.ok(again && !s2.isDone(again));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
