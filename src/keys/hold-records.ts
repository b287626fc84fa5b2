/**
 * Legal holds as records: the seam between the hold rules (src/keys/holds.ts) and a storage driver
 * (src/storage/<driver>/holds.ts). Writes are durable before their promise resolves; see the
 * conformance suite (src/storage/conformance/holds.ts) for what every driver must guarantee.
 */

/** A legal hold: while active, no key it covers may be expired or erased. Every given criterion must match. */
export interface Hold {
  id: string;
  reason: string;
  tier: string | null;
  actor: string | null;
  subject: string | null;
  /** Keyed hash of `subject` (what events and erasure checks use). */
  subject_hash: string | null;
  /** Event receipt-time range it covers (µs), by the UTC days of the keys. */
  since: number | null;
  until: number | null;
  created: string;
  created_by: string;
  released: string | null;
  released_by: string | null;
  release_reason: string | null;
}

export interface HoldRecords {
  insert(h: Hold): Promise<void>;
  get(id: string): Promise<Hold | undefined>;
  /** Active holds (with `includeReleased`, released ones too), oldest first. */
  list(includeReleased: boolean): Promise<Hold[]>;
  /** Marks an active hold released; false when there is no such active hold. */
  release(id: string, at: string, by: string, reason: string): Promise<boolean>;
  /**
   * On released holds only: clears `subject` where it is `subject`, and replaces `actor` by
   * `actorAs` where it is `subject`; the old values are scrubbed from the driver's storage.
   * Returns how many values it changed (0: none named the subject).
   */
  forgetReleased(subject: string, actorAs: string): Promise<number>;
  close(): Promise<void>;
}
