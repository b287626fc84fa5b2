/**
 * The export manifest: what an evidence bundle claims to be, signed by the log's key, so that the
 * bundle proves it is complete (nothing dropped, added or reordered) and says who asked for what.
 *
 * It is a c2sp.org/signed-note, signed with the same Ed25519 key as the checkpoints, whose text is:
 *
 *   stele.dev/export-manifest/v1
 *   origin <the log's origin>
 *   checkpoint <size> <base64 root>            the checkpoint every entry is proven against
 *   asker <JSON {"id":…,"method":…}>          who exported
 *   query <JSON>                               what selected the entries (the bundle header's `query`)
 *   started <index>                            the stele.access.export entry recording the start
 *   count <N>                                  the number of entry lines of the bundle
 *   digest <base64 SHA-256>                    over the ordered (index, leaf hash) of those lines
 *   time <RFC 3339>                            when the manifest was signed (the export's end)
 *
 * A manifest can never be taken for a checkpoint, nor a checkpoint for a manifest: a checkpoint's
 * line 2 is its size, a decimal number (parseCheckpoint refuses anything else), and a manifest's
 * line 2 always begins with "origin " (parseManifest refuses anything else). So a signature the log
 * made over one can never be replayed as the other, even with an origin equal to the version line.
 * Free-form values (asker, query) are JSON on one line: they cannot inject lines.
 *
 * The digest is accumulated while the export streams (memory stays flat), and covers every line of
 * the bundle that stands for a log entry, whatever its kind (an event, or a gap where an erased or
 * expired entry was): each is (index, RFC 6962 leaf hash of its leaf bytes).
 */
import { createHash, type Hash } from 'node:crypto';
import { decodeBase64Strict } from '../tlog/base64.js';
import { HASH_SIZE, leafHash } from '../tlog/hash.js';
import { openNote, type Signer, signNote, type Verifier } from '../tlog/note.js';

export const MANIFEST_VERSION = 'stele.dev/export-manifest/v1';
const DIGEST_DOMAIN = `${MANIFEST_VERSION} entries\n`;

export interface Manifest {
  origin: string;
  size: number;
  root: Buffer;
  asker: { id: string; method: string };
  query: unknown;
  started: number;
  count: number;
  digest: Buffer;
  time: string;
}

/**
 * The running digest of a bundle's entries, in bundle order: SHA-256 of a domain line, then for
 * each entry its index as 8 bytes big-endian and its 32-byte leaf hash. Fixed-size records, so no
 * two lists share a digest; the count is in the manifest too.
 */
export class EntryDigest {
  private readonly h: Hash = createHash('sha256').update(DIGEST_DOMAIN);
  private n = 0;

  /** Adds one entry (event or gap) by its index and leaf bytes. */
  add(index: number, leaf: Uint8Array): void {
    this.addHash(index, leafHash(leaf));
  }

  addHash(index: number, hash: Uint8Array): void {
    if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`EntryDigest: bad index ${index}`);
    if (hash.length !== HASH_SIZE) throw new RangeError(`EntryDigest: leaf hash is ${hash.length} bytes`);
    const rec = Buffer.alloc(8 + HASH_SIZE);
    rec.writeBigUInt64BE(BigInt(index), 0);
    rec.set(hash, 8);
    this.h.update(rec);
    this.n++;
  }

  get count(): number {
    return this.n;
  }

  /** The digest so far (the accumulator stays usable). */
  digest(): Buffer {
    return this.h.copy().digest();
  }
}

const isIndex = (v: number) => Number.isSafeInteger(v) && v >= 0;

/** The manifest's note text (unsigned). */
export function formatManifest(m: Manifest): string {
  if (m.origin === '' || m.origin.includes('\n')) throw new Error('manifest origin must be one non-empty line');
  for (const [k, v] of [
    ['size', m.size],
    ['started', m.started],
    ['count', m.count],
  ] as const) {
    if (!isIndex(v)) throw new RangeError(`manifest ${k} must be a non-negative integer, got ${v}`);
  }
  if (m.root.length !== HASH_SIZE || m.digest.length !== HASH_SIZE) throw new RangeError('manifest hashes must be 32 bytes');
  if (Number.isNaN(Date.parse(m.time))) throw new Error(`manifest time ${JSON.stringify(m.time)} is not a date-time`);
  return [
    MANIFEST_VERSION,
    `origin ${m.origin}`,
    `checkpoint ${m.size} ${m.root.toString('base64')}`,
    `asker ${JSON.stringify({ id: m.asker.id, method: m.asker.method })}`,
    `query ${JSON.stringify(m.query ?? null)}`,
    `started ${m.started}`,
    `count ${m.count}`,
    `digest ${m.digest.toString('base64')}`,
    `time ${m.time}`,
    '',
  ].join('\n');
}

/** The manifest signed by the log's key, as a signed note. */
export function signManifest(m: Manifest, signer: Signer): string {
  return signNote(formatManifest(m), [signer]);
}

const DECIMAL = /^(0|[1-9][0-9]*)$/;

/** Parses manifest note text (not the signed note). Strict: every line, in order, nothing else. */
export function parseManifest(text: string): Manifest {
  if (!text.endsWith('\n')) throw new Error('manifest text must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines[0] !== MANIFEST_VERSION) {
    throw new Error(`not an export manifest: the first line is ${JSON.stringify(lines[0])}, want ${MANIFEST_VERSION}`);
  }
  const keys = ['origin', 'checkpoint', 'asker', 'query', 'started', 'count', 'digest', 'time'];
  const v: Record<string, string> = {};
  keys.forEach((k, i) => {
    const line = lines[i + 1];
    if (line === undefined) return;
    if (!line.startsWith(`${k} `)) throw new Error(`manifest line ${i + 2} must start with "${k} ", got ${JSON.stringify(line)}`);
    v[k] = line.slice(k.length + 1);
  });
  if (lines.length !== keys.length + 1) throw new Error(`manifest has ${lines.length} lines, want ${keys.length + 1}`);
  const int = (k: string, s: string): number => {
    const n = Number(s);
    if (!DECIMAL.test(s) || !Number.isSafeInteger(n))
      throw new Error(`manifest ${k} ${JSON.stringify(s)} is not a decimal integer`);
    return n;
  };
  const hash = (k: string, s: string): Buffer => {
    const b = decodeBase64Strict(s);
    if (b === null || b.length !== HASH_SIZE) throw new Error(`manifest ${k} ${JSON.stringify(s)} is not a base64 SHA-256 hash`);
    return b;
  };
  const json = (k: string, s: string): unknown => {
    try {
      return JSON.parse(s);
    } catch {
      throw new Error(`manifest ${k} is not JSON`);
    }
  };
  const origin = v.origin as string;
  if (origin === '') throw new Error('manifest origin is empty');
  const cp = (v.checkpoint as string).split(' ');
  if (cp.length !== 2) throw new Error('manifest checkpoint must be "<size> <base64 root>"');
  const asker = json('asker', v.asker as string) as { id?: unknown; method?: unknown } | null;
  if (
    typeof asker !== 'object' ||
    asker === null ||
    typeof asker.id !== 'string' ||
    typeof asker.method !== 'string' ||
    Object.keys(asker).length !== 2
  ) {
    throw new Error('manifest asker must be {"id":…,"method":…}');
  }
  const time = v.time as string;
  if (Number.isNaN(Date.parse(time))) throw new Error(`manifest time ${JSON.stringify(time)} is not a date-time`);
  return {
    origin,
    size: int('checkpoint size', cp[0] as string),
    root: hash('checkpoint root', cp[1] as string),
    asker: { id: asker.id, method: asker.method },
    query: json('query', v.query as string),
    started: int('started', v.started as string),
    count: int('count', v.count as string),
    digest: hash('digest', v.digest as string),
    time,
  };
}

/** Checks the signature of a signed manifest with `verifier` and parses it; throws why not. */
export function openManifest(note: string, verifier: Verifier): { manifest: Manifest; text: string } {
  const { text } = openNote(note, [verifier]);
  return { manifest: parseManifest(text), text };
}

/** SHA-256 of the manifest text, hex: what the log's stele.access.export.end entry records. */
export function manifestHash(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
