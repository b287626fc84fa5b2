import { toWire, type WireError } from '../core/errors.js';
import type { ThreadPort } from '../core/thread.js';
import { newSigner } from '../tlog/note.js';
import { TileBuilder } from '../tlog/tile.js';
import { Integrator, type IntegratorOptions, type Published } from './integrator.js';
import { bytes, type Packed, unpack } from './packed.js';
import type { TileStore } from './storage.js';

/** Messages between the log (main thread) and its integrator thread. */
export type ToIntegrator =
  | {
      type: 'init';
      skey: string;
      origin: string;
      /** The durable right edge: tree size, its partial tiles and partial bundle. */
      size: number;
      partials: Uint8Array[];
      bundle: Uint8Array[];
      published: Published;
      options: IntegratorOptions;
      /** Recovery: entries from `size` on, integrated before answering ready. */
      replay: Packed;
      /** Recovery: the signed root those entries must reproduce. */
      expect?: { size: number; root: Uint8Array };
    }
  | { type: 'add'; first: number; parts: Packed[] }
  | { type: 'close' };

export type FromIntegrator =
  | { type: 'ready' }
  | { type: 'published'; published: Published }
  | { type: 'synced'; size: number }
  | { type: 'failed'; error: WireError }
  | { type: 'closed' };

/** Serves the integrator thread's messages on `port` (its owner is IntegratorThread), writing to `tiles`. */
export function serveIntegrator(port: ThreadPort, tiles: TileStore): void {
  const send = (m: FromIntegrator) => port.postMessage(m);
  let integrator: Integrator | null = null;
  let failed = false;
  /** Messages are handled one after another, in order, even when one awaits. */
  let queue: Promise<void> = Promise.resolve();

  function fail(err: unknown): void {
    if (failed) return;
    failed = true;
    send({ type: 'failed', error: toWire(err) });
  }

  async function handle(m: ToIntegrator): Promise<void> {
    if (m.type === 'init') {
      const builder = new TileBuilder(m.size, m.partials.map(bytes));
      const published = { ...m.published, root: bytes(m.published.root) };
      integrator = new Integrator(
        tiles,
        newSigner(m.skey),
        m.origin,
        builder,
        m.bundle.map(bytes),
        published,
        {
          published: (p) => send({ type: 'published', published: p }),
          synced: (size) => send({ type: 'synced', size }),
          failed: fail,
        },
        m.options,
      );
      const replay = unpack(m.replay);
      if (replay.length) {
        integrator.add(m.size, replay);
        await integrator.integrateNow(m.expect && { size: m.expect.size, root: bytes(m.expect.root) });
      }
      send({ type: 'ready' });
    } else if (m.type === 'add') {
      integrator?.add(m.first, m.parts.length === 1 ? unpack(m.parts[0] as Packed) : m.parts.flatMap(unpack));
    } else {
      await integrator?.close();
      send({ type: 'closed' });
    }
  }

  port.on('message', (m: ToIntegrator) => {
    queue = queue.then(() => handle(m)).catch(fail);
  });
}
