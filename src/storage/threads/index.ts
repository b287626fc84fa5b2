import { serveIndex } from '../../index/worker.js';
import type { ThreadMain } from '../backend.js';

export const main: ThreadMain<'index'> = (port, data, backend) => {
  const masters = data.masters.map((m) => ({ id: m.id, key: Buffer.from(m.key) }));
  const stores = { store: backend.queryStore(), keys: backend.keys(masters, { readonly: true }), tiles: backend.tiles() };
  serveIndex(port, stores, data.policy);
};
