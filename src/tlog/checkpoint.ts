/**
 * c2sp.org/tlog-checkpoint: the note text "origin\nsize\nbase64(root)\n[extension lines\n]".
 * Signing and opening the surrounding signed note is note.ts's job.
 */
import { decodeBase64Strict } from './base64.js';
import { HASH_SIZE } from './hash.js';

export interface Checkpoint {
  origin: string;
  size: number;
  root: Buffer;
  extensions: string[];
}

function checkLine(what: string, s: string): void {
  if (s === '') throw new Error(`checkpoint ${what} must not be empty`);
  if (s.includes('\n')) throw new Error(`checkpoint ${what} must not contain a newline`);
}

export function formatCheckpoint(c: Checkpoint): string {
  checkLine('origin', c.origin);
  if (!Number.isSafeInteger(c.size) || c.size < 0) {
    throw new RangeError(`checkpoint size must be a non-negative safe integer, got ${c.size}`);
  }
  if (c.root.length !== HASH_SIZE) {
    throw new RangeError(`checkpoint root must be ${HASH_SIZE} bytes, got ${c.root.length}`);
  }
  for (const [i, e] of c.extensions.entries()) checkLine(`extension line ${i + 1}`, e);
  const ext = c.extensions.map((e) => `${e}\n`).join('');
  return `${c.origin}\n${c.size}\n${Buffer.from(c.root).toString('base64')}\n${ext}`;
}

/** Parse checkpoint note text (not the whole signed note). Strict: any deviation throws. */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw new Error('checkpoint text must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) {
    throw new Error(`checkpoint needs at least 3 lines (origin, size, root hash), got ${lines.length}`);
  }
  const [origin = '', sizeLine = '', rootLine = ''] = lines;
  if (origin === '') throw new Error('checkpoint origin (line 1) is empty');
  if (!/^(0|[1-9][0-9]*)$/.test(sizeLine)) {
    throw new Error(`checkpoint size (line 2) must be a decimal number without leading zeros, got ${JSON.stringify(sizeLine)}`);
  }
  const size = Number(sizeLine);
  if (!Number.isSafeInteger(size)) throw new Error(`checkpoint size ${sizeLine} is larger than 2^53-1`);
  const root = decodeBase64Strict(rootLine);
  if (root === null) {
    throw new Error(`checkpoint root hash (line 3) is not canonical standard base64: ${JSON.stringify(rootLine)}`);
  }
  if (root.length !== HASH_SIZE) {
    throw new Error(`checkpoint root hash (line 3) is ${root.length} bytes, want ${HASH_SIZE}`);
  }
  const extensions = lines.slice(3);
  extensions.forEach((e, i) => {
    if (e === '') {
      throw new Error(
        `checkpoint line ${i + 4} is empty (extension lines must be non-empty; pass the note text, not the signed note)`,
      );
    }
  });
  return { origin, size, root, extensions };
}

/** The tree size of a signed checkpoint note, unverified (for a store's own notes: how far its tiles go). */
export function noteSize(note: string): number {
  return parseCheckpoint(note.slice(0, note.indexOf('\n\n') + 1)).size;
}
