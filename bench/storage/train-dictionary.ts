/**
 * How `src/event/dictionaries/leaf-1.zdict` was made (run once; the file is part of the leaf format
 * and never changes once leaves use it: a new dictionary gets a new number and codec).
 *
 *     npm run build && node dist/bench/storage/train-dictionary.js [--out FILE] [--samples N]
 *
 * Samples are what a v3 leaf compresses: the canonical `{"event":…,"ingest":…}` of events as the
 * server normalises them, 80 % from the query benchmark's generator (Emacs, git, Kubernetes,
 * CloudTrail, CI and AI-agent events over 570 actors; seeds other than the one bench:storage
 * measures with) and 20 % from the ingest benchmark's mix. `zstd --train` (Debian `zstd`) builds
 * a 32 KiB dictionary from them. Prints the SHA-256 to pin in src/event/compress.ts.
 */
import { execFileSync } from 'node:child_process';
import { hash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { normalizeEvent } from '../../src/event/normalize.js';
import { sealedPlaintext } from '../../src/event/record.js';
import type { Ingest } from '../../src/event/types.js';
import { makeEvent, rng } from '../ingest/events.js';
import { EventStream, SEED } from '../query/gen.js';

const a = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = a.indexOf(name);
  return i < 0 ? dflt : String(a[i + 1]);
};
const out = opt('--out', fileURLToPath(new URL('../../../src/event/dictionaries/leaf-1.zdict', import.meta.url)));
const samples = Number(opt('--samples', '40000'));

/** The training seeds: never SEED, which bench:storage measures with. */
const SEEDS = [11, 12, 13, 14, 15].map((s) => SEED + s);

const dir = mkdtempSync(join(tmpdir(), 'stele-dict-'));
try {
  const received = 1_790_000_000_000_000n;
  let n = 0;
  const write = (event: Record<string, unknown>, ingest: Ingest) => {
    const e = normalizeEvent(event, received + BigInt(n));
    writeFileSync(join(dir, `${n++}.json`), sealedPlaintext(e, ingest));
  };
  const fromGen = Math.floor((samples * 0.8) / SEEDS.length);
  for (const seed of SEEDS) {
    const s = new EventStream(fromGen, seed);
    for (let i = 0; i < fromGen; i++) {
      const { event, ingest } = s.next();
      write(event as unknown as Record<string, unknown>, ingest);
    }
  }
  const r = rng(0xd1c7);
  const people = ['alice@example.com', 'ci-bot', 'k8s-audit', 'emacs:bob@example.com'];
  while (n < samples) {
    const ingest: Ingest = { principal: people[n % people.length] as string, method: n % 2 ? 'oidc' : 'apikey' };
    write({ id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`, ...makeEvent(r) }, ingest);
  }
  execFileSync('zstd', ['--train', '-r', dir, '--maxdict=32768', '--dictID=1', '-o', out, '-q', '-f'], { stdio: 'inherit' });
  process.stdout.write(`${out}: ${samples} samples; SHA-256 ${hash('sha256', readFileSync(out), 'hex')}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
