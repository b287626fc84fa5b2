/**
 * The entry of every backend thread that runs as a worker: reopens the backend from its spec
 * and runs the named thread's code on it (see spawnWorker).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openBackend } from '../open.js';
import { threadMain } from './entries.js';
import type { WorkerData } from './spawn.js';

const { kind, spec, data } = workerData as WorkerData;
const main = await threadMain(kind);
// A worker's own connections: few (its thread works one request at a time).
if (parentPort) await main(parentPort, data as never, await openBackend(spec, { max: 4 }));
