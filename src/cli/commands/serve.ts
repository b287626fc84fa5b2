import { availableParallelism } from 'node:os';
import { defaultDir, initDataDir } from '../../datadir.js';
import { SteleError } from '../../errors.js';
import { runRetention } from '../../keys/forget.js';
import { SCHEDULER } from '../../keys/self-event.js';
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

export async function serveCommand(opts: {
  dir?: string;
  listen: string;
  origin?: string;
  checkpointInterval: string;
  bodyLimit: string;
  logLevel: string;
  ingestWorkers?: string;
  policy?: string;
}): Promise<void> {
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
  });
  // The retention job, every `retention.schedule` of the policy (`stele retention run` for now).
  const expire = () =>
    stele
      .exclusive(() => runRetention(stele.forget, SCHEDULER))
      .then((r) => {
        if (r.expiredKeys || r.held.length) app.log.info({ retention: r }, 'retention run');
      })
      .catch((err: unknown) => app.log.error({ err }, 'retention run failed'));
  const timer = setInterval(expire, stele.policy.retention.scheduleMs);
  timer.unref();
  let closing = false;
  const shutdown = async () => {
    if (closing) return;
    closing = true;
    clearInterval(timer);
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
  console.log(`  admin token:  ${stele.tokenFile}`);
  console.log(`  policy:       ${stele.policy.source} (sha256 ${stele.policy.sha256.slice(0, 16)}…)`);
  console.log(`  log size:     ${stele.log.size} entries`);
}
