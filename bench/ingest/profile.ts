/**
 * Summarises V8 .cpuprofiles (from `node --cpu-prof`, one per thread): self time per function and
 * per component of the write path, and which kind of server thread a profile comes from. Builtins
 * such as JSON.parse or crypto.hash do not get frames of their own in V8 profiles: their time is
 * the self time of the JS function that calls them (parseEventsBody for JSON.parse, leafHash for
 * SHA-256, encodeRecords for crc32...), which is why the grouping is by source file.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface FnTime {
  name: string;
  where: string;
  ms: number;
  /** Component label (of the frame itself, not of its caller). */
  group: string;
}

export interface ProfileSummary {
  /** Profiles (threads) summed. */
  threads: number;
  /** Wall time the summary covers (the load window when one was given), per thread, ms. */
  wallMs: number;
  /** Sampled time not idle (the thread not waiting in its event loop), summed over threads, ms. */
  busyMs: number;
  /** Components, largest first; `key` as in RULES, `group` the label. */
  groups: { key: string; group: string; ms: number }[];
  top: FnTime[];
  /** Every function with its self time, largest first (for lookups by name). */
  fns: FnTime[];
  /** Time inside synchronous fs calls (fsyncSync, writeSync, openSync...): the event loop is blocked meanwhile. */
  syncFsMs: number;
  /** The same, by calling Stele function. */
  syncFsBy: { caller: string; ms: number }[];
}

/**
 * Ordered rules: the first that matches names the component. The key is what report.ts looks
 * components up by; the label is what the tables show.
 */
const RULES: [string, string, (f: CallFrame) => boolean][] = [
  ['gc', 'GC', (f) => f.functionName === '(garbage collector)'],
  ['json', 'JSON parse of the body (UTF-8 check and decode, JSON.parse)', (f) => /\/(server|ingest)\/body\./.test(f.url)],
  [
    'ingestHandoff',
    'ingest hand-off (IngestPool.prepare and its replies; worker.ts: leaf copies, postMessage)',
    (f) => /\/ingest\/(pool|worker)\./.test(f.url),
  ],
  [
    'ajv',
    'ajv schema validation (compiled validate*, ajv-formats)',
    (f) => f.url.includes('/ajv') || (f.url === '' && /^validate\d*$/.test(f.functionName)),
  ],
  [
    'normalize',
    'validate/normalize, Stele side (validateEvent, scan, normalizeEvent, uuidv7)',
    (f) => f.url.includes('/event/normalize.'),
  ],
  ['canonical', 'canonicalize (RFC 8785 leaf bytes: ser, writeString)', (f) => f.url.includes('/event/canonical.')],
  ['record', 'leaf record (buildLeaf, formatMicros, nowMicros)', (f) => f.url.includes('/event/record.')],
  ['hash', 'SHA-256 leaf/node hashing (leafHash, nodeHash → crypto.hash)', (f) => f.url.includes('/tlog/hash.')],
  ['idIndex', 'id index (uuidBytes, IdTable, journal writes)', (f) => f.url.includes('/id-index.')],
  ['wal', 'WAL encode + write (encodeRecords, crc32)', (f) => f.url.includes('/storage/fs/wal.')],
  ['sequencer', 'sequencer (queue, in-flight map, promises)', (f) => f.url.includes('/log/sequencer.')],
  [
    'integratorHandoff',
    'integrator hand-off (IntegratorThread.add, pack/unpack, messages)',
    (f) => /\/log\/integrator-(thread|worker)\./.test(f.url),
  ],
  ['integrator', 'integrator loop (Integrator.integrate, add, schedule)', (f) => f.url.includes('/log/integrator.')],
  ['tiles', 'tiles and bundles (TileBuilder, tileSubtreeRoot, encodeBundle, tile paths)', (f) => f.url.includes('/tlog/tile.')],
  [
    'signing',
    'checkpoint signing (signNote → crypto.sign, formatCheckpoint)',
    (f) => ['/tlog/note.', '/tlog/checkpoint.', '/tlog/base64.'].some((u) => f.url.includes(u)),
  ],
  [
    'tileFiles',
    'tile files (FsLogStorage.writeTiles/writeTile/syncTiles, flushFiles)',
    (f) => ['/storage/fs/log-storage.'].some((u) => f.url.includes(u)),
  ],
  ['durable', 'durable files (writeDurably, syncDir)', (f) => f.url.includes('/log/durable.')],
  [
    'logGlue',
    'log glue (Log, tree reader, tile source, proofs)',
    (f) => ['/log/log.', '/log/tree-reader.', '/storage/fs/tile-source.', '/log/proofs.'].some((u) => f.url.includes(u)),
  ],
  ['ingestGlue', 'ingest glue (appendEvents, appendBody, prepareEvents)', (f) => f.url.includes('/ingest/')],
  ['routes', 'Stele routes/auth', (f) => f.url.includes('/server/')],
  [
    'fastify',
    'fastify (routing, hooks, reply, response serialisation)',
    (f) =>
      /node_modules\/(fastify|@fastify|find-my-way|fast-json-stringify|avvio|light-my-request|fast-querystring|secure-json-parse|abstract-logging|pino|fast-uri|toad-cache|process-warning|rfdc)/.test(
        f.url,
      ) ||
      (f.url === '' && /^(anonymous|\$main|main|serialize)/.test(f.functionName)),
  ],
  [
    'http',
    'node http/net/stream internals',
    (f) =>
      /^node:(_http|http|net|stream|internal\/(http|stream|streams|net|js_stream|stream_base_commons))/.test(f.url) ||
      (f.url === '' && /^(writev|writeUtf8String|writeLatin1String|shutdown)$/.test(f.functionName)),
  ],
  [
    'fs',
    'node fs internals, and fs calls whose JS caller is gone (async continuations)',
    (f) =>
      f.url.startsWith('node:fs') ||
      f.url.startsWith('node:internal/fs') ||
      (f.url === '' &&
        /^(open|openFileHandle|close|read|readBuffers|write|writeBuffer|writeBuffers|writeString|rename|ftruncate|fsync|fdatasync|mkdir|readdir|stat|lstat|fstat|unlink|rmdir|existsSync)$/.test(
          f.functionName,
        )),
  ],
  ['node', 'node other internals (timers, promises, buffer, worker messages...)', (f) => f.url.startsWith('node:')],
  ['program', '(program): V8/native outside JS frames', (f) => f.functionName === '(program)'],
];

function groupOf(f: CallFrame): { key: string; label: string } {
  for (const [key, label, test] of RULES) if (test(f)) return { key, label };
  return { key: 'other', label: 'other' };
}

/** What kind of thread a profile comes from. */
export type ThreadKind = 'main' | 'ingest' | 'integrator' | 'index' | 'other';

/**
 * The kind of a worker thread's profile, from what its samples ran: the integrator thread runs
 * src/log/integrator*.ts and src/tlog/ (hashing, tiles, signing), an ingest worker src/ingest/ and
 * src/event/ (parse, validate, canonicalize), the index thread src/index/ and SQLite (the query
 * store). Weighted by sample count; a thread that ran none of them (idle throughout) is told apart
 * by which entry module it loaded.
 */
export function threadKind(path: string): ThreadKind {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const isIntegrator = (u: string) => u.includes('/log/integrator') || u.includes('/tlog/');
  const isIngest = (u: string) => u.includes('/ingest/') || u.includes('/event/');
  const isIndex = (u: string) => u.includes('/index/') || u.includes('better-sqlite3') || u.includes('/query-store.');
  const urlOf = new Map<number, string>();
  for (const n of p.nodes) urlOf.set(n.id, n.callFrame.url);
  const count = { integrator: 0, ingest: 0, index: 0 };
  for (const id of p.samples) {
    const u = urlOf.get(id) ?? '';
    // Index first: the index thread also runs src/event/ (index notes), the others never src/index/.
    if (isIndex(u)) count.index++;
    else if (isIntegrator(u)) count.integrator++;
    else if (isIngest(u)) count.ingest++;
  }
  const [top, second] = (Object.entries(count) as [ThreadKind, number][]).sort((a, b) => b[1] - a[1]);
  if (top && second && top[1] > second[1]) return top[0];
  const urls = p.nodes.map((n) => n.callFrame.url);
  if (urls.some((u) => u.includes('/log/integrator-worker.'))) return 'integrator';
  if (urls.some((u) => u.includes('/ingest/worker.'))) return 'ingest';
  if (urls.some((u) => u.includes('/threads/index.'))) return 'index';
  return 'other';
}

function shortUrl(url: string): string {
  if (!url) return '(native/eval)';
  const i = url.indexOf('/node_modules/');
  if (i >= 0) return url.slice(i + 14);
  const d = url.indexOf('/dist/');
  if (d >= 0) return url.slice(d + 6);
  return url.replace(/^file:\/\//, '');
}

/**
 * Frames that are not a component of their own: Node's JS internals (Buffer, streams, crypto.hash's
 * wrapper, fs.promises) and native bindings. Their time goes to the nearest caller that is one
 * (for the component table only; the top-function table shows raw self time).
 */
function passThrough(f: CallFrame): boolean {
  if (f.functionName.startsWith('(')) return false; // (garbage collector), (program), (idle), (root)
  if (f.url.startsWith('node:')) return true;
  return f.url === '' && !/^validate\d*$/.test(f.functionName);
}

/**
 * One summary over one or more profiles (say, all ingest worker threads: their times add up).
 * `wallMs` is the window length per thread; `busyMs` the sum over threads. `window` (optional):
 * [from, to] in microseconds of the monotonic clock (process.hrtime), which is the clock V8 stamps
 * profiles with, so only samples taken under load are counted.
 */
export function summariseProfiles(
  paths: readonly string[],
  topN = 20,
  window?: { fromUs: number; toUs: number },
): ProfileSummary {
  const fns = new Map<string, FnTime>();
  const groups = new Map<string, { key: string; group: string; ms: number }>();
  const syncFs = new Map<string, number>();
  let busy = 0;
  let wallUs = 0;
  for (const path of paths) {
    const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
    busy += accumulate(p, fns, groups, syncFs, window);
    const w = window ? Math.min(window.toUs, p.endTime) - Math.max(window.fromUs, p.startTime) : p.endTime - p.startTime;
    wallUs = Math.max(wallUs, w);
  }
  const all = [...fns.values()].sort((a, b) => b.ms - a.ms);
  return {
    threads: paths.length,
    wallMs: wallUs / 1000,
    busyMs: busy / 1000,
    groups: [...groups.values()].sort((a, b) => b.ms - a.ms),
    top: all.slice(0, topN),
    fns: all,
    syncFsMs: [...syncFs.values()].reduce((a, b) => a + b, 0),
    syncFsBy: [...syncFs]
      .map(([caller, ms]) => ({ caller, ms }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 6),
  };
}

export function summariseProfile(path: string, topN = 20, window?: { fromUs: number; toUs: number }): ProfileSummary {
  return summariseProfiles([path], topN, window);
}

/** Adds one profile's self times into `fns` and `groups`; returns its busy (non-idle) µs. */
function accumulate(
  p: CpuProfile,
  fns: Map<string, FnTime>,
  groups: Map<string, { key: string; group: string; ms: number }>,
  syncFs: Map<string, number>,
  window?: { fromUs: number; toUs: number },
): number {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const selfUs = new Map<number, number>();
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    // timeDeltas[i] is the time before sample i; the gap after it is the sample's weight.
    const dt = Math.max(0, p.timeDeltas[i + 1] ?? 0);
    if (window && (t < window.fromUs || t >= window.toUs)) continue;
    const id = p.samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  }
  let busy = 0;
  for (const [id, us] of selfUs) {
    const f = (byId.get(id) as ProfileNode).callFrame;
    if (f.functionName === '(idle)') continue;
    busy += us;
    const key = `${f.functionName}|${f.url}|${f.lineNumber}`;
    const prev = fns.get(key);
    if (prev) prev.ms += us / 1000;
    else
      fns.set(key, {
        name: f.functionName || '(anonymous)',
        where: f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : shortUrl(f.url),
        ms: us / 1000,
        group: groupOf(f).label,
      });
    // Component: the nearest caller that is not a pass-through frame, else the frame itself.
    let owner: number | undefined = id;
    while (owner !== undefined && passThrough((byId.get(owner) as ProfileNode).callFrame)) owner = parent.get(owner);
    const of =
      owner === undefined || (byId.get(owner) as ProfileNode).callFrame.functionName === '(root)'
        ? f
        : (byId.get(owner) as ProfileNode).callFrame;
    const g = groupOf(of);
    const entry = groups.get(g.key);
    if (entry) entry.ms += us / 1000;
    else groups.set(g.key, { key: g.key, group: g.label, ms: us / 1000 });
    // Inside a synchronous fs call (node:fs fooSync) anywhere up the stack?
    let sync: number | undefined = id;
    while (sync !== undefined) {
      const cf = (byId.get(sync) as ProfileNode).callFrame;
      if (cf.url === 'node:fs' && /Sync$/.test(cf.functionName)) break;
      sync = parent.get(sync);
    }
    if (sync !== undefined) {
      const names = [(byId.get(sync) as ProfileNode).callFrame.functionName];
      for (let c = parent.get(sync); c !== undefined && names.length < 3; c = parent.get(c)) {
        const cf = (byId.get(c) as ProfileNode).callFrame;
        if (passThrough(cf) || cf.functionName.startsWith('(')) continue;
        names.push(cf.functionName || '(anonymous)');
      }
      const key = names.join(' ← ');
      syncFs.set(key, (syncFs.get(key) ?? 0) + us / 1000);
    }
  }
  return busy;
}
