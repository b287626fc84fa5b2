import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ALERT_ACTION, Alerting } from '../../app/alerts.js';
import { initDataDir } from '../../app/datadir.js';
import { runRetention } from '../../app/forget.js';
import { preparePostgres } from '../../app/postgres.js';
import { SERVER, selfEvent } from '../../app/self-event.js';
import { openStele, openSteleOn, type Stele, type SteleOptions } from '../../app/stele.js';
import { TIMESTAMP_ACTION, Timestamping } from '../../app/timestamping.js';
import { Validator } from '../../app/validation.js';
import { Witnessing } from '../../app/witnessing.js';
import { processEnv } from '../../core/config/env.js';
import { formatListen } from '../../core/config/parse.js';
import { type Flags, type MirrorSettings, resolveServe } from '../../core/config/resolve.js';
import { LIMITS } from '../../core/config/settings.js';
import { SteleError } from '../../core/errors.js';
import { plural } from '../../core/plural.js';
import { buildServer, type ServerOptions } from '../../server/app.js';
import { DirTileSource } from '../../storage/fs/tile-source.js';
import { Bucket } from '../../storage/s3/bucket.js';
import { LogMirror, mirrorRetention } from '../../storage/s3/mirror.js';
import { noteSize } from '../../tlog/checkpoint.js';
import type { TileSource } from '../../tlog/verify.js';

/** How often new checkpoints go to the witnesses (about as often as the log signs one under load). */
const WITNESS_INTERVAL_MS = 1000;

/** Why the server cannot listen on host:port, as one line; other errors pass through. */
export function listenError(host: string, port: number, err: unknown): unknown {
  const at = formatListen({ host, port });
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

/**
 * The S3 mirror of the data directory's log (--mirror). A bucket without Object Lock is refused
 * before the server starts; one that cannot be reached yet is not (the mirror catches up once it can).
 */
async function startMirror(tiles: TileSource, m: MirrorSettings, stele: Stele): Promise<LogMirror> {
  const bucket = new Bucket(m.location, { region: m.region, ...(m.endpoint === undefined ? {} : { endpoint: m.endpoint }) });
  try {
    await bucket.requireObjectLock('--mirror', (err) =>
      process.stderr.write(`stele serve: ${err.message}; the mirror will retry\n`),
    );
  } catch (err) {
    bucket.close();
    throw err;
  }
  const retainMs = mirrorRetention(
    m.retainMs,
    stele.policy.retention.tiers.map((t) => t.keepMs),
  );
  return new LogMirror(tiles, bucket, stele.verifier, {
    retainMs,
    legalHold: m.legalHold,
  });
}

/** `stele serve`: every option is resolved and checked (settings.ts) before the data directory is touched. */
export async function serveCommand(flags: Flags): Promise<void> {
  const settings = resolveServe(flags, processEnv());
  const read = (flag: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new SteleError('bad_tls', `${flag} ${file}: ${(err as Error).message}`, { cause: err });
    }
  };
  const t = settings.tls;
  const tls = t && {
    cert: read('--tls-cert', t.cert),
    key: read('--tls-key', t.key),
    ...(t.clientCa ? { clientCa: read('--tls-client-ca', t.clientCa) } : {}),
  };
  const serverOptions: ServerOptions = { ...settings.http, logger: { level: settings.logLevel }, ...(tls ? { tls } : {}) };
  const { host, port } = settings.listen;
  await checkListen(host, port);
  const env = processEnv();
  const shared =
    settings.postgres && (await preparePostgres(settings.dir, settings.origin, settings.postgres, env, settings.policy));
  const init = shared ? shared.init : await initDataDir(settings.dir, settings.origin, env);
  const options: SteleOptions = {
    checkpointIntervalMs: settings.checkpointIntervalMs,
    ingestWorkers: settings.ingestWorkers,
    maxQueuedEntries: settings.maxQueuedEvents,
    queryPartition: settings.queryPartition,
    ...(settings.policy ? { policyFile: settings.policy } : {}),
  };
  const stele = shared ? await openSteleOn(shared.backend, init.dir, options) : await openStele(init.dir, options);
  const tiles = shared ? shared.backend.tiles() : new DirTileSource(join(init.dir, 'log'));
  const mirror = settings.mirror ? await startMirror(tiles, settings.mirror, stele) : undefined;
  const validator = new Validator(stele, SERVER, settings.validateFullEveryMs);
  let reportWitness = (err: Error): void => void process.stderr.write(`stele serve: ${err.message}\n`);
  let reportAlert = (msg: string): void => void process.stderr.write(`stele serve: ${msg}\n`);
  const alerting = new Alerting({
    policy: () => stele.policy,
    record: async (firing) => (await stele.append([selfEvent(ALERT_ACTION, SERVER, { ...firing })], SERVER))[0]?.index ?? -1,
    env,
    origin: stele.config.origin,
    report: (msg) => reportAlert(msg),
  });
  stele.observe(alerting);
  const w = settings.witnesses;
  const witnessing = w && new Witnessing(stele.log, w.list, w.quorum, (err) => reportWitness(err));
  let reportTsa = (msg: string): void => void process.stderr.write(`stele serve: ${msg}\n`);
  const tsa = settings.tsa;
  const timestamping =
    tsa &&
    new Timestamping({
      tsas: tsa.urls,
      checkpoint: () => {
        const note = witnessing ? witnessing.checkpoint : stele.log.checkpoint.note;
        return { note, size: noteSize(note) };
      },
      record: async (r) => (await stele.append([selfEvent(TIMESTAMP_ACTION, SERVER, { ...r })], SERVER))[0]?.index ?? -1,
      report: (msg) => reportTsa(msg),
    });
  const app = await buildServer(stele, {
    ...serverOptions,
    ...(timestamping ? { timestamping } : {}),
    ...(mirror ? { mirrorStatus: () => mirror.status() } : {}),
    validationStatus: () => validator.last,
    alerts: alerting,
    ...(witnessing
      ? {
          witnessing: {
            checkpoint: () => witnessing.checkpoint,
            status: () => witnessing.status(),
            cosignedAt: () => witnessing.cosignedAt,
            quorum: witnessing.quorum,
          },
        }
      : {}),
  });
  reportWitness = (err) => app.log.warn({ err: err.message }, 'witness');
  reportAlert = (msg) => app.log.warn({ alert: msg }, 'alert');
  reportTsa = (msg) => app.log.warn({ tsa: msg }, 'timestamp');
  mirror?.start(settings.mirror?.intervalMs ?? 1000, app.log);
  witnessing?.start(WITNESS_INTERVAL_MS);
  if (timestamping && tsa) timestamping.start(tsa.intervalMs);
  await stele.recordPolicy(SERVER, 'start');
  // SIGHUP reloads the policy, as `stele policy reload` does; a bad file is refused and logged.
  process.on('SIGHUP', () => {
    stele
      .reloadPolicy(SERVER)
      .then((p) => app.log.info({ policy: p }, 'policy reloaded'))
      .catch((err: unknown) => app.log.error({ err: (err as Error).message }, 'policy reload refused'));
  });
  // The retention job, every `retention.schedule` of the policy (`stele retention run` for now).
  const expire = async () =>
    // Nodes sharing a log: the lease holder runs it.
    stele.leading &&
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
  // Self-validation, every validateInterval (after the previous run ends); a failure is logged too.
  let validating: Promise<unknown> = Promise.resolve();
  let validateTimer = setTimeout(function validate() {
    validating = (stele.leading ? validator.run() : Promise.resolve({ ok: true }))
      .then((r) => {
        if (!r.ok) app.log.error({ validation: r }, 'validation FAILED');
      })
      .catch((err: unknown) => app.log.error({ err }, 'validation could not run'))
      .finally(() => {
        if (closing) return;
        validateTimer = setTimeout(validate, settings.validateIntervalMs);
        validateTimer.unref();
      });
  }, settings.validateIntervalMs);
  validateTimer.unref();
  let closing = false;
  const shutdown = async () => {
    if (closing) return;
    closing = true;
    clearTimeout(timer);
    clearTimeout(validateTimer);
    await validating;
    // In-flight requests get a grace period; then every connection is cut, so a client that stopped
    // reading (a stalled export, a keep-alive socket) cannot hold the server up.
    setTimeout(() => app.server.closeAllConnections(), LIMITS.shutdownGraceMs).unref();
    await app.close();
    await mirror?.stop();
    await witnessing?.stop();
    await timestamping?.stop();
    await alerting.stop();
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
    await mirror?.stop();
    await witnessing?.stop();
    await stele.close();
    throw listenError(host, port, err);
  }
  const url = address.replace('0.0.0.0', '127.0.0.1');
  console.log(`Stele is listening on ${url}${init.created ? ' (new data directory)' : ''}`);
  console.log(
    `  data:         ${stele.dir}${shared ? ` (configuration; the log is in PostgreSQL${settings.postgres?.schema ? `, schema ${settings.postgres.schema}` : ''})` : ''}`,
  );
  console.log(`  origin:       ${stele.config.origin}`);
  console.log(`  verifier key: ${stele.vkey}`);
  console.log(`  admin key:    ${stele.tokenFile}`);
  console.log(`  policy:       ${stele.policy.source} (sha256 ${stele.policy.sha256.slice(0, 16)}…)`);
  console.log(`  log size:     ${plural(stele.log.size, 'entry', 'entries')}`);
}
