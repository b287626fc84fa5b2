/**
 * Bytes on disk per event (issue 18): `npm run bench:storage [-- --events N] [--corpus query|ingest]`
 * (default 1,000,000 events of the query corpus). One `stele serve` on a fresh data directory, the
 * embedded default; N events posted by 4 clients in 1000-event batches, from one of two corpora:
 * `query` (bench/query/gen.ts: Emacs, git, Kubernetes, CloudTrail, CI and AI-agent events of 570
 * actors with UUIDs, hashes, paths and messages, ~420 bytes of JSON; the seed the leaf dictionary
 * was not trained on) or `ingest` (bench/ingest/events.ts: the ingest benchmark's five shapes, ~300
 * bytes, far more repetitive); then, once the log is checkpointed and indexed and the server
 * has been idle for a few seconds, the space every part of the data directory takes (allocated
 * blocks, not apparent sizes), per event and as a multiple of the events' raw JSON, and the query
 * store's tables and indexes from SQLite's dbstat. In the same run, as references: the raw JSON
 * itself, and the same JSON compressed by gzip -6 as a whole (what one compressed file of the events
 * would take, the floor no per-event scheme reaches). Rewrites the `<!-- bench:storage -->` section
 * of BENCHMARKS.md.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { installCleanupHandlers } from '../ingest/cleanup.js';
import { IdStamper, makeBody, rng } from '../ingest/events.js';
import { type SteleServer, startStele } from '../ingest/server.js';
import { fmtInt, sleep } from '../ingest/stats.js';
import { EventStream, SEED } from '../query/gen.js';
import { BENCHMARKS_MD, sectionMarkers, writeSection } from '../section.js';

const { begin: BEGIN, end: END } = sectionMarkers('storage');
const BATCH = 1000;
const CLIENTS = 4;
const log = (s: string) => process.stderr.write(`${s}\n`);

function args() {
  const a = process.argv.slice(2);
  const i = a.indexOf('--events');
  const c = a.indexOf('--corpus');
  const corpus = c < 0 ? 'query' : String(a[c + 1]);
  if (corpus !== 'query' && corpus !== 'ingest') throw new Error(`--corpus is query or ingest, not ${corpus}`);
  return {
    events: i < 0 ? 1_000_000 : Number(String(a[i + 1]).replaceAll('_', '')),
    corpus: corpus as 'query' | 'ingest',
    write: !a.includes('--no-write'),
  };
}

/** Request bodies of `n` fresh events each, from the corpus. */
function bodies(corpus: 'query' | 'ingest', total: number): (n: number) => Buffer {
  if (corpus === 'ingest') {
    const r = rng(0x5707);
    const ids = new IdStamper();
    return (n) => {
      const body = makeBody(r, n, true);
      ids.stamp(body);
      return body.buf;
    };
  }
  const stream = new EventStream(total * 2, SEED); // room for the stele.* events skipped
  return (n) => {
    const parts: string[] = [];
    for (let k = 0; k < n; k++) {
      let e = stream.next().event;
      // The corpus has the server's own stele.* events, which no client may send.
      while (e.action.startsWith('stele.')) e = stream.next().event;
      // What a client sends: the server decides `verified`.
      const { actor, ...rest } = e;
      const { verified: _, ...who } = actor;
      parts.push(JSON.stringify({ ...rest, actor: who }));
    }
    return Buffer.from(`[${parts.join(',')}]`);
  };
}

function post(srv: SteleServer, body: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: srv.host,
        port: srv.port,
        method: 'POST',
        path: '/v1/events',
        headers: { authorization: `Bearer ${srv.token}`, 'content-type': 'application/json', 'content-length': body.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function getJson(srv: SteleServer, path: string): Promise<Record<string, unknown>> {
  const r = await fetch(`http://${srv.host}:${srv.port}${path}`, { headers: { authorization: `Bearer ${srv.token}` } });
  return (await r.json()) as Record<string, unknown>;
}

/** Allocated bytes of every file under `dir`, keyed by its path relative to `root`. */
function files(root: string, dir = root): Map<string, number> {
  const out = new Map<string, number>();
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) for (const [k, v] of files(root, p)) out.set(k, v);
    else out.set(relative(root, p), st.blocks * 512);
  }
  return out;
}

/** Which part of the data directory a file belongs to, as the report groups them. */
function part(path: string): string {
  if (path.startsWith('log/tile/entries/')) return 'log: entry bundles';
  if (path.startsWith('log/tile/')) return 'log: hash tiles';
  if (path.startsWith('log/')) return 'log: checkpoint and other';
  if (path.startsWith('index/query/')) return 'index: query store';
  if (path.startsWith('index/')) return 'index: other (notes spill)';
  if (path.startsWith('wal/')) return 'wal';
  if (path.startsWith('state/')) return 'state (id journal, digests)';
  if (path.startsWith('keys/')) return 'keys';
  return 'other';
}

/** dbstat of every query-store partition: allocated bytes per table or index, summed. */
function storeObjects(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const qdir = join(dir, 'index', 'query');
  if (!existsSync(qdir)) return out;
  for (const f of readdirSync(qdir).filter((x) => x.endsWith('.db'))) {
    const db = new Database(join(qdir, f), { readonly: true });
    try {
      for (const r of db.prepare('SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name').all() as {
        name: string;
        bytes: number;
      }[])
        out.set(r.name, (out.get(r.name) ?? 0) + r.bytes);
    } finally {
      db.close();
    }
  }
  return out;
}

async function main(): Promise<void> {
  installCleanupHandlers();
  const cfg = args();
  const commit = (() => {
    try {
      return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    } catch {
      return 'n/a';
    }
  })();
  const cpu = os.cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'n/a';
  log(`stele storage bench: ${os.cpus().length} CPUs (${cpu}), node ${process.version}, ${commit}; ${fmtInt(cfg.events)} events`);
  const srv = await startStele();
  try {
    // Every event fresh (no body reused), so nothing compresses better than real traffic would.
    const next = bodies(cfg.corpus, cfg.events);
    let raw = 0;
    const gzParts: Buffer[] = [];
    let sent = 0;
    const t0 = performance.now();
    const client = async () => {
      while (sent < cfg.events) {
        const n = Math.min(BATCH, cfg.events - sent);
        sent += n;
        const body = next(n);
        // The events' own JSON: the body without its brackets and the commas between events.
        raw += body.length - 2 - (n - 1);
        gzParts.push(body);
        const res = await post(srv, body);
        if (res.status !== 200) throw new Error(`append answered ${res.status}: ${res.text.slice(0, 200)}`);
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, client));
    log(`appended ${fmtInt(cfg.events)} events in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    // Checkpointed and indexed, then idle: the write-ahead log trimmed as it is at steady state.
    for (;;) {
      const h = await getJson(srv, '/healthz');
      const s = await getJson(srv, '/v1/events?limit=1');
      if (h.checkpoint_size === h.size && (s.indexed_through as number) >= (h.size as number)) break;
      await sleep(500);
    }
    await sleep(5000);
    const size = (await getJson(srv, '/healthz')).size as number;
    const all = files(srv.dir);
    const objects = storeObjects(srv.dir);
    const gz = gzipSync(Buffer.concat(gzParts), { level: 6 }).length;
    const md = render({ events: cfg.events, corpus: cfg.corpus, size, raw, gz, all, objects, commit, cpu });
    process.stdout.write(`${md}\n`);
    if (cfg.write) {
      writeSection('storage', md);
      log(`wrote the bench:storage section of ${BENCHMARKS_MD}`);
    }
  } finally {
    await srv.stop();
  }
}

function render(x: {
  events: number;
  corpus: 'query' | 'ingest';
  size: number;
  raw: number;
  gz: number;
  all: Map<string, number>;
  objects: Map<string, number>;
  commit: string;
  cpu: string;
}): string {
  const per = (b: number) => b / x.events;
  const ratio = (b: number) => `${(b / x.raw).toFixed(2)}×`;
  const byPart = new Map<string, number>();
  for (const [p, b] of x.all) byPart.set(part(p), (byPart.get(part(p)) ?? 0) + b);
  const total = [...byPart.values()].reduce((a, b) => a + b, 0);
  const o: string[] = [BEGIN, '## Bytes on disk per event (`npm run bench:storage`)', ''];
  o.push(
    `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; ${os.cpus().length} CPUs (${x.cpu}), node ${process.version}, ${x.commit}.`,
    '',
    `${fmtInt(x.events)} events of the ${x.corpus === 'query' ? "query benchmark's corpus (bench/query/gen.ts, held out from the leaf dictionary's training" : "ingest benchmark's mix (bench/ingest/events.ts, far more repetitive"}; every one generated fresh, ${per(x.raw).toFixed(0)} bytes of JSON on average, ids included) ` +
      `appended to one \`stele serve\` on a fresh data directory (log of ${fmtInt(x.size)} entries with the server's own), then measured ` +
      'once checkpointed, indexed and idle: allocated blocks of every file, per event and as a multiple of the raw JSON. ' +
      'Issue 18 target: the total ≤ 1.0× the raw JSON.',
    '',
    '| part | bytes | bytes/event | × raw JSON |',
    '|---|---:|---:|---:|',
  );
  for (const [p, b] of [...byPart].sort((a, b) => b[1] - a[1]))
    o.push(`| ${p} | ${fmtInt(b)} | ${per(b).toFixed(1)} | ${ratio(b)} |`);
  o.push(`| **total** | **${fmtInt(total)}** | **${per(total).toFixed(1)}** | **${ratio(total)}** |`);
  o.push(`| raw JSON of the events (reference) | ${fmtInt(x.raw)} | ${per(x.raw).toFixed(1)} | 1.00× |`);
  o.push(`| the same JSON, gzip -6 as one stream (reference) | ${fmtInt(x.gz)} | ${per(x.gz).toFixed(1)} | ${ratio(x.gz)} |`, '');
  if (x.objects.size) {
    o.push('Query store by table and index (SQLite `dbstat`, all partitions summed):', '');
    o.push('| table or index | bytes | bytes/event |', '|---|---:|---:|');
    for (const [n, b] of [...x.objects].sort((a, b) => b[1] - a[1]).filter(([, b]) => b >= 64 * 1024))
      o.push(`| ${n} | ${fmtInt(b)} | ${per(b).toFixed(1)} |`);
    o.push('');
  }
  o.push(END);
  return o.join('\n');
}

main().catch((err) => {
  process.stderr.write(`bench:storage failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
