/**
 * How far the query store falls behind sustained ingest: 4 clients post 1000-event batches for
 * the given seconds, then one search (which waits for the index thread to reach every
 * acknowledged entry) measures the backlog in seconds. `node dist/bench/ingest/index-lag.js [seconds]`.
 */
import { throughput } from './http-load.js';
import { startStele } from './server.js';

const seconds = Number(process.argv[2] ?? 10);
const srv = await startStele();
try {
  const r = await throughput(srv, { clients: 4, batch: 1000, withIds: true, warmupMs: 1000, durationMs: seconds * 1000 });
  const t0 = performance.now();
  const res = await fetch(`http://${srv.host}:${srv.port}/v1/events?q=&limit=1&count=true`, {
    headers: { authorization: `Bearer ${srv.token}` },
  });
  const body = (await res.json()) as { total: number };
  const lagS = (performance.now() - t0) / 1000;
  const eps = r.eventsPerSec;
  console.log(
    JSON.stringify({
      ingest_events_per_s: Math.round(eps),
      indexed: body.total,
      catch_up_s: +lagS.toFixed(2),
      index_events_per_s: Math.round(body.total / (seconds + 1 + lagS)),
    }),
  );
} finally {
  await srv.stop();
}
