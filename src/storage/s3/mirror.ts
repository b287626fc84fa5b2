/**
 * The S3 mirror of a log (`stele serve --mirror s3://bucket/prefix`): copies the log's C2SP files
 * to `<prefix>/log/` in a bucket with Object Lock, so the bucket is a static tlog-tiles endpoint
 * that not even the bucket's administrator can rewrite. Full tiles and entry bundles are written
 * once, locked in COMPLIANCE mode; partial tiles are written unlocked and deleted once their full
 * tile is there; the checkpoint is written last, so everything it commits to is already in the
 * bucket. The bucket's checkpoint is the mirror's whole state: after an outage or a restart it
 * resumes from there, after checking that this log extends it (a bucket of another log, or one
 * tampered with, is refused, never overwritten). A full tile already in the bucket (a copy cut
 * short) is compared, never rewritten.
 */
import { createHash } from 'node:crypto';
import { SteleError } from '../../core/errors.js';
import { proveConsistency } from '../../log/proofs.js';
import { TreeReader } from '../../log/tree-reader.js';
import { type Checkpoint, parseCheckpoint } from '../../tlog/checkpoint.js';
import { openNote, type Verifier } from '../../tlog/note.js';
import { verifyConsistency } from '../../tlog/proof.js';
import { encodeBundle, parseTilePath, tileFilePath, tileLevels, tilesBetween, tileWidth } from '../../tlog/tile.js';
import type { TileSource } from '../../tlog/verify.js';
import type { Bucket } from './bucket.js';

export interface MirrorOptions {
  /** COMPLIANCE retention of each full tile and bundle, from the time it is written. */
  retainMs: number;
  legalHold: boolean;
}

export interface MirrorStatus {
  /** Entries the bucket's checkpoint covers (null until the bucket was first read). */
  size: number | null;
  /** When the last copy succeeded (ISO 8601), or null. */
  lastSuccess: string | null;
  /** Why the last attempt failed, or null when it did not. */
  lastError: string | null;
}

/** Parallel PUTs: enough to hide a round trip, few enough to leave the gateway's CPU to others. */
const CONCURRENCY = 8;

const TILE_TYPE = 'application/octet-stream';
// c2sp.org/tlog-tiles: full tiles never change; the checkpoint and partials do.
const IMMUTABLE = 'public, max-age=31536000, immutable';

type Tile = { level: number | 'entries'; index: number; width: number };

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

export class LogMirror {
  /** The bucket's checkpoint as last read or written; undefined: read it first (start, or after a failure). */
  private remote: { note: string; checkpoint: Checkpoint } | null | undefined;
  /** Partial tiles this process wrote, by path: their version, deleted once the tile is full. */
  private readonly partials = new Map<string, Tile & { versionId: string }>();
  /**
   * What the bucket held when it was last read (at start, or after a failure): the latest version's
   * MD5 of each full tile, compared instead of written (a copy cut short may have written some past
   * the checkpoint), and every version of a partial tile, deleted once the checkpoint passes them.
   */
  private found: { full: Map<string, string>; partials: { path: string; versionId: string }[] } | null = null;
  /** Partial tiles whose PUT failed: a version may be in the bucket all the same, found by listing that key. */
  private readonly lost = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private state: MirrorStatus = { size: null, lastSuccess: null, lastError: null };

  constructor(
    private readonly source: TileSource,
    private readonly bucket: Bucket,
    private readonly verifier: Verifier,
    private readonly opts: MirrorOptions,
  ) {}

  /**
   * Copies every `intervalMs` until stop(); after a failure waits twice as long each time (up to a
   * minute), logging each new failure once and the recovery, so an outage neither floods the
   * log nor the bucket.
   */
  start(intervalMs: number, log: { info: (o: object, m: string) => void; error: (o: object, m: string) => void }): void {
    let delay = intervalMs;
    let failing: string | null = null;
    const tick = () => {
      this.running = this.step().then(
        (size) => {
          if (failing !== null) log.info({ mirror: this.bucket.url, size }, 'mirror caught up after a failure');
          failing = null;
          delay = intervalMs;
        },
        (err: unknown) => {
          const message = (err as Error).message;
          if (message !== failing) log.error({ mirror: this.bucket.url, err: message }, 'mirror failed; retrying');
          failing = message;
          delay = Math.min(60_000, delay * 2);
        },
      );
      void this.running.then(() => {
        if (this.stopped) return;
        this.timer = setTimeout(tick, delay);
        this.timer.unref();
      });
    };
    tick();
  }

  /** Stops the loop after the copy in progress (a last copy is not forced: the next start resumes). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    this.bucket.close();
  }

  status(): MirrorStatus {
    return { ...this.state };
  }

  /**
   * Copies what the log has and the bucket lacks, up to the log's current checkpoint; returns the
   * size the bucket then holds. Throws (and the next call starts by reading the bucket again) on
   * any failure; nothing it wrote is wrong, only incomplete.
   */
  async step(): Promise<number> {
    try {
      const size = await this.copy();
      this.state = { size, lastSuccess: new Date().toISOString(), lastError: null };
      return size;
    } catch (err) {
      this.remote = undefined;
      this.state = { ...this.state, lastError: (err as Error).message };
      throw err;
    }
  }

  private async copy(): Promise<number> {
    const note = await this.source.readCheckpoint();
    const local = note === null ? null : this.open(note, 'the log');
    if (this.remote === undefined) {
      const remoteNote = (await this.bucket.get('log/checkpoint'))?.toString('utf8') ?? null;
      this.remote = remoteNote === null ? null : { note: remoteNote, checkpoint: this.open(remoteNote, 'the bucket') };
      this.found = await this.scan(local?.size ?? 0);
    }
    const from = this.remote?.checkpoint.size ?? 0;
    if (local === null || note === null) return from;
    if (this.remote) await this.checkExtends(this.remote.checkpoint, local);
    if (local.size === from) return from;
    const reader = new TreeReader(this.source);
    const todo = tilesBetween(from, local.size);
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = next++; i < todo.length; i = next++) await this.copyTile(reader, todo[i] as Tile, local.size);
      }),
    );
    await this.bucket.put('log/checkpoint', Buffer.from(note), {
      contentType: 'text/plain; charset=utf-8',
      cacheControl: 'no-cache',
    });
    this.remote = { note, checkpoint: local };
    // Partials go only once the checkpoint that no longer needs them is in the bucket: a reader
    // of the old one finds its partials (or, as the spec allows, the full tile's prefix).
    await this.dropPartials(local.size);
    return local.size;
  }

  /** A checkpoint's body, after checking its signature (the bucket's could be anyone's). */
  private open(note: string, where: 'the log' | 'the bucket'): Checkpoint {
    try {
      return parseCheckpoint(openNote(note, [this.verifier]).text);
    } catch (err) {
      const what =
        where === 'the bucket' ? `${this.bucket.url}/log/checkpoint is not this log's (another log's mirror?)` : 'the log';
      throw new SteleError('mirror_conflict', `${what}: ${(err as Error).message}`);
    }
  }

  /** Refuses a bucket whose checkpoint this log does not extend (another log's, or a fork). */
  private async checkExtends(remote: Checkpoint, local: Checkpoint): Promise<void> {
    const where = `${this.bucket.url}/log/checkpoint`;
    if (remote.origin !== local.origin)
      throw new SteleError('mirror_conflict', `${where} is of ${remote.origin}, not ${local.origin}`);
    if (remote.size > local.size)
      throw new SteleError(
        'mirror_conflict',
        `${where} has ${remote.size} entries, more than this log (${local.size}): another copy of the log wrote there`,
      );
    try {
      const proof = await proveConsistency(new TreeReader(this.source), remote.size, local.size, local.size);
      verifyConsistency(remote.size, local.size, proof, remote.root, local.root);
    } catch (err) {
      throw new SteleError(
        'mirror_conflict',
        `${where} (size ${remote.size}) is not a prefix of this log: ${(err as Error).message}`,
      );
    }
  }

  /** The bytes of a tile at `width` in the tree of `size`; a partial the integrator already replaced is cut from its full tile. */
  private async tileBytes(
    reader: TreeReader,
    t: { level: number | 'entries'; index: number; width: number },
    size: number,
  ): Promise<Buffer> {
    if (t.level === 'entries') return encodeBundle(await reader.bundle(t.index, size));
    return Buffer.from(await reader.tile(t.level, t.index, size));
  }

  private async copyTile(reader: TreeReader, t: Tile, size: number): Promise<void> {
    const path = `log/${tileFilePath(t.level, t.index, t.width)}`;
    const data = await this.tileBytes(reader, t, size);
    if (t.width < 256) {
      let versionId: string | undefined;
      try {
        versionId = await this.bucket.put(path, data, { contentType: TILE_TYPE, cacheControl: 'no-cache' });
      } catch (err) {
        this.lost.add(path);
        throw err;
      }
      const before = this.partials.get(path);
      if (versionId) this.partials.set(path, { versionId, ...t });
      // The same partial again (a step retried after a failure): the older copy is garbage.
      if (before && before.versionId !== versionId)
        await this.bucket.deleteVersion(path, before.versionId).catch(() => undefined);
      return;
    }
    const have = this.found?.full.get(path);
    if (have !== undefined) {
      if (have === md5(data)) return;
      throw new SteleError(
        'mirror_conflict',
        `${this.bucket.url}/${path} holds other bytes than this log's full tile; a locked object is never rewritten`,
      );
    }
    await this.bucket.put(path, data, {
      contentType: TILE_TYPE,
      cacheControl: IMMUTABLE,
      lock: { until: new Date(Date.now() + this.opts.retainMs), legalHold: this.opts.legalHold },
    });
  }

  /**
   * The tiles in the bucket, listed level by level (at start and after a failure only: a list
   * call per thousand objects), when the log has anything past the bucket's checkpoint.
   */
  private async scan(size: number): Promise<LogMirror['found']> {
    const found: NonNullable<LogMirror['found']> = { full: new Map(), partials: [] };
    if (size === 0) return found;
    const levels: (number | 'entries')[] = ['entries'];
    for (let l = 0; l < tileLevels(size); l++) levels.push(l);
    for (const level of levels) {
      for (const v of await this.bucket.versions(`log/tile/${level}/`)) {
        if (v.path.includes('.p/')) found.partials.push(v);
        else if (v.latest && v.md5) found.full.set(v.path, v.md5);
      }
    }
    return found;
  }

  /**
   * Deletes partial tiles once their tile is full in the bucket's checkpoint (c2sp.org/tlog-tiles:
   * a reader of an older checkpoint then reads the full tile's prefix; until then every width a
   * checkpoint in the bucket named stays, for its readers). Also a second copy of the same partial
   * (a PUT retried, or one whose answer an outage lost). None of them is locked. Best effort: a
   * leftover is only bytes.
   */
  private async dropPartials(size: number): Promise<void> {
    const drop = async (path: string, versionId: string) => {
      await this.bucket.deleteVersion(path, versionId).catch(() => undefined);
    };
    const isFull = (t: Tile) => tileWidth(t.level === 'entries' ? 0 : t.level, t.index, size) === 256;
    for (const [path, p] of this.partials) {
      if (!isFull(p)) continue;
      this.partials.delete(path);
      await drop(path, p.versionId);
    }
    // Found in the bucket when it was last read: written before this process, or lost.
    const kept: { path: string; versionId: string }[] = [];
    for (const v of this.found?.partials ?? []) {
      const t = parseTilePath(v.path.slice('log/'.length));
      const mine = this.partials.get(v.path);
      if ((t && isFull(t)) || (mine && mine.versionId !== v.versionId)) await drop(v.path, v.versionId);
      else kept.push(v);
    }
    if (this.found) this.found.partials = kept;
    for (const path of this.lost) {
      this.lost.delete(path);
      for (const v of await this.bucket.versions(path))
        if (v.versionId !== this.partials.get(path)?.versionId) await drop(path, v.versionId);
    }
  }
}

/**
 * Retention of the mirror's locked objects: given, else the policy's longest keep. A tile holds
 * entries of every tier, and S3 has no "forever": a tier kept forever gives 100 years (the most
 * AWS allows a bucket's default retention; an object's can be extended later, never shortened).
 */
export function mirrorRetention(given: number | undefined, keeps: readonly (number | null)[]): number {
  if (given !== undefined) return given;
  return keeps.some((k) => k === null) ? 100 * 365 * 86_400_000 : Math.max(...(keeps as number[]));
}
