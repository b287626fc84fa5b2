/**
 * A throwaway S3 with Object Lock for tests: a single-node Ceph cluster (one monitor, one OSD on
 * memstore, RADOS Gateway) on 127.0.0.1, in a temporary directory, with nothing kept outside it
 * (the recipe in ../shared/recipes/s3-object-lock-and-postgres.md, measured on these machines:
 * about 2–3 s to ready). Needs Debian's ceph-mon, ceph-osd and radosgw, and root (as CI runs).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { quietAwsSdk } from '../../src/core/config/env.js';
import { sleep, tempDir } from './stele.js';

export const RGW_BINARIES = ['/usr/bin/ceph-mon', '/usr/bin/ceph-osd', '/usr/bin/radosgw', '/usr/bin/monmaptool'];
export const RGW_INSTALL = 'apt-get install ceph-mon ceph-osd radosgw';

/** Why the RGW suites cannot run here, or null when they can. */
export function rgwProblem(): string | null {
  const missing = RGW_BINARIES.filter((b) => !existsSync(b));
  if (missing.length) return `${missing.join(', ')} not installed (${RGW_INSTALL})`;
  if (process.getuid?.() !== 0) return 'the Ceph daemons are started as root here (run the suite as root)';
  return null;
}

/** A free TCP port on 127.0.0.1 (there is a small race until the daemon binds it). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export const RGW_ACCESS_KEY = 'STELETESTACCESSKEY01';
export const RGW_SECRET_KEY = 'stele-test-secret-key-0000000000000000001';

export class Rgw {
  private constructor(
    readonly dir: string,
    readonly endpoint: string,
    private readonly procs: ChildProcess[],
  ) {}

  /** An S3 client of this gateway's user (the bucket's owner), for tests to set up and attack buckets. */
  client(): S3Client {
    quietAwsSdk();
    return new S3Client({
      endpoint: this.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: RGW_ACCESS_KEY, secretAccessKey: RGW_SECRET_KEY },
      // RGW 16 refuses the SDK's default aws-chunked uploads (the recipe's pitfall).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  /** The environment a Stele process needs to reach this gateway (credentials, region, endpoint). */
  get env(): Record<string, string> {
    return {
      AWS_ACCESS_KEY_ID: RGW_ACCESS_KEY,
      AWS_SECRET_ACCESS_KEY: RGW_SECRET_KEY,
      AWS_REGION: 'us-east-1',
      STELE_S3_ENDPOINT: this.endpoint,
    };
  }

  static async start(): Promise<Rgw> {
    const d = tempDir('stele-rgw-');
    const [mon, rgw] = [await freePort(), await freePort()];
    const fsid = randomUUID();
    for (const sub of ['mon/a', 'osd/0', 'run', 'log', 'rgw']) mkdirSync(join(d, sub), { recursive: true });
    const conf = join(d, 'ceph.conf');
    writeFileSync(
      conf,
      `[global]
fsid = ${fsid}
mon_host = v2:127.0.0.1:${mon}
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc
paxos_propose_interval = 0.1
run_dir = ${d}/run
crash_dir = ${d}/run
admin_socket = ${d}/run/$name.asok
pid_file = ${d}/run/$name.pid
log_file = ${d}/log/$name.log
mon_cluster_log_to_file = false
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
mon_warn_on_pool_no_redundancy = false
mon_data_avail_warn = 1
mon_data_avail_crit = 0
[mon.a]
mon_data = ${d}/mon/a
[osd.0]
osd_data = ${d}/osd/0
osd_objectstore = memstore
memstore_device_bytes = 4294967296
[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:${rgw}
rgw_data = ${d}/rgw
`,
    );
    const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: 'pipe', timeout: 60_000 }).toString();
    const procs: ChildProcess[] = [];
    const daemon = (cmd: string, args: string[]) => {
      const p = spawn(cmd, args, { stdio: 'ignore' });
      procs.push(p);
      return p;
    };
    const r = new Rgw(d, `http://127.0.0.1:${rgw}`, procs);
    try {
      run('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${mon}]`, join(d, 'monmap')]);
      run('ceph-mon', ['-c', conf, '-i', 'a', '--mkfs', '--monmap', join(d, 'monmap')]);
      daemon('ceph-mon', ['-c', conf, '-i', 'a', '-f']);
      const osdUuid = randomUUID();
      run('ceph', ['-c', conf, '--connect-timeout', '30', 'osd', 'new', osdUuid]);
      run('ceph-osd', ['-c', conf, '-i', '0', '--mkfs', '--osd-uuid', osdUuid]);
      daemon('ceph-osd', ['-c', conf, '-i', '0', '-f']);
      daemon('radosgw', ['-c', conf, '-n', 'client.rgw.a', '-f']);
      const deadline = Date.now() + 90_000;
      for (;;) {
        try {
          await fetch(`${r.endpoint}/`, { signal: AbortSignal.timeout(2000) });
          break;
        } catch (err) {
          if (Date.now() > deadline)
            throw new Error(`radosgw did not answer in 90 s (${(err as Error).message}); logs in ${d}/log`);
          await sleep(100);
        }
      }
      run('radosgw-admin', [
        '-c',
        conf,
        'user',
        'create',
        '--uid=stele',
        '--display-name=stele',
        `--access-key=${RGW_ACCESS_KEY}`,
        `--secret-key=${RGW_SECRET_KEY}`,
      ]);
    } catch (err) {
      await r.stop();
      throw err;
    }
    return r;
  }

  /** SIGKILL of the three daemons (a clean stop takes seconds and keeps nothing we need). */
  async stop(): Promise<void> {
    await Promise.all(
      this.procs.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            p.once('exit', () => resolve());
            p.kill('SIGKILL');
          }),
      ),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A TCP proxy to `target` that can be cut and restored: an outage of the bucket, as the mirror
 * sees it, without restarting the gateway. While cut it refuses connections and drops open ones.
 */
export class Outage {
  private readonly sockets = new Set<Socket>();
  private isCut = false;
  private readonly server: Server;
  endpoint = '';

  private constructor(target: URL) {
    this.server = createServer((client) => {
      if (this.isCut) return void client.destroy();
      const upstream = connect(Number(target.port), target.hostname);
      this.sockets.add(client).add(upstream);
      const drop = () => {
        for (const s of [client, upstream]) {
          s.destroy();
          this.sockets.delete(s);
        }
      };
      client.on('error', drop).on('close', drop).pipe(upstream);
      upstream.on('error', drop).on('close', drop).pipe(client);
    });
  }

  static async start(target: string): Promise<Outage> {
    const o = new Outage(new URL(target));
    await new Promise<void>((r) => o.server.listen(0, '127.0.0.1', r));
    o.endpoint = `http://127.0.0.1:${(o.server.address() as { port: number }).port}`;
    return o;
  }

  cut(): void {
    this.isCut = true;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.isCut = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
