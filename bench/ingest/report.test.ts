import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { findDeclaration, where } from './code-refs.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const report = readFileSync(`${root}bench/ingest/report.ts`, 'utf8');

describe('bench report: the code its suggestions name exists', () => {
  it('finds functions, classes and methods, and nothing that is not declared', () => {
    assert.equal(findDeclaration('syncDir'), 'src/core/durable.ts');
    assert.equal(findDeclaration('Sequencer.append'), 'src/log/sequencer.ts');
    assert.equal(findDeclaration('Sequencer.noSuchMethod'), undefined);
    assert.equal(findDeclaration('noSuchFunction'), undefined);
    assert.match(where('noSuchFunction'), /no longer in src\//);
  });

  it('every name the report looks up with where() is declared in src/', () => {
    const names = [...report.matchAll(/\bwhere\('([^']+)'\)/g)].map((m) => m[1] as string);
    assert.ok(names.length >= 10, 'the suggestions look their files up');
    for (const n of names) assert.ok(findDeclaration(n), `report.ts names ${n}, which src/ no longer declares`);
  });

  it('every Class.method the report names is declared in src/', () => {
    const names = new Set(
      [...report.matchAll(/\\?`([A-Z][A-Za-z]+\.[a-z][A-Za-z]*)\\?`/g)]
        .map((m) => m[1] as string)
        .filter((n) => !/^(Buffer|Atomics|Math|JSON|Number|Object)\./.test(n)),
    );
    assert.ok(names.size >= 5);
    for (const n of names) assert.ok(findDeclaration(n), `report.ts names ${n}, which src/ no longer declares`);
  });

  it('spells no source file path (they move); the folders it names exist', () => {
    assert.deepEqual(report.match(/\bsrc\/[\w/.-]+\.ts\b/g), null);
    // e.g. `src/ingest/` and `src/log/integrator*`: the folder part must exist.
    for (const m of report.matchAll(/`(src\/[\w/-]*\/)/g)) {
      assert.ok(existsSync(`${root}${m[1]}`), `report.ts names ${m[1]}, which does not exist`);
    }
  });
});
