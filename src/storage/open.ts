import type { Backend, BackendSpec, EmbeddedBackend, EmbeddedSpec } from './backend.js';
import { FaultsBackend } from './faults/backend.js';
import { FsBackend } from './fs/backend.js';
import { MemoryBackend } from './memory/backend.js';
import { PgBackend } from './pg/backend.js';

/** Opens an embedded backend from its spec (on any thread; a memory backend only on the thread that made it). */
export function openEmbedded(spec: EmbeddedSpec): EmbeddedBackend {
  switch (spec.driver) {
    case 'fs':
      return new FsBackend(spec.dir, spec.queryPartition ? { queryPartition: spec.queryPartition } : {});
    case 'memory':
      return MemoryBackend.named(spec.name);
    case 'faults':
      return new FaultsBackend(spec, openEmbedded(spec.inner));
  }
}

/** Opens the backend a spec names; a networked one connects first (a worker thread's pool is small). */
export async function openBackend(spec: BackendSpec, opts: { max?: number } = {}): Promise<Backend> {
  return spec.driver === 'pg' ? PgBackend.open(spec, opts) : openEmbedded(spec);
}
