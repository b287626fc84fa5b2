import { defaultDir, initDataDir } from '../../datadir.js';
import { SteleError } from '../../errors.js';
import { buildServer } from '../../server/app.js';
import { openStele } from '../../stele.js';
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
}): Promise<void> {
  const { host, port } = parseListen(opts.listen);
  const init = await initDataDir(opts.dir ?? defaultDir(), opts.origin);
  const stele = await openStele(init.dir, {
    checkpointIntervalMs: intOption('--checkpoint-interval', opts.checkpointInterval, 1),
  });
  const app = await buildServer(stele, {
    bodyLimit: intOption('--body-limit', opts.bodyLimit, 1),
    ...(opts.ingestWorkers === undefined ? {} : { ingestWorkers: intOption('--ingest-workers', opts.ingestWorkers) }),
    logger: { level: opts.logLevel },
  });
  let closing = false;
  const shutdown = async () => {
    if (closing) return;
    closing = true;
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
  console.log(`  log size:     ${stele.log.size} entries`);
}
