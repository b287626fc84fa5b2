import { Worker } from 'node:worker_threads';
import type { ThreadHandle } from '../../core/thread.js';
import type { BackendSpec, ThreadData, ThreadKind } from '../backend.js';

/** What worker.ts starts from. */
export interface WorkerData {
  kind: ThreadKind;
  spec: BackendSpec;
  data: unknown;
}

/** Starts a backend thread as a worker thread that reopens the backend from `spec` (worker.ts). */
export function spawnWorker<K extends ThreadKind>(spec: BackendSpec, kind: K, data: ThreadData[K]): ThreadHandle {
  const workerData: WorkerData = { kind, spec, data };
  return new Worker(new URL('./worker.js', import.meta.url), { workerData });
}
