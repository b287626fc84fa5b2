import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import { SteleError } from '../errors.js';
import { envValue } from './env.js';
import { dataDir, defaultIngestWorkers, defaultOf, resolveServe, setting } from './resolve.js';
import { SERVE_SETTINGS, SETTINGS } from './settings.js';

const refuses = (f: () => unknown, message: string) =>
  assert.throws(f, (err: unknown) => err instanceof SteleError && err.message === message);

describe('resolving settings: flag, else environment, else default', () => {
  test('the order', () => {
    const env = { STELE_URL: 'http://env.example' };
    assert.equal(setting('url', { url: 'http://flag.example' }, env), 'http://flag.example');
    assert.equal(setting('url', {}, env), 'http://env.example');
    assert.equal(setting('url', {}, {}), 'http://127.0.0.1:7433');
    assert.equal(setting('origin', {}, {}), undefined);
  });

  test('an empty variable counts as unset', () => {
    assert.equal(envValue({ STELE_DIR: '' }, 'STELE_DIR'), undefined);
    assert.equal(dataDir(undefined, { STELE_DIR: '' }), resolve('stele-data'));
    assert.equal(dataDir(undefined, { STELE_DIR: '/srv/stele' }), '/srv/stele');
    assert.equal(dataDir('d', { STELE_DIR: '/srv/stele' }), resolve('d'));
    assert.equal(setting('url', {}, { STELE_URL: '' }), 'http://127.0.0.1:7433');
  });

  test('a bad value names the flag or the variable it came from', () => {
    refuses(
      () => setting('url', {}, { STELE_URL: 'localhost:7433' }),
      '$STELE_URL must be an http or https URL, got "localhost:7433"',
    );
    refuses(() => setting('dir', { dir: '' }, {}), '--dir must not be empty');
  });

  test('every default parses, and every flag is its setting name in kebab case (what commander maps it back to)', () => {
    for (const [name, s] of Object.entries(SETTINGS)) {
      if ('default' in s) assert.doesNotThrow(() => defaultOf(name as never), name);
      if ('flag' in s) assert.equal(s.flag, `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
    }
    assert.equal(defaultOf('idleTimeout'), 120_000);
    assert.equal(defaultOf('bodyLimit'), 16 * 1024 * 1024);
  });
});

describe('resolveServe', () => {
  test('no flags: the defaults', () => {
    const s = resolveServe({}, {});
    assert.deepEqual(s, {
      dir: resolve('stele-data'),
      listen: { host: '127.0.0.1', port: 7433 },
      checkpointIntervalMs: 100,
      ingestWorkers: defaultIngestWorkers(),
      maxQueuedEvents: 100_000,
      queryPartition: 1_048_576,
      logLevel: 'info',
      validateIntervalMs: 60_000,
      validateFullEveryMs: 86_400_000,
      http: {
        bodyLimit: 16 * 1024 * 1024,
        rateLimit: 6000,
        anonymousLimit: 1200,
        denialLimit: 60,
        requestTimeout: 60_000,
        headersTimeout: 10_000,
        idleTimeout: 120_000,
        keepAliveTimeout: 72_000,
        maxConnections: 4096,
        maxBodyMemory: 256 * 1024 * 1024,
      },
    });
    assert.deepEqual(structuredClone(s), s, 'plain data, for a worker message');
  });

  test('flags and the environment', () => {
    const s = resolveServe(
      {
        listen: '[::1]:0',
        ingestWorkers: '0',
        tlsCert: 'c.pem',
        tlsKey: 'k.pem',
        trustProxy: 'loopback',
        idleTimeout: '5s',
        origin: 'o.example/log',
      },
      { STELE_DIR: '/srv/stele', STELE_POLICY: '/etc/stele.yaml' },
    );
    assert.equal(s.dir, '/srv/stele');
    assert.equal(s.policy, '/etc/stele.yaml');
    assert.equal(s.origin, 'o.example/log');
    assert.deepEqual(s.listen, { host: '::1', port: 0 });
    assert.equal(s.ingestWorkers, 0);
    assert.deepEqual(s.tls, { cert: 'c.pem', key: 'k.pem' });
    assert.equal(s.http.trustProxy, 'loopback');
    assert.equal(s.http.idleTimeout, 5000);
  });

  test('--mirror and its options', () => {
    const s = resolveServe(
      { mirror: 's3://b-1/p', s3Retain: '7y', s3LegalHold: 'on' },
      { STELE_S3_ENDPOINT: 'http://127.0.0.1:9000' },
    );
    assert.deepEqual(s.mirror, {
      location: { bucket: 'b-1', prefix: 'p' },
      retainMs: 7 * 365 * 86_400_000,
      legalHold: true,
      intervalMs: 1000,
      endpoint: 'http://127.0.0.1:9000',
      region: 'us-east-1',
    });
    assert.equal(resolveServe({}, { AWS_REGION: 'eu-west-1' }).mirror, undefined);
    refuses(() => resolveServe({ s3Retain: '1y' }, {}), '--s3-retain needs --mirror or --tiles');
    refuses(() => resolveServe({ s3Endpoint: 'http://x' }, {}), '--s3-endpoint needs --mirror or --tiles');
    refuses(() => resolveServe({ mirrorInterval: '5s' }, {}), '--mirror-interval needs --mirror');
  });

  test('--postgres, its schema and --tiles', () => {
    const url = 'postgres://stele:secret@db.internal/stele';
    assert.equal(resolveServe({}, {}).postgres, undefined);
    const s = resolveServe(
      { tiles: 's3://t-1/log', s3Retain: '10y' },
      { STELE_POSTGRES_URL: url, STELE_POSTGRES_SCHEMA: 'audit' },
    );
    assert.deepEqual(s.postgres, {
      url,
      schema: 'audit',
      tiles: {
        location: { bucket: 't-1', prefix: 'log' },
        retainMs: 10 * 365 * 86_400_000,
        legalHold: false,
        region: 'us-east-1',
      },
    });
    assert.equal(s.mirror, undefined);
    refuses(() => resolveServe({ tiles: 's3://t-1' }, {}), '--tiles needs --postgres');
    refuses(() => resolveServe({ postgresSchema: 'audit' }, {}), '--postgres-schema needs --postgres');
    refuses(
      () => resolveServe({ postgres: 'mysql://x' }, {}),
      '--postgres must be a postgres:// or postgresql:// URL (e.g. postgres://stele@db.internal/stele)',
    );
    // The error never repeats the URL: it may hold a password.
    assert.throws(
      () => resolveServe({ postgres: 'http://u:hunter2@x' }, {}),
      (err: Error) => !err.message.includes('hunter2'),
    );
    refuses(
      () => resolveServe({ postgres: url, postgresSchema: 'Audit-1' }, {}),
      '--postgres-schema must be a-z, 0-9 and _ (not first a digit, at most 63), got "Audit-1"',
    );
  });

  test('bad values and combinations', () => {
    refuses(() => resolveServe({ tlsCert: 'c.pem' }, {}), '--tls-cert and --tls-key go together');
    refuses(() => resolveServe({ tlsClientCa: 'ca.pem' }, {}), '--tls-client-ca needs --tls-cert and --tls-key');
    refuses(() => resolveServe({ maxQueuedEvents: '0' }, {}), '--max-queued-events must be an integer of at least 1, got "0"');
    refuses(
      () => resolveServe({ logLevel: 'verbose' }, {}),
      '--log-level must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"',
    );
    refuses(() => resolveServe({ listen: 'nowhere' }, {}), '--listen must be host:port, got "nowhere"');
  });

  test('SERVE_SETTINGS are what resolveServe reads', () => {
    assert.equal(new Set(SERVE_SETTINGS).size, SERVE_SETTINGS.length);
    for (const name of SERVE_SETTINGS) assert.ok(name in SETTINGS);
  });
});
