/**
 * hypercore (the pinned devDependency) appending the same leaves in the same batches, in process.
 *
 * Durability, read from node_modules (hypercore 11 → hypercore-storage 3 → rocksdb-native 3):
 * `core.append()` resolves once the batch is in a RocksDB WriteBatch written with default
 * WriteOptions (sync = false): the RocksDB WAL is write(2)-en to the page cache but not fsync'd.
 * An append survives a crash of the process, not a power loss or kernel crash. `strace -f -e
 * trace=fsync,fdatasync` over a run of appends shows no fsync/fdatasync between appends (only at
 * open/close).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { removeDir, tempDir } from './cleanup.js';
import { type AppendRun, timeBatches } from './raw.js';

interface Core {
  ready(): Promise<void>;
  append(blocks: Buffer | Buffer[]): Promise<{ length: number; byteLength: number }>;
  close(): Promise<void>;
  readonly length: number;
}
type CoreCtor = new (storage: string) => Core;

const require = createRequire(import.meta.url);

export function hypercoreVersion(): string {
  const pkg = require.resolve('hypercore/package.json');
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}

export async function hypercoreAppend(
  batches: readonly Buffer[][],
  warmupMs: number,
  durationMs: number,
): Promise<Omit<AppendRun, 'otherCores'>> {
  const Hypercore = require('hypercore') as CoreCtor;
  const dir = tempDir('hypercore');
  const core = new Hypercore(dir);
  try {
    await core.ready();
    return await timeBatches(batches, warmupMs, durationMs, async (batch) => {
      await core.append(batch);
    });
  } finally {
    await core.close();
    removeDir(dir);
  }
}
