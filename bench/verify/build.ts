/**
 * A large log for `stele verify`, built fast and cached. Appending 10M entries over HTTP would take
 * a quarter of an hour at today's ingest rate, so the log is built in process with the server's
 * own parts: `stele init` makes the data directory (signing key, origin), then the Integrator
 * (src/log/integrator.ts) with FsLogStorage writes the entry bundles, tiles and signed checkpoint,
 * exactly as the integrator thread of `stele serve` does, from leaves in Stele's leaf format
 * (bench/ingest/events.ts: v3 sealed leaves, the event and ingest principal compressed and
 * encrypted, with server time). The leaves are 4,096 distinct templates whose last 12 bytes are
 * rewritten with the entry's index, so every entry is distinct. No WAL, id index or query store is written: the
 * directory is a log to verify (`stele verify --dir`), not one to serve.
 *
 * Cached under bench/.cache/ (git-ignored), keyed by the package version, the tlog format files'
 * hash and the size; a `built.json` written last marks a complete build.
 */

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Integrator, type Published } from '../../src/log/integrator.js';
import { FsLogStorage } from '../../src/storage/fs/log-storage.js';
import { formatCheckpoint } from '../../src/tlog/checkpoint.js';
import { emptyRoot } from '../../src/tlog/hash.js';
import { newSigner, signNote } from '../../src/tlog/note.js';
import { TileBuilder } from '../../src/tlog/tile.js';
import { makeLeafBatches } from '../ingest/events.js';
import { CLI } from '../ingest/server.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CACHE = join(ROOT, 'bench', '.cache');

export interface BuiltLog {
  dir: string;
  size: number;
  /** Seconds the build took (from built.json when cached). */
  buildS: number;
  cached: boolean;
  leafBytes: number;
}

/** What the cache key covers: the version and the sources that decide the bytes on disk. */
function formatKey(): string {
  const h = createHash('sha256');
  h.update(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string);
  for (const f of [
    'src/tlog/tile.ts',
    'src/tlog/hash.ts',
    'src/tlog/checkpoint.ts',
    'src/event/record.ts',
    'src/log/integrator.ts',
  ])
    h.update(existsSync(join(ROOT, f)) ? readFileSync(join(ROOT, f)) : f);
  return h.digest('hex').slice(0, 12);
}

const CHUNK = 65_536;
const TEMPLATES = 4096;

export async function buildLog(size: number, log: (s: string) => void): Promise<BuiltLog> {
  const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string;
  const dir = join(CACHE, `verify-log-${version}-${formatKey()}-${size}`);
  const marker = join(dir, 'built.json');
  if (existsSync(marker)) {
    const b = JSON.parse(readFileSync(marker, 'utf8')) as { size: number; buildS: number; leafBytes: number };
    return { dir, size: b.size, buildS: b.buildS, cached: true, leafBytes: b.leafBytes };
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(CACHE, { recursive: true });
  const t0 = performance.now();
  execFileSync(process.execPath, [CLI, 'init', '--dir', dir, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const config = JSON.parse(readFileSync(join(dir, 'stele.json'), 'utf8')) as { origin: string };
  const signer = newSigner(readFileSync(join(dir, 'keys', 'log.key'), 'utf8').trim());

  const storage = new FsLogStorage(dir);
  const state = await storage.open();
  if (state.checkpoint) throw new Error(`${dir}: a log is there already`);
  const root = emptyRoot();
  const note = signNote(formatCheckpoint({ origin: config.origin, size: 0, root, extensions: [] }), [signer]);
  await storage.writeCheckpoint(null, note);
  let published: Published = { size: 0, root, note };
  let failure: Error | null = null;
  const integrator = new Integrator(
    storage,
    signer,
    config.origin,
    TileBuilder.empty(),
    [],
    published,
    {
      published: (p) => {
        published = p;
      },
      synced: () => {},
      failed: (e) => {
        failure = e;
      },
    },
    // Integrated only when told (integrateNow): a checkpoint per chunk, a tile sync every 10 s.
    { checkpointIntervalMs: 3_600_000, syncIntervalMs: 10_000 },
  );

  // Templates: Stele's sealed leaves; each copy gets its index in its last 12 bytes (the seal's
  // tag, which `stele verify` does not open: it checks hashes), so every leaf is distinct.
  const templates = makeLeafBatches(0x7e1f, 1, TEMPLATES)[0] as Buffer[];
  const idAt = templates.map((t) => t.length - 12);
  const leafBytes = templates.reduce((a, t) => a + t.length, 0) / templates.length;
  let last = performance.now();
  for (let first = 0; first < size; first += CHUNK) {
    const n = Math.min(CHUNK, size - first);
    const leaves: Buffer[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const k = (first + i) % TEMPLATES;
      const leaf = Buffer.from(templates[k] as Buffer);
      leaf.write((first + i).toString(16).padStart(12, '0'), idAt[k] as number, 'latin1');
      leaves[i] = leaf;
    }
    integrator.add(first, leaves);
    await integrator.integrateNow();
    if (failure) throw failure;
    if (performance.now() - last > 10_000) {
      last = performance.now();
      log(`  built ${first + n} of ${size} entries (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
  }
  await integrator.close();
  await storage.close();
  if (published.size !== size) throw new Error(`bench: built ${published.size} entries, wanted ${size}`);
  const buildS = (performance.now() - t0) / 1000;
  writeFileSync(marker, JSON.stringify({ size, buildS, leafBytes, builtAt: new Date().toISOString() }));
  return { dir, size, buildS, cached: false, leafBytes };
}
