import { FsLogStorage } from './fs-storage.js';
import type { TileStore, TileStoreSpec } from './storage.js';

/** Opens the tile side of a log's storage from its spec (on the integrator's thread). */
export function openTileStore(spec: TileStoreSpec): TileStore {
  switch (spec.driver) {
    case 'fs':
      return new FsLogStorage(spec.dir);
  }
}
