/**
 * Event id → log index, so a repeated id returns its first index instead of appending twice.
 * Every lookup and insert is on the ingest hot path (100,000 events/s). `add` need not be durable
 * at once: `flush` makes it durable, and entries after that are replayed from the write-ahead log
 * on start (the log keeps them until `flush` has covered them). Drivers: the fs driver's journal
 * (src/storage/fs/id-index.ts), the memory driver's map.
 *
 * Beside each id the index keeps the entry's content digest (see ingest/digest.ts), so a repeated
 * id can be told apart from a retry of the same event. A digest is unknown (null) for entries
 * written before digests existed, or by callers that give none.
 */
export interface IdIndex {
  /** Index of each id already in the log (ids not found are absent). */
  lookup(ids: readonly string[]): Map<string, number>;
  /** The content digest recorded for entry `index`, or null when unknown. */
  digestAt(index: number): Buffer | null;
  /** Records the ids (and digests) of entries `first`, `first + 1`, ...; entries already covered are skipped. */
  add(first: number, entries: readonly IdEntry[]): void;
  /** Number of log entries whose ids are recorded. */
  upto(): number;
  /** Makes every `add` so far durable. */
  flush(): Promise<void>;
  close(): void;
}

/** What the id index records of an entry. */
export interface IdEntry {
  id: string;
  /** DIGEST_BYTES of content digest; absent when unknown. */
  digest?: Uint8Array;
}

/** Bytes of a content digest (a truncated HMAC-SHA256: collisions need the server's key). */
export const DIGEST_BYTES = 16;
