import { createHash } from 'node:crypto';
import { uuidText } from '../core/uuid.js';

/**
 * A deterministic event id for something that has its own identity elsewhere (a git commit, a
 * Kubernetes audit event, a CloudTrail event), so that every source reporting it — Emacs and the
 * git hooks for the same commit, a webhook retrying a batch — sends the same `id` and the log
 * stores it once. A UUIDv8 (RFC 9562) from the first 16 bytes of
 * SHA-256("stele:" ‖ kind ‖ ":" ‖ key), version and variant bits set.
 *
 * Other implementations (clients/emacs/stele.el, clients/git hooks) must compute the same value:
 * the test vectors in ids.test.ts pin it.
 */
export function derivedId(kind: string, key: string): string {
  const b = createHash('sha256').update(`stele:${kind}:${key}`).digest().subarray(0, 16);
  b[6] = ((b[6] as number) & 0x0f) | 0x80;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  return uuidText(b);
}

/** The id of a commit's `git.commit` event, whoever reports it. */
export const commitEventId = (sha: string) => derivedId('git.commit', sha.toLowerCase());
