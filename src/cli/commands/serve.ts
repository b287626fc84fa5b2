import { readFileSync } from 'node:fs';
import { createServer, isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { defaultDir, initDataDir } from '../../app/datadir.js';
import { runRetention } from '../../app/forget.js';
import { SERVER } from '../../app/self-event.js';
import { openStele } from '../../app/stele.js';
import { parseDuration } from '../../core/duration.js';
import { SteleError } from '../../core/errors.js';
import { buildServer, type ServerOptions } from '../../server/app.js';

/** One ingest worker per core beyond the main thread's, at least one. */
export const defaultIngestWorkers = () => Math.max(1, availableParallelism() - 1);

import { plural } from '../../core/plural.js';
import { intOption } from '../options.js';

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(listen);
  if (!m) throw new SteleError('bad_listen', `--listen must be host:port, got "${listen}"`);
  return { host: (m[1] as string).replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
}

/** `host:port` as --listen spells it (an IPv6 host in brackets). */
const hostPort = (host: string, port: number) => `${host.includes(':') ? `[${host}]` : host}:${port}`;

/** Why the server cannot listen on host:port, as one line; other errors pass through. */
export function listenError(host: string, port: number, err: unknown): unknown {
  const at = hostPort(host, port);
  switch ((err as NodeJS.ErrnoException).code) {
    case 'EADDRINUSE':
      return new SteleError('address_in_use', `${at} is already in use (another server?); choose another with --listen`);
    case 'EACCES':
      return new SteleError('listen_denied', `${at}: not allowed to listen there (ports below 1024 need privileges)`);
    case 'EADDRNOTAVAIL':
      return new SteleError('bad_listen', `${at}: ${host} is not an address of this machine`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new SteleError('bad_listen', `${at}: cannot resolve ${host}`);
    default:
      return err;
  }
}

/**
 * Fails with {@link listenError} when host:port cannot be listened on. The server listens last,
 * after the data directory is created, locked and opened; checking first means a busy port leaves
 * no new directory behind (a port taken in between is still reported by the same one line).
 */
export async function checkListen(host: string, port: number): Promise<void> {
  if (port === 0) return; // any free port: nothing to check
  const probe = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen({ host, port }, () => probe.close(() => resolve()));
    });
  } catch (err) {
    throw listenError(host, port, err);
  }
}

/** How long in-flight requests may take to finish after SIGTERM/SIGINT before connections are cut. */
const SHUTDOWN_GRACE_MS = 5000;

/** A positive duration option (e.g. 60s, 500ms), or a clear error naming it. */
function durationOption(name: string, v: string): number {
  let ms: number;
  try {
    ms = parseDuration(v);
  } catch (err) {
    throw new SteleError('bad_option', `${name}: ${(err as Error).message}`, { cause: err });
  }
  if (ms < 1) throw new SteleError('bad_option', `${name} must be longer than 0, got "${v}"`);
  return ms;
}

/** --trust-proxy: IP addresses or CIDRs (or loopback, linklocal, uniquelocal), comma-separated. */
export function trustProxyOption(v: string): string {
  const items = v.split(',').map((s) => s.trim());
  for (const item of items) {
    if (['loopback', 'linklocal', 'uniquelocal'].includes(item)) continue;
    const [addr = '', prefix, extra] = item.split('/');
    const family = isIP(addr);
    const max = family === 4 ? 32 : 128;
    if (family === 0 || extra !== undefined || (prefix !== undefined && !(/^\d+$/.test(prefix) && Number(prefix) <= max))) {
      throw new SteleError(
        'bad_option',
        `--trust-proxy: "${item}" is not an IP address or CIDR (e.g. 10.0.0.0/8, ::1, loopback)`,
      );
    }
  }
  return items.join(',');
}

export async function serveCommand(opts: {
  dir?: string;
  listen: string;
  origin?: string;
  checkpointInterval: string;
  bodyLimit: string;
  logLevel: string;
  ingestWorkers?: string;
  policy?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  rateLimit: string;
  anonymousLimit: string;
  denialLimit: string;
  requestTimeout: string;
  headersTimeout: string;
  idleTimeout: string;
  keepAliveTimeout: string;
  maxConnections: string;
  maxQueuedEvents: string;
  maxBodyMemory: string;
  trustProxy?: string;
}): Promise<void> {
  if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) throw new SteleError('bad_tls', '--tls-cert and --tls-key go together');
  if (opts.tlsClientCa && !opts.tlsCert) throw new SteleError('bad_tls', '--tls-client-ca needs --tls-cert and --tls-key');
  const read = (flag: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new SteleError('bad_tls', `${flag} ${file}: ${(err as Error).message}`, { cause: err });
    }
  };
  const tls =
    opts.tlsCert && opts.tlsKey
      ? {
          cert: read('--tls-cert', opts.tlsCert),
          key: read('--tls-key', opts.tlsKey),
          ...(opts.tlsClientCa ? { clientCa: read('--tls-client-ca', opts.tlsClientCa) } : {}),
        }
      : undefined;
  const { host, port } = parseListen(opts.listen);
  const maxQueuedEntries = intOption('--max-queued-events', opts.maxQueuedEvents, 1);
  // Every option is checked before the data directory is touched.
  const serverOptions: ServerOptions = {
    bodyLimit: intOption('--body-limit', opts.bodyLimit, 1),
    logger: { level: opts.logLevel },
    rateLimit: intOption('--rate-limit', opts.rateLimit, 1),
    anonymousLimit: intOption('--anonymous-limit', opts.anonymousLimit, 1),
    denialLimit: intOption('--denial-limit', opts.denialLimit, 1),
    requestTimeout: durationOption('--request-timeout', opts.requestTimeout),
    headersTimeout: durationOption('--headers-timeout', opts.headersTimeout),
    idleTimeout: durationOption('--idle-timeout', opts.idleTimeout),
    keepAliveTimeout: durationOption('--keep-alive-timeout', opts.keepAliveTimeout),
    maxConnections: intOption('--max-connections', opts.maxConnections, 1),
    maxBodyMemory: intOption('--max-body-memory', opts.maxBodyMemory, 1),
    ...(opts.trustProxy ? { trustProxy: trustProxyOption(opts.trustProxy) } : {}),
    ...(tls ? { tls } : {}),
  };
  await checkListen(host, port);
  const init = await initDataDir(opts.dir ?? defaultDir(), opts.origin);
  const stele = await openStele(init.dir, {
    checkpointIntervalMs: intOption('--checkpoint-interval', opts.checkpointInterval, 1),
    ingestWorkers: opts.ingestWorkers === undefined ? defaultIngestWorkers() : intOption('--ingest-workers', opts.ingestWorkers),
    maxQueuedEntries,
    ...(opts.policy ? { policyFile: opts.policy } : {}),
  });
  const app = await buildServer(stele, serverOptions);
  await stele.recordPolicy(SERVER, 'start');
  // SIGHUP reloads the policy, as `stele policy reload` does; a bad file is refused and logged.
  process.on('SIGHUP', () => {
    stele
      .reloadPolicy(SERVER)
      .then((p) => app.log.info({ policy: p }, 'policy reloaded'))
      .catch((err: unknown) => app.log.error({ err: (err as Error).message }, 'policy reload refused'));
  });
  // The retention job, every `retention.schedule` of the policy (`stele retention run` for now).
  const expire = () =>
    stele
      .exclusive(() => runRetention(stele.forget, SERVER))
      .then((r) => {
        if (r.expiredKeys || r.held.length) app.log.info({ retention: r }, 'retention run');
      })
      .catch((err: unknown) => app.log.error({ err }, 'retention run failed'));
  // Re-armed after each run, so a reloaded policy's schedule takes effect.
  let timer = setTimeout(function tick() {
    void expire().finally(() => {
      timer = setTimeout(tick, stele.policy.retention.scheduleMs);
      timer.unref();
    });
  }, stele.policy.retention.scheduleMs);
  timer.unref();
  let closing = false;
  const shutdown = async () => {
    if (closing) return;
    closing = true;
    clearTimeout(timer);
    // In-flight requests get a grace period; then every connection is cut, so a client that stopped
    // reading (a stalled export, a keep-alive socket) cannot hold the server up.
    setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS).unref();
    await app.close();
    await stele.close();
    process.exit(0);
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  let address: string;
  try {
    address = await app.listen({ host, port });
  } catch (err) {
    // Taken since checkListen: close what was opened (workers, lock) and say it in one line.
    clearTimeout(timer);
    await app.close();
    await stele.close();
    throw listenError(host, port, err);
  }
  const url = address.replace('0.0.0.0', '127.0.0.1');
  console.log(`Stele is listening on ${url}${init.created ? ' (new data directory)' : ''}`);
  console.log(`  data:         ${stele.dir}`);
  console.log(`  origin:       ${stele.config.origin}`);
  console.log(`  verifier key: ${stele.vkey}`);
  console.log(`  admin key:    ${stele.tokenFile}`);
  console.log(`  policy:       ${stele.policy.source} (sha256 ${stele.policy.sha256.slice(0, 16)}…)`);
  console.log(`  log size:     ${plural(stele.log.size, 'entry', 'entries')}`);
}
