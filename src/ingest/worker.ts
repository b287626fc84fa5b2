import { parentPort, workerData } from 'node:worker_threads';
import type { Claim } from '../core/claim.js';
import { fromWire, toWire, type WireError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import { type RuleHit, RuleMatcher } from '../index/alert-rules.js';
import type { SlotName } from '../keys/key-records.js';
import type { SlotKey } from '../keys/keystore.js';
import { DIGEST_BYTES } from '../log/id-index.js';
import { type Packed, pack, transferList } from '../log/packed.js';
import type { Policy } from '../policy/policy.js';
import type { BodyKind } from './body.js';
import { prepareBody } from './prepare.js';
import { Sealing } from './sealing.js';

/** What an ingest worker starts with (see IngestPool). */
export interface IngestWorkerData {
  policy: Policy;
  pepper: Uint8Array;
}

/** Main thread → worker. */
export type ToWorker =
  | {
      type: 'prepare';
      seq: number;
      body: Uint8Array;
      kind: BodyKind;
      principal: Principal;
      received: bigint;
      notes: boolean;
      /** Test the entries against the alert rules. */
      rules: boolean;
    }
  | { type: 'keys'; seq: number; keys: SlotKey[] }
  | { type: 'keys'; seq: number; error: WireError }
  | { type: 'forget'; ids: string[] }
  | { type: 'policy'; policy: Policy };

/** Worker → main thread: a request's leaves or error, or the data keys it needs first. */
export type FromWorker =
  | {
      type: 'done';
      seq: number;
      ok: true;
      ids: string[];
      leaves: Packed;
      /** Each entry's index note (empty: none). */
      notes: Packed;
      /** Each entry's content digest, DIGEST_BYTES apiece, in order. */
      digests: Uint8Array;
      keyIds: string[];
      claims: Claim[];
      /** The alert rules matched (when asked), and the time testing them took. */
      hits?: RuleHit[];
      ruleSeconds?: number;
    }
  | { type: 'done'; seq: number; ok: false; error: WireError }
  | { type: 'keys'; seq: number; reqs: SlotName[] };

const EMPTY = new Uint8Array(0);
const data = workerData as IngestWorkerData;
const port = parentPort;
const waiting = new Map<number, { resolve: (keys: SlotKey[]) => void; reject: (e: Error) => void }>();
let keySeq = 0;
let rules = new RuleMatcher(data.policy);

const sealing = new Sealing(
  data.policy,
  Buffer.from(data.pepper),
  (reqs) =>
    new Promise<SlotKey[]>((resolve, reject) => {
      const seq = ++keySeq;
      waiting.set(seq, { resolve, reject });
      port?.postMessage({ type: 'keys', seq, reqs } satisfies FromWorker);
    }),
);

async function prepare(m: Extract<ToWorker, { type: 'prepare' }>): Promise<void> {
  try {
    const { entries, keyIds, claims, hits, ruleSeconds } = await prepareBody(
      m.body,
      m.kind,
      m.principal,
      m.received,
      sealing,
      m.notes,
      m.rules ? rules : null,
    );
    // Shared: the main thread hands these very bytes on to the integrator thread without a copy.
    const leaves = pack(
      entries.map((e) => e.leaf),
      true,
    );
    const notes = pack(entries.map((e) => e.note ?? EMPTY));
    const digests = new Uint8Array(entries.length * DIGEST_BYTES);
    for (let i = 0; i < entries.length; i++) digests.set(entries[i]?.digest as Buffer, i * DIGEST_BYTES);
    const ids = entries.map((e) => e.id);
    const reply: FromWorker = {
      type: 'done',
      seq: m.seq,
      ok: true,
      ids,
      leaves,
      notes,
      digests,
      keyIds,
      claims,
      ...(hits ? { hits, ruleSeconds: ruleSeconds ?? 0 } : {}),
    };
    port?.postMessage(reply, [...transferList(leaves), ...transferList(notes), digests.buffer]);
  } catch (err) {
    const reply: FromWorker = { type: 'done', seq: m.seq, ok: false, error: toWire(err) };
    port?.postMessage(reply);
  }
}

port?.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'prepare':
      void prepare(m);
      break;
    case 'keys': {
      const w = waiting.get(m.seq);
      waiting.delete(m.seq);
      if ('error' in m) w?.reject(fromWire(m.error));
      else w?.resolve(m.keys.map((k) => ({ id: k.id, key: Buffer.from(k.key) })));
      break;
    }
    case 'forget':
      sealing.forget(m.ids);
      break;
    case 'policy':
      sealing.setPolicy(m.policy);
      rules = new RuleMatcher(m.policy);
      break;
  }
});
