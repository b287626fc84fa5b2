/**
 * The evidence bundle: a set of log entries with everything an auditor needs to check them
 * offline, without trusting Stele or its server — only the log's verifier key.
 *
 * A bundle is a JSON Lines file (`.stele-bundle.jsonl`), written and read one line at a time, so a
 * bundle of millions of entries is never held in memory:
 *
 *   line 1   {"type":"stele.evidence.v1","origin":…,"vkey":…,"checkpoint":…,"size":…,"query":…,"created":…}
 *            `checkpoint` is the signed checkpoint note every proof is against; `vkey` the log's
 *            verifier key (an auditor should pin their own copy instead); `query` says what
 *            selected the entries (authenticated by the manifest) and `created` when the export
 *            started (informational).
 *   timestamps {"type":"timestamp","tsa":url,"checkpoint":note,"token":base64(DER),"consistency":[base64…]}
 *            optional, before the entries: an RFC 3161 token over the SHA-256 of an earlier signed
 *            checkpoint note of the log, and a consistency proof from it to the header's checkpoint,
 *            so the entries below its size existed by the token's time (checked with the TSA's
 *            certificate: `stele verify-bundle --tsa-ca`).
 *   entries  {"type":"entry","index":n,"leaf":base64(leaf),"event":{…},"ingest":{…},"message_key":base64,"proof":"…"}
 *            `leaf` the exact leaf bytes; `event` the event in clear; `ingest` who wrote it (in
 *            clear; a v2 sealed leaf seals it with the event, so there it is checked against what
 *            the message key opens, and required); `message_key` (sealed leaves only) the per-event
 *            key of keys/seal.ts that opens this one event and no other;
 *            `proof` a c2sp.org/tlog-proof for the leaf against the header's checkpoint, so each
 *            entry can also be checked on its own by any C2SP tool.
 *   gaps     {"type":"gap","index":n,"leaf":base64(leaf),"state":"erased","erasure":e,"proof":"…"}
 *            an entry the query matched whose data key was destroyed ("expired" or "erased";
 *            `erasure`, when known, the index of the stele.erasure / stele.retention.run entry that
 *            destroyed it): the leaf (sealed: its ciphertext stays in the log) and its proof, no
 *            event and no message key. The verifier checks that the leaf is proven and sealed; that
 *            the key was really destroyed it cannot check offline.
 *   last     {"type":"end","count":N,"manifest":…,"record":r}: `manifest` the export manifest
 *            (manifest.ts), a note signed by the log's key over the checkpoint, the asker, the query,
 *            the count and a digest of the ordered (index, leaf hash) of every entry line, so
 *            nothing can be dropped, added or reordered; `record` the index of the log's
 *            stele.access.export.end entry, which holds the manifest's SHA-256. A bundle without
 *            this trailer (truncated, or an export cut short) does not verify.
 *
 * Entries are in strictly increasing or strictly decreasing index order (a search may return the
 * newest first), which also rules out duplicates.
 */
import { createHash } from 'node:crypto';
import { SteleError } from '../core/errors.js';
import { plural } from '../core/plural.js';
import { canonicalBytes } from '../event/canonical.js';
import { decodeLeaf, leafAad, sealedPlaintext, sealedPlaintextOf } from '../event/record.js';
import type { Event, Ingest, LeafRecord } from '../event/types.js';
import { openWithMessageKey } from '../keys/seal.js';
import { type Certificate, readTimestampToken, verifyTimestamp } from '../timestamp/rfc3161.js';
import { decodeBase64Strict } from '../tlog/base64.js';
import { type Checkpoint, parseCheckpoint } from '../tlog/checkpoint.js';
import { leafHash } from '../tlog/hash.js';
import { newVerifier, openNote, type Verifier } from '../tlog/note.js';
import { verifyConsistency, verifyInclusion } from '../tlog/proof.js';
import { formatTlogProof, parseTlogProof, type TlogProof } from '../tlog/proof-text.js';
import { EntryDigest, type Manifest, manifestHash, openManifest } from './manifest.js';

export const BUNDLE_TYPE = 'stele.evidence.v1';
export const BUNDLE_EXTENSION = '.stele-bundle.jsonl';
/**
 * Longest line a verifier accepts (in UTF-16 units). An entry line holds a leaf of at most 65,535
 * bytes in base64, the event in clear (at most as large again, escaped) and a proof: far below this.
 */
export const MAX_BUNDLE_LINE = 1 << 20;

const MESSAGE_KEY_BYTES = 32;

// ---------------------------------------------------------------------------------------------
// Writing

/** Origin and size of a checkpoint note after checking its signature with `vkey`. */
function openCheckpoint(note: string, verifier: Verifier): Checkpoint {
  return parseCheckpoint(openNote(note, [verifier]).text);
}

/**
 * The header line. Origin and size are taken from the checkpoint, whose signature must verify with
 * `vkey` (an exporter never writes a bundle that cannot verify). `query` is any JSON value
 * describing what selected the entries; `created` defaults to now.
 */
export function bundleHeader(h: { vkey: string; checkpoint: string; query: unknown; created?: string }): string {
  let cp: Checkpoint;
  try {
    cp = openCheckpoint(h.checkpoint, newVerifier(h.vkey));
  } catch (e) {
    throw new Error(`bundleHeader: the checkpoint does not verify with ${h.vkey}: ${(e as Error).message}`);
  }
  const header = {
    type: BUNDLE_TYPE,
    origin: cp.origin,
    vkey: h.vkey,
    checkpoint: h.checkpoint,
    size: cp.size,
    query: h.query ?? null,
    created: h.created ?? new Date().toISOString(),
  };
  return `${JSON.stringify(header)}\n`;
}

/**
 * One entry line: the leaf, its event in clear, for a sealed leaf the event's message key
 * (seal.ts `messageKey`), and the entry's tlog-proof against `checkpoint` (the header's) from the
 * inclusion proof `proof` (hashes for `index` in the checkpoint's tree).
 */
export function bundleEntry(e: EntryData): string {
  return `${JSON.stringify({ type: 'entry', ...entryFields(e) })}\n`;
}

export interface EntryData {
  index: number;
  leaf: Uint8Array;
  event: Event;
  /** Who wrote it; needed to check a v2 sealed leaf, which seals it with the event. */
  ingest?: Ingest;
  messageKey?: Uint8Array;
  proof: readonly Uint8Array[];
  checkpoint: string;
}

const b64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');

function entryFields(e: EntryData): Record<string, unknown> {
  const out: Record<string, unknown> = { index: e.index, leaf: b64(e.leaf), event: e.event };
  if (e.ingest !== undefined) out.ingest = { method: e.ingest.method, principal: e.ingest.principal };
  if (e.messageKey !== undefined) {
    if (e.messageKey.length !== MESSAGE_KEY_BYTES) {
      throw new RangeError(`bundleEntry: message key is ${e.messageKey.length} bytes, want ${MESSAGE_KEY_BYTES}`);
    }
    out.message_key = b64(e.messageKey);
  }
  out.proof = formatTlogProof({ index: e.index, proof: e.proof, checkpoint: e.checkpoint });
  return out;
}

/** A gap line: an entry whose data key was destroyed, proven by its leaf, with no event and no key. */
export function bundleGap(g: {
  index: number;
  leaf: Uint8Array;
  state: 'expired' | 'erased';
  erasure?: number;
  proof: readonly Uint8Array[];
  checkpoint: string;
}): string {
  const out: Record<string, unknown> = { type: 'gap', index: g.index, leaf: b64(g.leaf), state: g.state };
  if (g.erasure !== undefined) out.erasure = g.erasure;
  out.proof = formatTlogProof({ index: g.index, proof: g.proof, checkpoint: g.checkpoint });
  return `${JSON.stringify(out)}\n`;
}

/**
 * The last line: the number of entry lines, the signed export manifest, and the log entry that
 * records it (the stele.access.export.end event holding the manifest's SHA-256), as an entry with
 * its message key and a tlog-proof against a later checkpoint, plus the consistency proof from
 * the header's checkpoint to that one. So a truncated, shortened, padded or reordered bundle is
 * detected, and the bundle shows, offline, where the log recorded it.
 */
export function bundleTrailer(
  count: number,
  m: { manifest: string; record: EntryData; consistency: readonly Uint8Array[] },
): string {
  if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`bundleTrailer: bad count ${count}`);
  const record = { ...entryFields(m.record), consistency: m.consistency.map(b64) };
  return `${JSON.stringify({ type: 'end', count, manifest: m.manifest, record })}\n`;
}

// ---------------------------------------------------------------------------------------------
// Verifying

/**
 * A timestamp line: an RFC 3161 token (by `tsa`) over the SHA-256 of a signed checkpoint note of
 * this log, and a consistency proof from that checkpoint to the bundle's: every entry below its
 * size existed by the token's time.
 */
export function bundleTimestamp(t: {
  tsa: string;
  checkpoint: string;
  token: string;
  consistency: readonly Uint8Array[];
}): string {
  return `${JSON.stringify({
    type: 'timestamp',
    tsa: t.tsa,
    checkpoint: t.checkpoint,
    token: t.token,
    consistency: t.consistency.map((h) => Buffer.from(h).toString('base64')),
  })}\n`;
}

/** A timestamp line as the verifier found it. */
export interface BundleTimestamp {
  tsa: string;
  /** The tree size of the timestamped checkpoint: entries below it existed by `gen_time`. */
  size: number;
  gen_time: string;
  /** Whether the token was checked against a trusted TSA certificate (verifyBundle's tsaCerts). */
  verified: boolean;
}

export interface BundleReport {
  origin: string;
  /** Size of the checkpoint every entry was proven against. */
  size: number;
  /** Number of entries, gaps included. */
  count: number;
  /** How many of them are gaps (entries whose data key was destroyed). */
  gaps: number;
  /**
   * True when the checkpoint was checked with a key the caller supplied; false when only with the
   * bundle's own `vkey`, which proves consistency but not that the log is the one you think.
   */
  trusted: boolean;
  /** The verifier key the checkpoint was checked with. */
  vkey: string;
  /** Index of the first and last entry (absent when the bundle has no entries). */
  first?: number;
  last?: number;
  /** RFC 3161 timestamps of checkpoints this one extends. */
  timestamps: BundleTimestamp[];
  /** What the signed manifest says: who exported, what, when, and the entries recording it. */
  export: {
    asker: { id: string; method: string };
    query: unknown;
    time: string;
    /** Index of the stele.access.export entry (the start; signed). */
    started: number;
    /** Index of the stele.access.export.end entry holding `manifest_sha256`, proven in the log. */
    record: number;
    /** Size of the later checkpoint (same key) the record is proven in, consistent with `size`. */
    record_checkpoint_size: number;
    /** Its root hash, base64 (to check that the live log still extends it). */
    record_checkpoint_root: string;
    /** SHA-256 (hex) of the manifest text, as that entry records it. */
    manifest_sha256: string;
  };
}

const HEADER_FIELDS = ['type', 'origin', 'vkey', 'checkpoint', 'size', 'query', 'created'];
const ENTRY_FIELDS = new Set(['type', 'index', 'leaf', 'event', 'ingest', 'message_key', 'proof']);
const TRAILER_FIELDS = ['type', 'count', 'manifest', 'record'];
const RECORD_FIELDS = new Set(['index', 'leaf', 'event', 'ingest', 'message_key', 'proof', 'consistency']);
const RECORD_ACTION = 'stele.access.export.end';
const GAP_FIELDS = new Set(['type', 'index', 'leaf', 'state', 'erasure', 'proof']);
const TIMESTAMP_FIELDS = new Set(['type', 'tsa', 'checkpoint', 'token', 'consistency']);

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Key name, lower-case key ID and key of a verifier key string, for comparing two of them. */
function normalVkey(vkey: string): string {
  const i = vkey.indexOf('+');
  const j = vkey.indexOf('+', i + 1);
  return `${vkey.slice(0, i)}+${vkey.slice(i + 1, j).toLowerCase()}+${vkey.slice(j + 1)}`;
}

/** Top-level fields whose canonical JSON differs between two objects, sorted. */
function differingFields(a: Obj, b: Obj): string[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => {
    if (!(k in a) || !(k in b)) return true;
    return !canonicalBytes(a[k]).equals(canonicalBytes(b[k]));
  });
}

function mismatch(what: string, event: Obj, other: Obj, name = 'event'): string {
  const fields = differingFields(event, other);
  return `the ${name} does not match ${what}${fields.length > 0 ? ` (field${fields.length > 1 ? 's' : ''} ${fields.join(', ')} differ${fields.length > 1 ? '' : 's'})` : ''}`;
}

function parseLine(line: string, fail: (why: string) => never): Obj {
  if (line.length > MAX_BUNDLE_LINE) fail(`line is ${line.length} characters, longer than the limit of ${MAX_BUNDLE_LINE}`);
  if (line === '') fail('empty line');
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    fail(`not JSON (${(e as Error).message})`);
  }
  if (!isObject(v)) return fail('not a JSON object');
  return v;
}

interface Header {
  origin: string;
  vkey: string;
  checkpoint: string;
  size: number;
  query: unknown;
}

function checkHeader(h: Obj, fail: (why: string) => never): Header {
  if (h.type !== BUNDLE_TYPE) {
    if (h.type === 'entry' || h.type === 'end')
      fail(`the bundle header is missing: the first line is ${h.type === 'end' ? 'the trailer' : 'an entry'}`);
    fail(`not a Stele evidence bundle: type is ${JSON.stringify(h.type)}, want ${JSON.stringify(BUNDLE_TYPE)}`);
  }
  for (const k of Object.keys(h)) if (!HEADER_FIELDS.includes(k)) fail(`unknown header field ${JSON.stringify(k)}`);
  for (const k of HEADER_FIELDS) if (!(k in h)) fail(`the header lacks ${JSON.stringify(k)}`);
  const { origin, vkey, checkpoint, size, created } = h;
  if (typeof origin !== 'string' || origin === '') fail('header origin must be a non-empty string');
  if (typeof vkey !== 'string') fail('header vkey must be a string');
  if (typeof checkpoint !== 'string') fail('header checkpoint must be a string (the signed note)');
  if (!isIndex(size)) fail('header size must be a non-negative integer');
  if (typeof created !== 'string' || Number.isNaN(Date.parse(created))) fail('header created must be a date-time string');
  return {
    origin: origin as string,
    vkey: vkey as string,
    checkpoint: checkpoint as string,
    size: size as number,
    query: h.query,
  };
}

/** Checks the event (and ingest) of an entry against its leaf; returns why not, or null. */
function eventProblem(entry: Obj, leaf: LeafRecord): string | null {
  const event = entry.event;
  if (!isObject(event)) return 'event must be a JSON object';
  let eventBytes: Buffer;
  try {
    eventBytes = canonicalBytes(event);
  } catch (e) {
    return `the event cannot be canonicalised: ${(e as Error).message}`;
  }
  const ingest = entry.ingest;
  if (ingest !== undefined) {
    if (
      !isObject(ingest) ||
      Object.keys(ingest).length !== 2 ||
      typeof ingest.principal !== 'string' ||
      typeof ingest.method !== 'string'
    )
      return 'ingest must be an object {principal, method}';
    // Where the leaf carries ingest in the clear (v1, plain), the entry's must be the same.
    if (leaf.ingest !== undefined && !canonicalBytes(ingest).equals(canonicalBytes(leaf.ingest)))
      return mismatch("the leaf's ingest", ingest, leaf.ingest as unknown as Obj, 'ingest');
  }
  if (leaf.event !== undefined) {
    if (entry.message_key !== undefined) return 'message_key given for a leaf that is not sealed';
    if (eventBytes.equals(canonicalBytes(leaf.event))) return null;
    return mismatch("the leaf's event", event, leaf.event as unknown as Obj);
  }
  // Sealed: the message key must open the leaf's ciphertext, bound to the leaf's other fields.
  const mkText = entry.message_key;
  if (mkText === undefined) return 'the leaf is sealed but the entry has no message_key';
  if (typeof mkText !== 'string') return 'message_key must be a base64 string';
  const mk = decodeBase64Strict(mkText);
  if (mk === null) return 'message_key is not canonical standard base64';
  if (mk.length !== MESSAGE_KEY_BYTES) return `message_key is ${mk.length} bytes, want ${MESSAGE_KEY_BYTES}`;
  const sealed = decodeBase64Strict(leaf.sealed as string);
  if (sealed === null) return "the leaf's sealed event is not canonical standard base64";
  if (leaf.v !== 1 && ingest === undefined) return 'the leaf seals who wrote it, but the entry has no ingest';
  let plain: Buffer;
  try {
    plain = openWithMessageKey(mk, sealed, leafAad(leaf));
  } catch (e) {
    return `message_key does not open the leaf's sealed event: ${(e as Error).message}`;
  }
  try {
    plain = sealedPlaintextOf(leaf, plain);
  } catch (e) {
    return `the leaf's sealed event does not decompress: ${(e as Error).message}`;
  }
  // v1 sealed the event alone; v2 and v3 seal {"event":…,"ingest":…}.
  let expected: Buffer;
  try {
    expected = leaf.v === 1 ? eventBytes : sealedPlaintext(event as unknown as Event, ingest as unknown as Ingest);
  } catch (e) {
    return `the ingest cannot be canonicalised: ${(e as Error).message}`;
  }
  if (expected.equals(plain)) return null;
  let opened: unknown;
  try {
    opened = JSON.parse(plain.toString('utf8'));
  } catch {
    // reported without the field list
  }
  if (leaf.v === 1) {
    return isObject(opened)
      ? mismatch("the leaf's sealed event", event, opened)
      : "the event does not match the leaf's sealed event";
  }
  if (!isObject(opened) || !isObject(opened.event) || !isObject(opened.ingest))
    return "the event and ingest do not match the leaf's sealed content";
  if (!eventBytes.equals(canonicalBytes(opened.event))) return mismatch("the leaf's sealed event", event, opened.event);
  return mismatch("the leaf's sealed ingest", ingest as Obj, opened.ingest, 'ingest');
}

/** Checks a gap line against its leaf; returns why not, or null. */
function gapProblem(g: Obj, leaf: LeafRecord): string | null {
  if (g.state !== 'expired' && g.state !== 'erased') return 'state must be "expired" or "erased"';
  if (g.erasure !== undefined && !isIndex(g.erasure)) return 'erasure must be a non-negative integer (an entry index)';
  // A plain leaf carries its event in the clear: it cannot have been forgotten.
  if (leaf.event !== undefined || leaf.sealed === undefined) return 'the leaf is not sealed, so it cannot be a gap';
  return null;
}

/**
 * Verifies an evidence bundle offline, line by line (see the module comment for the format):
 * the header; the checkpoint's signature with the trusted key `opts.vkey` (without one, with the
 * bundle's own `vkey`, and the report says `trusted: false`); that the header's origin and size
 * are the checkpoint's; for every entry that its leaf decodes, that its tlog-proof is for its index
 * and against the header's checkpoint, byte for byte, and proves the leaf in that tree, and that
 * its event is the leaf's (plain) or is what its message key opens from the leaf (sealed); the
 * order of indices; and the trailer's count.
 *
 * Throws SteleError 'bundle_invalid' with `line N (entry i): <reason>` at the first problem.
 */
export async function verifyBundle(
  lines: AsyncIterable<string> | Iterable<string>,
  /** `tsaCerts`: the TSA certificates (or their CAs) timestamp tokens must chain to; absent: tokens are read, not checked. */
  opts: { vkey?: string; tsaCerts?: readonly Certificate[] } = {},
): Promise<BundleReport> {
  let trustedVerifier: Verifier | undefined;
  if (opts.vkey !== undefined) {
    try {
      trustedVerifier = newVerifier(opts.vkey);
    } catch (e) {
      throw new SteleError('bad_vkey', `the trusted verifier key is malformed: ${(e as Error).message}`, { cause: e });
    }
  }

  let lineNo = 0;
  let where = '';
  const fail = (why: string): never => {
    throw new SteleError('bundle_invalid', `line ${lineNo}${where}: ${why}`);
  };

  let header: Header | undefined;
  let cp: Checkpoint | undefined;
  let verifier: Verifier | undefined;
  const digest = new EntryDigest();
  let exported: BundleReport['export'] | undefined;
  let verifierKey = '';
  let count = 0;
  let gaps = 0;
  let first: number | undefined;
  let last: number | undefined;
  let direction = 0;
  let ended = false;
  const timestamps: BundleTimestamp[] = [];

  for await (const line of lines) {
    lineNo++;
    if (header === undefined || cp === undefined) {
      where = ' (header)';
      const h = checkHeader(parseLine(line, fail), fail);
      let headerVerifier: Verifier;
      try {
        headerVerifier = newVerifier(h.vkey);
      } catch (e) {
        return fail(`header vkey is not a valid verifier key: ${(e as Error).message}`);
      }
      verifier = trustedVerifier ?? headerVerifier;
      verifierKey = opts.vkey ?? h.vkey;
      let text: string;
      try {
        text = openNote(h.checkpoint, [verifier]).text;
      } catch (e) {
        const whose = trustedVerifier ? 'the trusted key' : "the bundle's own key";
        return fail(`the checkpoint does not verify with ${whose} ${verifier.name}: ${(e as Error).message}`);
      }
      try {
        cp = parseCheckpoint(text);
      } catch (e) {
        return fail(`the signed checkpoint is malformed: ${(e as Error).message}`);
      }
      if (opts.vkey !== undefined && normalVkey(h.vkey) !== normalVkey(opts.vkey)) {
        fail(`the bundle names verifier key ${h.vkey}, not the trusted key ${opts.vkey}`);
      }
      if (cp.origin !== h.origin)
        fail(`header origin ${JSON.stringify(h.origin)} is not the checkpoint's origin ${JSON.stringify(cp.origin)}`);
      if (cp.size !== h.size) fail(`header size ${h.size} is not the checkpoint's size ${cp.size}`);
      header = h;
      continue;
    }

    where = '';
    if (ended) fail('content after the end trailer');
    const v = parseLine(line, fail);
    if (v.type === 'end') {
      where = ' (trailer)';
      for (const k of Object.keys(v)) if (!TRAILER_FIELDS.includes(k)) fail(`unknown trailer field ${JSON.stringify(k)}`);
      if (!isIndex(v.count)) fail('trailer count must be a non-negative integer');
      if (v.count !== count)
        fail(`the trailer says ${plural(v.count as number, 'entry', 'entries')}, but the bundle has ${count}`);
      exported = checkManifest(
        v,
        { header, cp, verifier: verifier as Verifier, count, digest: digest.digest(), trusted: trustedVerifier !== undefined },
        fail,
      );
      ended = true;
      continue;
    }
    if (v.type === 'timestamp') {
      where = ' (timestamp)';
      timestamps.push(await checkTimestamp(v, { cp, verifier: verifier as Verifier, tsaCerts: opts.tsaCerts }, fail));
      continue;
    }
    const gap = v.type === 'gap';
    where = gap ? ' (gap)' : ' (entry)';
    if (v.type === BUNDLE_TYPE) fail('a second bundle header');
    if (v.type !== 'entry' && !gap) fail(`unknown line type ${JSON.stringify(v.type)}`);
    const fields = gap ? GAP_FIELDS : ENTRY_FIELDS;
    for (const k of Object.keys(v)) if (!fields.has(k)) fail(`unknown ${gap ? 'gap' : 'entry'} field ${JSON.stringify(k)}`);
    const index = v.index;
    if (!isIndex(index)) return fail('index must be a non-negative integer');
    where = ` (${gap ? 'gap' : 'entry'} ${index})`;
    if (index >= cp.size) fail(`index ${index} is not in the checkpoint's tree of size ${cp.size}`);

    if (last !== undefined) {
      if (index === last) fail(`duplicate entry: index ${index} repeats the previous entry`);
      const d = index > last ? 1 : -1;
      if (direction === 0) direction = d;
      else if (d !== direction) {
        fail(`index ${index} after ${last}: entries must be in strictly ${direction > 0 ? 'increasing' : 'decreasing'} order`);
      }
    }

    const leaf = decodeEntryLeaf(v, fail);
    const proof = parseEntryProof(v, index, fail);
    if (proof.checkpoint !== header.checkpoint) fail("the proof's checkpoint is not the header's checkpoint");
    const hash = proveLeaf(leaf.bytes, index, proof, cp, fail);
    // Every entry line, whatever its kind, counts in the manifest's digest, in bundle order.
    digest.addHash(index, hash);

    const problem = gap ? gapProblem(v, leaf.record) : eventProblem(v, leaf.record);
    if (problem !== null) fail(problem);

    count++;
    if (gap) gaps++;
    first ??= index;
    last = index;
  }

  where = '';
  if (header === undefined || cp === undefined) {
    lineNo = 1;
    return fail('the bundle is empty (no header)');
  }
  if (!ended || exported === undefined) {
    lineNo++;
    fail(`the bundle is truncated: no {"type":"end"} trailer after ${plural(count, 'entry', 'entries')}`);
  }
  const report: BundleReport = {
    origin: cp.origin,
    size: cp.size,
    count,
    gaps,
    trusted: trustedVerifier !== undefined,
    vkey: verifierKey,
    timestamps,
    export: exported as BundleReport['export'],
  };
  if (first !== undefined) report.first = first;
  if (last !== undefined) report.last = last;
  return report;
}

/**
 * Checks the trailer's signed manifest against the bundle as read: signed by the key the
 * checkpoint verified with, for the same log and checkpoint and query, and with the count and the
 * digest of the entries actually present, in their order. Any entry dropped, added, repeated or
 * moved changes the digest; the signature stops anyone but the log from signing a new one.
 */
function checkManifest(
  trailer: Obj,
  b: { header: Header; cp: Checkpoint; verifier: Verifier; count: number; digest: Buffer; trusted: boolean },
  fail: (why: string) => never,
): BundleReport['export'] {
  if (trailer.manifest === undefined) {
    fail('the trailer has no export manifest, so the bundle cannot prove it is complete (made by an older Stele?)');
  }
  if (typeof trailer.manifest !== 'string') fail('trailer manifest must be a string (the signed note)');
  let m: Manifest;
  let text: string;
  try {
    ({ manifest: m, text } = openManifest(trailer.manifest as string, b.verifier));
  } catch (e) {
    const whose = b.trusted ? 'the trusted key' : "the bundle's own key";
    return fail(`the export manifest does not verify with ${whose} ${b.verifier.name}: ${(e as Error).message}`);
  }
  if (m.origin !== b.cp.origin)
    fail(`the manifest is for origin ${JSON.stringify(m.origin)}, not ${JSON.stringify(b.cp.origin)}`);
  if (m.size !== b.cp.size || !m.root.equals(b.cp.root)) {
    fail(`the manifest is for checkpoint size ${m.size}, not the header's checkpoint (size ${b.cp.size})`);
  }
  let sameQuery = false;
  try {
    sameQuery = canonicalBytes(m.query).equals(canonicalBytes(b.header.query));
  } catch {
    // not canonicalisable: different
  }
  if (!sameQuery) fail(`the header's query ${JSON.stringify(b.header.query)} is not the manifest's ${JSON.stringify(m.query)}`);
  if (m.count !== b.count) fail(`the manifest says ${plural(m.count, 'entry', 'entries')}, but the bundle has ${b.count}`);
  if (!m.digest.equals(b.digest)) {
    fail('the entries are not the ones the manifest lists (an entry was changed, dropped, added or moved)');
  }
  const sha = manifestHash(text);
  const record = checkRecord(trailer.record, { ...b, manifest: m, sha }, fail);
  return {
    asker: m.asker,
    query: m.query,
    time: m.time,
    started: m.started,
    record: record.index,
    record_checkpoint_size: record.size,
    record_checkpoint_root: record.root.toString('base64'),
    manifest_sha256: sha,
  };
}

/**
 * Checks the trailer's record: the log entry that records this export. Its checkpoint is a later
 * one signed by the same key and proven consistent with the header's (same history); the entry is
 * proven in it, its event opens from its leaf, and that event is the export's end, naming this
 * manifest's SHA-256, start entry and count. So the log itself says it gave out this bundle.
 */
function checkRecord(
  r: unknown,
  b: { cp: Checkpoint; verifier: Verifier; trusted: boolean; count: number; manifest: Manifest; sha: string },
  fail: (why: string) => never,
): { index: number; size: number; root: Buffer } {
  if (!isObject(r)) return fail('trailer record must be the entry that records the export');
  for (const k of Object.keys(r)) if (!RECORD_FIELDS.has(k)) fail(`unknown record field ${JSON.stringify(k)}`);
  const index = r.index;
  if (!isIndex(index)) return fail('record index must be a non-negative integer');
  const at = `the record (entry ${index})`;
  if (index < b.cp.size) fail(`${at} is older than the export's checkpoint (size ${b.cp.size})`);
  const leaf = decodeEntryLeaf(r, (why) => fail(`${at}: ${why}`));
  const proof = parseEntryProof(r, index, (why) => fail(`${at}: ${why}`));
  let later: Checkpoint;
  try {
    later = parseCheckpoint(openNote(proof.checkpoint, [b.verifier]).text);
  } catch (e) {
    const whose = b.trusted ? 'the trusted key' : "the bundle's own key";
    return fail(`${at}: its checkpoint does not verify with ${whose} ${b.verifier.name}: ${(e as Error).message}`);
  }
  if (later.origin !== b.cp.origin) fail(`${at}: its checkpoint is for origin ${JSON.stringify(later.origin)}`);
  if (!Array.isArray(r.consistency)) fail(`${at}: consistency must be a list of base64 hashes`);
  const hashes = (r.consistency as unknown[]).map((h) => (typeof h === 'string' ? decodeBase64Strict(h) : null));
  if (hashes.some((h) => h === null)) fail(`${at}: consistency must be a list of base64 hashes`);
  try {
    verifyConsistency(b.cp.size, later.size, hashes as Buffer[], b.cp.root, later.root);
  } catch (e) {
    fail(`${at}: its checkpoint (size ${later.size}) is not consistent with the header's: ${(e as Error).message}`);
  }
  proveLeaf(leaf.bytes, index, proof, later, (why) => fail(`${at}: ${why}`));
  const problem = eventProblem(r, leaf.record);
  if (problem !== null) fail(`${at}: ${problem}`);
  const event = r.event as Obj;
  const data = isObject(event.data) ? event.data : {};
  if (event.action !== RECORD_ACTION) fail(`${at} is a ${JSON.stringify(event.action)} event, not ${RECORD_ACTION}`);
  if (data.manifest_sha256 !== b.sha) fail(`${at} records another manifest (${JSON.stringify(data.manifest_sha256)})`);
  if (data.started !== b.manifest.started) fail(`${at} ends the export started at ${data.started}, not ${b.manifest.started}`);
  if (data.entries !== b.count || data.complete !== true)
    fail(`${at} does not record a complete export of ${plural(b.count, 'entry', 'entries')}`);
  return { index, size: later.size, root: later.root };
}

/** The leaf of an entry line (or of the record): its bytes, decoded. */
function decodeEntryLeaf(v: Obj, fail: (why: string) => never): { bytes: Buffer; record: LeafRecord } {
  if (typeof v.leaf !== 'string') fail('leaf must be a base64 string');
  const bytes = decodeBase64Strict(v.leaf as string);
  if (bytes === null) return fail('leaf is not canonical standard base64');
  try {
    return { bytes, record: decodeLeaf(bytes) };
  } catch (e) {
    return fail(`the leaf does not decode: ${(e as Error).message}`);
  }
}

/** The tlog-proof of an entry line (or of the record), for `index`. */
function parseEntryProof(v: Obj, index: number, fail: (why: string) => never): TlogProof {
  if (typeof v.proof !== 'string') fail('proof must be a tlog-proof text string');
  let proof: TlogProof;
  try {
    proof = parseTlogProof(v.proof as string);
  } catch (e) {
    return fail(`the proof is malformed: ${(e as Error).message}`);
  }
  if (proof.index !== index) fail(`the proof is for index ${proof.index}, not ${index}`);
  if (proof.extra !== undefined) fail('the proof carries extra data, which a Stele bundle does not use');
  return proof;
}

/** Checks that the leaf is at `index` in `tree`; returns its leaf hash. */
function proveLeaf(bytes: Buffer, index: number, proof: TlogProof, tree: Checkpoint, fail: (why: string) => never): Buffer {
  if (index >= tree.size) fail(`index ${index} is not in the checkpoint's tree of size ${tree.size}`);
  const hash = leafHash(bytes);
  try {
    verifyInclusion(hash, index, tree.size, proof.proof, tree.root);
  } catch (e) {
    fail(`the leaf is not proven in the checkpoint's tree: ${(e as Error).message}`);
  }
  return hash;
}

/** Checks a timestamp line: its checkpoint is this log's, the bundle's extends it, and (with tsaCerts) the token. */
async function checkTimestamp(
  v: Obj,
  ctx: { cp: Checkpoint; verifier: Verifier; tsaCerts: readonly Certificate[] | undefined },
  fail: (why: string) => never,
): Promise<BundleTimestamp> {
  for (const k of Object.keys(v)) if (!TIMESTAMP_FIELDS.has(k)) fail(`unknown timestamp field ${JSON.stringify(k)}`);
  if (
    typeof v.tsa !== 'string' ||
    typeof v.checkpoint !== 'string' ||
    typeof v.token !== 'string' ||
    !Array.isArray(v.consistency)
  )
    return fail('a timestamp line needs tsa, checkpoint, token and consistency');
  let c: Checkpoint;
  try {
    c = parseCheckpoint(openNote(v.checkpoint, [ctx.verifier]).text);
  } catch (e) {
    return fail(`the timestamped checkpoint does not verify with ${ctx.verifier.name}: ${(e as Error).message}`);
  }
  if (c.origin !== ctx.cp.origin) fail(`the timestamped checkpoint is of origin ${c.origin}, not ${ctx.cp.origin}`);
  if (c.size > ctx.cp.size) fail(`the timestamped checkpoint (size ${c.size}) is newer than the bundle's (${ctx.cp.size})`);
  const proof = v.consistency.map((h) => (typeof h === 'string' ? decodeBase64Strict(h) : null));
  if (proof.some((h) => h === null)) fail('the consistency proof is not base64 hashes');
  try {
    verifyConsistency(c.size, ctx.cp.size, proof as Buffer[], c.root, ctx.cp.root);
  } catch (e) {
    fail(`the bundle's checkpoint does not extend the timestamped one: ${(e as Error).message}`);
  }
  const der = decodeBase64Strict(v.token);
  if (der === null) return fail('the token is not base64');
  try {
    const t = ctx.tsaCerts
      ? await verifyTimestamp(der, Buffer.from(v.checkpoint, 'utf8'), ctx.tsaCerts)
      : readTimestampToken(der);
    if (!ctx.tsaCerts && !t.digest.equals(createHash('sha256').update(v.checkpoint, 'utf8').digest()))
      fail('the token timestamps another checkpoint');
    return { tsa: v.tsa, size: c.size, gen_time: t.genTime.toISOString(), verified: ctx.tsaCerts !== undefined };
  } catch (e) {
    if ((e as SteleError).code === 'bundle_invalid') throw e;
    return fail(`the timestamp of ${v.tsa}: ${(e as Error).message}`);
  }
}
