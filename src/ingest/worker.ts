import { parentPort } from 'node:worker_threads';
import { SteleError } from '../errors.js';
import type { Ingest } from '../event/types.js';
import { type Packed, pack, transferList } from '../log/packed.js';
import type { BodyKind } from './body.js';
import { prepareBody } from './prepare.js';

/** An ingest worker: request body bytes in, leaves out (see IngestPool). */
export interface PrepareRequest {
  seq: number;
  body: Uint8Array;
  kind: BodyKind;
  ingest: Ingest;
  received: bigint;
}

export type PrepareReply =
  | { seq: number; ok: true; ids: string[]; leaves: Packed }
  | { seq: number; ok: false; code: string; message: string; status: number };

parentPort?.on('message', (m: PrepareRequest) => {
  try {
    const entries = prepareBody(m.body, m.kind, m.ingest, m.received);
    const leaves = pack(entries.map((e) => e.leaf));
    const reply: PrepareReply = { seq: m.seq, ok: true, ids: entries.map((e) => e.id), leaves };
    parentPort?.postMessage(reply, transferList(leaves));
  } catch (err) {
    const e = err instanceof SteleError ? err : new SteleError('internal', (err as Error).message, 500);
    const reply: PrepareReply = { seq: m.seq, ok: false, code: e.code, message: e.message, status: e.status };
    parentPort?.postMessage(reply);
  }
});
