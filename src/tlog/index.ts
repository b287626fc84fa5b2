/** Pure transparency-log math: RFC 6962 hashing, C2SP tiles, proofs, checkpoints, signed notes. */
export * from './checkpoint.js';
export * from './hash.js';
export * from './note.js';
export * from './proof.js';
export * from './tile.js';
export * from './verify.js';
