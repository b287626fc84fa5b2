/**
 * The floor under any durable log on this machine: for each batch, SHA-256 every leaf (RFC 6962
 * leaf hash), write the length-prefixed leaves to one file, one fdatasync, repeat. One thread,
 * nothing overlapped, no parsing or validation: what "durable appends/s" costs in I/O and hashing.
 */
import crypto from 'node:crypto';
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { removeDir, tempDir } from './cleanup.js';
import { machineBusySeconds } from './server.js';

export interface AppendRun {
  eventsPerSec: number;
  events: number;
  /** CPU cores other processes on the machine used during the run (the noise). */
  otherCores: number;
  /** Median time of one batch (hash + write + fdatasync for raw; append() for hypercore), ms. */
  batchMs: number;
}

function medianOf(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1] ?? Number.NaN;
}

/** Measures how much CPU the rest of the machine used while `f` ran. */
export async function withNoise<T extends Omit<AppendRun, 'otherCores'>>(f: () => T | Promise<T>): Promise<AppendRun> {
  const m0 = machineBusySeconds();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await f();
  const c = process.cpuUsage(c0);
  const secs = (performance.now() - t0) / 1000;
  return { ...r, otherCores: Math.max(0, (machineBusySeconds() - m0 - (c.user + c.system) / 1e6) / secs) };
}

/**
 * Appends batches in a loop for `warmupMs + durationMs` and counts the events of batches that
 * *completed* inside the measured window (unbiased at both edges); batchMs is their median time.
 */
export async function timeBatches(
  batches: readonly Buffer[][],
  warmupMs: number,
  durationMs: number,
  append: (batch: Buffer[]) => void | Promise<void>,
): Promise<Omit<AppendRun, 'otherCores'>> {
  const from = performance.now() + warmupMs;
  const until = from + durationMs;
  let counted = 0;
  const times: number[] = [];
  for (let k = 0; ; k++) {
    const start = performance.now();
    if (start >= until) break;
    const batch = batches[k % batches.length] as Buffer[];
    await append(batch);
    const end = performance.now();
    if (end >= from && end < until) {
      counted += batch.length;
      times.push(end - start);
    }
  }
  return { eventsPerSec: counted / (durationMs / 1000), events: counted, batchMs: medianOf(times) };
}

export async function rawAppend(
  batches: readonly Buffer[][],
  warmupMs: number,
  durationMs: number,
): Promise<Omit<AppendRun, 'otherCores'>> {
  const dir = tempDir('raw');
  const fd = openSync(join(dir, 'leaves.log'), 'a');
  const scratch = Buffer.allocUnsafe(1 + 65536);
  scratch[0] = 0x00;
  const hashes: Buffer[] = [];
  try {
    return await timeBatches(batches, warmupMs, durationMs, (batch) => {
      let total = 0;
      for (const leaf of batch) total += 4 + leaf.length;
      const out = Buffer.allocUnsafe(total);
      let off = 0;
      hashes.length = 0;
      for (const leaf of batch) {
        leaf.copy(scratch, 1);
        hashes.push(crypto.hash('sha256', scratch.subarray(0, 1 + leaf.length), 'buffer') as unknown as Buffer);
        out.writeUInt32BE(leaf.length, off);
        leaf.copy(out, off + 4);
        off += 4 + leaf.length;
      }
      for (let w = 0; w < out.length; ) w += writeSync(fd, out, w, out.length - w);
      fdatasyncSync(fd);
    });
  } finally {
    closeSync(fd);
    removeDir(dir);
  }
}
