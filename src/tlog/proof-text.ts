/**
 * c2sp.org/tlog-proof@v1: the offline-verifiable text form of an inclusion proof ("spicy
 * signature"), conventionally stored as a `.tlog-proof` file:
 *
 *     c2sp.org/tlog-proof@v1
 *     extra <base64>              (optional, opaque and unauthenticated)
 *     index <decimal, no leading zeros>
 *     <base64 hash>               (zero or more: the leaf's sibling first, up to the root's child)
 *     <empty line>
 *     <the signed checkpoint note, verbatim>
 *
 * This module only formats and parses; checking the checkpoint's signature (note.ts openNote) and
 * the inclusion proof against its root (proof.ts verifyInclusion) is the caller's job. Parsing is
 * strict: anything the format does not allow throws an Error that names the line and the problem.
 */
import { decodeBase64Strict } from './base64.js';
import { parseCheckpoint } from './checkpoint.js';
import { HASH_SIZE } from './hash.js';

export const TLOG_PROOF_HEADER = 'c2sp.org/tlog-proof@v1';

/**
 * The longest inclusion proof accepted: a tree of up to 2^64 leaves (RFC 6962 sizes are uint64)
 * never needs more than 64 hashes. Bounds the work a hostile proof can cause.
 */
export const MAX_PROOF_HASHES = 64;

export interface TlogProof {
  index: number;
  proof: Buffer[];
  /** The signed checkpoint note, verbatim (ends with a newline). */
  checkpoint: string;
  /** Opaque extra data; not authenticated by anything in the proof. */
  extra?: Buffer;
}

const DECIMAL = /^(0|[1-9][0-9]*)$/;

/**
 * Why `note` cannot be the checkpoint part of a proof, or null. Only its shape is checked: a
 * checkpoint body (tlog-checkpoint), a blank line, and a non-empty signature block.
 */
function checkpointProblem(note: string): string | null {
  if (note === '') return 'is missing';
  if (!note.endsWith('\n')) return 'does not end with a newline';
  const split = note.lastIndexOf('\n\n');
  if (split < 0) return 'is not a signed note: no blank line between the checkpoint body and its signatures';
  if (split + 2 === note.length) return 'is not a signed note: no signature lines after the blank line';
  try {
    parseCheckpoint(note.slice(0, split + 1));
  } catch (e) {
    return `is malformed: ${(e as Error).message}`;
  }
  return null;
}

/** The tlog-proof text for entry `index`: header, optional extra, index, hashes, blank line, checkpoint. */
export function formatTlogProof(p: {
  index: number;
  proof: readonly Uint8Array[];
  checkpoint: string;
  extra?: Uint8Array;
}): string {
  if (!Number.isSafeInteger(p.index) || p.index < 0) {
    throw new RangeError(`tlog-proof: index must be a non-negative safe integer, got ${p.index}`);
  }
  if (p.proof.length > MAX_PROOF_HASHES) {
    throw new RangeError(`tlog-proof: ${p.proof.length} proof hashes, more than the limit of ${MAX_PROOF_HASHES}`);
  }
  p.proof.forEach((h, i) => {
    if (h.length !== HASH_SIZE) throw new RangeError(`tlog-proof: proof hash ${i} is ${h.length} bytes, want ${HASH_SIZE}`);
  });
  const problem = checkpointProblem(p.checkpoint);
  if (problem !== null) throw new Error(`tlog-proof: the checkpoint ${problem}`);
  const b64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
  let out = `${TLOG_PROOF_HEADER}\n`;
  if (p.extra !== undefined) out += `extra ${b64(p.extra)}\n`;
  out += `index ${p.index}\n`;
  for (const h of p.proof) out += `${b64(h)}\n`;
  return `${out}\n${p.checkpoint}`;
}

/** Parses tlog-proof text strictly (see the module comment). Throws an Error naming the problem. */
export function parseTlogProof(text: string): TlogProof {
  const fail = (line: number, why: string): never => {
    throw new Error(`tlog-proof line ${line}: ${why}`);
  };
  let pos = 0;
  let lineNo = 0;
  /** The next line without its newline, or null at the end of the text. */
  const next = (): string | null => {
    if (pos >= text.length) return null;
    lineNo++;
    const nl = text.indexOf('\n', pos);
    if (nl < 0) {
      const rest = text.slice(pos);
      pos = text.length;
      return fail(lineNo, `${JSON.stringify(rest.slice(0, 60))} does not end with a newline`);
    }
    const line = text.slice(pos, nl);
    pos = nl + 1;
    return line;
  };

  const header = next();
  if (header === null) return fail(1, 'the proof is empty');
  if (header !== TLOG_PROOF_HEADER) {
    const hint = header === `${TLOG_PROOF_HEADER}\r` ? ' (lines must end in LF, not CRLF)' : '';
    fail(1, `header must be ${JSON.stringify(TLOG_PROOF_HEADER)}, got ${JSON.stringify(header.slice(0, 60))}${hint}`);
  }

  let line = next();
  let extra: Buffer | undefined;
  if (line?.startsWith('extra ')) {
    const b = decodeBase64Strict(line.slice(6));
    if (b === null) fail(lineNo, 'extra data is not canonical standard base64');
    extra = b as Buffer;
    line = next();
  }
  if (line === null) return fail(lineNo + 1, 'missing "index <n>" line');
  if (!line.startsWith('index ')) {
    return fail(
      lineNo,
      `want "index <n>"${extra === undefined ? ' or "extra <base64>"' : ''}, got ${JSON.stringify(line.slice(0, 60))}`,
    );
  }
  const digits = line.slice(6);
  if (!DECIMAL.test(digits))
    fail(lineNo, `index must be a decimal number without leading zeros, got ${JSON.stringify(digits.slice(0, 30))}`);
  const index = Number(digits);
  if (!Number.isSafeInteger(index)) fail(lineNo, `index ${digits} is larger than 2^53-1`);

  const proof: Buffer[] = [];
  for (;;) {
    line = next();
    if (line === null) return fail(lineNo + 1, 'missing the empty line (and the checkpoint) after the proof hashes');
    if (line === '') break;
    const h = decodeBase64Strict(line);
    if (h === null) {
      return fail(
        lineNo,
        `proof hash ${proof.length} is not canonical standard base64: ${JSON.stringify(line.slice(0, 60))}` +
          ' (is the empty line before the checkpoint missing?)',
      );
    }
    if (h.length !== HASH_SIZE) fail(lineNo, `proof hash ${proof.length} is ${h.length} bytes, want ${HASH_SIZE}`);
    if (proof.length === MAX_PROOF_HASHES) fail(lineNo, `more than ${MAX_PROOF_HASHES} proof hashes`);
    proof.push(h);
  }

  const checkpoint = text.slice(pos);
  const problem = checkpointProblem(checkpoint);
  if (problem !== null) fail(lineNo + 1, `the checkpoint ${problem}`);
  return extra === undefined ? { index, proof, checkpoint } : { index, proof, checkpoint, extra };
}
