import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { tokenize } from './unicode61.js';

// The tokenizer of the SQLite store's fts table (query-schema.ts), with a vocabulary to read its tokens.
const db = new Database(':memory:');
after(() => db.close());
db.exec(`CREATE VIRTUAL TABLE f USING fts5(t, tokenize='unicode61 remove_diacritics 2');
  CREATE VIRTUAL TABLE v USING fts5vocab(f, 'instance');`);
const ins = db.prepare('INSERT INTO f (rowid, t) VALUES (?, ?)');
// One pass: the vocabulary has no index by document.
const instances = db.prepare('SELECT doc, term FROM v ORDER BY doc, offset');

function fts5(texts: readonly string[]): string[][] {
  db.exec('DELETE FROM f');
  db.transaction(() => {
    for (const [i, t] of texts.entries()) ins.run(i + 1, t);
  })();
  const out: string[][] = texts.map(() => []);
  for (const r of instances.iterate() as Iterable<{ doc: number; term: string }>) out[r.doc - 1]?.push(r.term);
  return out;
}

const codePoints = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => from + i).filter((c) => c < 0xd800 || c > 0xdfff);

/** Documents of `x<c>x` for every code point: one token (a token character) or two `x`s (a separator). */
function everyCodePoint(): string[] {
  const docs: string[] = [];
  const all = codePoints(1, 0x110000);
  for (let i = 0; i < all.length; i += 2000) {
    docs.push(
      all
        .slice(i, i + 2000)
        .map((c) => `x${String.fromCodePoint(c)}x`)
        .join(' '),
    );
  }
  return docs;
}

test('every code point separates or folds as FTS5 says', () => {
  const docs = everyCodePoint();
  const want = fts5(docs);
  docs.forEach((d, i) => {
    const got = tokenize(d);
    if (got.join(' ') !== (want[i] as string[]).join(' ')) {
      const at = got.findIndex((t, k) => t !== want[i]?.[k]);
      assert.fail(`doc ${i}: first difference at token ${at}: ${got[at]} vs ${want[i]?.[at]} (regenerate unicode61-table.ts?)`);
    }
  });
});

test('random text of letters, marks, digits, punctuation and emoji tokenizes as FTS5 does', () => {
  const alphabet = [...'aZé É\u0301ßſİıΣσςΆдЖ中文한국ﬁ①½٣.-_:/"\'@#\n\t😀𝔘\u200b\u00a0Ǆǅ'];
  // Sampled, not a property: FTS5 is asked once for all of them.
  const texts = fc
    .sample(fc.array(fc.constantFrom(...alphabet), { maxLength: 30 }), { numRuns: 5000, seed: 13 })
    .map((x) => x.join(''));
  assert.deepEqual(
    texts.map((t) => tokenize(t)),
    fts5(texts),
  );
});

// Regenerating the table for another SQLite: STELE_WRITE_UNICODE61=1 node --test dist/src/index/unicode61.test.js
if (process.env.STELE_WRITE_UNICODE61) {
  const docs = everyCodePoint();
  const toks = fts5(docs);
  const seps: string[] = [];
  const folds: string[] = [];
  const all = codePoints(1, 0x110000);
  let k = 0;
  let start: number | null = null;
  const flat = toks.flat();
  for (const c of all) {
    const t = flat[k++] as string;
    const sep = t === 'x';
    if (sep) k++;
    if (sep && start === null) start = c;
    if (!sep && start !== null) {
      seps.push(start === c - 1 ? start.toString(16) : `${start.toString(16)}-${(c - 1).toString(16)}`);
      start = null;
    }
    if (!sep) {
      const f = t.slice(1, -1);
      if (f !== String.fromCodePoint(c))
        folds.push(`${c.toString(16)}>${f === '' ? '' : (f.codePointAt(0) as number).toString(16)}`);
    }
  }
  if (start !== null) seps.push(`${start.toString(16)}-10ffff`);
  const chunk = (s: string) => (s.match(/.{1,100}/g) ?? []).map((p) => `  '${p}'`).join(' +\n');
  const version = (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  writeFileSync(
    new URL('../../../src/index/unicode61-table.ts', import.meta.url),
    `// Generated from FTS5's unicode61 tokenizer (remove_diacritics 2) of SQLite ${version}, the one
// better-sqlite3 bundles, by unicode61.test.ts (which checks it against FTS5). Hex code points.

/** Ranges (\`first-last\`, or one code point) that separate tokens; NUL and surrogates aside. */
export const SEPARATORS =
${chunk(seps.join(','))};

/** \`from>to\`: code points that fold to another (or, \`from>\`, to nothing: a dropped diacritic). */
export const FOLDS =
${chunk(folds.join(','))};
`,
  );
}
