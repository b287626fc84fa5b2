import { type Checkpoint, parseCheckpoint } from './checkpoint.js';
import { requireCosignatures, type WitnessPolicy } from './cosignature.js';
import { leafHash } from './hash.js';
import { openNote, type Verifier } from './note.js';
import { type DrainedTile, decodeBundle, entriesPath, rightEdge, TileBuilder, tilePath, tileRoot, tileWidth } from './tile.js';

/** "1 entry", "2 entries" (tlog imports nothing outside itself, so not src/plural.ts). */
const entries = (n: number) => `${n} ${n === 1 ? 'entry' : 'entries'}`;

/** Where a verifier reads a log from: a data directory, a URL, anything serving the C2SP paths. */
export interface TileSource {
  /** Tile at `level` (or the entry bundle, 'entries'), `index`, `width`; null when absent. */
  readTile(level: number | 'entries', index: number, width: number): Promise<Uint8Array | null>;
  readCheckpoint(): Promise<string | null>;
}

/**
 * `source` reading a partial tile or bundle its store has dropped as the full tile's prefix:
 * c2sp.org/tlog-tiles lets a log delete a partial once a wider tile exists, so a reader of an
 * older checkpoint (a mirror moving on while it is read) finds only the full one. What comes
 * back is still checked like any tile: a wrong prefix fails verification as a wrong partial would.
 */
export function withFullTileFallback(source: TileSource): TileSource {
  return {
    readCheckpoint: () => source.readCheckpoint(),
    async readTile(level, index, width) {
      const data = await source.readTile(level, index, width);
      if (data || width === 256) return data;
      const whole = await source.readTile(level, index, 256);
      if (!whole) return null;
      if (level !== 'entries') return whole.subarray(0, width * 32);
      // The first `width` entries of the bundle: each a big-endian uint16 length and its bytes.
      let at = 0;
      for (let k = 0; k < width && at + 2 <= whole.length; k++)
        at += 2 + (((whole[at] as number) << 8) | (whole[at + 1] as number));
      return whole.subarray(0, Math.min(at, whole.length));
    },
  };
}

export class VerifyError extends Error {
  override name = 'VerifyError';
}

export interface VerifyOptions {
  /** An older checkpoint note (same key): the log must be consistent with it. */
  since?: string;
  /**
   * With `since`, a checkpoint already verified in full: check only what came after it (the
   * entries and tiles past its size, and that they extend its root), as a monitor does on each
   * new checkpoint. The tree's right edge at that size is read back and must hash to its root.
   */
  resume?: boolean;
  onProgress?: (entries: number, total: number) => void;
  /** Witnesses whose cosignatures the checkpoint must carry, k of n (c2sp.org/tlog-cosignature). */
  witnesses?: WitnessPolicy;
  /** Told of each entry read (from the resume point on), in order, before it is known to verify. */
  onEntry?: (index: number, entry: Uint8Array) => void;
}

export interface VerifyResult {
  checkpoint: Checkpoint;
  note: string;
}

function openCheckpoint(note: string, verifier: Verifier, what: string): Checkpoint {
  try {
    return parseCheckpoint(openNote(note, [verifier]).text);
  } catch (err) {
    throw new VerifyError(`${what} does not verify with key ${verifier.name}: ${(err as Error).message}`);
  }
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;

/**
 * Checks a whole log against its signed checkpoint: the signature, every entry bundle, every tile at
 * every level (each rebuilt from the entries, never trusted), the root, and consistency with an
 * older checkpoint. Throws VerifyError naming the first bad entry, bundle or tile.
 *
 * Which side of a disagreement is to blame is decided by the signed root: if the entries rebuild it,
 * a tile that disagrees with them is the corrupt one; if they do not, the first entry whose hash
 * disagrees with its stored tile is.
 */
/** Entry bundles read ahead of the one being hashed. */
const READ_AHEAD = 16;

export async function verifyLog(store: TileSource, verifier: Verifier, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const source = withFullTileFallback(store);
  const note = await source.readCheckpoint();
  if (note === null) throw new VerifyError('the log has no checkpoint');
  const cp = openCheckpoint(note, verifier, 'the checkpoint');
  if (opts.witnesses) {
    try {
      requireCosignatures(note, verifier, opts.witnesses);
    } catch (err) {
      throw new VerifyError((err as Error).message);
    }
  }
  const old = opts.since === undefined ? undefined : openCheckpoint(opts.since, verifier, 'the old checkpoint');
  if (old) {
    if (old.origin !== cp.origin) throw new VerifyError(`the old checkpoint is for origin ${old.origin}, not ${cp.origin}`);
    if (old.size > cp.size) {
      throw new VerifyError(`the log rolled back: its checkpoint has ${entries(cp.size)}, the old one ${old.size}`);
    }
  }
  const size = cp.size;
  const start = opts.resume && old ? old.size : 0;
  const builder = start === 0 ? TileBuilder.empty() : await resumeAt(source, old as Checkpoint);
  let entryMismatch: string | undefined;
  let tileMismatch: string | undefined;
  /** The first level ≥ 1 tile whose stored hash `k` disagrees with the tiles rebuilt below it. */
  let upper: { level: number; index: number; k: number; path: string } | undefined;

  const compare = async (t: DrainedTile, prefetched?: Promise<Uint8Array | null>) => {
    const path = tilePath(t.level, t.index, t.width);
    const stored = await (prefetched ?? source.readTile(t.level, t.index, t.width));
    if (!stored) throw new VerifyError(`${path} is missing`);
    if (stored.length !== t.data.length) throw new VerifyError(`${path} is ${stored.length} bytes, expected ${t.data.length}`);
    if (same(stored, t.data)) return;
    let k = 0;
    while (same(stored.subarray(k * 32, k * 32 + 32), t.data.subarray(k * 32, k * 32 + 32))) k++;
    if (t.level === 0) {
      const index = t.index * 256 + k;
      entryMismatch ??= `entry ${index} (in ${entriesPath(t.index, t.width)}) does not match its hash in ${path}`;
      tileMismatch ??= `${path} is corrupt: hash ${k} (entry ${index}) does not match the entries`;
    } else {
      tileMismatch ??= `${path} is corrupt: hash ${k} does not match the tiles below it`;
      upper ??= { level: t.level, index: t.index, k, path };
    }
  };

  let oldRootOk = !old || old.size === 0 || start > 0;
  const bundles = Math.ceil(size / 256);
  // Reads run READ_AHEAD bundles (and their level-0 tiles) ahead of the hashing: the storage's
  // latency, not hashing, was most of the time. Each read is awaited in order below; the no-op
  // catch only keeps a failed read ahead from being reported before its turn.
  const ahead = new Map<number, { bundle: Promise<Uint8Array | null>; tile: Promise<Uint8Array | null> }>();
  const readAhead = (b: number) => {
    if (b >= bundles || ahead.has(b)) return;
    const width = tileWidth(0, b, size);
    const bundle = source.readTile('entries', b, width);
    const tile = source.readTile(0, b, width);
    bundle.catch(() => {});
    tile.catch(() => {});
    ahead.set(b, { bundle, tile });
  };
  for (let b = Math.floor(start / 256); b < bundles; b++) {
    for (let k = b; k < b + READ_AHEAD; k++) readAhead(k);
    const reads = ahead.get(b) as { bundle: Promise<Uint8Array | null>; tile: Promise<Uint8Array | null> };
    ahead.delete(b);
    const width = tileWidth(0, b, size);
    const path = entriesPath(b, width);
    const data = await reads.bundle;
    if (!data) throw new VerifyError(`${path} is missing`);
    let entries: Buffer[];
    try {
      entries = decodeBundle(data, width);
    } catch (err) {
      throw new VerifyError(`${path} (entries ${b * 256}-${b * 256 + width - 1}) is malformed: ${(err as Error).message}`);
    }
    // Resuming: the first bundle's entries below the start are in the tree already.
    for (const e of b * 256 < start ? entries.slice(start - b * 256) : entries) {
      opts.onEntry?.(builder.size, e);
      builder.append(leafHash(e));
      if (old && builder.size === old.size) {
        if (!same(builder.root(), old.root)) {
          throw new VerifyError(
            `the log is not consistent with the old checkpoint: ${old.size === 1 ? 'its first entry has' : `its first ${old.size} entries have`} a different root (a fork or rewritten history)`,
          );
        }
        oldRootOk = true;
      }
    }
    // Full tiles are final and can be checked as they complete; partial ones only at the end.
    for (const t of builder.drain())
      if (t.width === 256) await compare(t, t.level === 0 && t.index === b ? reads.tile : undefined);
    opts.onProgress?.(builder.size, size);
  }
  const partials = builder.partials();
  for (const e of rightEdge(size)) if (e.width > 0) await compare({ ...e, data: partials[e.level] as Buffer });
  if (!oldRootOk) throw new VerifyError('internal: the old checkpoint size was never reached');
  const rootOk = same(builder.root(), cp.root);
  if (rootOk && tileMismatch) throw new VerifyError(`${tileMismatch} (the entries do match the signed checkpoint)`);
  if (!rootOk && !entryMismatch && upper && (await authentic(source, size, cp.root, upper.level, upper.index))) {
    // The disagreeing stored tile is pinned by the signed root, so what lies under its hash k —
    // entries and the tiles rebuilt to match them — was rewritten.
    const sub = upper.index * 256 + upper.k;
    const span = 256 ** upper.level;
    const first = sub * span;
    const last = Math.min(size, first + span) - 1;
    const lower = tilePath(upper.level - 1, sub, tileWidth(upper.level - 1, sub, size));
    throw new VerifyError(
      `entries ${first}-${last} were altered and ${lower}${upper.level > 1 ? ' and the tiles below it' : ''} rewritten to match: ` +
        `they do not hash to hash ${upper.k} of ${upper.path}, which the signed checkpoint authenticates`,
    );
  }
  if (!rootOk) {
    throw new VerifyError(
      entryMismatch
        ? `${entryMismatch}, and the entries do not match the signed checkpoint: the entry was altered`
        : (tileMismatch ??
            `${size === 1 ? 'the 1 entry does' : `the ${size} entries do`} not hash to the root of the signed checkpoint`),
    );
  }
  return { checkpoint: cp, note };
}

/** The tree at a verified checkpoint, from its right-edge tiles, which must hash to its signed root. */
async function resumeAt(source: TileSource, at: Checkpoint): Promise<TileBuilder> {
  const partials: Uint8Array[] = [];
  for (const e of rightEdge(at.size)) {
    const path = tilePath(e.level, e.index, e.width || 1);
    const t = e.width ? await source.readTile(e.level, e.index, e.width) : new Uint8Array(0);
    if (!t || t.length !== e.width * 32)
      throw new VerifyError(`${path} (the right edge at the old checkpoint) is missing or malformed`);
    partials.push(t);
  }
  const builder = new TileBuilder(at.size, partials);
  if (!same(builder.root(), at.root))
    throw new VerifyError(`the tiles at the old checkpoint's size (${at.size}) no longer hash to its root (rewritten history)`);
  return builder;
}

/**
 * Whether stored tile (level, index) is authenticated by the signed root: the stored right-edge
 * tiles rebuild the root, and a full tile's root is its hash in the (authentic) stored tile above.
 */
async function authentic(source: TileSource, size: number, root: Uint8Array, level: number, index: number): Promise<boolean> {
  const read = async (l: number, i: number) => {
    const w = tileWidth(l, i, size);
    const t = w ? await source.readTile(l, i, w) : null;
    return t && t.length === w * 32 ? t : null;
  };
  const edgeTiles = rightEdge(size);
  for (let l = level, i = index; ; l++, i = Math.floor(i / 256)) {
    if (i === edgeTiles[l]?.index && tileWidth(l, i, size) < 256) {
      const edge: Uint8Array[] = [];
      for (const e of edgeTiles) {
        const t = e.width ? await read(e.level, e.index) : new Uint8Array(0);
        if (!t) return false;
        edge.push(t);
      }
      return same(new TileBuilder(size, edge).root(), root);
    }
    const tile = await read(l, i);
    const parent = await read(l + 1, Math.floor(i / 256));
    if (!tile || !parent) return false;
    const k = i % 256;
    if (!same(tileRoot(tile), parent.subarray(k * 32, k * 32 + 32))) return false;
  }
}
