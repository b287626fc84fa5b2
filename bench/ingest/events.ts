/**
 * Realistic audit events (~300 bytes of JSON each) and request bodies built before any timing.
 *
 * Bodies with ids carry a unique client UUID per event. So that a 10-second run never re-sends an
 * id (which Stele would answer from its id index without appending), each load client patches
 * the last 12 hex digits of every id in place before each request: 1000 × 12 bytes, a few µs,
 * instead of serialising 1000 events per request.
 */
import { randomBytes } from 'node:crypto';
import { normalizeEvent } from '../../src/event/normalize.js';
import { buildSealedLeaf, nowMicros } from '../../src/event/record.js';
import { SEAL_RANDOM, SealingKey } from '../../src/keys/seal.js';

import { rng } from '../../test/helpers/prng.js';

export { rng };

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
const hex = (r: () => number, n: number) => {
  let s = '';
  for (let i = 0; i < n; i++) s += '0123456789abcdef'[Math.floor(r() * 16)];
  return s;
};

const PEOPLE = ['alice@example.com', 'bob@example.com', 'carol@example.com', 'dmitri@example.com', 'eve@example.com'];
const REPOS = ['payments-service', 'web-console', 'infra-terraform', 'ledger', 'mobile-app'];

function time(r: () => number): string {
  const s = Math.floor(r() * 3600);
  return `2026-11-22T${String(10 + Math.floor(s / 3600)).padStart(2, '0')}:${String(Math.floor(s / 60) % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}.${String(Math.floor(r() * 1e3)).padStart(3, '0')}Z`;
}

/** One event without `id` (~260 bytes; ~300 with the id): git, Kubernetes, Emacs, CloudTrail and CI/agent shapes. */
export function makeEvent(r: () => number): Record<string, unknown> {
  const kind = Math.floor(r() * 5);
  const t = time(r);
  switch (kind) {
    case 0:
      return {
        time: t,
        actor: { id: pick(r, PEOPLE), type: 'human' },
        action: 'git.commit',
        source: { kind: 'git', host: `dev-${hex(r, 4)}` },
        resource: { type: 'repo', id: `example/${pick(r, REPOS)}` },
        outcome: 'success',
        data: { branch: 'main', sha: hex(r, 12) },
      };
    case 1:
      return {
        time: t,
        actor: { id: 'sa:argocd:controller', type: 'service' },
        action: 'k8s.configmaps.update',
        source: { kind: 'kubernetes', host: 'prod-eu-1' },
        resource: { type: 'configmap', id: `payments/cfg-${hex(r, 5)}` },
        outcome: r() < 0.95 ? 'success' : 'denied',
        data: { rv: String(Math.floor(r() * 1e7)) },
      };
    case 2:
      return {
        time: t,
        actor: { id: pick(r, PEOPLE), type: 'human' },
        action: 'emacs.package.install',
        source: { kind: 'emacs', host: 'alice-laptop', agent: 'stele.el' },
        resource: { type: 'package', id: `magit-2026110${Math.floor(r() * 10)}` },
        outcome: 'success',
        data: { archive: 'melpa' },
      };
    case 3:
      return {
        time: t,
        actor: { id: `deploy/${pick(r, PEOPLE)}`, type: 'human' },
        action: 'aws.iam.assume_role',
        source: { kind: 'cloudtrail', host: 'sts.amazonaws.com' },
        resource: { type: 'iam-role', id: 'role/deploy' },
        outcome: r() < 0.9 ? 'success' : 'failure',
        data: { region: 'eu-west-1' },
      };
    default:
      return {
        time: t,
        actor: { id: 'release-bot', type: 'ai_agent', on_behalf_of: pick(r, PEOPLE) },
        action: 'ci.deploy.run',
        source: { kind: 'http', host: `ci-${Math.floor(r() * 40)}` },
        resource: { type: 'service', id: `${pick(r, REPOS)}@${hex(r, 7)}` },
        outcome: 'success',
        data: { stage: 'prod' },
      };
  }
}

/** A syntactically valid UUID (version 4 layout) whose last 12 hex digits the client rewrites. */
export const ID_PLACEHOLDER = '00000000-0000-4000-8000-000000000000';
const ID_PLACEHOLDER_BYTES = Buffer.from(`"${ID_PLACEHOLDER}"`);

export interface Body {
  buf: Buffer;
  events: number;
  /** Byte offset of the first character of every id in `buf` (empty without ids). */
  idOffsets: number[];
}

/** A JSON array body of `n` events, with placeholder ids or without ids. */
export function makeBody(r: () => number, n: number, withIds: boolean): Body {
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    const e = makeEvent(r);
    parts.push(JSON.stringify(withIds ? { id: ID_PLACEHOLDER, ...e } : e));
  }
  const buf = Buffer.from(`[${parts.join(',')}]`);
  const idOffsets: number[] = [];
  if (withIds) {
    for (let at = buf.indexOf(ID_PLACEHOLDER_BYTES); at >= 0; at = buf.indexOf(ID_PLACEHOLDER_BYTES, at + 1))
      idOffsets.push(at + 1);
    if (idOffsets.length !== n) throw new Error(`bench: found ${idOffsets.length} id slots in a body of ${n} events`);
  }
  return { buf, events: n, idOffsets };
}

/**
 * Unique ids for one load client: a random 20-hex-digit prefix per client (so clients and runs never
 * collide) and a counter in the last 12 digits.
 */
export class IdStamper {
  private counter = 0;
  private readonly prefix: string;

  constructor() {
    const h = randomBytes(10).toString('hex');
    this.prefix = `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(12, 15)}-${'89ab'[Number.parseInt(h[15] as string, 16) & 3]}${h.slice(16, 19)}-`;
  }

  /** Writes fresh ids into every slot of `body` (one client uses a body for one request at a time). */
  stamp(body: Body): void {
    const b = body.buf;
    for (const off of body.idOffsets) {
      b.write(this.prefix, off, 'latin1');
      b.write((this.counter++).toString(16).padStart(12, '0'), off + 24, 'latin1');
    }
  }

  /** One id, for single-event bodies. */
  next(): string {
    return this.prefix + (this.counter++).toString(16).padStart(12, '0');
  }
}

/**
 * `count` batches of `size` leaves exactly as Stele stores them for these events under its default
 * policy (sealed: v3 leaves, the event and ingest principal compressed and encrypted under one data
 * key, with server time and a unique id), for the raw and hypercore runs, so they write the bytes
 * Stele writes.
 */
export function makeLeafBatches(seed: number, count: number, size: number): Buffer[][] {
  const r = rng(seed);
  const ids = new IdStamper();
  const ingest = { principal: 'admin', method: 'apikey' as const };
  const key = new SealingKey(randomBytes(32));
  const keyId = randomBytes(16).toString('base64url');
  const out: Buffer[][] = [];
  for (let b = 0; b < count; b++) {
    const batch: Buffer[] = [];
    for (let i = 0; i < size; i++) {
      const received = nowMicros();
      const event = normalizeEvent({ id: ids.next(), ...makeEvent(r) }, received);
      batch.push(buildSealedLeaf(event, ingest, received, keyId, (p, aad) => key.seal(randomBytes(SEAL_RANDOM), p, aad)));
    }
    out.push(batch);
  }
  return out;
}
