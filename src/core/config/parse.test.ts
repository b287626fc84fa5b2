import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SteleError } from '../errors.js';
import {
  formatListen,
  parseInteger,
  parseListen,
  parseLogLevel,
  parsePositiveDuration,
  parseProxies,
  parseS3Location,
  parseSwitch,
  parseText,
  parseUrl,
} from './parse.js';

/** Asserts that `f` throws a SteleError with `code` whose message is exactly `message`. */
function refuses(f: () => unknown, code: string, message: string): void {
  assert.throws(f, (err: unknown) => {
    assert.ok(err instanceof SteleError);
    assert.equal(err.code, code);
    assert.equal(err.message, message);
    return true;
  });
}

describe('setting parsers: a value, or an error naming where the text came from', () => {
  test('parseInteger', () => {
    assert.equal(parseInteger('42', '--n'), 42);
    assert.equal(parseInteger('0', '--n'), 0);
    refuses(() => parseInteger('0', '--rate-limit', 1), 'bad_option', '--rate-limit must be an integer of at least 1, got "0"');
    refuses(() => parseInteger('1.5', '$N'), 'bad_option', '$N must be an integer of at least 0, got "1.5"');
    refuses(() => parseInteger(' ', '--n'), 'bad_option', '--n must be an integer of at least 0, got " "');
    refuses(() => parseInteger('1e400', '--n'), 'bad_option', '--n must be an integer of at least 0, got "1e400"');
  });

  test('parsePositiveDuration: milliseconds, more than 0', () => {
    assert.equal(parsePositiveDuration('2m', '--idle-timeout'), 120_000);
    assert.equal(parsePositiveDuration('1s500ms', '--t'), 1500);
    refuses(() => parsePositiveDuration('0s', '--t'), 'bad_option', '--t must be longer than 0, got "0s"');
    refuses(
      () => parsePositiveDuration('60', '--request-timeout'),
      'bad_option',
      '--request-timeout: "60" is not a duration such as 90d, 36h, 1h30m or 500ms',
    );
  });

  test('parseListen: host:port, IPv6 in brackets, port at most 65535', () => {
    assert.deepEqual(parseListen('127.0.0.1:7433'), { host: '127.0.0.1', port: 7433 });
    assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
    assert.equal(formatListen({ host: '::1', port: 80 }), '[::1]:80');
    assert.equal(formatListen({ host: 'localhost', port: 80 }), 'localhost:80');
    refuses(() => parseListen('7433'), 'bad_listen', '--listen must be host:port, got "7433"');
    refuses(() => parseListen('localhost:70000'), 'bad_listen', '--listen must be host:port, got "localhost:70000"');
  });

  test('parseS3Location: a bucket S3 allows and a prefix without slashes at either end', () => {
    assert.deepEqual(parseS3Location('s3://audit-logs', '--mirror'), { bucket: 'audit-logs', prefix: '' });
    assert.deepEqual(parseS3Location('s3://audit.logs/acme/prod/', '--mirror'), { bucket: 'audit.logs', prefix: 'acme/prod' });
    const want = (t: string) =>
      `--mirror must be s3://bucket or s3://bucket/prefix (a bucket name of 3 to 63 characters a-z 0-9 . -), got "${t}"`;
    for (const t of ['https://b/x', 's3://', 's3://Audit', 's3://ab', 's3://-ab', `s3://${'a'.repeat(64)}`])
      refuses(() => parseS3Location(t, '--mirror'), 'bad_option', want(t));
    refuses(
      () => parseS3Location('s3://audit/a/../b', '$STELE_MIRROR'),
      'bad_option',
      '$STELE_MIRROR: the prefix must not hold . or .. parts, got "s3://audit/a/../b"',
    );
  });

  test('parseSwitch: on or off', () => {
    assert.equal(parseSwitch('on', '--x'), true);
    assert.equal(parseSwitch('off', '--x'), false);
    refuses(() => parseSwitch('yes', '--s3-legal-hold'), 'bad_option', '--s3-legal-hold must be on or off, got "yes"');
  });

  test('parseLogLevel', () => {
    assert.equal(parseLogLevel('warn', '--log-level'), 'warn');
    refuses(
      () => parseLogLevel('loud', '--log-level'),
      'bad_option',
      '--log-level must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    );
  });

  test('parseProxies: addresses, CIDRs and the named ranges', () => {
    assert.equal(parseProxies('10.0.0.0/8, ::1,loopback'), '10.0.0.0/8,::1,loopback');
    for (const bad of ['10.0.0.0/33', 'proxy.example', '::1/129', '1.2.3.4/8/9']) {
      refuses(
        () => parseProxies(bad),
        'bad_option',
        `--trust-proxy: "${bad}" is not an IP address or CIDR (e.g. 10.0.0.0/8, ::1, loopback)`,
      );
    }
  });

  test('parseUrl and parseText', () => {
    assert.equal(parseUrl('https://stele.example:8443/', '--url'), 'https://stele.example:8443/');
    refuses(
      () => parseUrl('stele.example', '$STELE_URL'),
      'bad_option',
      '$STELE_URL must be an http or https URL, got "stele.example"',
    );
    refuses(() => parseUrl('ftp://x', '--url'), 'bad_option', '--url must be an http or https URL, got "ftp://x"');
    refuses(() => parseText('', '--dir'), 'bad_option', '--dir must not be empty');
  });
});
