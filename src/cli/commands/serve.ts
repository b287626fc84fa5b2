import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { defaultDir, initDataDir } from '../../datadir.js';
import { SteleError } from '../../errors.js';
import { runRetention } from '../../keys/forget.js';
import { SERVER } from '../../keys/self-event.js';
import { buildServer } from '../../server/app.js';
import { openStele } from '../../stele.js';

/** One ingest worker per core beyond the main thread's, at least one. */
export const defaultIngestWorkers = () => Math.max(1, availableParallelism() - 1);

import { intOption } from '../options.js';

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(listen);
  if (!m) throw new SteleError('bad_listen', `--listen must be host:port, got "${listen}"`);
  return { host: (m[1] as string).replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
}

/** How long in-flight requests may take to finish after SIGTERM/SIGINT before connections are cut. */
const SHUTDOWN_GRACE_MS = 5000;

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
  denialLimit: string;
}): Promise<void> {
  if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) throw new SteleError('bad_tls', '--tls-cert and --tls-key go together');
  if (opts.tlsClientCa && !opts.tlsCert) throw new SteleError('bad_tls', '--tls-client-ca needs --tls-cert and --tls-key');
  const read = (flag: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new SteleError('bad_tls', `${flag} ${file}: ${(err as Error).message}`);
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
  const init = await initDataDir(opts.dir ?? defaultDir(), opts.origin);
  const stele = await openStele(init.dir, {
    checkpointIntervalMs: intOption('--checkpoint-interval', opts.checkpointInterval, 1),
    ingestWorkers: opts.ingestWorkers === undefined ? defaultIngestWorkers() : intOption('--ingest-workers', opts.ingestWorkers),
    ...(opts.policy ? { policyFile: opts.policy } : {}),
  });
  const app = await buildServer(stele, {
    bodyLimit: intOption('--body-limit', opts.bodyLimit, 1),
    logger: { level: opts.logLevel },
    rateLimit: intOption('--rate-limit', opts.rateLimit, 1),
    denialLimit: intOption('--denial-limit', opts.denialLimit, 1),
    ...(tls ? { tls } : {}),
  });
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
  const address = await app.listen({ host, port });
  const url = address.replace('0.0.0.0', '127.0.0.1');
  console.log(`Stele is listening on ${url}${init.created ? ' (new data directory)' : ''}`);
  console.log(`  data:         ${stele.dir}`);
  console.log(`  origin:       ${stele.config.origin}`);
  console.log(`  verifier key: ${stele.vkey}`);
  console.log(`  admin key:    ${stele.tokenFile}`);
  console.log(`  policy:       ${stele.policy.source} (sha256 ${stele.policy.sha256.slice(0, 16)}…)`);
  console.log(`  log size:     ${stele.log.size} entries`);
}
