export type { ActorType, Event, EventInput, Ingest, LeafRecord, Outcome } from './types.js';
export { eventSchema } from './schema.js';
export { MAX_DEPTH, checkDepth, normalizeEvent, uuidv7, validateEvent } from './normalize.js';
export { canonicalize } from './canonical.js';
export {
  MAX_LEAF_BYTES,
  buildLeaf,
  decodeLeaf,
  encodeLeaf,
  formatMicros,
  nowMicros,
  parseMicros,
} from './record.js';
