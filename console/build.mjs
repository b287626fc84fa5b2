// Builds the console (issue 16) into dist/console/: one minified ES module and one stylesheet,
// named by content hash (served as immutable), their gzip copies, and index.html naming them.
// `npm run build` runs it after type-checking (tsc -p console).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'dist', 'console');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const result = await build({
  entryPoints: [join(here, 'src', 'main.tsx'), join(here, 'src', 'style.css')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  entryNames: '[name]-[hash]',
  outdir: out,
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});
const files = Object.keys(result.metafile.outputs).map((f) => basename(f));
const js = files.find((f) => f.endsWith('.js'));
const css = files.find((f) => f.endsWith('.css'));
const html = readFileSync(join(here, 'index.html'), 'utf8').replace('%JS%', `/console/${js}`).replace('%CSS%', `/console/${css}`);
writeFileSync(join(out, 'index.html'), html);
for (const f of [js, css, 'index.html']) writeFileSync(join(out, `${f}.gz`), gzipSync(readFileSync(join(out, f)), { level: 9 }));

// The browser verifier alone, unbundled, for the tests that check it against the server's own code.
await build({
  entryPoints: [join(here, 'src', 'verify.ts')],
  format: 'esm',
  outfile: join(out, 'lib', 'verify.js'),
  logLevel: 'warning',
});
