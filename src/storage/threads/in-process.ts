import { EventEmitter } from 'node:events';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { ThreadHandle } from '../../core/thread.js';
import type { Backend, ThreadData, ThreadKind } from '../backend.js';
import { threadMain } from './entries.js';

/**
 * Runs a backend thread's code on this thread, behind a MessageChannel: for a driver whose stores
 * live in this thread's memory (memory), so a worker could not reopen them. The thread's code sees
 * a structured clone of `data` and its messages cross a real port, as they would to a worker.
 */
export function spawnInProcess<K extends ThreadKind>(backend: Backend, kind: K, data: ThreadData[K]): ThreadHandle {
  const { port1, port2 } = new MessageChannel();
  const handle = new InProcessThread(port1, port2);
  // A failure to start (the code, or a store it opens) is the thread's 'error', as from a worker.
  threadMain(kind)
    .then((main) =>
      main(
        port2,
        structuredClone(data),
        fenced(backend, () => handle.alive),
      ),
    )
    .catch((err: Error) => handle.emit('error', err));
  return handle;
}

/**
 * `backend` as the thread sees it: once the thread is terminated, every store it opened refuses
 * work. Terminating a worker stops its code; here its timers would go on (an integrator writing
 * tiles and checkpoints beside its successor's), so its stores stop it instead.
 */
function fenced(backend: Backend, alive: () => boolean): Backend {
  const guard = <T extends object>(store: T): T =>
    new Proxy(store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (!alive()) throw new Error('the thread was terminated');
          return value.apply(target, args);
        };
      },
    });
  return new Proxy(backend, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const opened = value.apply(target, args);
        return typeof opened === 'object' && opened !== null ? guard(opened) : opened;
      };
    },
  });
}

/** The owner's end: messages over `port`, 'error' when the code failed to start. */
class InProcessThread extends EventEmitter implements ThreadHandle {
  constructor(
    private readonly port: MessagePort,
    private readonly other: MessagePort,
  ) {
    super();
  }

  postMessage(message: unknown, transfer?: readonly ArrayBuffer[]): void {
    this.port.postMessage(message, transfer as ArrayBuffer[] | undefined);
  }

  // biome-ignore lint/suspicious/noExplicitAny: as ThreadHandle declares it
  override on(event: 'message' | 'error', listener: (arg: any) => void): this {
    if (event === 'message') this.port.on('message', listener);
    else super.on(event, listener);
    return this;
  }

  // biome-ignore lint/suspicious/noExplicitAny: as ThreadHandle declares it
  override off(_event: 'message', listener: (message: any) => void): this {
    this.port.off('message', listener);
    return this;
  }

  alive = true;

  async terminate(): Promise<number> {
    this.alive = false;
    this.port.close();
    this.other.close();
    return 0;
  }
}
