import { existsSync, readFileSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Env } from '../core/config/env.js';
import { syncDir, writeDurably } from '../core/durable.js';
import { SteleError } from '../core/errors.js';
import type { KeyRecords } from './key-records.js';
import { KeyStore } from './keystore.js';
import {
  generateMasterKey,
  loadMasterKeys,
  MASTER_ENV,
  type MasterKey,
  masterKeyPath,
  nextMasterKeyPath,
  parseMasterKey,
} from './master.js';

export const NEW_MASTER_ENV = 'STELE_NEW_MASTER_KEY';

export interface RotateResult {
  rewrapped: number;
  from: string[];
  to: string;
  /** Where the new key is: the key file, or the environment variable the operator must now use. */
  location: string;
}

/**
 * Master-key rotation: re-wraps every live data key (and the subject pepper) under a new master
 * key, touching nothing in the log. With the key file, the new key is written durably to
 * master.key.next first and renamed over master.key last, so a crash at any point leaves every
 * wrapped key readable (both files are loaded) and a rerun finishes the job. With
 * $STELE_MASTER_KEY, the new key comes from $STELE_NEW_MASTER_KEY, which the operator then moves
 * into $STELE_MASTER_KEY.
 */
export async function rotateMasterKey(dir: string, openRecords: () => KeyRecords, env: Env): Promise<RotateResult> {
  const viaEnv = Boolean(env[MASTER_ENV]);
  let next: MasterKey;
  if (viaEnv) {
    const text = env[NEW_MASTER_ENV];
    if (!text) {
      throw new SteleError(
        'no_new_master_key',
        `the master key comes from $${MASTER_ENV}: put the new one in $${NEW_MASTER_ENV} (e.g. openssl rand -base64 32)`,
      );
    }
    next = parseMasterKey(text, `$${NEW_MASTER_ENV}`);
  } else {
    const nextPath = nextMasterKeyPath(dir);
    // An interrupted rotation left its key behind: finish with that one.
    if (!existsSync(nextPath)) await writeDurably(nextPath, `${generateMasterKey()}\n`, 0o600);
    next = parseMasterKey(readFileSync(nextPath, 'utf8'), nextPath);
  }
  const masters = loadMasterKeys(dir, env);
  if (!masters.some((m) => m.id === next.id)) masters.push(next);
  const keys = await KeyStore.open(openRecords(), masters);
  let rewrapped: number;
  let from: string[];
  try {
    from = await keys.mastersInUse();
    rewrapped = await keys.rewrap(next);
  } finally {
    await keys.close();
  }
  if (!viaEnv) {
    await rename(nextMasterKeyPath(dir), masterKeyPath(dir));
    await syncDir(dirname(masterKeyPath(dir)));
  }
  return {
    rewrapped,
    from: from.filter((id) => id !== next.id),
    to: next.id,
    location: viaEnv ? `$${NEW_MASTER_ENV} (move it into $${MASTER_ENV})` : masterKeyPath(dir),
  };
}
