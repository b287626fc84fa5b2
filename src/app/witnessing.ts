/**
 * The log's side of c2sp.org/tlog-witness: each new checkpoint goes to the configured witnesses
 * with a consistency proof from what each last cosigned, and once `quorum` of them cosigned it, it
 * is the checkpoint the server serves (with their cosignatures appended), so a client that
 * requires k-of-n cosignatures (`stele verify --witness`) accepts what the server shows. Until a
 * quorum cosigned one, the server shows its own newest checkpoint alone.
 */
import { SteleError } from '../core/errors.js';
import type { SteleLog } from '../log/log.js';
import { newCosignatureVerifier } from '../tlog/cosignature.js';
import { openNote, type Verifier } from '../tlog/note.js';
import { formatAddCheckpoint } from '../witness/protocol.js';

/** A witness as configured: where it listens and its cosignature (or Ed25519) verifier key. */
export interface WitnessConfig {
  url: string;
  vkey: string;
}

/** How one witness is doing, for /healthz and /metrics. */
export interface WitnessStatus {
  name: string;
  url: string;
  /** The tree size it last cosigned for this log, as far as this node knows (0: not yet known). */
  size: number;
  /** When it last cosigned a checkpoint of this node (ms since the epoch), or null. */
  lastCosigned: number | null;
  lastError: string | null;
}

interface Peer {
  url: string;
  verifier: Verifier;
  status: WitnessStatus;
}

/** Seconds to wait for a witness's answer. */
const TIMEOUT_MS = 10_000;

export class Witnessing {
  private readonly peers: Peer[];
  /** The newest checkpoint a quorum cosigned, with their lines appended; null until one did. */
  private witnessed: string | null = null;
  /** When that quorum was reached (ms since the epoch). */
  private witnessedAt: number | null = null;
  private lastRound: string | null = null;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly log: SteleLog,
    witnesses: readonly WitnessConfig[],
    readonly quorum: number,
    private readonly report: (err: Error) => void = () => {},
  ) {
    this.peers = witnesses.map((w) => {
      let verifier: Verifier;
      try {
        verifier = newCosignatureVerifier(w.vkey);
      } catch (err) {
        throw new SteleError('bad_option', `--witness ${w.vkey}: ${(err as Error).message}`);
      }
      return {
        url: w.url.replace(/\/+$/, ''),
        verifier,
        status: { name: verifier.name, url: w.url, size: 0, lastCosigned: null, lastError: null },
      };
    });
    if (!Number.isInteger(quorum) || quorum < 1 || quorum > this.peers.length)
      throw new SteleError('bad_option', `--witness-quorum ${quorum}: want 1 to ${this.peers.length} (the witnesses given)`);
  }

  /** The checkpoint to serve: the newest a quorum cosigned, else the log's own newest. */
  get checkpoint(): string {
    return this.witnessed ?? this.log.checkpoint.note;
  }

  /** When a quorum last cosigned (ms since the epoch), or null. */
  get cosignedAt(): number | null {
    return this.witnessedAt;
  }

  status(): WitnessStatus[] {
    return this.peers.map((p) => ({ ...p.status }));
  }

  /** Every `intervalMs`, submits the log's newest checkpoint if it was not yet cosigned by a quorum. */
  start(intervalMs: number): void {
    const tick = () => {
      this.running = this.round()
        .catch((err: Error) => this.report(err))
        .finally(() => {
          this.timer = setTimeout(tick, intervalMs);
          this.timer.unref();
        });
    };
    tick();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await this.running;
  }

  /** Submits the log's newest checkpoint to every witness; resolves once each answered or failed. */
  async round(): Promise<void> {
    const cp = this.log.checkpoint;
    if (cp.note === this.lastRound) return;
    const lines = await Promise.all(this.peers.map((p) => this.submit(p, cp.note, cp.size)));
    const got = lines.filter((l): l is string => l !== null);
    if (got.length < this.quorum) return; // the next round tries again
    this.lastRound = cp.note;
    this.witnessed = cp.note + got.join('');
    this.witnessedAt = Date.now();
  }

  /** One witness's cosignature lines for the checkpoint, or null (its status says why). */
  private async submit(p: Peer, note: string, size: number): Promise<string | null> {
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const old = p.status.size;
        if (old > size) return null; // it has cosigned a newer checkpoint (another node's): this one is behind
        const proof = old === 0 ? [] : await this.log.consistencyProof(old, size);
        const res = await fetch(`${p.url}/add-checkpoint`, {
          method: 'POST',
          body: formatAddCheckpoint({ oldSize: old, proof, checkpoint: note }),
          signal: AbortSignal.timeout(TIMEOUT_MS),
        });
        const text = await res.text();
        if (res.status === 409) {
          const at = Number(text.trim());
          if (!Number.isSafeInteger(at) || at < 0)
            throw new Error(`409 with an unreadable size ${JSON.stringify(text.slice(0, 40))}`);
          if (at === old)
            throw new Error(
              `the witness holds another checkpoint of size ${old} than this log: a fork, or a second log signed with this key`,
            );
          p.status.size = at;
          continue;
        }
        if (!res.ok) throw new Error(`HTTP ${res.status}: ${text.slice(0, 300)}`);
        const mine = text.split(/(?<=\n)/).filter((line) => {
          try {
            openNote(note + line, [p.verifier]);
            return true;
          } catch {
            return false;
          }
        });
        if (mine.length === 0) throw new Error('its answer holds no valid cosignature from its key');
        p.status.size = size;
        p.status.lastCosigned = Date.now();
        p.status.lastError = null;
        return mine.join('');
      }
      throw new Error('its size kept moving (409 three times)');
    } catch (err) {
      const message = `witness ${p.status.name} (${p.url}): ${(err as Error).message}`;
      if (p.status.lastError !== message) this.report(new Error(message));
      p.status.lastError = message;
      return null;
    }
  }
}
