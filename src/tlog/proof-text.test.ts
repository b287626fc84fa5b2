import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseCheckpoint } from './checkpoint.js';
import { leafHash, merkleRoot } from './hash.js';
import { generateKey, newSigner, newVerifier, openNote, signNote } from './note.js';
import { inclusionProof, verifyInclusion } from './proof.js';
import { formatTlogProof, MAX_PROOF_HASHES, parseTlogProof, TLOG_PROOF_HEADER } from './proof-text.js';

// The example from c2sp.org/tlog-proof (its signatures are elided with "[...]" there; only their
// shape matters to the proof format, the signature check is openNote's).
const SPEC_EXAMPLE = `c2sp.org/tlog-proof@v1
extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ
index 73894
gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=
B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=
EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=
RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=
AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=

example.com/fancylog
109482
sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=

— example.com/fancylog hI2DJw[...]1roloI=
— witness1.example mJirIklj[...]qY9v2B/5bg==
— witness2.example TnKKVHLX[...]xwYwrSjgow==
— witness3.example S4X82uH5[...]3oEcROGLFQ==
`;

const H = (b: number) => Buffer.alloc(32, b);
const CP = 'example.com/log\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n— example.com/log AAAAAAAA\n';

/** A well-formed proof text with the given middle part (the lines between the header and the blank line). */
const withBody = (body: string, checkpoint = CP) => `${TLOG_PROOF_HEADER}\n${body}\n${checkpoint}`;

describe('tlog-proof', () => {
  it('parses the spec example and formats it back byte for byte', () => {
    const p = parseTlogProof(SPEC_EXAMPLE);
    assert.equal(p.index, 73894);
    assert.equal(p.proof.length, 5);
    assert.equal(p.proof[0]?.toString('base64'), 'gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=');
    assert.equal(p.proof[4]?.toString('base64'), 'AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=');
    assert.equal(p.extra?.toString('base64'), 'YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ');
    assert.ok(p.checkpoint.startsWith('example.com/fancylog\n109482\n'));
    assert.ok(p.checkpoint.endsWith('3oEcROGLFQ==\n'));
    assert.equal(formatTlogProof(p), SPEC_EXAMPLE);
  });

  it('formats without extra, and with an empty proof (a tree of one leaf)', () => {
    const text = formatTlogProof({ index: 0, proof: [], checkpoint: CP });
    assert.equal(text, `c2sp.org/tlog-proof@v1\nindex 0\n\n${CP}`);
    const p = parseTlogProof(text);
    assert.deepEqual(p, { index: 0, proof: [], checkpoint: CP });
    assert.equal('extra' in p, false);
  });

  it('round-trips a real signed proof that then verifies', () => {
    const { skey, vkey } = generateKey('example.com/log');
    const leaves = Array.from({ length: 13 }, (_, i) => leafHash(Buffer.from(`entry ${i}`)));
    const root = merkleRoot(leaves);
    const note = signNote(`example.com/log\n13\n${root.toString('base64')}\n`, [newSigner(skey)]);
    for (let i = 0; i < 13; i++) {
      const text = formatTlogProof({ index: i, proof: inclusionProof(i, 13, leaves), checkpoint: note });
      const p = parseTlogProof(text);
      const cp = parseCheckpoint(openNote(p.checkpoint, [newVerifier(vkey)]).text);
      verifyInclusion(leaves[i] as Buffer, p.index, cp.size, p.proof, cp.root);
    }
  });

  it('round-trips any index, proof and extra', () => {
    fc.assert(
      fc.property(
        fc.maxSafeNat(),
        fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { maxLength: MAX_PROOF_HASHES }),
        fc.option(fc.uint8Array({ maxLength: 100 }), { nil: undefined }),
        (index, hashes, extra) => {
          const proof = hashes.map((h) => Buffer.from(h));
          const x = extra === undefined ? undefined : Buffer.from(extra);
          const text = formatTlogProof(
            x === undefined ? { index, proof, checkpoint: CP } : { index, proof, checkpoint: CP, extra: x },
          );
          const p = parseTlogProof(text);
          assert.deepEqual(p, x === undefined ? { index, proof, checkpoint: CP } : { index, proof, checkpoint: CP, extra: x });
          assert.equal(formatTlogProof(p), text);
        },
      ),
    );
  });

  it('keeps the checkpoint verbatim, cosignatures and extension lines included', () => {
    const cp = 'o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next line\n\n— o AAAAAAAA\n— w1 BBBBBBBB\n';
    assert.equal(parseTlogProof(withBody(`index 0\n`, cp)).checkpoint, cp);
  });

  const rejects = (text: string, re: RegExp) => assert.throws(() => parseTlogProof(text), re);

  it('rejects a bad header', () => {
    rejects('', /line 1: the proof is empty/);
    rejects(
      `c2sp.org/tlog-proof@v2\nindex 0\n\n${CP}`,
      /line 1: header must be "c2sp.org\/tlog-proof@v1", got "c2sp.org\/tlog-proof@v2"/,
    );
    rejects(`C2SP.org/tlog-proof@v1\nindex 0\n\n${CP}`, /line 1: header must be/);
    rejects(`c2sp.org/tlog-proof@v1\r\nindex 0\r\n\r\n${CP}`, /line 1: .*not CRLF/);
    rejects(`\nc2sp.org/tlog-proof@v1\nindex 0\n\n${CP}`, /line 1: header must be/);
    rejects('c2sp.org/tlog-proof@v1', /line 1: .* does not end with a newline/);
  });

  it('rejects a missing or non-canonical index', () => {
    rejects(`${TLOG_PROOF_HEADER}\n`, /line 2: missing "index <n>" line/);
    rejects(withBody(`${H(1).toString('base64')}\n`), /line 2: want "index <n>" or "extra <base64>"/);
    for (const bad of ['01', '00', '-1', '+1', '1e3', ' 1', '1 ', '0x10', '', '1.0', '١']) {
      rejects(withBody(`index ${bad}\n`), /line 2: index must be a decimal number without leading zeros/);
    }
    rejects(withBody('index 9007199254740992\n'), /line 2: index 9007199254740992 is larger than 2\^53-1/);
    rejects(withBody('Index 1\n'), /line 2: want "index <n>"/);
    rejects(withBody('index\t1\n'), /line 2: want "index <n>"/);
    assert.equal(parseTlogProof(withBody('index 9007199254740991\n')).index, 9007199254740991);
  });

  it('rejects bad extra data and extra in the wrong place', () => {
    rejects(withBody('extra !!!!\nindex 0\n'), /line 2: extra data is not canonical standard base64/);
    rejects(withBody('extra YQ\nindex 0\n'), /line 2: extra data is not canonical standard base64/); // unpadded
    rejects(withBody('extra YR==\nindex 0\n'), /line 2: extra data is not canonical standard base64/); // non-zero padding bits
    rejects(withBody('extra YQ==\nextra YQ==\nindex 0\n'), /line 3: want "index <n>", got "extra YQ=="/);
    rejects(withBody('index 0\nextra YQ==\n'), /line 3: proof hash 0 is not canonical standard base64/);
    assert.deepEqual(parseTlogProof(withBody('extra \nindex 0\n')).extra, Buffer.alloc(0));
  });

  it('rejects bad proof hashes', () => {
    const h = H(7).toString('base64');
    rejects(withBody(`index 3\n${h}\nnot-base64\n`), /line 4: proof hash 1 is not canonical standard base64/);
    rejects(withBody(`index 3\n${h.slice(0, -1)}\n`), /line 3: proof hash 0 is not canonical standard base64/);
    rejects(withBody(`index 3\n${h}\n${Buffer.alloc(31).toString('base64')}\n`), /line 4: proof hash 1 is 31 bytes, want 32/);
    rejects(withBody(`index 3\n${Buffer.alloc(33).toString('base64')}\n`), /line 3: proof hash 0 is 33 bytes, want 32/);
    rejects(withBody(`index 3\n ${h}\n`), /line 3: proof hash 0 is not canonical/);
    rejects(withBody(`index 3\n${h}\r\n`), /line 3: proof hash 0 is not canonical/);
    const tooMany = `${Array.from({ length: MAX_PROOF_HASHES + 1 }, () => h).join('\n')}\n`;
    rejects(
      withBody(`index 3\n${tooMany}`),
      new RegExp(`line ${MAX_PROOF_HASHES + 3}: more than ${MAX_PROOF_HASHES} proof hashes`),
    );
  });

  it('rejects a missing blank line or a missing or malformed checkpoint', () => {
    const h = H(7).toString('base64');
    // Without the blank line the checkpoint's origin is read as a hash.
    rejects(
      `${TLOG_PROOF_HEADER}\nindex 3\n${h}\n${CP}`,
      /line 4: proof hash 1 is not canonical .*empty line before the checkpoint missing/,
    );
    rejects(`${TLOG_PROOF_HEADER}\nindex 3\n${h}\n`, /line 4: missing the empty line \(and the checkpoint\)/);
    rejects(`${TLOG_PROOF_HEADER}\nindex 3\n${h}\n\n`, /line 5: the checkpoint is missing/);
    rejects(withBody('index 3\n', CP.slice(0, -1)), /line 4: the checkpoint does not end with a newline/);
    rejects(withBody('index 3\n', 'example.com/log\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n'), /no blank line/);
    rejects(withBody('index 3\n', 'example.com/log\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n'), /no signature lines/);
    rejects(
      withBody('index 3\n', 'example.com/log\n05\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n— x AAAAAAAA\n'),
      /checkpoint is malformed: checkpoint size/,
    );
    rejects(
      withBody('index 3\n', '\nexample.com/log\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n— x AAAAAAAA\n'),
      /checkpoint is malformed/,
    );
  });

  it('refuses to format what it could not parse', () => {
    assert.throws(() => formatTlogProof({ index: -1, proof: [], checkpoint: CP }), /index must be a non-negative safe integer/);
    assert.throws(() => formatTlogProof({ index: 1.5, proof: [], checkpoint: CP }), /index must be a non-negative safe integer/);
    assert.throws(() => formatTlogProof({ index: 0, proof: [Buffer.alloc(31)], checkpoint: CP }), /proof hash 0 is 31 bytes/);
    assert.throws(
      () => formatTlogProof({ index: 0, proof: Array.from({ length: 65 }, () => H(0)), checkpoint: CP }),
      /65 proof hashes, more than the limit of 64/,
    );
    assert.throws(() => formatTlogProof({ index: 0, proof: [], checkpoint: 'o\n1\nAAAA\n' }), /checkpoint is not a signed note/);
    assert.throws(() => formatTlogProof({ index: 0, proof: [], checkpoint: '' }), /checkpoint is missing/);
  });
});
