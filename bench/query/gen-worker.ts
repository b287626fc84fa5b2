/**
 * Generates the event stream on a worker thread while the main thread inserts (the build is
 * CPU-bound on both sides). Pull-based: each 'more' message from the main thread gets one batch.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EventStream } from './gen.js';

const { total, batch } = workerData as { total: number; batch: number };
const stream = new EventStream(total);
parentPort?.on('message', () => {
  const start = performance.now();
  const rows = stream.rows(batch);
  parentPort?.postMessage({ rows, upto: stream.index, genMs: performance.now() - start });
});
