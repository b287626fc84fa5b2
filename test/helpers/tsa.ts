/**
 * A real RFC 3161 time-stamping authority for tests: `openssl ts -reply` behind a small HTTP
 * server on 127.0.0.1 (POST a TimeStampReq, get a TimeStampResp), with its own CA and a TSA
 * certificate carrying the critical time-stamping extended key usage.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './stele.js';

const run = promisify(execFile);

export const TSA_INSTALL = 'apt-get install openssl';

/** Why the TSA cannot be started here, or null. */
export function tsaProblem(): string | null {
  return spawnSync('openssl', ['version']).error ? `openssl is not installed (${TSA_INSTALL})` : null;
}

export class Tsa {
  private constructor(
    private readonly server: Server,
    readonly url: string,
    /** The CA certificate (PEM) that issued the TSA's certificate: what verifiers trust. */
    readonly caPem: string,
    readonly dir: string,
  ) {}

  /** Requests answered so far. */
  requests = 0;

  static async start(name = 'Stele Test TSA'): Promise<Tsa> {
    const dir = tempDir('tsa-');
    const at = (f: string) => join(dir, f);
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    ssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-subj',
      `/CN=${name} CA`,
      '-days',
      '3650',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );
    ssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'tsa.key',
      '-out',
      'tsa.csr',
      '-subj',
      `/CN=${name}`,
    );
    writeFileSync(
      at('ext.cnf'),
      'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n',
    );
    ssl(
      'x509',
      '-req',
      '-in',
      'tsa.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'tsa.crt',
      '-days',
      '3650',
      '-extfile',
      'ext.cnf',
    );
    writeFileSync(at('tsaserial'), '01\n');
    writeFileSync(
      at('tsa.cnf'),
      `[ tsa ]
default_tsa = tsa1
[ tsa1 ]
dir = ${dir}
serial = $dir/tsaserial
crypto_device = builtin
signer_cert = $dir/tsa.crt
certs = $dir/ca.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
`,
    );
    let n = 0;
    let queue: Promise<unknown> = Promise.resolve();
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        // One openssl at a time: it increments the serial file.
        queue = queue.then(async () => {
          const k = n++;
          writeFileSync(at(`q${k}.tsq`), Buffer.concat(chunks));
          try {
            await run(
              'openssl',
              ['ts', '-reply', '-config', at('tsa.cnf'), '-queryfile', at(`q${k}.tsq`), '-out', at(`r${k}.tsr`)],
              { cwd: dir },
            );
            tsa.requests++;
            res.writeHead(200, { 'content-type': 'application/timestamp-reply' }).end(readFileSync(at(`r${k}.tsr`)));
          } catch (err) {
            res.writeHead(500).end(String(err));
          }
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const { port } = server.address() as { port: number };
    const tsa = new Tsa(server, `http://127.0.0.1:${port}/`, readFileSync(at('ca.crt'), 'utf8'), dir);
    return tsa;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
