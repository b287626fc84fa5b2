/**
 * Load generators over node:http with keep-alive agents:
 *   - closed loop: N clients, each with one batch request in flight at a time (throughput);
 *   - open loop: one single-event request every 1/rate seconds on a fixed schedule, whatever the
 *     responses do, latency measured from the scheduled send time (no coordinated omission).
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { type Body, IdStamper, makeBody, makeEvent, rng } from './events.js';
import { machineBusySeconds, type SteleServer } from './server.js';
import { percentileSorted, sleep, sortedCopy } from './stats.js';

interface Reply {
  status: number;
  body: Buffer;
}

function post(agent: http.Agent, srv: SteleServer, headers: http.OutgoingHttpHeaders, body: Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ agent, host: srv.host, port: srv.port, method: 'POST', path: '/v1/events', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function headersFor(srv: SteleServer, body: Buffer): http.OutgoingHttpHeaders {
  return {
    'content-type': 'application/json',
    'content-length': body.length,
    authorization: `Bearer ${srv.token}`,
  };
}

export interface ThroughputResult {
  eventsPerSec: number;
  /** Acknowledged (HTTP 200) events inside the measured window. */
  acked: number;
  requests: number;
  failures: number;
  firstFailure: string | null;
  /** Median and p99 time of one batch request inside the window, ms. */
  batchP50Ms: number;
  batchP99Ms: number;
  /** CPU cores the server used on average inside the window (1.0 = one core busy). */
  serverCores: number;
  /** CPU cores this (load-generating) process used inside the window. */
  clientCores: number;
  /** CPU cores everything else on the machine used inside the window (the noise). */
  otherCores: number;
  /** The measured window on the monotonic clock (process.hrtime), µs: lines up with --cpu-prof timestamps. */
  window: { fromUs: number; toUs: number };
}

const hrUs = () => Number(process.hrtime.bigint() / 1000n);

export interface ThroughputOptions {
  clients: number;
  batch: number;
  withIds: boolean;
  warmupMs: number;
  durationMs: number;
  /** Distinct pre-built bodies per client (each is re-stamped with new ids before every send). */
  bodiesPerClient?: number;
  /**
   * Offered events/s over all clients: each client sends a batch on a fixed schedule (sending at
   * once when a reply came after its slot), so the server gets this rate or as much as it takes.
   * Absent: closed loop, each client sends its next batch as soon as the last is answered.
   */
  ratePerSec?: number;
}

/**
 * Batch appends, closed loop or paced (ratePerSec); counts only events acknowledged with 200 inside
 * the window. Several servers (nodes of one log): client j sends to server j mod n, and the
 * servers' CPU is their sum.
 */
export async function throughput(to: SteleServer | readonly SteleServer[], o: ThroughputOptions): Promise<ThroughputResult> {
  const servers = Array.isArray(to) ? to : [to as SteleServer];
  const serverCpu = () => servers.reduce((n, s) => n + s.cpuSeconds(), 0);
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.clients });
  const perClient = o.bodiesPerClient ?? 4;
  const r = rng(0x5e1e + (o.withIds ? 1 : 0));
  const clients = Array.from({ length: o.clients }, () => ({
    bodies: Array.from({ length: perClient }, () => makeBody(r, o.batch, o.withIds)),
    ids: new IdStamper(),
  }));

  const t0 = performance.now();
  const windowStart = t0 + o.warmupMs;
  const windowEnd = windowStart + o.durationMs;
  let acked = 0;
  let requests = 0;
  let failures = 0;
  let firstFailure: string | null = null;
  const batchMs: number[] = [];
  let cpuAtStart = { server: Number.NaN, client: process.cpuUsage(), machine: Number.NaN };
  const window = { fromUs: Number.NaN, toUs: Number.NaN };
  const markStart = setTimeout(() => {
    window.fromUs = hrUs();
    cpuAtStart = { server: serverCpu(), client: process.cpuUsage(), machine: machineBusySeconds() };
  }, o.warmupMs);
  let cpuAtEnd = { server: Number.NaN, client: process.cpuUsage(cpuAtStart.client), machine: Number.NaN };
  const markEnd = setTimeout(() => {
    window.toUs = hrUs();
    cpuAtEnd = { server: serverCpu(), client: process.cpuUsage(cpuAtStart.client), machine: machineBusySeconds() };
  }, o.warmupMs + o.durationMs);

  const periodMs = o.ratePerSec ? (1000 * o.clients * o.batch) / o.ratePerSec : 0;
  const loop = async (c: (typeof clients)[number], j: number) => {
    for (let k = 0; performance.now() < windowEnd; k++) {
      if (periodMs) {
        // Client j's k-th slot, the clients spread evenly over one period.
        const slot = t0 + (k + j / o.clients) * periodMs;
        if (slot >= windowEnd) break;
        await sleep(Math.max(0, slot - performance.now()));
      }
      const body = c.bodies[k % c.bodies.length] as Body;
      if (o.withIds) c.ids.stamp(body);
      const sent = performance.now();
      let reply: Reply;
      try {
        const node = servers[j % servers.length] as SteleServer;
        reply = await post(agent, node, headersFor(node, body.buf), body.buf);
      } catch (err) {
        failures++;
        firstFailure ??= (err as Error).message;
        await sleep(10);
        continue;
      }
      const done = performance.now();
      const inWindow = done >= windowStart && done <= windowEnd;
      if (reply.status !== 200) {
        failures++;
        firstFailure ??= `HTTP ${reply.status}: ${reply.body.toString('utf8').slice(0, 300)}`;
        continue;
      }
      // Count what the server says it stored, not what was sent.
      const n = (JSON.parse(reply.body.toString('utf8')) as { entries: unknown[] }).entries.length;
      if (n !== body.events) {
        failures++;
        firstFailure ??= `200 with ${n} entries for ${body.events} events`;
      }
      if (inWindow) {
        acked += n;
        requests++;
        batchMs.push(done - sent);
      }
    }
  };
  await Promise.all(clients.map((c, j) => loop(c, j)));
  clearTimeout(markStart);
  clearTimeout(markEnd);
  agent.destroy();
  const sorted = sortedCopy(batchMs);
  const secs = o.durationMs / 1000;
  const clientCpu = (cpuAtEnd.client.user + cpuAtEnd.client.system) / 1e6;
  return {
    eventsPerSec: acked / secs,
    acked,
    requests,
    failures,
    firstFailure,
    batchP50Ms: percentileSorted(sorted, 50),
    batchP99Ms: percentileSorted(sorted, 99),
    serverCores: (cpuAtEnd.server - cpuAtStart.server) / secs,
    clientCores: clientCpu / secs,
    otherCores: Math.max(0, (cpuAtEnd.machine - cpuAtStart.machine - (cpuAtEnd.server - cpuAtStart.server) - clientCpu) / secs),
    window,
  };
}

export interface LatencyResult {
  rate: number;
  sent: number;
  ok: number;
  failures: number;
  firstFailure: string | null;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  /** How late the generator itself sent requests (send time − scheduled time), p99, ms. */
  sendLagP99: number;
  serverCores: number;
  /** CPU cores this (load-generating) process used meanwhile. */
  clientCores: number;
  /** CPU cores other processes used meanwhile (the noise). */
  otherCores: number;
}

/** Open-loop single-event appends at `rate`/s for `durationMs` after `warmupMs` (not recorded). */
export async function openLoopLatency(
  srv: SteleServer,
  o: { rate: number; warmupMs: number; durationMs: number },
): Promise<LatencyResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  const interval = 1000 / o.rate;
  const warmupN = Math.round((o.warmupMs / 1000) * o.rate);
  const total = warmupN + Math.round((o.durationMs / 1000) * o.rate);
  const r = rng(0x1a7e);
  const ids = new IdStamper();
  const bodies = Array.from({ length: total }, () => Buffer.from(JSON.stringify({ id: ids.next(), ...makeEvent(r) })));
  const headers = bodies.map((b) => headersFor(srv, b));
  const lat = new Float64Array(total - warmupN).fill(Number.NaN);
  const lag = new Float64Array(total - warmupN);
  let ok = 0;
  let failures = 0;
  let firstFailure: string | null = null;
  let pending = 0;
  let cpu0 = Number.NaN;
  let cpu1 = Number.NaN;
  let m0 = Number.NaN;
  let m1 = Number.NaN;
  let c0 = process.cpuUsage();
  let c1 = process.cpuUsage(c0);
  let allSent!: () => void;
  const sentAll = new Promise<void>((res) => {
    allSent = res;
  });
  let drained!: () => void;
  const done = new Promise<void>((res) => {
    drained = res;
  });

  let next = 0;
  const fire = (i: number, scheduled: number) => {
    pending++;
    const rec = i - warmupN;
    if (rec >= 0) lag[rec] = performance.now() - scheduled;
    post(agent, srv, headers[i] as http.OutgoingHttpHeaders, bodies[i] as Buffer)
      .then(
        (reply) => {
          const t = performance.now();
          if (reply.status === 200) {
            if (rec >= 0) {
              lat[rec] = t - scheduled;
              ok++;
            }
          } else if (rec >= 0) {
            failures++;
            firstFailure ??= `HTTP ${reply.status}: ${reply.body.toString('utf8').slice(0, 300)}`;
          }
        },
        (err: Error) => {
          if (rec >= 0) {
            failures++;
            firstFailure ??= err.message;
          }
        },
      )
      .finally(() => {
        if (--pending === 0 && next >= total) drained();
      });
  };

  const start = performance.now() + 20;
  const tick = () => {
    const now = performance.now();
    while (next < total && start + next * interval <= now) {
      if (next === warmupN) {
        cpu0 = srv.cpuSeconds();
        m0 = machineBusySeconds();
        c0 = process.cpuUsage();
      }
      fire(next, start + next * interval);
      next++;
    }
    if (next < total) setTimeout(tick, 1);
    else {
      cpu1 = srv.cpuSeconds();
      m1 = machineBusySeconds();
      c1 = process.cpuUsage(c0);
      allSent();
    }
  };
  setTimeout(tick, 20);
  await sentAll;
  await Promise.race([done, sleep(30_000)]);
  agent.destroy();

  const measured = Array.from(lat).filter((x) => !Number.isNaN(x));
  const s = sortedCopy(measured);
  // A request that never answered counts as a failure, not as a fast one.
  const unanswered = lat.length - ok - failures;
  if (unanswered > 0) {
    failures += unanswered;
    firstFailure ??= `${unanswered} requests got no answer within 30 s after the last send`;
  }
  return {
    rate: o.rate,
    sent: lat.length,
    ok,
    failures,
    firstFailure,
    p50: percentileSorted(s, 50),
    p90: percentileSorted(s, 90),
    p99: percentileSorted(s, 99),
    p999: percentileSorted(s, 99.9),
    max: s.length ? (s[s.length - 1] as number) : Number.NaN,
    sendLagP99: percentileSorted(sortedCopy(lag), 99),
    serverCores: (cpu1 - cpu0) / (o.durationMs / 1000),
    clientCores: (c1.user + c1.system) / 1e6 / (o.durationMs / 1000),
    otherCores: Math.max(0, (m1 - m0 - (cpu1 - cpu0) - (c1.user + c1.system) / 1e6) / (o.durationMs / 1000)),
  };
}
