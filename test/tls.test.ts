/**
 * HTTPS and mutual TLS: `stele serve --tls-cert/--tls-key` serves HTTPS, and with `--tls-client-ca`
 * a client certificate signed by that CA authenticates as `cert:<CN>` (how the Kubernetes API
 * server's audit webhook connects). Certificates are made with the openssl command line.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cleanup, type DataDir, initDir, SteleServer, tempDir } from './helpers/stele.js';

/** The openssl command line, which makes the certificates; without it the suite skips, except in CI. */
const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    if (process.env.CI === 'true')
      throw new Error('CI must run the TLS test: openssl is not on PATH (apt-get install -y openssl)');
    return false;
  }
})();
const skip = hasOpenssl ? false : 'openssl is not installed (apt-get install -y openssl)';

let dir: string;
let data: DataDir;
let server: SteleServer;
const file = (n: string) => join(dir, n);

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA, a server certificate for 127.0.0.1 and two client certificates (one from another CA). */
function makeCerts(): void {
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=test-ca',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
  );
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=rogue-ca',
    '-keyout',
    file('rogue.key'),
    '-out',
    file('rogue.pem'),
  );
  writeFileSync(file('server.ext'), 'subjectAltName=IP:127.0.0.1\n');
  const leaf = (name: string, cn: string, ca: string, ext?: string) => {
    openssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      `/CN=${cn}`,
      '-keyout',
      file(`${name}.key`),
      '-out',
      file(`${name}.csr`),
    );
    openssl(
      'x509',
      '-req',
      '-in',
      file(`${name}.csr`),
      '-CA',
      file(`${ca}.pem`),
      '-CAkey',
      file(`${ca}.key`),
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      file(`${name}.pem`),
      ...(ext ? ['-extfile', ext] : []),
    );
  };
  leaf('server', '127.0.0.1', 'ca', file('server.ext'));
  leaf('client', 'kube-apiserver', 'ca');
  leaf('intruder', 'kube-apiserver', 'rogue');
}

function post(
  path: string,
  body: unknown,
  client?: string,
  token?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const url = new URL(path, server.url);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        ca: readFileSync(file('ca.pem')),
        ...(client ? { cert: readFileSync(file(`${client}.pem`)), key: readFileSync(file(`${client}.key`)) } : {}),
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const k8sEvent = () => ({
  id: randomUUID(),
  actor: { id: 'alice@acme.test', type: 'human' },
  action: 'k8s.pods.delete',
  source: { kind: 'kubernetes', host: 'cluster-1' },
  outcome: 'success',
});

before(async () => {
  if (!hasOpenssl) return;
  dir = tempDir('stele-tls-');
  makeCerts();
  data = await initDir('tls.test/log');
  writeFileSync(
    join(data.dir, 'stele.policy.yaml'),
    `version: 1
roles:
  admin: { actions: [append, read, search, export, erase, hold, admin], vouch: ["*"] }
  writer: { actions: [append] }
  k8s: { members: ["cert:kube-apiserver"], actions: [append], vouch: ["k8s.*"] }
`,
  );
  const ca = readFileSync(file('ca.pem'));
  server = await SteleServer.start(data.dir, {
    args: ['--tls-cert', file('server.pem'), '--tls-key', file('server.key'), '--tls-client-ca', file('ca.pem')],
    healthy: (url) =>
      new Promise((resolve) => {
        request(url, { ca }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        })
          .on('error', () => resolve(false))
          .end();
      }),
  });
});

after(cleanup);

test('a client certificate from the configured CA authenticates as cert:<CN> and appends what its role allows', {
  skip,
}, async () => {
  assert.match(server.url, /^https:/);
  const r = await post('/v1/events', k8sEvent(), 'client');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const index = (r.body.entries as { index: number }[])[0]?.index as number;
  const got = await new Promise<Record<string, unknown>>((resolve, reject) => {
    // With a reader's token: a sealed leaf seals who wrote it with the event.
    const headers = { authorization: `Bearer ${data.token}` };
    request(new URL(`/v1/entries/${index}`, server.url), { ca: readFileSync(file('ca.pem')), headers }, (res) => {
      let t = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        t += d;
      });
      res.on('end', () => resolve(JSON.parse(t) as Record<string, unknown>));
    })
      .on('error', reject)
      .end();
  });
  assert.deepEqual(got.ingest, { principal: 'kube-apiserver', method: 'mtls' });
});

test('no certificate, or one from another CA, is not a principal; a bearer token still works over HTTPS', { skip }, async () => {
  assert.equal((await post('/v1/events', k8sEvent())).status, 401);
  assert.equal((await post('/v1/events', k8sEvent(), 'intruder')).status, 401);
  const emacs = { ...k8sEvent(), action: 'emacs.file.save', source: { kind: 'emacs' } };
  const refused = await post('/v1/events', emacs, 'client');
  assert.equal(refused.status, 403, JSON.stringify(refused.body));
  const byToken = await post('/v1/events', emacs, undefined, data.token);
  assert.equal(byToken.status, 200, JSON.stringify(byToken.body));
});
