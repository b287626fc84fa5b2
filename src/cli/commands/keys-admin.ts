import { SingleBar } from 'cli-progress';
import { openStele } from '../../app/stele.js';
import { processEnv } from '../../core/config/env.js';
import { dataDir } from '../../core/config/resolve.js';
import { plural } from '../../core/plural.js';
import { rotateMasterKey } from '../../keys/rotate.js';
import { FsBackend } from '../../storage/fs/backend.js';
import { lockDataDir } from '../../storage/fs/lock.js';
import { openEmbedded } from '../../storage/open.js';

/** `stele reindex`: rebuilds the query store from the log and the key store (the server must be stopped). */
export async function reindexCommand(opts: { dir?: string; json?: boolean }): Promise<void> {
  const d = dataDir(opts.dir);
  const backend = openEmbedded({ driver: 'fs', dir: d });
  const unlock = backend.lock(); // refuse before deleting anything if a server has the directory
  try {
    await backend.dropQueryStore();
  } finally {
    unlock();
  }
  const bar =
    process.stderr.isTTY && !opts.json
      ? new SingleBar({ format: 'reindex {bar} {value}/{total} entries  {eta_formatted}' })
      : null;
  let started = false;
  const t0 = performance.now();
  const stele = await openStele(d, {
    onIndexProgress: (done, total) => {
      if (!started) bar?.start(total, 0);
      started = true;
      bar?.update(done);
    },
  });
  bar?.stop();
  const size = stele.log.size;
  const found = await stele.index.search(
    { q: '', limit: 1, order: 'desc', nowMs: Date.now(), count: true },
    stele.log.checkpoint.size,
  );
  await stele.index.optimize();
  await stele.close();
  const seconds = (performance.now() - t0) / 1000;
  const gaps = found.gaps ?? 0;
  const readable = (found.total ?? 0) - gaps;
  if (opts.json) console.log(JSON.stringify({ entries: size, indexed: readable, gaps, seconds }));
  else
    console.log(
      `reindexed ${plural(size, 'entry', 'entries')} in ${seconds.toFixed(1)} s: ${readable} readable, ${gaps} expired or erased`,
    );
}

/** `stele master-key rotate`: re-wraps every data key under a new master key (the server must be stopped). */
export async function rotateCommand(opts: { dir?: string; json?: boolean }): Promise<void> {
  const d = dataDir(opts.dir);
  const unlock = lockDataDir(d);
  try {
    const r = await rotateMasterKey(d, () => new FsBackend(d).keys(), processEnv());
    if (opts.json) console.log(JSON.stringify(r));
    else
      console.log(
        `re-wrapped ${plural(r.rewrapped, 'data key')} from master key ${r.from.join(', ') || '-'} to ${r.to}; the new key is in ${r.location}`,
      );
  } finally {
    unlock();
  }
}
