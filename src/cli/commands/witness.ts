import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { formatListen, parseListen } from '../../core/config/parse.js';
import { writeDurably } from '../../core/durable.js';
import { SteleError } from '../../core/errors.js';
import { buildWitnessServer } from '../../server/witness.js';
import { newCosigner } from '../../tlog/cosignature.js';
import { generateKey, newVerifier, type Verifier } from '../../tlog/note.js';
import { SqliteWitnessState } from '../../witness/state.js';
import { Witness } from '../../witness/witness.js';

export interface WitnessOptions {
  dir?: string;
  name?: string;
  log?: string[];
  listen?: string;
  logLevel?: string;
}

/**
 * `stele witness`: cosigns the checkpoints of the logs it is given (--log, their verifier keys;
 * a log's origin is its key's name, as Stele names them) after checking each extends the last it
 * cosigned. Its directory keeps its key (witness.key, made on first start) and what it cosigned.
 */
export async function witnessCommand(opts: WitnessOptions): Promise<void> {
  const dir = resolve(opts.dir ?? 'stele-witness');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keyFile = join(dir, 'witness.key');
  if (!existsSync(keyFile)) {
    const name = opts.name ?? `${hostname()}/witness`;
    let key: { skey: string };
    try {
      key = generateKey(name);
    } catch (err) {
      throw new SteleError('bad_option', `--name ${JSON.stringify(name)}: ${(err as Error).message}`);
    }
    await writeDurably(keyFile, `${key.skey}\n`, 0o600);
  }
  const cosigner = newCosigner(readFileSync(keyFile, 'utf8').trim());
  if (opts.name && opts.name !== cosigner.name)
    throw new SteleError('bad_option', `--name ${opts.name}: this witness is named ${cosigner.name} (its key in ${keyFile})`);
  const logs = new Map<string, Verifier[]>();
  for (const vkey of opts.log ?? []) {
    let v: Verifier;
    try {
      v = newVerifier(vkey);
    } catch (err) {
      throw new SteleError('bad_option', `--log ${vkey}: ${(err as Error).message}`);
    }
    logs.set(v.name, [...(logs.get(v.name) ?? []), v]);
  }
  if (logs.size === 0) throw new SteleError('bad_option', 'give the verifier key of each log to witness with --log <vkey>');
  const listen = parseListen(opts.listen ?? '127.0.0.1:7380', '--listen');
  const state = new SqliteWitnessState(join(dir, 'witness.db'));
  const app = await buildWitnessServer(new Witness(cosigner, logs, state), {
    logger: { level: opts.logLevel ?? 'warn' },
    status: () => ({ name: cosigner.name, vkey: cosigner.vkey, logs: state.all() }),
  });
  const address = await app.listen({ host: listen.host, port: listen.port });
  const stop = async () => {
    await app.close();
    state.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  console.log(`Stele witness is listening on ${address.replace('0.0.0.0', '127.0.0.1')} (${formatListen(listen)})`);
  console.log(`  cosigner key: ${cosigner.vkey}`);
  console.log(`  logs:         ${[...logs.keys()].join(', ')}`);
}
