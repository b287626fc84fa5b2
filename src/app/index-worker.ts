/**
 * The index thread's entry (see IndexThread.start): opens the key store read-only from the
 * backend's spec, in this thread, and serves (src/index/worker.ts). Here rather than in src/index
 * because the index layer may not reach the storage drivers.
 */
import { workerData } from 'node:worker_threads';
import type { IndexWorkerData } from '../index/worker.js';
import { serveIndex } from '../index/worker.js';
import { KeyStore } from '../keys/keystore.js';
import type { MasterKey } from '../keys/master.js';
import type { BackendSpec } from '../storage/backend.js';
import { openBackend } from '../storage/open.js';

/** What the main thread starts the index thread with. */
export type IndexThreadData = IndexWorkerData & { backend: BackendSpec };

const data = workerData as IndexThreadData;
const masters: MasterKey[] = data.masters.map((m) => ({ id: m.id, key: Buffer.from(m.key) }));
serveIndex(await KeyStore.open(openBackend(data.backend).keys({ readonly: true }), masters, { readonly: true }));
