/** What the conformance suites are given of a driver's stores. */
export interface Driver<R> {
  /** Opens the store, empty. */
  open(): Promise<R> | R;
  /** Closes `r` and opens the same store again (drivers that persist); absent: nothing persists. */
  reopen?(r: R): Promise<R> | R;
  /**
   * Every byte the driver keeps of the store last opened (its files, say): what is destroyed or
   * forgotten must not be found there. Absent: the driver keeps nothing outside the process.
   */
  stored?(): Buffer;
}

/** Whether `needle` is anywhere in what the driver keeps (false when it keeps nothing outside memory). */
export function kept<R>(d: Driver<R>, needle: Buffer | string): boolean {
  return d.stored ? d.stored().includes(needle) : false;
}
