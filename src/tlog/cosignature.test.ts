import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  cosignatureKeyId,
  cosignatureLines,
  cosignatureTime,
  cosignedMessage,
  newCosignatureVerifier,
  newCosigner,
} from './cosignature.js';
import { generateKey, newSigner, newVerifier, openNote, signNote } from './note.js';

// c2sp.org/tlog-cosignature's example checkpoint and witness line, and vectors of
// transparency-dev/formats (note/note_cosigv1_test.go).
const SPEC_TEXT = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';
const SPEC_WITNESS_SIG =
  'jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==';
const FORMATS_SIG = 'ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==';

describe('cosignature/v1 (c2sp.org/tlog-cosignature)', () => {
  test("the signed message is the spec's example byte for byte", () => {
    assert.equal(
      cosignedMessage(SPEC_TEXT, 1679315147).toString('utf8'),
      'cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n',
    );
  });

  test("the timestamp is read from the spec's and transparency-dev's signatures", () => {
    assert.equal(cosignatureTime(Buffer.from(SPEC_WITNESS_SIG, 'base64').subarray(4)), 1679315147);
    assert.equal(cosignatureTime(Buffer.from(FORMATS_SIG, 'base64').subarray(4)), 1727964367);
    // An Ed25519 (0x01) note signature is not a cosignature.
    assert.throws(() => cosignatureTime(Buffer.alloc(64)), /72 bytes/);
  });

  test("key IDs match transparency-dev's: a native cosignature key, and an Ed25519 key read as one", () => {
    // remora.n621.de's witness key (type 0x04) and a type 0x01 key: both accepted, so the IDs agree.
    const remora = newCosignatureVerifier('remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2');
    assert.equal(remora.keyId.toString('hex'), 'da77ade7');
    const converted = newCosignatureVerifier('TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6');
    assert.equal(converted.name, 'TEST');
    assert.deepEqual(
      converted.keyId,
      cosignatureKeyId('TEST', Buffer.from('AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6', 'base64').subarray(1)),
    );
    assert.throws(
      () => newCosignatureVerifier('remora.n621.de+00000000+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2'),
      /key ID 00000000 does not match/,
    );
    assert.throws(() => newCosignatureVerifier('rekor.sigstore.dev+12345678+AwEB'), /want an Ed25519 cosignature key/);
  });

  test('a cosigned checkpoint opens with the log key and the witness key; a changed text or a future time does not', () => {
    const log = generateKey('example.com/log');
    const witness = generateKey('witness.example/w1');
    const text = 'example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';
    const cosigner = newCosigner(witness.skey, () => 1_700_000_000_000);
    const line = cosignatureLines(text, cosigner);
    assert.match(line, /^— witness\.example\/w1 [A-Za-z0-9+/]+=*\n$/);
    const note = signNote(text, [newSigner(log.skey)]) + line;
    const w = newCosignatureVerifier(cosigner.vkey);
    const opened = openNote(note, [newVerifier(log.vkey), w]);
    assert.deepEqual(
      opened.sigs.map((s) => [s.name, s.verified]),
      [
        ['example.com/log', true],
        ['witness.example/w1', true],
      ],
    );
    assert.equal(cosignatureTime(opened.sigs[1]?.sig as Buffer), 1_700_000_000);
    // Its Ed25519 verifier key names the same cosigner.
    assert.deepEqual(newCosignatureVerifier(witness.vkey).keyId, w.keyId);
    assert.throws(() => openNote(note.replace('\n5\n', '\n6\n'), [w]), /invalid signature/);
    const early = newCosignatureVerifier(cosigner.vkey, () => 1_600_000_000);
    assert.throws(() => openNote(note, [early]), /invalid signature for key witness.example\/w1/);
    // A plain Ed25519 verifier of the witness key does not take a cosignature for a note signature.
    assert.throws(
      () => openNote(signNote(text, [newSigner(witness.skey)]).slice(0, text.length + 1) + line, [newVerifier(witness.vkey)]),
      /no verifiable signatures/,
    );
  });
});
