/**
 * Sequencing on PostgreSQL against the embedded write-ahead log (issue 14):
 * `npm run bench:pg [-- --seconds S] [--repeats R]` (default 10 s a run, 3 repeats; needs PostgreSQL).
 *
 * The durable part of an append, without HTTP: 4 writers appending batches of 1,000 sealed leaves
 * (the bytes Stele writes), each batch made durable before the next, in one run:
 *   - PostgreSQL sequencing (src/storage/pg/sequencing.ts) with the writers spread over 1, 2 and 3
 *     nodes (a pool each), on a throwaway server with fsync and synchronous_commit on;
 *   - the embedded default's write-ahead log (FsLogStorage.appendSequenced: write and fdatasync);
 *   - the raw limit: SHA-256 of each leaf, one write and one fdatasync a batch (bench/ingest/raw.ts).
 * And the whole append over HTTP, as clients see it: 4 clients posting batches of 1,000 events
 * (`npm run bench`'s mix) to 1, 2 and 3 `stele serve --postgres` nodes (client j to node j mod n),
 * beside one embedded `stele serve`, with the CPU each side used.
 * Medians of the repeats; the ratios are what to compare on a shared 2-core machine.
 * Rewrites the `<!-- bench:pg -->` section of BENCHMARKS.md (`--no-write`: print only).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SequencedEntry } from '../../src/log/storage.js';
import { FsLogStorage } from '../../src/storage/fs/log-storage.js';
import { PgDatabase } from '../../src/storage/pg/database.js';
import { PgSequencing } from '../../src/storage/pg/sequencing.js';
import { Postgres, pgProblem } from '../../test/helpers/postgres.js';
import { cleanup } from '../../test/helpers/stele.js';
import { cleanupNow } from '../ingest/cleanup.js';
import { makeLeafBatches } from '../ingest/events.js';
import { type ThroughputResult, throughput } from '../ingest/http-load.js';
import { rawAppend } from '../ingest/raw.js';
import { machine } from '../ingest/report.js';
import { type SteleServer, startStele } from '../ingest/server.js';
import { fmtInt, fmtRatio, median } from '../ingest/stats.js';
import { numberOption, writeSection } from '../section.js';

const log = (s: string) => process.stderr.write(`${s}\n`);
const args = process.argv.slice(2);
const SECONDS = numberOption('--seconds', 10);
const REPEATS = numberOption('--repeats', 3);
const WRITERS = 4;
const BATCH = 1000;

interface Run {
  eps: number;
  batchMs: number;
}

/** `writers` loops appending batches for SECONDS; events of batches completed in the window. */
async function loops(writers: ((batch: SequencedEntry[]) => Promise<unknown>)[], batches: SequencedEntry[][]): Promise<Run> {
  const until = performance.now() + SECONDS * 1000;
  let events = 0;
  const times: number[] = [];
  let k = 0;
  await Promise.all(
    writers.map(async (append) => {
      while (performance.now() < until) {
        const batch = batches[k++ % batches.length] as SequencedEntry[];
        const t = performance.now();
        await append(batch);
        times.push(performance.now() - t);
        events += batch.length;
      }
    }),
  );
  return { eps: events / SECONDS, batchMs: median(times) };
}

/** `nodes` servers on one log in PostgreSQL (or one embedded server), loaded over HTTP for SECONDS. */
async function overHttp(url: string | null, nodes: number, schema: string): Promise<ThroughputResult> {
  const servers: SteleServer[] = [];
  try {
    if (url === null) servers.push(await startStele());
    else {
      const env = { ...process.env, STELE_POSTGRES_URL: url, STELE_POSTGRES_SCHEMA: schema };
      const first = await startStele({ env });
      servers.push(first);
      for (let n = 1; n < nodes; n++) servers.push(await startStele({ env, dir: first.dir }));
    }
    return await throughput(servers, {
      clients: WRITERS,
      batch: BATCH,
      withIds: true,
      warmupMs: 2000,
      durationMs: SECONDS * 1000,
    });
  } finally {
    for (const srv of servers.reverse()) await srv.stop();
  }
}

let serial = 0;
/** Batches with fresh ids each time they are used (a repeated id would be deduplicated, not written). */
function fresh(leaves: Buffer[][]): SequencedEntry[][] {
  return leaves.map((b) => b.map((leaf) => ({ id: `bench-${serial++}`, leaf, digest: leaf.subarray(0, 16) })));
}

async function main(): Promise<void> {
  const problem = pgProblem();
  if (problem) throw new Error(`bench:pg needs PostgreSQL: ${problem}`);
  const m = machine();
  log(`bench:pg: ${m.nproc} CPUs, ${m.model}, node ${m.node}, ${m.commit}; ${SECONDS} s a run, ${REPEATS} repeats`);
  const leaves = makeLeafBatches(0x5e9, 16, BATCH);
  const leafBytes = leaves.flat().reduce((n, l) => n + l.length, 0) / (16 * BATCH);
  const pg = await Postgres.start({ durable: true });
  const url = pg.createDb('bench');
  const results: Record<string, Run[]> = { 'pg-1': [], 'pg-2': [], 'pg-3': [], fs: [], raw: [] };
  const http: Record<string, ThroughputResult[]> = { 'pg-1': [], 'pg-2': [], 'pg-3': [], embedded: [] };
  try {
    for (let r = 0; r < REPEATS; r++) {
      for (const nodes of [1, 2, 3]) {
        const dbs = await Promise.all(
          Array.from({ length: nodes }, () => PgDatabase.open(url, { schema: `r${r}`, max: WRITERS })),
        );
        const seqs = dbs.map((db) => new PgSequencing(db));
        const run = await loops(
          Array.from({ length: WRITERS }, (_, w) => (b: SequencedEntry[]) => (seqs[w % nodes] as PgSequencing).append(b)),
          fresh(leaves),
        );
        // Each size starts from an empty log: truncating keeps the next run's tables small.
        await (dbs[0] as PgDatabase).query('TRUNCATE stele_ids, stele_wal; UPDATE stele_log_state SET next = 0');
        for (const db of dbs) await db.close();
        results[`pg-${nodes}`]?.push(run);
        log(
          `[${r + 1}/${REPEATS}] PostgreSQL, ${nodes} node(s): ${fmtInt(run.eps)} events/s, batch p50 ${run.batchMs.toFixed(1)} ms`,
        );
      }
      const dir = mkdtempSync(join(tmpdir(), 'bench-pg-fs-'));
      try {
        const storage = new FsLogStorage(dir);
        await storage.open();
        await storage.recoverSequenced(0);
        let next = 0;
        // The embedded sequencer writes one group commit at a time: the writers take turns.
        let turn: Promise<unknown> = Promise.resolve();
        const run = await loops(
          Array.from({ length: WRITERS }, () => (b: SequencedEntry[]) => {
            const first = next;
            next += b.length;
            turn = turn.then(() => storage.appendSequenced(first, b));
            return turn;
          }),
          fresh(leaves),
        );
        await storage.close();
        results.fs?.push(run);
        log(`[${r + 1}/${REPEATS}] embedded write-ahead log: ${fmtInt(run.eps)} events/s`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      for (const nodes of [1, 2, 3]) {
        const t = await overHttp(url, nodes, `h${r}_${nodes}`);
        http[`pg-${nodes}`]?.push(t);
        log(
          `[${r + 1}/${REPEATS}] HTTP, ${nodes} PostgreSQL node(s): ${fmtInt(t.eventsPerSec)} events/s, batch p50 ${t.batchP50Ms.toFixed(0)} ms, Stele ${t.serverCores.toFixed(2)} cores, rest ${t.otherCores.toFixed(2)}${t.failures ? `, ${t.failures} failures (${t.firstFailure})` : ''}`,
        );
      }
      const e = await overHttp(null, 1, '');
      http.embedded?.push(e);
      log(`[${r + 1}/${REPEATS}] HTTP, embedded: ${fmtInt(e.eventsPerSec)} events/s, Stele ${e.serverCores.toFixed(2)} cores`);
      const raw = await rawAppend(leaves, 500, SECONDS * 1000);
      results.raw?.push({ eps: raw.events / SECONDS, batchMs: raw.batchMs });
      log(`[${r + 1}/${REPEATS}] raw limit: ${fmtInt(raw.events / SECONDS)} events/s`);
    }
  } finally {
    await pg.stop();
    await cleanup();
    cleanupNow();
  }
  const med = (k: string) => median((results[k] ?? []).map((x) => x.eps));
  const ms = (k: string) => median((results[k] ?? []).map((x) => x.batchMs));
  const row = (label: string, k: string) =>
    `| ${label} | ${(results[k] ?? []).map((x) => fmtInt(x.eps)).join(' / ')} | **${fmtInt(med(k))}** | ${ms(k).toFixed(1)} | ${fmtRatio(med(k) / med('raw'))} |`;
  const hmed = (k: string, f: (t: ThroughputResult) => number) => median((http[k] ?? []).map(f));
  const hrow = (label: string, k: string) =>
    `| ${label} | ${(http[k] ?? []).map((t) => fmtInt(t.eventsPerSec)).join(' / ')} | **${fmtInt(hmed(k, (t) => t.eventsPerSec))}** | ${hmed(k, (t) => t.batchP50Ms).toFixed(0)} | ${hmed(k, (t) => t.serverCores).toFixed(2)} | ${hmed(k, (t) => t.otherCores).toFixed(2)} | ${fmtRatio(hmed(k, (t) => t.eventsPerSec) / hmed('embedded', (t) => t.eventsPerSec))} |`;
  const failures = Object.values(http)
    .flat()
    .reduce((n, t) => n + t.failures, 0);
  const md = `<!-- bench:pg -->
## Sequencing on PostgreSQL (\`npm run bench:pg\`)

${m.date.slice(0, 10)}, ${m.nproc} CPUs (${m.model}), ${m.memGiB} GiB, node ${m.node}, commit ${m.commit}; ${m.fs}.
The durable part of an append, without HTTP or event preparation: ${WRITERS} writers, batches of ${fmtInt(BATCH)}
sealed leaves (${fmtInt(leafBytes)} B on average), each batch durable before the writer's next.
PostgreSQL 15 runs on the same machine with \`fsync=on\` and \`synchronous_commit=on\`; a "node" is a
connection pool of its own (src/storage/pg/sequencing.ts: one transaction a batch). ${REPEATS} runs of ${SECONDS} s, median in bold.

| durable appends | events/s (each run) | median | batch p50 (ms) | × raw limit |
| --- | --- | ---: | ---: | ---: |
${row('PostgreSQL, 1 node', 'pg-1')}
${row('PostgreSQL, 2 nodes', 'pg-2')}
${row('PostgreSQL, 3 nodes', 'pg-3')}
${row('embedded write-ahead log (fs)', 'fs')}
${row('raw limit: hash, write, fdatasync', 'raw')}

- PostgreSQL / embedded: ${fmtRatio(med('pg-1') / med('fs'))} with 1 node; 3 nodes / 1 node: ${fmtRatio(med('pg-3') / med('pg-1'))}.
  The embedded write-ahead log can pass the "raw limit", which also hashes every leaf (the
  integrator's work, off the embedded append path).
  Nodes take turns on the log's state row, so more nodes add no write throughput: they add
  availability and HTTP and preparation capacity (the part of an append this benchmark leaves out,
  which is most of an append's CPU in \`npm run bench\`). Where a batch's time goes: shipping
  ${fmtInt(BATCH)} leaves and ids to the server, two index inserts per entry (ids, write-ahead log),
  and the commit's WAL flush, while the other writers wait for the row lock.

The whole append over HTTP (\`stele serve\`, ${WRITERS} clients posting batches of ${fmtInt(BATCH)} events of
\`npm run bench\`'s mix, client j to node j mod n; 2 s of warm-up, then ${SECONDS} s), in the same run:

| over HTTP | events/s (each run) | median | batch p50 (ms) | Stele cores | rest cores (PostgreSQL, clients' kernel, noise) | × embedded |
| --- | --- | ---: | ---: | ---: | ---: | ---: |
${hrow('`stele serve --postgres`, 1 node', 'pg-1')}
${hrow('`stele serve --postgres`, 2 nodes', 'pg-2')}
${hrow('`stele serve --postgres`, 3 nodes', 'pg-3')}
${hrow('`stele serve` (embedded)', 'embedded')}

- ${failures} requests failed in all runs. On these 2 cores the nodes, PostgreSQL and the load
  generator share the same CPUs: more nodes add processes, not cores, so this measures the cost of
  the shared path (an event prepared and sealed by a node, one transaction a batch, the leaves
  indexed by the lease holder reading them back from the shared write-ahead log) rather than how
  it scales on separate machines. "Stele cores" is what the nodes used together.
<!-- /bench:pg -->
`;
  process.stdout.write(md);
  if (!args.includes('--no-write')) writeSection('pg', md);
}

main().catch((err: unknown) => {
  log(`bench:pg failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
