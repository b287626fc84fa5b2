import { parentPort } from 'node:worker_threads';
import { SteleError } from '../errors.js';
import type { Ingest } from '../event/types.js';
import { type BodyKind, parseEventsBody } from './body.js';
import { prepareEvents } from './prepare.js';

/** An ingest worker: request body bytes in, leaves out (see IngestPool). */
export interface PrepareRequest {
  seq: number;
  body: Uint8Array;
  kind: BodyKind;
  ingest: Ingest;
  received: bigint;
}

export type PrepareReply =
  | { seq: number; ok: true; ids: string[]; leaves: Uint8Array; lengths: Uint32Array }
  | { seq: number; ok: false; code: string; message: string; status: number };

parentPort?.on('message', (m: PrepareRequest) => {
  try {
    const entries = prepareEvents(parseEventsBody(m.body, m.kind), m.ingest, m.received);
    let total = 0;
    for (const e of entries) total += e.leaf.length;
    // Its own ArrayBuffer (never Buffer's shared pool), so it can be transferred without copying.
    const leaves = new Uint8Array(total);
    const lengths = new Uint32Array(entries.length);
    let off = 0;
    entries.forEach((e, i) => {
      leaves.set(e.leaf, off);
      off += e.leaf.length;
      lengths[i] = e.leaf.length;
    });
    const reply: PrepareReply = { seq: m.seq, ok: true, ids: entries.map((e) => e.id), leaves, lengths };
    parentPort?.postMessage(reply, [leaves.buffer, lengths.buffer]);
  } catch (err) {
    const e = err instanceof SteleError ? err : new SteleError('internal', (err as Error).message, 500);
    const reply: PrepareReply = { seq: m.seq, ok: false, code: e.code, message: e.message, status: e.status };
    parentPort?.postMessage(reply);
  }
});
