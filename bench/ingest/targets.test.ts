import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { linesFrom, targetLines, targetsText } from './targets.js';

const base = { stele: 120_000, raw: 200_000, hyper: 100_000, hypercoreVersion: '11.37.1', sustain: null, latency: null };

describe('bench targets (issue 12)', () => {
  it('says met / not met for each condition of target 1 separately', () => {
    const t = targetLines({ ...base, previous: '' });
    assert.deepEqual(
      t.filter((x) => x.target.startsWith('1.')).map((x) => x.met),
      [true, true, false], // ≥ 100,000/s; 0.6× raw ≥ 0.5×; 1.2× hypercore < 1.5×
    );
  });

  it('without index or verify sections, names the scripts that measure them', () => {
    const text = targetsText(targetLines({ ...base, previous: '# Benchmarks\n' }));
    assert.match(text, /measured by `npm run bench:index`/);
    assert.match(text, /measured by `npm run bench:verify`/);
  });

  it('reads the targets another bench left in its section, as JSON or as lines saying met / not met', () => {
    const json = [{ target: '6. proofs ≥ 20,000/s', measured: '25,000/s', met: true }];
    const md =
      `<!-- bench:verify -->\nx\n<!-- targets: ${JSON.stringify(json)} -->\n<!-- /bench:verify -->\n` +
      '<!-- bench:index -->\n| indexing at 1M | 61,000/s | met |\n| indexing at 10M | 41,000/s | not met |\n<!-- /bench:index -->\n';
    assert.deepEqual(linesFrom(md, 'verify'), json);
    assert.deepEqual(
      linesFrom(md, 'index')?.map((l) => l.met),
      [true, false],
    );
    const t = targetLines({ ...base, previous: md });
    assert.ok(t.some((x) => x.target.startsWith('2.') && x.target.includes('10M') && x.met === false));
    assert.equal(linesFrom('no sections', 'index'), null);
  });
});
