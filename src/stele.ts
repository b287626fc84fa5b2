import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type DataDir, loadDataDir, lockDataDir } from './datadir.js';
import { FsLogStorage } from './log/fs-storage.js';
import { JournalIdIndex } from './log/id-index.js';
import { Log, type LogOptions } from './log/log.js';

/** An open Stele: the data directory, its log, and the write lock that keeps it single-writer. */
export interface Stele extends DataDir {
  log: Log;
  close(): Promise<void>;
}

/** Opens (and recovers) the log of an initialised data directory, taking its write lock. */
export async function openStele(dir: string, options: LogOptions = {}): Promise<Stele> {
  const dd = loadDataDir(dir);
  const unlock = lockDataDir(dd.dir);
  try {
    const storage = new FsLogStorage(dd.dir);
    mkdirSync(join(dd.dir, 'state'), { recursive: true });
    const ids = new JournalIdIndex(join(dd.dir, 'state', 'ids.journal'));
    const log = await Log.open({
      storage,
      ids,
      skey: dd.skey,
      verifier: dd.verifier,
      origin: dd.config.origin,
      options,
    }).catch(async (err: unknown) => {
      ids.close();
      await storage.close();
      throw err;
    });
    return {
      ...dd,
      log,
      async close() {
        try {
          await log.close();
        } finally {
          unlock();
        }
      },
    };
  } catch (err) {
    unlock();
    throw err;
  }
}
