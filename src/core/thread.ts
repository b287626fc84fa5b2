/**
 * The two ends of a backend's thread (src/storage/threads): the owner holds a `ThreadHandle` (a
 * Worker, or for the in-memory driver one end of a MessageChannel in the same thread) and the
 * thread's code serves a `ThreadPort`. Domain code (the log's integrator, the index) speaks only
 * these, so a driver decides where its threads run.
 */
export interface ThreadPort {
  postMessage(message: unknown, transfer?: readonly ArrayBuffer[]): void;
  // biome-ignore lint/suspicious/noExplicitAny: as Node's MessagePort and Worker declare it
  on(event: 'message', listener: (message: any) => void): unknown;
}

export interface ThreadHandle {
  postMessage(message: unknown, transfer?: readonly ArrayBuffer[]): void;
  /** 'message' (what the thread posts) and 'error' (it failed). */
  // biome-ignore lint/suspicious/noExplicitAny: as Node's MessagePort and Worker declare it
  on(event: 'message', listener: (message: any) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  // biome-ignore lint/suspicious/noExplicitAny: as Node's MessagePort and Worker declare it
  off(event: 'message', listener: (message: any) => void): unknown;
  /** Stops the thread (pending messages are dropped). */
  terminate(): Promise<unknown>;
}
