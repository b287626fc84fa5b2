/**
 * The add-checkpoint request of c2sp.org/tlog-witness: "old <size>\n", up to 63 base64
 * consistency proof lines, an empty line, then the signed checkpoint note.
 */
import { decodeBase64Strict } from '../tlog/base64.js';

/** A refusal, with the HTTP status the spec gives it; 409 carries the size the witness has. */
export class WitnessError extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 409 | 422,
    message: string,
    readonly size?: number,
  ) {
    super(message);
  }
}

export interface AddCheckpoint {
  /** The size of the checkpoint the witness last cosigned for the log, as the client believes. */
  oldSize: number;
  /** Consistency proof from oldSize to the checkpoint's size (empty when oldSize is 0). */
  proof: Buffer[];
  /** The signed checkpoint note. */
  checkpoint: string;
}

/** Most proof lines a request may carry (the spec's limit). */
export const MAX_PROOF_LINES = 63;

export function formatAddCheckpoint(r: AddCheckpoint): string {
  return `old ${r.oldSize}\n${r.proof.map((h) => `${h.toString('base64')}\n`).join('')}\n${r.checkpoint}`;
}

/** Parses a request body; a malformed one is a WitnessError 400 naming what is wrong. */
export function parseAddCheckpoint(body: string): AddCheckpoint {
  const bad = (what: string) => new WitnessError(400, `malformed add-checkpoint request: ${what}`);
  const end = body.indexOf('\n\n');
  if (end < 0) throw bad('no empty line before the checkpoint');
  const lines = body.slice(0, end).split('\n');
  const m = /^old (0|[1-9][0-9]{0,15})$/.exec(lines[0] ?? '');
  if (!m) throw bad('the first line must be "old <size>" (a decimal without leading zeroes)');
  const oldSize = Number(m[1]);
  if (!Number.isSafeInteger(oldSize)) throw bad('the old size is out of range');
  const proofLines = lines.slice(1);
  if (proofLines.length > MAX_PROOF_LINES) throw bad(`${proofLines.length} proof lines, more than ${MAX_PROOF_LINES}`);
  const proof = proofLines.map((l, i) => {
    const h = decodeBase64Strict(l);
    if (h === null || h.length !== 32) throw bad(`proof line ${i + 1} is not a base64 SHA-256 hash`);
    return h;
  });
  return { oldSize, proof, checkpoint: body.slice(end + 2) };
}
