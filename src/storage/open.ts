import type { Backend, BackendSpec } from './backend.js';
import { FaultsBackend } from './faults/backend.js';
import { FsBackend } from './fs/backend.js';
import { MemoryBackend } from './memory/backend.js';

/** Opens the backend a spec names (on any thread; a memory backend only on the thread that made it). */
export function openBackend(spec: BackendSpec): Backend {
  switch (spec.driver) {
    case 'fs':
      return new FsBackend(spec.dir, spec.queryPartition ? { queryPartition: spec.queryPartition } : {});
    case 'memory':
      return MemoryBackend.named(spec.name);
    case 'faults':
      return new FaultsBackend(spec, openBackend(spec.inner));
  }
}
