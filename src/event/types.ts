import type { Ingest } from '../core/principal.js';

/** Who performed an action: a person, a machine identity, or an AI agent acting for someone. */
export type ActorType = 'human' | 'service' | 'ai_agent';

export type Outcome = 'success' | 'failure' | 'denied';

/**
 * A normalised event: what a client sent (see `eventSchema`) after `normalizeEvent` filled in `id`,
 * `time` and `actor.verified`. This is what a leaf stores.
 */
export interface Event {
  /** UUID, lower case; the idempotency key. Assigned by the server (UUIDv7) when the client sent none. */
  id: string;
  /** RFC 3339 time of the action as the client asserts it; the receipt time when the client sent none. */
  time: string;
  actor: {
    id: string;
    type: ActorType;
    /** The principal an `ai_agent` (or a service) acted for. Required for `ai_agent`. */
    on_behalf_of?: string;
    /** True only when the server itself authenticated this actor; never taken from a client. */
    verified: boolean;
    /** The identity issuer that verified the actor (set by the server together with `verified`). */
    issuer?: string;
  };
  /** Dotted lower-case name, e.g. `emacs.package.install`, `git.commit`, `k8s.configmaps.update`. */
  action: string;
  source: { kind: string; host?: string; agent?: string; version?: string };
  resource?: { type: string; id: string };
  outcome: Outcome;
  reason?: string;
  approval?: { by: string; ticket?: string };
  /** Data subject, so that right-to-erasure can find the events about a person. */
  subject?: string;
  data?: Record<string, unknown>;
  attachments?: { sha256: string; name?: string; size?: number; media_type?: string }[];
}

/** What arrives from a client before validation: anything JSON.parse can produce. */
export type EventInput = unknown;

// `Ingest` lives in core (src/core/principal.ts) beside the Principal it is derived from; it is
// re-exported here because it is part of the record.
export type { Ingest };

/**
 * One leaf of the log, stored as the UTF-8 of its RFC 8785 canonical JSON (see DESIGN.md, "The record").
 * Version 2 (written since issue 11) seals `ingest` with the event, so that a sealed leaf names nobody
 * in the clear; version 1 (older data directories) kept `ingest` in the clear in every leaf.
 */
export interface LeafRecord {
  /** 1 and 2: JSON leaves; 3: a binary sealed leaf, shown in this shape (see buildSealedLeaf). */
  v: 1 | 2 | 3;
  /** Server receipt time, RFC 3339 UTC with exactly 6 fractional digits (see `formatMicros`). */
  received: string;
  /** Who wrote it: in every v1 leaf and in v2 plain leaves; a v2 sealed leaf seals it with the event. */
  ingest?: Ingest;
  /** The plain event; present when the retention tier is not encrypted. */
  event?: Event;
  /** Id of the data key that sealed the event; absent when the tier is not encrypted. */
  key?: string;
  /**
   * base64 AEAD ciphertext, replacing `event` when the tier is encrypted: of the canonical event (v1),
   * or of the canonical `{"event":…,"ingest":…}` (v2).
   */
  sealed?: string;
  /** v3: how the plaintext was compressed before sealing ('zstd-leaf-1': zstd, dictionary 1); absent: not. */
  compression?: 'zstd-leaf-1';
}

/** What a leaf says once opened: the event and who wrote it. */
export interface LeafContent {
  event: Event;
  ingest: Ingest;
}
