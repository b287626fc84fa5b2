/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per function and per component
 * of the write path. Builtins such as JSON.parse or crypto.hash do not get frames of their own in
 * V8 profiles: their time is the self time of the JS function that calls them (parseJsonBody for
 * JSON.parse, leafHash for SHA-256, encodeRecords for crc32...), which is why the grouping is by
 * source file.
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
  group: string;
}

export interface ProfileSummary {
  /** Wall time the summary covers (the load window when one was given), ms. */
  wallMs: number;
  /** Sampled time not idle (the main thread busy), ms. */
  busyMs: number;
  groups: { group: string; ms: number }[];
  top: FnTime[];
  /** Time inside synchronous fs calls (fsyncSync, writeSync, openSync...): the event loop is blocked meanwhile. */
  syncFsMs: number;
  /** The same, by calling Stele function. */
  syncFsBy: { caller: string; ms: number }[];
}

/** Ordered rules: the first that matches names the component. */
const RULES: [string, (f: CallFrame) => boolean][] = [
  ['GC', (f) => f.functionName === '(garbage collector)'],
  ['JSON parse of the body (isUtf8, toString, JSON.parse)', (f) => /\/(server|ingest)\/body\./.test(f.url)],
  ['ingest worker pool (postMessage, leaf copies, replies)', (f) => /\/ingest\/(pool|worker)\./.test(f.url)],
  [
    'ajv schema validation (compiled validate*, ajv-formats)',
    (f) => f.url.includes('/ajv') || (f.url === '' && /^validate\d*$/.test(f.functionName)),
  ],
  ['validate/normalize, Stele side (validateEvent, scan, normalizeEvent, uuidv7)', (f) => f.url.includes('/event/normalize.')],
  ['canonicalize (RFC 8785 leaf bytes)', (f) => f.url.includes('/event/canonical.')],
  ['leaf record (buildLeaf, formatMicros, nowMicros)', (f) => f.url.includes('/event/record.')],
  ['SHA-256 leaf/node hashing (tlog/hash)', (f) => f.url.includes('/tlog/hash.')],
  ['id index (uuidBytes, IdTable, journal writes)', (f) => f.url.includes('/log/id-index.')],
  ['WAL encode + write (encodeRecords, crc32)', (f) => f.url.includes('/log/wal.')],
  ['sequencer (queue, in-flight map, promises)', (f) => f.url.includes('/log/sequencer.')],
  [
    'integrator/tiles/checkpoint (TileBuilder, bundles, signing, tile files)',
    (f) =>
      ['/log/integrator.', '/tlog/tile.', '/tlog/note.', '/tlog/checkpoint.', '/log/fs-storage.', '/log/log.'].some((u) =>
        f.url.includes(u),
      ),
  ],
  ['ingest glue (appendEvents, prepareEvents)', (f) => f.url.includes('/ingest/')],
  ['Stele routes/auth', (f) => f.url.includes('/server/')],
  [
    'fastify (routing, hooks, reply, response serialisation)',
    (f) =>
      /node_modules\/(fastify|@fastify|find-my-way|fast-json-stringify|avvio|light-my-request|fast-querystring|secure-json-parse|abstract-logging|pino|fast-uri|toad-cache|process-warning|rfdc)/.test(
        f.url,
      ) ||
      (f.url === '' && /^(anonymous|\$main|main|serialize)/.test(f.functionName)),
  ],
  [
    'node http/net/stream internals',
    (f) =>
      /^node:(_http|http|net|stream|internal\/(http|stream|streams|net|js_stream|stream_base_commons))/.test(f.url) ||
      (f.url === '' && /^(writev|writeUtf8String|writeLatin1String|shutdown)$/.test(f.functionName)),
  ],
  [
    'node fs internals and fs calls whose JS caller is gone (async continuations, mostly tile/bundle files)',
    (f) =>
      f.url.startsWith('node:fs') ||
      f.url.startsWith('node:internal/fs') ||
      (f.url === '' &&
        /^(open|openFileHandle|close|read|readBuffers|write|writeBuffer|writeBuffers|writeString|rename|ftruncate|fsync|fdatasync|mkdir|readdir|stat|lstat|fstat|unlink|rmdir)$/.test(
          f.functionName,
        )),
  ],
  ['node other internals (timers, promises, buffer...)', (f) => f.url.startsWith('node:')],
  ['(program): V8/native outside JS frames', (f) => f.functionName === '(program)'],
];

function groupOf(f: CallFrame): string {
  for (const [name, test] of RULES) if (test(f)) return name;
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
 * `window` (optional): [from, to] in microseconds of the monotonic clock (process.hrtime), which is
 * the clock V8 stamps profiles with, so only samples taken under load are counted.
 */
/**
 * One summary over one or more profiles (say, all ingest worker threads: their times add up).
 * `wallMs` is the window length per thread; `busyMs` the sum over threads.
 */
export function summariseProfiles(
  paths: readonly string[],
  topN = 20,
  window?: { fromUs: number; toUs: number },
): ProfileSummary {
  const fns = new Map<string, FnTime>();
  const groups = new Map<string, number>();
  const syncFs = new Map<string, number>();
  let busy = 0;
  let wallUs = 0;
  for (const path of paths) {
    const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
    busy += accumulate(p, fns, groups, syncFs, window);
    const w = window ? Math.min(window.toUs, p.endTime) - Math.max(window.fromUs, p.startTime) : p.endTime - p.startTime;
    wallUs = Math.max(wallUs, w);
  }
  return {
    wallMs: wallUs / 1000,
    busyMs: busy / 1000,
    groups: [...groups].map(([group, ms]) => ({ group, ms })).sort((a, b) => b.ms - a.ms),
    top: [...fns.values()].sort((a, b) => b.ms - a.ms).slice(0, topN),
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
  groups: Map<string, number>,
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
        group: groupOf(f),
      });
    // Component: the nearest caller that is not a pass-through frame, else the frame itself.
    let owner: number | undefined = id;
    while (owner !== undefined && passThrough((byId.get(owner) as ProfileNode).callFrame)) owner = parent.get(owner);
    const of =
      owner === undefined || (byId.get(owner) as ProfileNode).callFrame.functionName === '(root)'
        ? f
        : (byId.get(owner) as ProfileNode).callFrame;
    const g = groupOf(of);
    groups.set(g, (groups.get(g) ?? 0) + us / 1000);
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
