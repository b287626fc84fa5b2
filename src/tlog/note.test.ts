import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { sha256 } from './hash.js';
import { generateKey, keyId, newSigner, newVerifier, openNote, type Signer, signNote, type Verifier } from './note.js';

// Vectors from golang.org/x/mod/sumdb/note (note_test.go).
const PETER_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const PETER_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const ENOCH_VKEY = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';
const TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG_B64 = 'x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=';
const ENOCH_SIG_B64 = 'rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=';
const PETER_SIG = `— PeterNeumann ${PETER_SIG_B64}\n`;
const ENOCH_SIG = `— EnochRoot ${ENOCH_SIG_B64}\n`;

/** Insert "ABCD" where x/mod's test does (its byte offset 60; the em dash is 3 UTF-8 bytes, 1 JS char). */
const corrupt = (line: string): string => `${line.slice(0, 58)}ABCD${line.slice(58)}`;
const b64 = (sig: { keyId: Buffer; sig: Buffer }): string => Buffer.concat([sig.keyId, sig.sig]).toString('base64');

describe('keys', () => {
  it('the published verifier key has key ID c74f20a3', () => {
    const v = newVerifier(PETER_VKEY);
    assert.equal(v.name, 'PeterNeumann');
    assert.equal(v.keyId.toString('hex'), 'c74f20a3');
    const pub = Buffer.from('ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW', 'base64').subarray(1);
    assert.equal(keyId('PeterNeumann', pub).toString('hex'), 'c74f20a3');
    assert.equal(newVerifier(ENOCH_VKEY).keyId.toString('hex'), 'af0cfe78');
    assert.throws(() => keyId('PeterNeumann', pub.subarray(1)), /must be 32 bytes, got 31/);
  });

  it('the published signer key derives the published verifier key', () => {
    const s = newSigner(PETER_SKEY);
    assert.equal(s.name, 'PeterNeumann');
    assert.equal(s.keyId.toString('hex'), 'c74f20a3');
    assert.equal(s.vkey, PETER_VKEY);
  });

  it('every proper substring and every single-byte increment of the verifier key is refused (as x/mod tests)', () => {
    for (let i = 0; i <= PETER_VKEY.length; i++) {
      for (let j = i + 1; j <= PETER_VKEY.length; j++) {
        if (i === 0 && j === PETER_VKEY.length) continue;
        assert.throws(() => newVerifier(PETER_VKEY.slice(i, j)), Error, PETER_VKEY.slice(i, j));
      }
    }
    for (let i = 0; i < PETER_VKEY.length; i++) {
      const k = PETER_VKEY.slice(0, i) + String.fromCharCode(PETER_VKEY.charCodeAt(i) + 1) + PETER_VKEY.slice(i + 1);
      assert.throws(() => newVerifier(k), Error, k);
    }
    // Wrong key length and unknown algorithm, each with a key ID adjusted to match.
    assert.throws(
      () => newVerifier('PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=='),
      /not canonical standard base64/, // x/mod's decoder ignores the non-zero padding bits; ours does not
    );
    assert.throws(
      () => newVerifier('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'),
      /unknown algorithm 0x65/,
    );
  });

  it('every proper substring and every single-byte increment of the signer key is refused (as x/mod tests)', () => {
    for (let i = 0; i <= PETER_SKEY.length; i++) {
      for (let j = i + 1; j <= PETER_SKEY.length; j++) {
        if (i === 0 && j === PETER_SKEY.length) continue;
        assert.throws(() => newSigner(PETER_SKEY.slice(i, j)), Error, PETER_SKEY.slice(i, j));
      }
    }
    for (let i = 0; i < PETER_SKEY.length; i++) {
      const k = PETER_SKEY.slice(0, i) + String.fromCharCode(PETER_SKEY.charCodeAt(i) + 1) + PETER_SKEY.slice(i + 1);
      assert.throws(() => newSigner(k), Error, k);
    }
  });

  it('key parsing errors say what is wrong', () => {
    assert.throws(() => newVerifier('PeterNeumann'), /malformed verifier key: want <name>\+<hex key ID>\+<base64 key>/);
    assert.throws(() => newVerifier('+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'), /key name "" is empty/);
    assert.throws(() => newVerifier('Peter Neumann+c74f20a3+ARpc'), /contains a space/);
    assert.throws(() => newVerifier('PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'), /not 8 hex digits/);
    assert.throws(
      () => newVerifier('PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'),
      /key ID c74f20a4 does not match its key \(want c74f20a3/,
    );
    assert.throws(
      () => newVerifier('PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq_LDE4izWy10TW'),
      /not canonical standard base64/,
    );
    assert.throws(() => newSigner(PETER_VKEY), /must start with PRIVATE\+KEY\+/);
    // Well-formed apart from the key length, with a matching key ID.
    const short = Buffer.concat([Buffer.of(1), Buffer.alloc(31, 7)]);
    const shortId = sha256(Buffer.concat([Buffer.from('Short\n'), short]))
      .subarray(0, 4)
      .toString('hex');
    assert.throws(() => newVerifier(`Short+${shortId}+${short.toString('base64')}`), /Ed25519 key must be 32 bytes, got 31/);
    assert.throws(
      () => newSigner('PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz'),
      /signer key ID c74f20a4 does not match/,
    );
  });

  it('generated keys round-trip through the x/mod text formats', () => {
    const { skey, vkey } = generateKey('example.com/log42');
    assert.match(skey, /^PRIVATE\+KEY\+example\.com\/log42\+[0-9a-f]{8}\+A[A-Za-z0-9+/]{43}$/);
    assert.match(vkey, /^example\.com\/log42\+[0-9a-f]{8}\+A[A-Za-z0-9+/]{43}$/);
    const s = newSigner(skey);
    const v = newVerifier(vkey);
    assert.equal(s.vkey, vkey);
    assert.deepEqual(s.keyId, v.keyId);
    const sig = s.sign(Buffer.from('hi'));
    assert.equal(sig.length, 64);
    assert.ok(v.verify(Buffer.from('hi'), sig));
    assert.ok(!v.verify(Buffer.from('hj'), sig));
    const bad = Buffer.from(sig);
    bad[0] = (bad[0] as number) ^ 1;
    assert.ok(!v.verify(Buffer.from('hi'), bad));
    assert.ok(!v.verify(Buffer.from('hi'), sig.subarray(1)));
    assert.throws(() => generateKey('bad+name'), /contains '\+'/);
    assert.throws(() => generateKey(''), /is empty/);
    assert.throws(() => generateKey('tab\tname'), /contains a space/);
  });
});

describe('signed notes', () => {
  it('signing the x/mod example reproduces its published signed note', () => {
    assert.equal(signNote(TEXT, [newSigner(PETER_SKEY)]), `${TEXT}\n${PETER_SIG}`);
  });

  it('opening keeps unknown signatures unverified and verifies known ones', () => {
    const peter = newVerifier(PETER_VKEY);
    const enoch = newVerifier(ENOCH_VKEY);
    const note = `${TEXT}\n${PETER_SIG}${ENOCH_SIG}`;

    const one = openNote(note, [peter]);
    assert.equal(one.text, TEXT);
    assert.deepEqual(
      one.sigs.map((s) => [s.name, s.keyId.toString('hex'), b64(s), s.verified]),
      [
        ['PeterNeumann', 'c74f20a3', PETER_SIG_B64, true],
        ['EnochRoot', 'af0cfe78', ENOCH_SIG_B64, false],
      ],
    );
    const both = openNote(note, [enoch, peter]);
    assert.deepEqual(
      both.sigs.map((s) => s.verified),
      [true, true],
    );
    assert.throws(() => openNote(note, []), /note has no verifiable signatures.*PeterNeumann\+c74f20a3, EnochRoot\+af0cfe78/);
  });

  it('a signature sharing only the name or only the key ID of a known key is ignored, not verified', () => {
    const peter = newVerifier(PETER_VKEY);
    const sameName = `— PeterNeumann ${Buffer.concat([Buffer.from('c74f20a4', 'hex'), Buffer.alloc(64)]).toString('base64')}\n`;
    const sameId = `— CarmenSandiego ${PETER_SIG_B64}\n`;
    const n = openNote(`${TEXT}\n${sameName}${sameId}${PETER_SIG}`, [peter]);
    assert.deepEqual(
      n.sigs.map((s) => [s.name, s.verified]),
      [
        ['PeterNeumann', false],
        ['CarmenSandiego', false],
        ['PeterNeumann', true],
      ],
    );
    assert.throws(() => openNote(`${TEXT}\n${sameName}${sameId}`, [peter]), /no verifiable signatures/);
  });

  it('a known key whose signature fails rejects the whole note', () => {
    const peter = newVerifier(PETER_VKEY);
    assert.throws(() => openNote(`${TEXT}\n${corrupt(PETER_SIG)}`, [peter]), {
      message: 'invalid signature for key PeterNeumann+c74f20a3',
    });
    assert.throws(
      () => openNote(`${TEXT.replace('problem', 'problem!')}\n${PETER_SIG}`, [peter]),
      /invalid signature for key PeterNeumann\+c74f20a3/,
    );
    // Even when another signature by the same key is valid.
    assert.throws(() => openNote(`${TEXT}\n${PETER_SIG}${corrupt(PETER_SIG)}`, [peter]), /invalid signature/);
  });

  it('repeated signature lines are reported once (as x/mod does)', () => {
    const peter = newVerifier(PETER_VKEY);
    const note = `${TEXT}\n${PETER_SIG}${PETER_SIG}${ENOCH_SIG}${ENOCH_SIG}${corrupt(ENOCH_SIG)}`;
    const n = openNote(note, [peter]);
    assert.deepEqual(
      n.sigs.map((s) => [s.name, b64(s), s.verified]),
      [
        ['PeterNeumann', PETER_SIG_B64, true],
        ['EnochRoot', ENOCH_SIG_B64, false],
        ['EnochRoot', corrupt(ENOCH_SIG).slice(12, -1), false],
      ],
    );
  });

  it('more than 100 signatures is refused; 100 are accepted', () => {
    const peter = newVerifier(PETER_VKEY);
    assert.throws(
      () => openNote(`${TEXT}\n${PETER_SIG.repeat(101)}`, [peter]),
      /101 signature lines, more than the limit of 100/,
    );
    assert.throws(() => openNote(`${TEXT}\n${PETER_SIG.repeat(101)}`, []), /more than the limit of 100/);
    assert.equal(openNote(`${TEXT}\n${PETER_SIG.repeat(100)}`, [peter]).sigs.length, 1);
  });

  it('two verifiers with the same name and key ID are ambiguous', () => {
    const peter = newVerifier(PETER_VKEY);
    const enoch = newVerifier(ENOCH_VKEY);
    assert.throws(() => openNote(`${TEXT}\n${ENOCH_SIG}`, [enoch, peter, enoch]), /ambiguous key EnochRoot\+af0cfe78/);
    // Unused duplicates are harmless.
    openNote(`${TEXT}\n${PETER_SIG}`, [enoch, peter, enoch]);
  });

  it('malformed notes are rejected with precise messages', () => {
    const peter = newVerifier(PETER_VKEY);
    const cases: [string, RegExp][] = [
      [TEXT, /no blank line separating the text from the signatures/],
      [`${TEXT}\n`, /no signature lines after the blank line/],
      [`${TEXT}\n${PETER_SIG.slice(0, -1)}`, /last signature line does not end with a newline/],
      [`\x01${TEXT}\n${PETER_SIG}`, /control character U\+0001 at offset 0/],
      [`${TEXT.replace('\n', '\r\n')}\n${PETER_SIG}`, /control character U\+000d/],
      [`\uD800${TEXT}\n${PETER_SIG}`, /lone surrogate/],
      [`${TEXT}\n— Bad Name ${PETER_SIG_B64}`, /does not end with a newline/],
      [`${TEXT}\n— Bad Name ${PETER_SIG_B64}\n`, /signature line 1: signature is not canonical standard base64/],
      [`${TEXT}\n${PETER_SIG}Unexpected line.\n`, /signature line 2 does not start with "— "/],
      [`${TEXT}\n- PeterNeumann ${PETER_SIG_B64}\n`, /signature line 1 does not start with "— "/],
      [`${TEXT}\n— PeterNeumann\n`, /signature line 1 has no space between key name and signature/],
      [`${TEXT}\n— a+b ${PETER_SIG_B64}\n`, /key name "a\+b" contains '\+'/],
      [`${TEXT}\n—  ${PETER_SIG_B64}\n`, /key name "" is empty/],
      [`${TEXT}\n— PeterNeumann x08go/Z=\n`, /not canonical standard base64/],
      [`${TEXT}\n— PeterNeumann x08gow==\n`, /signature has 4 bytes, need a 4-byte key ID and a signature/],
      [`${TEXT}\n— PeterNeumann ${PETER_SIG_B64} \n`, /not canonical standard base64/],
    ];
    for (const [note, re] of cases) assert.throws(() => openNote(note, [peter]), re, JSON.stringify(note));
  });

  it('signNote refuses texts and signers the format forbids', () => {
    const s = newSigner(PETER_SKEY);
    assert.throws(() => signNote('abc', [s]), /text does not end with a newline/);
    assert.throws(() => signNote('', [s]), /text is empty/);
    assert.throws(() => signNote('a\tb\n', [s]), /control character U\+0009 at offset 1/);
    assert.throws(() => signNote('a\uDC00\n', [s]), /lone surrogate/);
    assert.throws(() => signNote(TEXT, []), /no signers/);
    assert.throws(() => signNote(TEXT, [s, s]), /signer PeterNeumann\+c74f20a3 given twice/);
    const badName: Signer = { ...s, name: 'bad name' };
    assert.throws(() => signNote(TEXT, [badName]), /invalid key name "bad name": contains a space/);
    const badId: Signer = { ...s, keyId: Buffer.alloc(3) };
    assert.throws(() => signNote(TEXT, [badId]), /key ID must be 4 bytes/);
  });

  it('notes signed by several fresh keys open with any non-empty subset of their verifiers', () => {
    const keys = ['a.example/1', 'b.example/2', 'c.example/3'].map((n) => generateKey(n));
    const signers = keys.map((k) => newSigner(k.skey));
    const verifiers: Verifier[] = keys.map((k) => newVerifier(k.vkey));
    const text = 'origin\n42\nAAAA\n\nwith a blank line in the text\n';
    const note = signNote(text, signers);
    for (let mask = 1; mask < 8; mask++) {
      const vs = verifiers.filter((_, i) => mask & (1 << i));
      const n = openNote(note, vs);
      assert.equal(n.text, text);
      assert.deepEqual(
        n.sigs.map((s) => s.verified),
        [0, 1, 2].map((i) => Boolean(mask & (1 << i))),
      );
    }
  });

  it('any text round-trips, and any single-character change to the signed note is rejected', () => {
    const s = newSigner(PETER_SKEY);
    const v = newVerifier(PETER_VKEY);
    const textArb = fc.array(fc.string({ unit: 'grapheme', maxLength: 20 }), { minLength: 1, maxLength: 5 }).map((lines) =>
      // Control characters other than newline are not allowed in notes.
      `${lines.join('\n')}\n`.replace(/\p{Cc}/gu, (c) => (c === '\n' || c.charCodeAt(0) >= 0x20 ? c : '?')),
    );
    fc.assert(
      fc.property(textArb, fc.nat(), fc.constantFrom('a', 'Z', '\n', ' ', 'é', '—', '+', '='), (text, pos, ch) => {
        const note = signNote(text, [s]);
        assert.equal(openNote(note, [v]).text, text);
        const i = pos % note.length;
        fc.pre(note[i] !== ch && !(ch === '\n' && note[i] === '\n'));
        const mutated = note.slice(0, i) + ch + note.slice(i + 1);
        fc.pre(mutated !== note);
        assert.throws(() => openNote(mutated, [v]));
      }),
      { numRuns: 200 },
    );
  });
});
