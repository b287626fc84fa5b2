import type { Backend, BackendSpec } from './backend.js';
import { FsBackend } from './fs/backend.js';

/** Opens the backend a spec names (on any thread). */
export function openBackend(spec: BackendSpec): Backend {
  switch (spec.driver) {
    case 'fs':
      return new FsBackend(spec.dir);
  }
}
