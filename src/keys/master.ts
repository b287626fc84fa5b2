/**
 * The master key: 32 random bytes that wrap (encrypt) every data key in the key store. It lives in
 * `keys/master.key` (base64, mode 0600, created by `stele init`) unless `STELE_MASTER_KEY` holds it,
 * which lets an operator keep it out of the data directory (a secrets manager, a KMS-decrypted env).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Env } from '../core/config/env.js';
import { SteleError } from '../core/errors.js';

export interface MasterKey {
  /** Hex of the first 8 bytes of SHA-256("stele/master/v1" ‖ key): which master wrapped a data key. */
  id: string;
  key: Buffer;
}

export const MASTER_ENV = 'STELE_MASTER_KEY';
export const masterKeyPath = (dir: string) => join(dir, 'keys', 'master.key');
/** Written before a rotation re-wraps anything, renamed over master.key after: a crash leaves both readable. */
export const nextMasterKeyPath = (dir: string) => join(dir, 'keys', 'master.key.next');

export function masterKeyId(key: Buffer): string {
  return createHash('sha256').update('stele/master/v1').update(key).digest().subarray(0, 8).toString('hex');
}

/** A new master key in its text form (base64 of 32 random bytes). */
export const generateMasterKey = (): string => randomBytes(32).toString('base64');

export function parseMasterKey(text: string, where: string): MasterKey {
  const t = text.trim();
  const key = Buffer.from(t, 'base64');
  if (key.length !== 32 || key.toString('base64') !== t) {
    throw new SteleError('bad_master_key', `${where} must hold a master key: base64 of 32 bytes (stele init makes one)`);
  }
  return { id: masterKeyId(key), key };
}

/**
 * The master keys a data directory can use: `$STELE_MASTER_KEY` or keys/master.key, plus
 * keys/master.key.next when a rotation was interrupted. The first is the one that wraps new keys.
 */
export function loadMasterKeys(dir: string, env: Env): MasterKey[] {
  const keys: MasterKey[] = [];
  const fromEnv = env[MASTER_ENV];
  if (fromEnv) keys.push(parseMasterKey(fromEnv, `$${MASTER_ENV}`));
  else if (existsSync(masterKeyPath(dir)))
    keys.push(parseMasterKey(readFileSync(masterKeyPath(dir), 'utf8'), masterKeyPath(dir)));
  else throw new SteleError('no_master_key', `no master key: set $${MASTER_ENV} or restore ${masterKeyPath(dir)}`);
  const next = nextMasterKeyPath(dir);
  if (existsSync(next)) keys.push(parseMasterKey(readFileSync(next, 'utf8'), next));
  return keys;
}

const wrapAad = (id: string) => Buffer.from(`stele/wrap/v1\n${id}`);

/** AES-256-GCM of a data key under the master key, bound to the data key's id: iv ‖ ciphertext ‖ tag. */
export function wrapKey(master: MasterKey, id: string, dataKey: Buffer): Buffer {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', master.key, iv);
  c.setAAD(wrapAad(id));
  const ct = Buffer.concat([c.update(dataKey), c.final()]);
  return Buffer.concat([iv, ct, c.getAuthTag()]);
}

export function unwrapKey(masters: readonly MasterKey[], masterId: string, id: string, wrapped: Buffer): Buffer {
  const master = masters.find((m) => m.id === masterId);
  if (!master) {
    throw new SteleError('wrong_master_key', `data key ${id} is wrapped by master key ${masterId}, which is not loaded`);
  }
  const d = createDecipheriv('aes-256-gcm', master.key, wrapped.subarray(0, 12));
  d.setAAD(wrapAad(id));
  d.setAuthTag(wrapped.subarray(wrapped.length - 16));
  try {
    return Buffer.concat([d.update(wrapped.subarray(12, wrapped.length - 16)), d.final()]);
  } catch {
    throw new SteleError('bad_wrapped_key', `data key ${id} does not unwrap under master key ${masterId}: altered key store?`);
  }
}
