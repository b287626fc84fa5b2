import { textHash, valueHash } from '../../app/audit-query.js';
import { processEnv } from '../../core/config/env.js';
import { dataDir } from '../../core/config/resolve.js';
import { SteleError } from '../../core/errors.js';
import { KeyStore } from '../../keys/keystore.js';
import { loadMasterKeys } from '../../keys/master.js';
import { FsBackend } from '../../storage/fs/backend.js';

/**
 * `stele subject-hash <value>...`: the keyed hashes under which the log's own records name a value
 * (a query's `subject:`/`actor:`/… value, a full-text word, an erasure's `subject_hash`), so an
 * auditor with the key store can ask "was alice@example.com searched for?" without the records
 * ever naming her. Reads the key store only (safe beside a running server).
 */
export async function subjectHashCommand(values: string[], opts: { dir?: string; json?: boolean }): Promise<void> {
  const d = dataDir(opts.dir);
  let keys: KeyStore;
  try {
    keys = await KeyStore.open(new FsBackend(d).keys({ readonly: true }), loadMasterKeys(d, processEnv()), { readonly: true });
  } catch (err) {
    if (err instanceof SteleError) throw err;
    throw new SteleError('no_key_store', `cannot read the key store of ${d}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const rows = values.map((value) => ({
      value,
      hash: valueHash(keys.subjectPepper, value),
      text_hash: textHash(keys.subjectPepper, value),
    }));
    if (opts.json) {
      console.log(JSON.stringify(rows));
      return;
    }
    for (const r of rows) {
      console.log(
        `${JSON.stringify(r.value)}\n  field value, subject_hash: #h:${r.hash}\n  full-text term:            #h:${r.text_hash}`,
      );
    }
  } finally {
    await keys.close();
  }
}
