import { Log } from '../log/log.js';
import type { EmbeddedBackend, OpenLogParams } from './backend.js';

/** Backend.openLog of the embedded drivers: the Log on the backend's storage, id index and integrator thread. */
export async function openEmbeddedLog(backend: EmbeddedBackend, p: OpenLogParams): Promise<Log> {
  const storage = backend.log();
  const ids = backend.ids();
  return Log.open({
    storage,
    integratorThread: () => backend.spawn('integrator', undefined),
    ids,
    skey: p.skey,
    verifier: p.verifier,
    origin: p.origin,
    ...(p.options ? { options: p.options } : {}),
    ...(p.onSequenced ? { onSequenced: p.onSequenced } : {}),
  }).catch(async (err: unknown) => {
    ids.close();
    await storage.close();
    throw err;
  });
}
