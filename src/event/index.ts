export { canonicalBytes, canonicalize } from './canonical.js';
export { checkDepth, MAX_DEPTH, normalizeEvent, uuidv7, validateEvent } from './normalize.js';
export {
  buildLeaf,
  buildSealedLeaf,
  decodeLeaf,
  encodeLeaf,
  formatMicros,
  MAX_LEAF_BYTES,
  nowMicros,
  parseMicros,
  sealedContent,
} from './record.js';
export { eventSchema } from './schema.js';
export type { ActorType, Event, EventInput, Ingest, LeafContent, LeafRecord, Outcome } from './types.js';
