import type { ThreadKind, ThreadMain } from '../backend.js';

/** Loads a thread's code (dynamic, so a thread loads only its own). */
export async function threadMain<K extends ThreadKind>(kind: K): Promise<ThreadMain<K>> {
  const m = kind === 'integrator' ? await import('./integrator.js') : await import('./index.js');
  return m.main as ThreadMain<K>;
}
