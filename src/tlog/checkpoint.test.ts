import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type Checkpoint, formatCheckpoint, parseCheckpoint } from './checkpoint.js';
import { emptyRoot, sha256 } from './hash.js';

// The example from c2sp.org/tlog-checkpoint.
const SPEC_TEXT = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';

describe('checkpoint', () => {
  it('parses the spec example', () => {
    const c = parseCheckpoint(SPEC_TEXT);
    assert.equal(c.origin, 'example.com/behind-the-sofa');
    assert.equal(c.size, 20852163);
    assert.equal(c.root.toString('base64'), 'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=');
    assert.deepEqual(c.extensions, []);
    assert.equal(formatCheckpoint(c), SPEC_TEXT);
  });

  it('formats origin, size, base64 root and extension lines, each ending in a newline', () => {
    const text = formatCheckpoint({ origin: 'log.example/a', size: 0, root: emptyRoot(), extensions: ['ext one', 'two'] });
    assert.equal(text, 'log.example/a\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next one\ntwo\n');
    assert.deepEqual(parseCheckpoint(text).extensions, ['ext one', 'two']);
  });

  it('round-trips any well-formed checkpoint', () => {
    const line = fc.string({ minLength: 1, maxLength: 30, unit: 'grapheme' }).filter((s) => !s.includes('\n'));
    fc.assert(
      fc.property(
        line,
        fc.maxSafeNat(),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.array(line, { maxLength: 3 }),
        (origin, size, root, extensions) => {
          const c: Checkpoint = { origin, size, root: Buffer.from(root), extensions };
          assert.deepEqual(parseCheckpoint(formatCheckpoint(c)), c);
        },
      ),
    );
  });

  it('rejects malformed checkpoints with precise messages', () => {
    const root = 'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=';
    const cases: [string, RegExp][] = [
      [`o\n1\n${root}`, /must end with a newline/],
      ['', /must end with a newline/],
      ['o\n1\n', /at least 3 lines/],
      [`\n1\n${root}\n`, /origin \(line 1\) is empty/],
      [`o\n01\n${root}\n`, /without leading zeros, got "01"/],
      [`o\n-1\n${root}\n`, /decimal number/],
      [`o\n+1\n${root}\n`, /decimal number/],
      [`o\n1e3\n${root}\n`, /decimal number/],
      [`o\n 1\n${root}\n`, /decimal number/],
      [`o\n\n${root}\n`, /decimal number/],
      [`o\n9007199254740992\n${root}\n`, /larger than 2\^53-1/],
      ['o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n', /not canonical standard base64/],
      ['o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n', /not canonical standard base64/],
      ['o\n1\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n', /not canonical standard base64/],
      ['o\n1\n CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n', /not canonical standard base64/],
      [`o\n1\n${sha256(Buffer.from('x')).subarray(1).toString('base64')}\n`, /is 31 bytes, want 32/],
      ['o\n1\n\n', /not canonical standard base64|is 0 bytes/],
      [`o\n1\n${root}\n\n`, /line 4 is empty/],
      [`${SPEC_TEXT}\n— example.com/behind-the-sofa AAAA\n`, /line 4 is empty.*not the signed note/],
    ];
    for (const [text, re] of cases) assert.throws(() => parseCheckpoint(text), re, JSON.stringify(text));
  });

  it('refuses to format a checkpoint that would not parse back', () => {
    const ok: Checkpoint = { origin: 'o', size: 1, root: emptyRoot(), extensions: [] };
    assert.throws(() => formatCheckpoint({ ...ok, origin: '' }), /origin must not be empty/);
    assert.throws(() => formatCheckpoint({ ...ok, origin: 'a\nb' }), /origin must not contain a newline/);
    assert.throws(() => formatCheckpoint({ ...ok, size: -1 }), RangeError);
    assert.throws(() => formatCheckpoint({ ...ok, size: 2 ** 53 }), RangeError);
    assert.throws(() => formatCheckpoint({ ...ok, root: Buffer.alloc(31) }), /root must be 32 bytes/);
    assert.throws(() => formatCheckpoint({ ...ok, extensions: [''] }), /extension line 1 must not be empty/);
  });
});
