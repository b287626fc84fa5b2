import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, mock } from 'node:test';
import { verifyBundleCommand } from '../cli/commands/verify-bundle.js';
import { SteleError } from '../core/errors.js';
import { canonicalBytes } from '../event/canonical.js';
import { buildLeaf, buildSealedLeaf, decodeLeaf, encodeLeaf, sealedAad, sealedPlaintext } from '../event/record.js';
import type { Event, Ingest } from '../event/types.js';
import { messageKey, seal } from '../keys/seal.js';
import { formatCheckpoint } from '../tlog/checkpoint.js';
import { leafHash, merkleRoot } from '../tlog/hash.js';
import { generateKey, newSigner, signNote } from '../tlog/note.js';
import { consistencyProof, inclusionProof } from '../tlog/proof.js';
import { formatTlogProof, parseTlogProof } from '../tlog/proof-text.js';
import { BUNDLE_TYPE, bundleEntry, bundleGap, bundleHeader, bundleTrailer, type EntryData, verifyBundle } from './bundle.js';
import { EntryDigest, formatManifest, manifestHash, signManifest } from './manifest.js';

// ---- a real log, in memory -------------------------------------------------------------------

const ORIGIN = 'example.com/stele';
const SIZE = 11;
const logKey = generateKey(ORIGIN);
const dataKey = randomBytes(32);
const ingest: Ingest = { principal: 'ci-bot', method: 'apikey' };
const KEY_ID = 'k-2026-11-22';
/** Entries 1, 4, 7 and 10 are sealed; the others plain. */
const isSealed = (i: number) => i % 3 === 1;

function makeEvent(i: number): Event {
  return {
    id: `0190b6a4-5d2c-7b1e-9f3a-${String(i).padStart(12, '0')}`,
    time: `2026-11-22T10:15:0${i % 10}.000Z`,
    actor: { id: `user${i}@example.com`, type: 'human', verified: false },
    action: 'git.commit',
    source: { kind: 'git', host: 'ci' },
    resource: { type: 'repo', id: `repo-${i}` },
    outcome: 'success',
    data: { n: i, note: 'ünïcødé, "quotes"\nand newlines' },
  };
}

const events = Array.from({ length: SIZE }, (_, i) => makeEvent(i));
const leaves = events.map((e, i) => {
  const received = 1_795_000_000_000_000n + BigInt(i) * 1000n;
  return isSealed(i)
    ? buildSealedLeaf(e, ingest, received, KEY_ID, (pt, aad) => seal(dataKey, pt, aad))
    : buildLeaf(e, ingest, received);
});
const hashes = leaves.map(leafHash);

function signedCheckpoint(size: number, skey = logKey.skey, origin = ORIGIN): string {
  return signNote(formatCheckpoint({ origin, size, root: merkleRoot(hashes.slice(0, size)), extensions: [] }), [newSigner(skey)]);
}
const CHECKPOINT = signedCheckpoint(SIZE);

function sealedBytes(leaf: Buffer): Buffer {
  return Buffer.from(decodeLeaf(leaf).sealed as string, 'base64');
}

function entryLine(i: number, checkpoint = CHECKPOINT, size = SIZE): string {
  const leaf = leaves[i] as Buffer;
  return bundleEntry({
    index: i,
    leaf,
    event: events[i] as Event,
    ingest,
    messageKey: isSealed(i) ? messageKey(dataKey, sealedBytes(leaf)) : undefined,
    proof: inclusionProof(i, size, hashes),
    checkpoint,
  });
}

const EXPORTED = [0, 1, 2, 4, 5, 9, 10];
const QUERY = { q: 'action:git.*' };
const ASKER = { id: 'auditor@example.com', method: 'oidc' };
/** The entries recording the export's start and end, appended after the checkpoint's entries. */
const STARTED = SIZE;
const RECORD = SIZE + 1;
const START_LEAF = buildLeaf(
  { ...makeEvent(99), action: 'stele.access.export', source: { kind: 'stele', host: 'ci' } },
  ingest,
  1_795_000_000_100_000n,
);

/**
 * The trailer's record: a sealed stele.access.export.end entry naming the manifest `text`, at
 * `size + 1` in a later tree (the checkpoint's entries, the start entry, the record) signed by `skey`.
 */
function recordFor(
  text: string,
  count: number,
  o: { size?: number; skey?: string; action?: string; started?: number } = {},
): { record: EntryData; consistency: Buffer[] } {
  // Sealing is randomised: the same record for the same arguments, so reports can be compared.
  const key = JSON.stringify([text, count, o.size ?? SIZE, o.skey ?? logKey.skey, o.action, o.started]);
  const cached = records.get(key);
  if (cached) return cached;
  const made = makeRecord(text, count, o);
  records.set(key, made);
  return made;
}
const records = new Map<string, { record: EntryData; consistency: Buffer[] }>();

function makeRecord(
  text: string,
  count: number,
  o: { size?: number; skey?: string; action?: string; started?: number },
): { record: EntryData; consistency: Buffer[] } {
  const size = o.size ?? SIZE;
  const event: Event = {
    ...makeEvent(98),
    action: o.action ?? 'stele.access.export.end',
    source: { kind: 'stele', host: 'ci' },
    data: { started: o.started ?? size, entries: count, complete: true, manifest_sha256: manifestHash(text) },
  };
  const leaf = buildSealedLeaf(event, ingest, 1_795_000_000_200_000n, KEY_ID, (pt, aad) => seal(dataKey, pt, aad));
  const tree = [...hashes.slice(0, size), leafHash(START_LEAF), leafHash(leaf)];
  const later = signNote(formatCheckpoint({ origin: ORIGIN, size: tree.length, root: merkleRoot(tree), extensions: [] }), [
    newSigner(o.skey ?? logKey.skey),
  ]);
  return {
    record: {
      index: size + 1,
      leaf,
      event,
      ingest,
      messageKey: messageKey(dataKey, sealedBytes(leaf)),
      proof: inclusionProof(size + 1, tree.length, tree),
      checkpoint: later,
    },
    consistency: consistencyProof(size, tree.length, tree),
  };
}

/** A complete trailer for a bundle of `indices` against the checkpoint of `size`. */
function trailerFor(indices: readonly number[], o: { size?: number; skey?: string; query?: unknown } = {}): string {
  const m = manifestOf(indices, o);
  return bundleTrailer(indices.length, { manifest: m.note, ...recordFor(m.text, indices.length, o) });
}

/** The manifest of a bundle of `indices` against the checkpoint of `size`, signed with `skey`. */
function manifestOf(indices: readonly number[], o: { skey?: string; size?: number; query?: unknown; count?: number } = {}) {
  const d = new EntryDigest();
  for (const i of indices) d.add(i, leaves[i] as Buffer);
  const size = o.size ?? SIZE;
  const m = {
    origin: ORIGIN,
    size,
    root: merkleRoot(hashes.slice(0, size)),
    asker: ASKER,
    query: 'query' in o ? o.query : QUERY,
    started: size,
    count: o.count ?? indices.length,
    digest: d.digest(),
    time: '2026-11-23T08:00:01Z',
  };
  return { note: signManifest(m, newSigner(o.skey ?? logKey.skey)), text: formatManifest(m) };
}

/** The bundle as lines (without their newlines). */
function bundleLines(indices = EXPORTED, checkpoint = CHECKPOINT, vkey = logKey.vkey, skey = logKey.skey): string[] {
  const size = Number(checkpoint.split('\n')[1]);
  const text =
    bundleHeader({ vkey, checkpoint, query: QUERY, created: '2026-11-23T08:00:00Z' }) +
    indices.map((i) => entryLine(i, checkpoint, size)).join('') +
    trailerFor(indices, { skey, size });
  assert.ok(text.endsWith('\n'));
  return text.slice(0, -1).split('\n');
}

const EXPORT_REPORT = {
  asker: ASKER,
  query: QUERY,
  time: '2026-11-23T08:00:01Z',
  started: STARTED,
  record: RECORD,
  record_checkpoint_size: SIZE + 2,
  // The later checkpoint's root (line 3 of its note).
  record_checkpoint_root: recordFor(manifestOf(EXPORTED).text, EXPORTED.length).record.checkpoint.split('\n')[2],
  manifest_sha256: manifestHash(manifestOf(EXPORTED).text),
};

async function* asStream(lines: readonly string[]): AsyncGenerator<string> {
  for (const l of lines) yield l;
}

type Obj = Record<string, unknown>;
const parse = (line: string | undefined) => JSON.parse(line as string) as Record<string, unknown>;
const str = (o: unknown) => JSON.stringify(o);

/** Rewrites line n (1-based) of the bundle through `f`. */
function edit(lines: string[], n: number, f: (o: Record<string, unknown>) => void): string[] {
  const out = [...lines];
  const o = parse(out[n - 1]);
  f(o);
  out[n - 1] = str(o);
  return out;
}

/** Line number of the entry with log index i in the default bundle. */
const lineOf = (i: number) => EXPORTED.indexOf(i) + 2;

async function rejects(lines: string[], re: RegExp, opts: { vkey?: string } = { vkey: logKey.vkey }): Promise<void> {
  await assert.rejects(verifyBundle(asStream(lines), opts), (err: unknown) => {
    assert.ok(err instanceof SteleError, `not a SteleError: ${err}`);
    assert.equal(err.code, 'bundle_invalid');
    assert.match(err.message, re);
    return true;
  });
}

// ---- tests -------------------------------------------------------------------------------------

describe('evidence bundle', () => {
  it('writes one JSON line per part, with a c2sp tlog-proof per entry', () => {
    const lines = bundleLines();
    assert.equal(lines.length, EXPORTED.length + 2);
    const h = parse(lines[0]);
    assert.deepEqual(Object.keys(h), ['type', 'origin', 'vkey', 'checkpoint', 'size', 'query', 'created']);
    assert.equal(h.type, BUNDLE_TYPE);
    assert.equal(h.origin, ORIGIN);
    assert.equal(h.size, SIZE);
    assert.equal(h.checkpoint, CHECKPOINT);
    const plain = parse(lines[lineOf(0) - 1]);
    assert.deepEqual(Object.keys(plain), ['type', 'index', 'leaf', 'event', 'ingest', 'proof']);
    const sealed = parse(lines[lineOf(1) - 1]);
    assert.deepEqual(Object.keys(sealed), ['type', 'index', 'leaf', 'event', 'ingest', 'message_key', 'proof']);
    assert.deepEqual(sealed.ingest, ingest);
    assert.ok(
      !Buffer.from(sealed.leaf as string, 'base64')
        .toString()
        .includes('ci-bot'),
      'the sealed leaf names nobody',
    );
    assert.deepEqual(sealed.event, events[1]);
    const p = parseTlogProof(sealed.proof as string);
    assert.equal(p.index, 1);
    assert.equal(p.checkpoint, CHECKPOINT);
    const trailer = parse(lines.at(-1));
    assert.deepEqual(Object.keys(trailer), ['type', 'count', 'manifest', 'record']);
    assert.deepEqual([trailer.type, trailer.count, trailer.manifest], ['end', EXPORTED.length, manifestOf(EXPORTED).note]);
    const record = trailer.record as Record<string, unknown>;
    assert.deepEqual(Object.keys(record), ['index', 'leaf', 'event', 'ingest', 'message_key', 'proof', 'consistency']);
    assert.equal(record.index, RECORD);
  });

  it('refuses to write a header whose checkpoint does not verify with the given key', () => {
    const other = generateKey(ORIGIN);
    assert.throws(() => bundleHeader({ vkey: other.vkey, checkpoint: CHECKPOINT, query: null }), /does not verify/);
  });

  it('verifies a real bundle with the trusted key', async () => {
    const r = await verifyBundle(asStream(bundleLines()), { vkey: logKey.vkey });
    assert.deepEqual(r, {
      origin: ORIGIN,
      size: SIZE,
      count: EXPORTED.length,
      gaps: 0,
      trusted: true,
      vkey: logKey.vkey,
      timestamps: [],
      first: 0,
      last: 10,
      export: EXPORT_REPORT,
    });
  });

  it('verifies gaps: a sealed leaf proven without its event or key; refuses a gap of a plain leaf or a bad state', async () => {
    const gapLine = (i: number, over: Record<string, unknown> = {}) => {
      const line = bundleGap({
        index: i,
        leaf: leaves[i] as Buffer,
        state: 'erased',
        erasure: 10,
        proof: inclusionProof(i, SIZE, hashes),
        checkpoint: CHECKPOINT,
      });
      return JSON.stringify({ ...JSON.parse(line), ...over });
    };
    const header = bundleHeader({
      vkey: logKey.vkey,
      checkpoint: CHECKPOINT,
      query: null,
      created: '2026-11-23T08:00:00Z',
    }).trim();
    const lines = [
      header,
      entryLine(0).trim(),
      gapLine(1),
      entryLine(2).trim(),
      gapLine(4),
      trailerFor([0, 1, 2, 4], { query: null }).trim(),
    ];
    const r = await verifyBundle(asStream(lines), { vkey: logKey.vkey });
    assert.deepEqual([r.count, r.gaps, r.first, r.last], [4, 2, 0, 4]);
    assert.ok(!('event' in parse(lines[2])) && !('message_key' in parse(lines[2])));
    // A gap claimed for a plain leaf (its event is in the clear) is a lie.
    const plain = JSON.parse(gapLine(1));
    plain.leaf = (leaves[0] as Buffer).toString('base64');
    await rejects(
      [
        header,
        JSON.stringify({ ...plain, index: 0, proof: JSON.parse(gapLine(0)).proof }),
        trailerFor([0], { query: null }).trim(),
      ],
      /gap 0\): the leaf is not sealed/,
    );
    await rejects([header, gapLine(1, { state: 'lost' }), trailerFor([1], { query: null }).trim()], /state must be/);
    await rejects(
      [header, gapLine(1, { event: events[1] }), trailerFor([1], { query: null }).trim()],
      /unknown gap field "event"/,
    );
    await rejects(
      [header, gapLine(1), trailerFor([1, 2], { query: null }).trim()],
      /trailer says 2 entries, but the bundle has 1/,
    );
  });

  it('verifies with the bundle key alone, but says it is not trusted', async () => {
    const r = await verifyBundle(bundleLines());
    assert.equal(r.trusted, false);
    assert.equal(r.count, EXPORTED.length);
  });

  it('accepts entries newest first, a single entry, and no entries', async () => {
    const r = await verifyBundle(asStream(bundleLines([10, 7, 3, 1, 0])), { vkey: logKey.vkey });
    assert.equal(r.count, 5);
    assert.equal(r.first, 10);
    assert.equal(r.last, 0);
    const one = await verifyBundle(asStream(bundleLines([4])), { vkey: logKey.vkey });
    assert.deepEqual([one.count, one.first, one.last], [1, 4, 4]);
    const none = await verifyBundle(asStream(bundleLines([])), { vkey: logKey.vkey });
    assert.equal(none.count, 0);
    assert.equal('first' in none, false);
  });

  it('accepts a checkpoint of a tree of one entry (empty proof)', async () => {
    const cp = signedCheckpoint(1);
    const trailer = trailerFor([0], { size: 1, query: null });
    const lines = [bundleHeader({ vkey: logKey.vkey, checkpoint: cp, query: null }), entryLine(0, cp, 1), trailer].map((l) =>
      l.slice(0, -1),
    );
    assert.equal((await verifyBundle(asStream(lines), { vkey: logKey.vkey })).size, 1);
  });

  it('rejects a changed event of a plain leaf', async () => {
    const lines = edit(bundleLines(), lineOf(2), (o) => {
      (o.event as Event).outcome = 'failure';
    });
    await rejects(lines, /^line 4 \(entry 2\): the event does not match the leaf's event \(field outcome differs\)$/);
    const added = edit(bundleLines(), lineOf(0), (o) => {
      (o.event as Event).reason = 'added later';
    });
    await rejects(added, /^line 2 \(entry 0\): the event does not match the leaf's event \(field reason differs\)$/);
  });

  it('rejects a changed event of a sealed leaf', async () => {
    const lines = edit(bundleLines(), lineOf(4), (o) => {
      (o.event as Event).actor.id = 'mallory@example.com';
      (o.event as Event).data = {};
    });
    await rejects(lines, /^line 5 \(entry 4\): the event does not match the leaf's sealed event \(fields actor, data differ\)$/);
  });

  it('checks ingest: sealed with the event in a v2 sealed leaf, in the clear otherwise', async () => {
    const other = { principal: 'mallory', method: 'apikey' };
    const sealedChanged = edit(bundleLines(), lineOf(4), (o) => Object.assign(o, { ingest: other }));
    await rejects(
      sealedChanged,
      /^line 5 \(entry 4\): the ingest does not match the leaf's sealed ingest \(field principal differs\)$/,
    );
    const sealedMissing = edit(bundleLines(), lineOf(4), (o) => void delete o.ingest);
    await rejects(sealedMissing, /^line 5 \(entry 4\): the leaf seals who wrote it, but the entry has no ingest$/);
    const plainChanged = edit(bundleLines(), lineOf(2), (o) => Object.assign(o, { ingest: other }));
    await rejects(plainChanged, /^line 4 \(entry 2\): the ingest does not match the leaf's ingest \(field principal differs\)$/);
    const malformed = edit(bundleLines(), lineOf(2), (o) => Object.assign(o, { ingest: 'ci-bot' }));
    await rejects(malformed, /^line 4 \(entry 2\): ingest must be an object \{principal, method\}$/);
    // A plain leaf carries ingest itself, so the entry may leave it out.
    const plainMissing = edit(bundleLines(), lineOf(2), (o) => void delete o.ingest);
    assert.equal((await verifyBundle(asStream(plainMissing), { vkey: logKey.vkey })).count, EXPORTED.length);
  });

  it('verifies a bundle of version 1 sealed leaves (ingest in the clear, the event alone sealed)', async () => {
    const e = events[0] as Event;
    const received = '2026-11-22T10:15:03.140211Z';
    const aad = canonicalBytes({ ingest, key: KEY_ID, received, v: 1 });
    const sealed = seal(dataKey, canonicalBytes(e), aad);
    const leaf = encodeLeaf({ v: 1, received, ingest, key: KEY_ID, sealed: sealed.toString('base64') });
    const cp = signNote(formatCheckpoint({ origin: ORIGIN, size: 1, root: leafHash(leaf), extensions: [] }), [
      newSigner(logKey.skey),
    ]);
    const line = (extra: Record<string, unknown>) =>
      bundleEntry({ index: 0, leaf, event: e, messageKey: messageKey(dataKey, sealed), proof: [], checkpoint: cp, ...extra });
    const head = bundleHeader({ vkey: logKey.vkey, checkpoint: cp, query: null });
    // No export manifest for this one-entry tree: the entry line passes when verification gets as
    // far as the missing trailer.
    for (const extra of [{}, { ingest }]) {
      const text = head + line(extra);
      await rejects(text.slice(0, -1).split('\n'), /the bundle is truncated: no \{"type":"end"\} trailer after 1 entry/);
    }
    const wrong = head + line({ ingest: { principal: 'x', method: 'oidc' } });
    await rejects(wrong.slice(0, -1).split('\n'), /^line 2 \(entry 0\): the ingest does not match the leaf's ingest/);
  });

  it('verifies a bundle of version 2 sealed leaves (JSON, not compressed), as written before version 3', async () => {
    const e = events[0] as Event;
    const received = '2026-11-22T10:15:03.140211Z';
    const sealed = seal(dataKey, sealedPlaintext(e, ingest), sealedAad(KEY_ID, received));
    const leaf = encodeLeaf({ v: 2, received, key: KEY_ID, sealed: sealed.toString('base64') });
    const cp = signNote(formatCheckpoint({ origin: ORIGIN, size: 1, root: leafHash(leaf), extensions: [] }), [
      newSigner(logKey.skey),
    ]);
    const line = (extra: Record<string, unknown>) =>
      bundleEntry({ index: 0, leaf, event: e, messageKey: messageKey(dataKey, sealed), proof: [], checkpoint: cp, ...extra });
    const head = bundleHeader({ vkey: logKey.vkey, checkpoint: cp, query: null });
    // As above: the entry line passes when verification gets as far as the missing trailer.
    await rejects(
      (head + line({ ingest })).slice(0, -1).split('\n'),
      /the bundle is truncated: no \{"type":"end"\} trailer after 1 entry/,
    );
    const wrong = head + line({ ingest: { principal: 'x', method: 'oidc' } });
    await rejects(wrong.slice(0, -1).split('\n'), /^line 2 \(entry 0\): the ingest does not match the leaf's sealed ingest/);
  });

  it('rejects a leaf with a flipped byte', async () => {
    // A byte inside a string keeps the leaf well-formed: only the proof catches it.
    const lines = edit(bundleLines(), lineOf(5), (o) => {
      const leaf = Buffer.from(o.leaf as string, 'base64');
      const at = leaf.indexOf('ci-bot');
      leaf[at] = 'd'.charCodeAt(0);
      o.leaf = leaf.toString('base64');
    });
    await rejects(
      lines,
      /^line 6 \(entry 5\): the leaf is not proven in the checkpoint's tree: inclusion proof for leaf 5 in tree size 11 leads to root [0-9a-f]{64}, not the expected [0-9a-f]{64}$/,
    );
    // Elsewhere it breaks the leaf's JSON or canonical form.
    const broken = edit(bundleLines(), lineOf(5), (o) => {
      const leaf = Buffer.from(o.leaf as string, 'base64');
      leaf[0] = (leaf[0] as number) ^ 0x01;
      o.leaf = leaf.toString('base64');
    });
    await rejects(broken, /^line 6 \(entry 5\): the leaf does not decode: leaf: is not JSON/);
    // A sealed leaf's ciphertext.
    const sealed = edit(bundleLines(), lineOf(10), (o) => {
      const leaf = Buffer.from(o.leaf as string, 'base64');
      const at = leaf.indexOf('"sealed":"') + 20;
      leaf[at] = leaf[at] === 0x41 ? 0x42 : 0x41;
      o.leaf = leaf.toString('base64');
    });
    await rejects(sealed, /^line 8 \(entry 10\): the leaf is not proven in the checkpoint's tree/);
  });

  it('rejects a proof with a flipped hash', async () => {
    const lines = edit(bundleLines(), lineOf(9), (o) => {
      const p = parseTlogProof(o.proof as string);
      const h = p.proof[1] as Buffer;
      h[7] = (h[7] as number) ^ 0x80;
      o.proof = formatTlogProof(p);
    });
    await rejects(lines, /^line 7 \(entry 9\): the leaf is not proven in the checkpoint's tree: inclusion proof for leaf 9/);
    const short = edit(bundleLines(), lineOf(9), (o) => {
      const p = parseTlogProof(o.proof as string);
      p.proof.pop();
      o.proof = formatTlogProof(p);
    });
    await rejects(short, /^line 7 \(entry 9\): .*must have 3 hashes, got 2$/);
    const garbled = edit(bundleLines(), lineOf(9), (o) => {
      o.proof = (o.proof as string).replace('\nindex 9\n', '\nindex 09\n');
    });
    await rejects(garbled, /^line 7 \(entry 9\): the proof is malformed: tlog-proof line 2: index must be a decimal number/);
  });

  it('rejects a wrong index', async () => {
    // The entry claims another index than its proof.
    const lines = edit(bundleLines(), lineOf(5), (o) => {
      o.index = 6;
    });
    await rejects(lines, /^line 6 \(entry 6\): the proof is for index 5, not 6$/);
    // Index and proof index changed together: the proof no longer leads to the root.
    const both = edit(bundleLines(), lineOf(5), (o) => {
      o.index = 6;
      o.proof = (o.proof as string).replace('\nindex 5\n', '\nindex 6\n');
    });
    await rejects(both, /^line 6 \(entry 6\): the leaf is not proven in the checkpoint's tree: inclusion proof for leaf 6/);
    const outside = edit(bundleLines(), lineOf(10), (o) => {
      o.index = 11;
    });
    await rejects(outside, /^line 8 \(entry 11\): index 11 is not in the checkpoint's tree of size 11$/);
    const negative = edit(bundleLines(), lineOf(0), (o) => {
      o.index = -1;
    });
    await rejects(negative, /^line 2 \(entry\): index must be a non-negative integer$/);
  });

  it('rejects entries out of order', async () => {
    const lines = bundleLines();
    const swapped = [...lines];
    [swapped[3], swapped[4]] = [swapped[4] as string, swapped[3] as string];
    await rejects(swapped, /^line 5 \(entry 2\): index 2 after 4: entries must be in strictly increasing order$/);
    const down = bundleLines([9, 5, 7]);
    await rejects(down, /^line 4 \(entry 7\): index 7 after 5: entries must be in strictly decreasing order$/);
  });

  it('rejects a duplicate entry', async () => {
    const lines = bundleLines();
    const dup = [...lines.slice(0, 4), lines[3] as string, ...lines.slice(4)];
    await rejects(dup, /^line 5 \(entry 2\): duplicate entry: index 2 repeats the previous entry$/);
  });

  it('rejects a checkpoint signed by another key', async () => {
    const forger = generateKey(ORIGIN);
    const forged = signedCheckpoint(SIZE, forger.skey);
    // The real log's vkey in the header (bundleHeader refuses to write that, so edit it in).
    const lines = edit(bundleLines(), 1, (o) => {
      o.checkpoint = forged;
    });
    await rejects(
      lines,
      new RegExp(
        `^line 1 \\(header\\): the checkpoint does not verify with the trusted key ${ORIGIN}: note has no verifiable signatures`,
      ),
    );
    await rejects(lines, /^line 1 \(header\): the checkpoint does not verify with the bundle's own key/, {});
    // A forger who also swaps in their own vkey passes only without a trusted key, and is reported untrusted.
    const selfConsistent = bundleLines(EXPORTED, forged, forger.vkey, forger.skey);
    assert.equal((await verifyBundle(asStream(selfConsistent))).trusted, false);
    await rejects(selfConsistent, /^line 1 \(header\): the checkpoint does not verify with the trusted key/);
  });

  it('rejects a bundle that names another key than the trusted one', async () => {
    const other = generateKey(ORIGIN);
    const lines = edit(bundleLines(), 1, (o) => {
      o.vkey = other.vkey;
    });
    await rejects(
      lines,
      new RegExp(`^line 1 \\(header\\): the bundle names verifier key ${reEscape(other.vkey)}, not the trusted key`),
    );
    await rejects(lines, /^line 1 \(header\): the checkpoint does not verify with the bundle's own key/, {});
    const malformed = edit(bundleLines(), 1, (o) => {
      o.vkey = 'not a key';
    });
    await rejects(malformed, /^line 1 \(header\): header vkey is not a valid verifier key/);
    await assert.rejects(verifyBundle(bundleLines(), { vkey: 'nope' }), { code: 'bad_vkey' });
  });

  it('rejects a proof against another checkpoint than the header', async () => {
    const older = signedCheckpoint(10);
    const lines = edit(bundleLines(), lineOf(2), (o) => {
      o.proof = formatTlogProof({ index: 2, proof: inclusionProof(2, 10, hashes), checkpoint: older });
    });
    await rejects(lines, /^line 4 \(entry 2\): the proof's checkpoint is not the header's checkpoint$/);
  });

  it('rejects a message key of another entry', async () => {
    const lines = bundleLines();
    const mk4 = parse(lines[lineOf(4) - 1]).message_key;
    const swapped = edit(lines, lineOf(1), (o) => {
      o.message_key = mk4;
    });
    await rejects(
      swapped,
      /^line 3 \(entry 1\): message_key does not open the leaf's sealed event: the key does not match the commitment in the sealed event$/,
    );
    const missing = edit(lines, lineOf(1), (o) => {
      delete o.message_key;
    });
    await rejects(missing, /^line 3 \(entry 1\): the leaf is sealed but the entry has no message_key$/);
    const onPlain = edit(lines, lineOf(0), (o) => {
      o.message_key = mk4;
    });
    await rejects(onPlain, /^line 2 \(entry 0\): message_key given for a leaf that is not sealed$/);
    const short = edit(lines, lineOf(1), (o) => {
      o.message_key = Buffer.alloc(16).toString('base64');
    });
    await rejects(short, /^line 3 \(entry 1\): message_key is 16 bytes, want 32$/);
  });

  it('rejects a truncated bundle', async () => {
    const lines = bundleLines();
    await rejects(lines.slice(0, -1), /^line 9: the bundle is truncated: no \{"type":"end"\} trailer after 7 entries$/);
    const cut = [...lines.slice(0, 4), (lines[4] as string).slice(0, 100)];
    await rejects(cut, /^line 5: not JSON/);
    await rejects([], /^line 1: the bundle is empty \(no header\)$/);
  });

  it('rejects a trailer with the wrong count, and anything after it', async () => {
    const lines = bundleLines();
    await rejects(
      [...lines.slice(0, -1), str({ type: 'end', count: 8 })],
      /^line 9 \(trailer\): the trailer says 8 entries, but the bundle has 7$/,
    );
    const dropped = [...lines.slice(0, 3), ...lines.slice(4)];
    await rejects(dropped, /^line 8 \(trailer\): the trailer says 7 entries, but the bundle has 6$/);
    await rejects([...lines, lines[1] as string], /^line 10: content after the end trailer$/);
    await rejects([...lines, ''], /^line 10: content after the end trailer$/);
  });

  it('rejects a bundle that is not the one its signed manifest lists', async () => {
    const lines = bundleLines();
    const withCount = (ls: string[], n: number) => edit(ls, ls.length, (o) => Object.assign(o, { count: n }));
    const listed = /^line \d+ \(trailer\): the entries are not the ones the manifest lists/;
    // An entry dropped, and the count fixed: the trailer agrees, the signed manifest does not.
    const dropped = [...lines.slice(0, 3), ...lines.slice(4)];
    await rejects(withCount(dropped, 6), /^line 8 \(trailer\): the manifest says 7 entries, but the bundle has 6$/);
    // An entry of the log the export did not select (index 3), slipped in: order still increasing.
    const added = [...lines.slice(0, 4), entryLine(3).slice(0, -1), ...lines.slice(4)];
    await rejects(withCount(added, 8), /^line 10 \(trailer\): the manifest says 7 entries, but the bundle has 8$/);
    // One swapped for another: same count, same order rule, other digest.
    const swapped = [...lines.slice(0, 3), entryLine(3).slice(0, -1), ...lines.slice(4)];
    await rejects(swapped, listed);
    // The whole bundle reversed: strictly decreasing is a valid order, but not the exported one.
    const reversed = [lines[0] as string, ...lines.slice(1, -1).reverse(), lines.at(-1) as string];
    await rejects(reversed, listed);
    // A manifest of a smaller export, signed by the log, put on this bundle.
    const otherManifest = edit(lines, lines.length, (o) => Object.assign(o, { manifest: manifestOf([0, 1, 2]).note }));
    await rejects(otherManifest, /the manifest says 3 entries, but the bundle has 7$/);
    const sameCount = edit(lines, lines.length, (o) => Object.assign(o, { manifest: manifestOf([0, 1, 2, 3, 5, 9, 10]).note }));
    await rejects(sameCount, listed);
  });

  it('rejects a manifest that is tampered with, missing, or not for this bundle', async () => {
    const lines = bundleLines();
    const n = lines.length;
    const tampered = edit(lines, n, (o) => Object.assign(o, { manifest: (o.manifest as string).replace('count 7', 'count 6') }));
    await rejects(
      tampered,
      /^line 9 \(trailer\): the export manifest does not verify with the trusted key example\.com\/stele: invalid signature/,
    );
    const forger = generateKey(ORIGIN);
    const forged = edit(lines, n, (o) => Object.assign(o, { manifest: manifestOf(EXPORTED, { skey: forger.skey }).note }));
    await rejects(forged, /the export manifest does not verify with the trusted key .*no verifiable signatures/);
    await rejects(forged, /the export manifest does not verify with the bundle's own key/, {});
    const missing = edit(lines, n, (o) => void delete o.manifest);
    await rejects(missing, /^line 9 \(trailer\): the trailer has no export manifest, so the bundle cannot prove it is complete/);
    // A manifest for another checkpoint, or another query than the header says.
    const older = edit(lines, n, (o) => Object.assign(o, { manifest: manifestOf(EXPORTED, { size: 10 }).note }));
    await rejects(older, /the manifest is for checkpoint size 10, not the header's checkpoint \(size 11\)$/);
    const query = edit(lines, 1, (o) => Object.assign(o, { query: { q: 'action:*' } }));
    await rejects(query, /the header's query \{"q":"action:\*"\} is not the manifest's \{"q":"action:git\.\*"\}$/);
    // The checkpoint itself, signed by the log, is no manifest.
    await rejects(
      edit(lines, n, (o) => Object.assign(o, { manifest: CHECKPOINT })),
      /not an export manifest/,
    );
  });

  it('rejects a record that is not the log entry recording this export', async () => {
    const lines = bundleLines();
    const n = lines.length;
    const m = manifestOf(EXPORTED);
    const withRecord = (r: ReturnType<typeof recordFor>) =>
      edit(lines, n, (o) => Object.assign(o, { record: parse(bundleTrailer(7, { manifest: m.note, ...r })).record }));
    const record = (f: (r: Record<string, unknown>) => void) => edit(lines, n, (o) => f(o.record as Record<string, unknown>));
    await rejects(
      edit(lines, n, (o) => void delete o.record),
      /^line 9 \(trailer\): trailer record must be the entry that records the export$/,
    );
    // The log's record of another export (another manifest), or an entry of another kind.
    await rejects(withRecord(recordFor(manifestOf([0, 1]).text, 7)), /the record \(entry 12\) records another manifest/);
    await rejects(
      withRecord(recordFor(m.text, 7, { action: 'stele.access.search' })),
      /the record \(entry 12\) is a "stele.access.search" event, not stele.access.export.end$/,
    );
    await rejects(withRecord(recordFor(m.text, 7, { started: 3 })), /ends the export started at 3, not 11$/);
    await rejects(withRecord(recordFor(m.text, 6)), /does not record a complete export of 7 entries$/);
    // Its event edited to name this manifest: the sealed leaf says otherwise.
    const edited = edit(withRecord(recordFor(manifestOf([0, 1]).text, 7)), n, (o) => {
      ((o.record as Obj).event as Obj).data = {
        ...(((o.record as Obj).event as Obj).data as Obj),
        manifest_sha256: manifestHash(m.text),
      };
    });
    await rejects(edited, /the record \(entry 12\): the event does not match the leaf's sealed event \(field data differs\)$/);
    // A later checkpoint signed by another key, or a forked history.
    await rejects(
      withRecord(recordFor(m.text, 7, { skey: generateKey(ORIGIN).skey })),
      /the record \(entry 12\): its checkpoint does not verify with the trusted key/,
    );
    await rejects(
      record((r) => {
        r.consistency = [];
      }),
      /the record \(entry 12\): its checkpoint \(size 13\) is not consistent with the header's/,
    );
    await rejects(
      record((r) => {
        r.index = 5;
      }),
      /the record \(entry 5\) is older than the export's checkpoint \(size 11\)$/,
    );
    await rejects(
      record((r) => {
        r.extra = 1;
      }),
      /unknown record field "extra"$/,
    );
  });

  it('rejects a missing or malformed header', async () => {
    const lines = bundleLines();
    await rejects(lines.slice(1), /^line 1 \(header\): the bundle header is missing: the first line is an entry$/);
    await rejects(
      edit(lines, 1, (o) => Object.assign(o, { type: 'stele.evidence.v2' })),
      /^line 1 \(header\): not a Stele evidence bundle/,
    );
    await rejects(
      edit(lines, 1, (o) => Object.assign(o, { origin: 'example.com/other' })),
      /^line 1 \(header\): header origin "example.com\/other" is not the checkpoint's origin "example.com\/stele"$/,
    );
    await rejects(
      edit(lines, 1, (o) => Object.assign(o, { size: 12 })),
      /^line 1 \(header\): header size 12 is not the checkpoint's size 11$/,
    );
    await rejects(
      edit(lines, 1, (o) => void delete o.created),
      /^line 1 \(header\): the header lacks "created"$/,
    );
    await rejects(
      edit(lines, 1, (o) => Object.assign(o, { extra: 1 })),
      /^line 1 \(header\): unknown header field "extra"$/,
    );
    await rejects(['[1]', ...lines.slice(1)], /^line 1 \(header\): not a JSON object$/);
    await rejects([lines[0] as string, lines[0] as string, ...lines.slice(1)], /^line 2 \(entry\): a second bundle header$/);
  });

  it('rejects unknown fields and line types', async () => {
    const lines = bundleLines();
    await rejects(
      edit(lines, 2, (o) => Object.assign(o, { note: 'x' })),
      /^line 2 \(entry\): unknown entry field "note"$/,
    );
    await rejects(
      edit(lines, 2, (o) => Object.assign(o, { type: 'comment' })),
      /^line 2 \(entry\): unknown line type "comment"$/,
    );
    await rejects([...lines.slice(0, 2), '', ...lines.slice(2)], /^line 3: empty line$/);
  });

  describe('stele verify-bundle', () => {
    const dir = mkdtempSync(join(tmpdir(), 'stele-bundle-'));
    after(() => rmSync(dir, { recursive: true, force: true }));

    async function run(file: string, opts: { vkey?: string; json?: boolean }) {
      const out: string[] = [];
      const err: string[] = [];
      const log = mock.method(console, 'log', (s: string) => void out.push(s));
      const error = mock.method(console, 'error', (s: string) => void err.push(s));
      try {
        await verifyBundleCommand(file, opts);
      } finally {
        log.mock.restore();
        error.mock.restore();
      }
      return { out, err };
    }

    it('streams a bundle file and prints the result', async () => {
      const file = join(dir, 'good.stele-bundle.jsonl');
      writeFileSync(file, `${bundleLines().join('\n')}\n`);
      const r = await run(file, { vkey: logKey.vkey });
      assert.deepEqual(r.out, [
        `ok: 7 entries (indices 0…10) of ${ORIGIN} proven against checkpoint size 11\n` +
          `export: complete, signed by the log; asked by oidc:auditor@example.com at 2026-11-23T08:00:01Z, query {"q":"action:git.*"}; ` +
          `recorded by entries 11 (start) and 12 (manifest sha256 ${EXPORT_REPORT.manifest_sha256})`,
      ]);
      assert.deepEqual(r.err, []);
      const j = await run(file, { vkey: logKey.vkey, json: true });
      assert.deepEqual(JSON.parse(j.out[0] as string), {
        ok: true,
        origin: ORIGIN,
        size: SIZE,
        count: 7,
        gaps: 0,
        trusted: true,
        timestamps: [],
        vkey: logKey.vkey,
        first: 0,
        last: 10,
        export: EXPORT_REPORT,
      });
    });

    it('warns when the key came from the bundle itself', async () => {
      const file = join(dir, 'crlf.stele-bundle.jsonl');
      writeFileSync(file, `${bundleLines().join('\r\n')}\r\n`);
      const r = await run(file, {});
      assert.match(r.out[0] as string, /^ok: 7 entries .* \(untrusted key\)\nexport: complete/);
      assert.match(r.err[0] as string, /warning: no --vkey given/);
    });

    it('fails with the first problem, or when the file cannot be read', async () => {
      const file = join(dir, 'bad.stele-bundle.jsonl');
      writeFileSync(file, `${bundleLines().slice(0, -1).join('\n')}\n`);
      await assert.rejects(run(file, { vkey: logKey.vkey }), {
        code: 'bundle_invalid',
        message: /line 9: the bundle is truncated/,
      });
      await assert.rejects(run(join(dir, 'missing'), {}), { code: 'bad_file', message: /cannot read .*missing: no such file/ });
      await assert.rejects(run(dir, {}), { code: 'bad_file', message: /is a directory/ });
    });
  });
});

function reEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
