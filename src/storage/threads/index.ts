import { serveIndex } from '../../index/worker.js';
import { KeyStore } from '../../keys/keystore.js';
import type { ThreadMain } from '../backend.js';

/** The index thread: the query store, the tiles, and the key store read-only (the main thread writes it). */
export const main: ThreadMain<'index'> = async (port, data, backend) => {
  const masters = data.masters.map((m) => ({ id: m.id, key: Buffer.from(m.key) }));
  const keys = await KeyStore.open(backend.keys({ readonly: true }), masters, { readonly: true });
  serveIndex(
    port,
    { store: backend.queryStore(), keys, tiles: backend.tiles(), noteSpill: backend.noteSpill() },
    data.policy,
    data.reader,
  );
};
