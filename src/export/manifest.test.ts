import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatCheckpoint, parseCheckpoint } from '../tlog/checkpoint.js';
import { sha256 } from '../tlog/hash.js';
import { generateKey, newSigner, newVerifier, openNote, signNote } from '../tlog/note.js';
import {
  EntryDigest,
  formatManifest,
  MANIFEST_VERSION,
  type Manifest,
  manifestHash,
  openManifest,
  parseManifest,
  signManifest,
} from './manifest.js';

const key = generateKey('example.com/stele');
const signer = newSigner(key.skey);
const verifier = newVerifier(key.vkey);

const digestOf = (pairs: [number, string][]) => {
  const d = new EntryDigest();
  for (const [i, leaf] of pairs) d.add(i, Buffer.from(leaf));
  return d.digest();
};

const M: Manifest = {
  origin: 'example.com/stele',
  size: 42,
  root: sha256(Buffer.from('root')),
  asker: { id: 'alice@example.com', method: 'oidc' },
  query: { q: 'actor:"bob\nsmith"', order: 'asc' },
  started: 40,
  count: 2,
  digest: digestOf([
    [3, 'a'],
    [7, 'b'],
  ]),
  time: '2026-12-06T03:00:00.000Z',
};

describe('export manifest', () => {
  it('is a versioned text, one line per field, and round-trips', () => {
    const text = formatManifest(M);
    const lines = text.split('\n');
    assert.equal(lines[0], MANIFEST_VERSION);
    assert.equal(lines.length, 10); // nine lines and the final newline
    assert.match(lines[4] as string, /^query \{"q":"actor:\\"bob\\nsmith\\"","order":"asc"\}$/);
    assert.deepEqual(parseManifest(text), M);
  });

  it('is signed by the log key and refuses any other key or any change', () => {
    const note = signManifest(M, signer);
    const { manifest, text } = openManifest(note, verifier);
    assert.deepEqual(manifest, M);
    assert.equal(manifestHash(text), manifestHash(formatManifest(M)));
    assert.match(manifestHash(text), /^[0-9a-f]{64}$/);
    const other = newVerifier(generateKey('example.com/stele').vkey);
    assert.throws(() => openManifest(note, other), /no verifiable signatures/);
    const tampered = note.replace('count 2', 'count 1');
    assert.throws(() => openManifest(tampered, verifier), /invalid signature/);
  });

  it('can never be taken for a checkpoint, nor a checkpoint for a manifest', () => {
    assert.throws(() => parseCheckpoint(formatManifest(M)), /size \(line 2\) must be a decimal number/);
    // Even a log whose origin is the manifest's version line: its checkpoints are no manifests.
    const cp = formatCheckpoint({ origin: MANIFEST_VERSION, size: 42, root: M.root, extensions: [] });
    assert.throws(() => parseManifest(cp), /line 2 must start with "origin "/);
    // Signed by the same key: each is refused as the other even though the signature verifies.
    const checkpoint = signNote(formatCheckpoint({ origin: M.origin, size: 42, root: M.root, extensions: [] }), [signer]);
    assert.throws(() => openManifest(checkpoint, verifier), /not an export manifest/);
    const manifest = signManifest(M, signer);
    assert.throws(() => parseCheckpoint(openNote(manifest, [verifier]).text), /size \(line 2\) must be a decimal number/);
  });

  it('parses strictly', () => {
    const text = formatManifest(M);
    assert.throws(() => parseManifest(text.replace(MANIFEST_VERSION, 'stele.dev/export-manifest/v2')), /not an export manifest/);
    assert.throws(() => parseManifest(`${text}extra line\n`), /manifest has 10 lines, want 9/);
    assert.throws(() => parseManifest(text.replace('count 2', 'count 02')), /count "02" is not a decimal integer/);
    assert.throws(() => parseManifest(text.replace('started 40', 'begun 40')), /line 6 must start with "started "/);
    assert.throws(() => parseManifest(text.replace(/digest \S+/, 'digest AAAA')), /digest "AAAA" is not a base64 SHA-256/);
    assert.throws(() => parseManifest(text.replace('"method":"oidc"', '"method":1')), /asker must be/);
    assert.throws(() => parseManifest(text.slice(0, -1)), /must end with a newline/);
    assert.throws(() => formatManifest({ ...M, origin: 'a\nb' }), /one non-empty line/);
    assert.throws(() => formatManifest({ ...M, count: -1 }), /count must be a non-negative integer/);
  });

  it('digests the ordered (index, leaf hash) list: order, index, leaf and membership all count', () => {
    const base = digestOf([
      [3, 'a'],
      [7, 'b'],
    ]);
    const variants = [
      digestOf([
        [7, 'b'],
        [3, 'a'],
      ]),
      digestOf([
        [3, 'a'],
        [8, 'b'],
      ]),
      digestOf([
        [3, 'a'],
        [7, 'c'],
      ]),
      digestOf([[3, 'a']]),
      digestOf([
        [3, 'a'],
        [7, 'b'],
        [7, 'b'],
      ]),
      digestOf([]),
    ];
    for (const v of variants) assert.notDeepEqual(v, base);
    const d = new EntryDigest();
    d.add(3, Buffer.from('a'));
    assert.equal(d.count, 1);
    assert.deepEqual(d.digest(), d.digest(), 'digest() does not consume the accumulator');
    assert.throws(() => d.add(-1, Buffer.from('x')), /bad index/);
  });
});
