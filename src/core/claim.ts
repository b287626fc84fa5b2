/**
 * What a batch of events asks to do, as the ingest path (src/ingest/identity.ts) finds it and the
 * authoriser (src/auth/access.ts) checks it. Here, below both, so that neither imports the other.
 */

/** One distinct thing a batch asks to do; `vouch` when the actor is someone other than the principal. */
export interface Claim {
  action: string;
  source: string;
  actor: string;
  vouch: boolean;
  /** Position of the first event of the batch with this claim (for the error message). */
  at: number;
}
