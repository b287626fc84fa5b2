import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { ApiKeyStore } from '../auth/apikeys.js';
import { type Env, envValue, processEnv } from '../core/config/env.js';
import { writeDurably } from '../core/durable.js';
import { SteleError } from '../core/errors.js';
import { generateMasterKey, masterKeyPath } from '../keys/master.js';
import { STARTER_POLICY_YAML } from '../policy/policy.js';
import { FsBackend } from '../storage/fs/backend.js';
import { generateKey, newSigner, newVerifier, type Signer, type Verifier } from '../tlog/note.js';

/**
 * The embedded data directory:
 *
 *     stele.json        origin and format version
 *     keys/log.key      the log's Ed25519 signing key (signed-note format, mode 0600)
 *     keys/log.vkey     its verifier key, the string auditors configure
 *     keys/master.key   the master key that wraps data keys (mode 0600; absent with $STELE_MASTER_KEY)
 *     keys/keystore.db  the data keys (wrapped), their tombstones, and legal holds
 *     stele.policy.yaml the policy (retention tiers), unless --policy names another file
 *     index/query/      the query store: a cache of the readable entries, rebuilt by "stele reindex"
 *     auth/apikeys.json the API keys: hashes, names, roles, restrictions, revocations
 *     admin.token       the first admin API key in the clear (mode 0600), for the local operator
 *     log/ wal/ state/  the log itself (see FsLogStorage)
 *     LOCK              the pid of the process that has the directory open for writing
 *
 * Everything in it is owner-only (folders 0700, files 0600): the query store holds searchable
 * fields in the clear, the journals ids, the keys everything else. `restrictDataDir` enforces it
 * on init and on every open, for directories that already existed too.
 */
export interface DataDirConfig {
  version: 1;
  origin: string;
  /** 'postgres': the directory configures nodes of a log kept in PostgreSQL (src/app/postgres.ts), never an embedded one. */
  storage?: 'postgres';
}

export interface InitResult {
  dir: string;
  origin: string;
  vkey: string;
  /** The admin token (from admin.token when the directory already existed and still has it). */
  token?: string;
  tokenFile: string;
  created: boolean;
}

export const defaultOrigin = () => `${hostname()}/stele`;

const paths = (dir: string) => ({
  config: join(dir, 'stele.json'),
  key: join(dir, 'keys', 'log.key'),
  vkey: join(dir, 'keys', 'log.vkey'),
  adminToken: join(dir, 'admin.token'),
  policy: join(dir, 'stele.policy.yaml'),
});

/** The policy file a data directory uses unless told otherwise. */
export const defaultPolicyPath = (dir: string) => paths(resolve(dir)).policy;

export function isDataDir(dir: string): boolean {
  return existsSync(paths(dir).config);
}

/** Modes of what Stele creates in a data directory: nobody but the owner may read or list it. */
export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;

/**
 * Takes group and other permissions from a data directory and what it holds; returns the paths
 * changed. The directory's own 0700 already closes everything below it, so when it was closed
 * this looks only at its direct entries (cheap on every open); when it was open to others, it
 * walks the whole tree once (tiles included). Symbolic links are left alone (chmod would follow
 * them out of the directory). Errors (a directory owned by someone else) are reported, not thrown:
 * read-only tools still work.
 */
export function restrictDataDir(dir: string): { changed: string[]; failed: string[] } {
  const changed: string[] = [];
  const failed: string[] = [];
  const fix = (path: string, mode: number, isDir: boolean): void => {
    const want = isDir ? (mode & 0o7777 & ~0o077) | 0o700 : mode & 0o7777 & ~0o077;
    if ((mode & 0o7777) === want) return;
    try {
      chmodSync(path, want);
      changed.push(path);
    } catch (err) {
      failed.push(`${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  let top: ReturnType<typeof lstatSync>;
  try {
    top = lstatSync(dir);
  } catch {
    return { changed, failed };
  }
  if (!top.isDirectory()) return { changed, failed };
  const deep = (top.mode & 0o077) !== 0;
  fix(dir, top.mode, true);
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop() as string;
    let names: string[];
    try {
      names = readdirSync(d);
    } catch (err) {
      failed.push(`${d}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      continue;
    }
    for (const n of names) {
      const path = join(d, n);
      let st: ReturnType<typeof lstatSync>;
      try {
        st = lstatSync(path);
      } catch {
        continue; // removed meanwhile
      }
      if (st.isSymbolicLink()) continue;
      fix(path, st.mode, st.isDirectory());
      if (st.isDirectory() && deep) stack.push(path);
    }
  }
  return { changed, failed };
}

/** restrictDataDir, saying on stderr what it had to do (an operator should know the directory was open). */
function restrictAndWarn(dir: string): void {
  const { changed, failed } = restrictDataDir(dir);
  if (changed.length) {
    process.stderr.write(
      `stele: ${dir} was readable by other users; removed group and other permissions from ${changed.length} path(s)\n`,
    );
  }
  if (failed.length) {
    process.stderr.write(
      `stele: warning: could not make ${dir} owner-only (${failed.slice(0, 3).join('; ')}${failed.length > 3 ? '; ...' : ''})\n`,
    );
  }
}

/** The signing key of a new log: named by the origin, so the signed-note rules for names decide what an origin may be. */
function newLogKey(origin: string): { skey: string; vkey: string } {
  try {
    return generateKey(origin);
  } catch (err) {
    throw new SteleError('bad_origin', `origin ${JSON.stringify(origin)} cannot name a signing key: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/**
 * Creates a data directory with a fresh signing key and admin token; a no-op if it exists. With
 * $STELE_MASTER_KEY set in `env`, no master key is written into it.
 */
export async function initDataDir(dir: string, origin = defaultOrigin(), env: Env = processEnv()): Promise<InitResult> {
  dir = resolve(dir);
  const p = paths(dir);
  // A new directory's signing key is made first: an origin that cannot name one leaves nothing behind.
  const key = isDataDir(dir) ? undefined : newLogKey(origin);
  // An existing directory (made 0755 by mkdir, say) is closed before anything is written into it.
  mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  restrictAndWarn(dir);
  if (!key) {
    const cfg = readConfig(dir);
    const token = existsSync(p.adminToken) ? readFileSync(p.adminToken, 'utf8').trim() : undefined;
    return {
      dir,
      origin: cfg.origin,
      vkey: readVerifierKey(dir),
      ...(token ? { token } : {}),
      tokenFile: p.adminToken,
      created: false,
    };
  }
  const { skey, vkey } = key;
  for (const d of ['keys', 'auth']) mkdirSync(join(dir, d), { recursive: true, mode: DIR_MODE });
  await writeDurably(p.key, `${skey}\n`, FILE_MODE);
  await writeDurably(p.vkey, `${vkey}\n`, FILE_MODE);
  const apikeys = await ApiKeyStore.open(new FsBackend(dir).apiKeys());
  const { key: token } = await apikeys.create({ name: 'admin', roles: ['admin'], by: 'stele init' });
  await writeDurably(p.adminToken, `${token}\n`, FILE_MODE);
  // Data keys are wrapped by the master key; with $STELE_MASTER_KEY set, it stays out of the directory.
  if (!envValue(env, 'STELE_MASTER_KEY')) await writeDurably(masterKeyPath(dir), `${generateMasterKey()}\n`, FILE_MODE);
  await writeDurably(p.policy, STARTER_POLICY_YAML, FILE_MODE);
  // The config last: its presence is what marks the directory as initialised.
  await writeDurably(p.config, `${JSON.stringify({ version: 1, origin } satisfies DataDirConfig, null, 2)}\n`, FILE_MODE);
  return { dir, origin, vkey, token, tokenFile: p.adminToken, created: true };
}

export function readConfig(dir: string): DataDirConfig {
  const p = paths(dir);
  if (!existsSync(p.config))
    throw new SteleError('no_data_dir', `${dir} is not a Stele data directory (run "stele init --dir ${dir}")`);
  const cfg = JSON.parse(readFileSync(p.config, 'utf8')) as DataDirConfig;
  if (cfg.version !== 1) throw new SteleError('bad_data_dir', `${p.config}: unsupported version ${String(cfg.version)}`);
  return cfg;
}

export interface DataDir {
  dir: string;
  config: DataDirConfig;
  signer: Signer;
  /** The signing key in signed-note form, for the integrator thread. */
  skey: string;
  verifier: Verifier;
  vkey: string;
  tokenFile: string;
}

export function loadDataDir(dir: string): DataDir {
  dir = resolve(dir);
  const config = readConfig(dir);
  restrictAndWarn(dir);
  const p = paths(dir);
  const skey = readFileSync(p.key, 'utf8').trim();
  const signer = newSigner(skey);
  const vkey = readVerifierKey(dir);
  return {
    dir,
    config,
    signer,
    skey,
    verifier: newVerifier(vkey),
    vkey,
    tokenFile: p.adminToken,
  };
}

/** The verifier key of a data directory, for read-only tools. */
export function readVerifierKey(dir: string): string {
  return readFileSync(paths(resolve(dir)).vkey, 'utf8').trim();
}
