import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SteleError } from '../../core/errors.js';
import { processAlive } from '../../core/process.js';

/** Lock files this process took (see lockDataDir): its own pid in a lock file proves nothing alone. */
const heldLocks = new Set<string>();

/**
 * Takes the directory's write lock: a second server (or a local `stele append`) on the same
 * directory would fork the log. A lock left by a dead process is taken over.
 */
export function lockDataDir(dir: string): () => void {
  const lock = join(resolve(dir), 'LOCK');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lock, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      heldLocks.add(lock);
      return () => {
        heldLocks.delete(lock);
        try {
          unlinkSync(lock);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(lock, 'utf8').trim());
      // Our own pid counts as alive only if this process really took the lock (a container may
      // reuse the pid of the process that left a stale one).
      const held = pid === process.pid ? heldLocks.has(lock) : Number.isInteger(pid) && pid > 0 && processAlive(pid);
      if (held) {
        throw new SteleError('locked', `${dir} is in use by process ${pid} (a running "stele serve"?)`);
      }
      unlinkSync(lock);
    }
  }
  throw new SteleError('locked', `could not lock ${dir}`);
}
