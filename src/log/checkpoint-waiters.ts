import { SteleError } from '../core/errors.js';
import type { Published } from './integrator.js';

/** Callers waiting for a checkpoint of at least some size, each with a timeout (waitForCheckpoint). */
export class CheckpointWaiters {
  private waiters: { size: number; resolve: (p: Published) => void; reject: (e: Error) => void }[] = [];

  /** Resolves with the first checkpoint `published` reports that covers `size` (checked now, then on each). */
  wait(current: Published, size: number, timeoutMs: number): Promise<Published> {
    if (current.size >= size) return Promise.resolve(current);
    return new Promise((resolve, reject) => {
      const w = {
        size,
        resolve: (p: Published) => {
          clearTimeout(t);
          resolve(p);
        },
        reject: (e: Error) => {
          clearTimeout(t);
          reject(e);
        },
      };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new SteleError('checkpoint_timeout', `no checkpoint covered size ${size} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** A new checkpoint: wakes those it covers. */
  published(p: Published): void {
    const ready = this.waiters.filter((w) => w.size <= p.size);
    this.waiters = this.waiters.filter((w) => w.size > p.size);
    for (const w of ready) w.resolve(p);
  }

  /** Fails every waiter. */
  fail(err: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
  }
}
