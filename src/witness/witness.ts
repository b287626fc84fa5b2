/**
 * A witness (c2sp.org/tlog-witness): for each log it knows, by origin, it keeps the latest
 * checkpoint it cosigned, and cosigns a new one only if it is signed by the log's key and a
 * consistency proof shows it extends that one. So it never cosigns two views of a log that
 * disagree: a log that shows one history to some clients and another to others can get its
 * cosignature for one of them at most. The check and the update of the stored checkpoint are one
 * atomic step (WitnessState.update), or two requests racing could roll the stored one back.
 */
import { type Checkpoint, parseCheckpoint } from '../tlog/checkpoint.js';
import { cosignatureLines } from '../tlog/cosignature.js';
import { emptyRoot } from '../tlog/hash.js';
import { openNote, type Signer, type Verifier } from '../tlog/note.js';
import { ProofError, verifyConsistency } from '../tlog/proof.js';
import { parseAddCheckpoint, WitnessError } from './protocol.js';

/** The latest checkpoint a witness cosigned for a log. */
export interface Cosigned {
  size: number;
  root: Buffer;
  note: string;
}

/** Where the witness keeps its checkpoints. */
export interface WitnessState {
  /**
   * Runs `step` on the log's latest cosigned checkpoint (undefined: none yet) and stores what it
   * returns, atomically with respect to every other update of the same log; resolves with its result.
   */
  update<T>(origin: string, step: (latest: Cosigned | undefined) => { store: Cosigned; result: T }): T;
}

export class Witness {
  constructor(
    readonly cosigner: Signer & { vkey: string },
    /** The logs it witnesses: origin → the keys that may sign its checkpoints. */
    private readonly logs: ReadonlyMap<string, readonly Verifier[]>,
    private readonly state: WitnessState,
  ) {}

  /** Handles an add-checkpoint request body: its cosignature line(s), or a WitnessError. */
  addCheckpoint(body: string): string {
    const req = parseAddCheckpoint(body);
    const origin = req.checkpoint.slice(0, req.checkpoint.indexOf('\n'));
    const keys = this.logs.get(origin);
    if (!keys) throw new WitnessError(404, `unknown log ${JSON.stringify(origin)}`);
    let text: string;
    let c: Checkpoint;
    try {
      text = openNote(req.checkpoint, keys).text;
      c = parseCheckpoint(text);
    } catch (err) {
      throw new WitnessError(403, `the checkpoint is not signed by a key of ${origin}, or malformed: ${(err as Error).message}`);
    }
    if (req.oldSize > c.size) throw new WitnessError(400, `old size ${req.oldSize} is larger than the checkpoint's ${c.size}`);
    if (c.size === 0 && !c.root.equals(emptyRoot()))
      throw new WitnessError(422, 'a checkpoint of size 0 must have the empty root');
    return this.state.update(origin, (latest) => {
      const at = latest?.size ?? 0;
      if (req.oldSize !== at) throw new WitnessError(409, `old size ${req.oldSize} is not the ${at} last cosigned`, at);
      if (latest && req.oldSize === c.size) {
        if (!latest.root.equals(c.root)) throw new WitnessError(409, `a different root for size ${c.size}: a fork`, at);
      } else if (req.oldSize === 0) {
        if (req.proof.length) throw new WitnessError(422, 'the proof from size 0 must be empty');
      } else {
        try {
          verifyConsistency(req.oldSize, c.size, req.proof, (latest as Cosigned).root, c.root);
        } catch (err) {
          if (!(err instanceof ProofError)) throw err;
          throw new WitnessError(422, `the consistency proof from ${req.oldSize} to ${c.size} does not verify: ${err.message}`);
        }
      }
      return { store: { size: c.size, root: c.root, note: req.checkpoint }, result: cosignatureLines(text, this.cosigner) };
    });
  }
}
