/**
 * What input may cost `stele serve`, end to end: unauthenticated uploads are refused before their
 * body is read (memory stays bounded, authenticated clients are served meanwhile), slow headers
 * and slow bodies are timed out, appends and proofs are not rate limited (other reads are), an overloaded write
 * path answers 503 with Retry-After and appends nothing, and integers a double cannot hold are
 * refused rather than silently changed.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { checkpointCovers, cleanup, initDir, makeEvent, runStele, SteleServer, sleep, tempDir } from './helpers/stele.js';

after(cleanup);

/** The server's resident memory, kB, from /proc (Linux). */
function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

interface RawAnswer {
  /** The status of the response, if one came. */
  status?: number;
  /** How the connection ended: closed (by either side, or reset) or still open at the deadline. */
  closed: boolean;
}

/**
 * A raw HTTP/1.1 connection sending `head` and then `body` in pieces, one every `everyMs`, until
 * the server answers or closes. Resolves when the connection ends or after `deadlineMs`.
 */
function rawRequest(
  url: string,
  head: string,
  pieces: Buffer[],
  everyMs: number,
  deadlineMs: number,
): Promise<RawAnswer & { socket: Socket }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    let got = '';
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(deadline);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
      resolve({ ...(m ? { status: Number(m[1]) } : {}), closed, socket });
    };
    const deadline = setTimeout(() => finish(false), deadlineMs);
    socket.on('data', (d) => {
      got += d.toString('latin1');
    });
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('connect', () => {
      socket.write(head);
      let i = 0;
      const next = () => {
        if (done || socket.destroyed || i >= pieces.length) return;
        socket.write(pieces[i++] as Buffer);
        timer = setTimeout(next, everyMs);
      };
      next();
    });
  });
}

async function appendOne(url: string, token: string, event = makeEvent()): Promise<Response> {
  return fetch(`${url}/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(event),
    signal: AbortSignal.timeout(60_000),
  });
}

describe('unauthenticated and slow requests', () => {
  test('60 slow unauthenticated uploads are refused before their body is read; memory stays bounded; others are served', async (t) => {
    const d = await initDir('limits.test/log');
    const srv = await SteleServer.start(d.dir);
    try {
      const pid = srv.proc.pid as number;
      const before = rssKb(pid);
      const claimed = 16_000_000;
      const head = (auth: string) =>
        `POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${claimed}${auth}\r\n\r\n`;
      // Each sends 6 MiB at once, then a few bytes every 200 ms: what a server buffering
      // unauthenticated bodies would hold is 360 MiB.
      const chunk = Buffer.alloc(6 * 1024 * 1024, 0x20);
      const pieces = [chunk, ...Array.from({ length: 50 }, () => Buffer.from('   '))];
      const uploads = Array.from({ length: 60 }, () => rawRequest(srv.url, head(''), pieces, 200, 30_000));
      // Meanwhile an authenticated client appends and reads.
      const served: number[] = [];
      for (let i = 0; i < 10; i++) {
        const r = await appendOne(srv.url, d.token);
        served.push(r.status);
        await r.arrayBuffer();
      }
      const answers = await Promise.all(uploads);
      const peak = rssKb(pid);
      t.diagnostic(`server RSS ${before} kB before, ${peak} kB after the uploads`);
      for (const a of answers) a.socket.destroy();
      assert.deepEqual(
        served,
        served.map(() => 200),
      );
      // Generous: the server did not buffer the bodies (360 MiB).
      assert.ok(peak - before < 150 * 1024, `RSS grew from ${before} kB to ${peak} kB`);
      // Every upload was answered (401, or 429 once the address is throttled) or cut, well before
      // its body could have arrived.
      const open = answers.filter((a) => !a.closed).length;
      assert.equal(open, 0, `${open} uploads were still open after 30 s`);
      for (const a of answers) {
        if (a.status !== undefined) assert.ok([401, 408, 429].includes(a.status), `status ${a.status}`);
      }
      assert.ok(answers.filter((a) => a.status === 401).length > 0, 'no upload was answered 401');
    } finally {
      await srv.stop();
    }
  });

  test('slow headers and a slow authenticated body are timed out; a fresh request is still served', async () => {
    const d = await initDir('limits.test/log');
    const srv = await SteleServer.start(d.dir, { args: ['--headers-timeout', '1s', '--request-timeout', '2s'] });
    try {
      // Headers that never finish (slowloris).
      const slowHead = Array.from({ length: 100 }, (_, i) => Buffer.from(`X-Slow-${i}: y\r\n`));
      const loris = rawRequest(srv.url, 'GET /healthz HTTP/1.1\r\nHost: x\r\n', slowHead, 300, 30_000);
      // A body that trickles in from a client with a valid token.
      const body = Array.from({ length: 100 }, () => Buffer.from(' '));
      const trickle = rawRequest(
        srv.url,
        `POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${d.token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`,
        body,
        300,
        30_000,
      );
      const [l, t] = await Promise.all([loris, trickle]);
      l.socket.destroy();
      t.socket.destroy();
      assert.ok(l.closed, 'slow headers were never cut');
      if (l.status !== undefined) assert.equal(l.status, 408);
      assert.ok(t.closed, 'a slow body was never cut');
      if (t.status !== undefined) assert.equal(t.status, 408);
      assert.equal((await appendOne(srv.url, d.token)).status, 200);
    } finally {
      await srv.stop();
    }
  });

  test('authenticated bodies in hand are bounded too: past --max-body-memory, 503 before the body is read', async () => {
    const d = await initDir('limits.test/log');
    const srv = await SteleServer.start(d.dir, { args: ['--max-body-memory', '1000000'] });
    try {
      const head = `POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${d.token}\r\nContent-Type: application/json\r\nContent-Length: 600000\r\n\r\n`;
      // The first holds 600,000 bytes of the budget while its body trickles...
      const { hostname, port } = new URL(srv.url);
      const first = connect(Number(port), hostname);
      first.on('error', () => {});
      first.write(`${head}[`);
      await sleep(1000);
      // ...so the second does not fit: refused at once, its body unread.
      const second = await rawRequest(srv.url, head, [Buffer.from('[')], 200, 30_000);
      second.socket.destroy();
      assert.equal(second.status, 503);
      assert.ok(second.closed, 'the refused upload was not cut');
      // Once the first is gone, its budget is back.
      first.destroy();
      let status = 0;
      for (let i = 0; i < 50 && status !== 200; i++) {
        await sleep(100);
        status = (await appendOne(srv.url, d.token)).status;
      }
      assert.equal(status, 200);
    } finally {
      await srv.stop();
    }
  });

  test('requests without credentials are limited per address before authentication', async () => {
    const d = await initDir('limits.test/log');
    const srv = await SteleServer.start(d.dir, { args: ['--anonymous-limit', '5'] });
    try {
      const statuses: number[] = [];
      let retryAfter: string | null = null;
      for (let i = 0; i < 7; i++) {
        const r = await fetch(`${srv.url}/v1/schema/event`);
        statuses.push(r.status);
        if (r.status === 429) retryAfter = r.headers.get('retry-after');
        await r.arrayBuffer();
      }
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
      assert.ok(Number(retryAfter) > 0, `Retry-After: ${retryAfter}`);
      // Tiles and /healthz stay open; an authenticated client has its own budget.
      assert.equal((await fetch(`${srv.url}/log/checkpoint`)).status, 200);
      assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);
      const authed = await fetch(`${srv.url}/v1/schema/event`, { headers: { authorization: `Bearer ${d.token}` } });
      assert.equal(authed.status, 200);
    } finally {
      await srv.stop();
    }
  });
  test('behind a trusted proxy the per-address limit applies to each forwarded client; bad options are refused', async () => {
    const d = await initDir('limits.test/log');
    const srv = await SteleServer.start(d.dir, { args: ['--anonymous-limit', '2', '--trust-proxy', '127.0.0.1/32'] });
    try {
      const from = async (client: string) =>
        (await fetch(`${srv.url}/v1/schema/event`, { headers: { 'x-forwarded-for': client } })).status;
      assert.deepEqual([await from('203.0.113.1'), await from('203.0.113.1'), await from('203.0.113.1')], [200, 200, 429]);
      assert.equal(await from('203.0.113.2'), 200);
    } finally {
      await srv.stop();
    }
    const dir = join(tempDir(), 'never');
    for (const [flag, value] of [
      ['--trust-proxy', '10.0.0.0/8,proxy.example'],
      ['--request-timeout', '0s'],
      ['--headers-timeout', 'soon'],
      ['--max-connections', '0'],
      ['--max-queued-events', '-1'],
    ] as const) {
      const r = await runStele(['serve', '--dir', dir, '--listen', '127.0.0.1:0', flag, value]);
      assert.notEqual(r.code, 0, `${flag} ${value}`);
      assert.ok(r.stderr.includes(flag), r.output);
      assert.equal(existsSync(dir), false, `${flag} ${value} made the data directory`);
    }
  });
});

describe('appends: backpressure instead of rate limits', () => {
  test('1,000 single-event appends in a few seconds from one principal are not rate limited (default config)', async () => {
    const d = await initDir('limits.test/log');
    const srv = await SteleServer.start(d.dir);
    try {
      const statuses = new Map<number, number>();
      let n = 0;
      const loop = async () => {
        while (n < 1000) {
          n++;
          const r = await appendOne(srv.url, d.token);
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          await r.arrayBuffer();
        }
      };
      await Promise.all(Array.from({ length: 16 }, loop));
      assert.deepEqual([...statuses], [[200, 1000]]);
    } finally {
      await srv.stop();
    }
  });

  test('a burst of 1,200 single-event appends from one principal all succeed while its read burst is limited; proofs are not limited', async () => {
    const d = await initDir('limits.test/log');
    const srv = await SteleServer.start(d.dir, { args: ['--rate-limit', '100', '--anonymous-limit', '5'] });
    try {
      const auth = { authorization: `Bearer ${d.token}` };
      assert.equal((await appendOne(srv.url, d.token)).status, 200);
      await checkpointCovers(srv.url, 1); // entry 0, for the reads below
      const appends = new Map<number, number>();
      let n = 0;
      const appendLoop = async () => {
        while (n < 1200) {
          n++;
          const r = await appendOne(srv.url, d.token);
          appends.set(r.status, (appends.get(r.status) ?? 0) + 1);
          await r.arrayBuffer();
        }
      };
      // Reads by the same principal at the same time: 150 of them against a limit of 100.
      const reads: number[] = [];
      const readLoop = async () => {
        for (let i = 0; i < 75; i++) {
          const r = await fetch(`${srv.url}/v1/entries/0`, { headers: auth });
          reads.push(r.status);
          if (r.status === 429) assert.ok(Number(r.headers.get('retry-after')) >= 1);
          await r.arrayBuffer();
        }
      };
      await Promise.all([...Array.from({ length: 16 }, appendLoop), readLoop(), readLoop()]);
      assert.deepEqual([...appends], [[200, 1200]]);
      assert.equal(reads.filter((s) => s === 200).length, 100, reads.join());
      assert.equal(reads.filter((s) => s === 429).length, 50, reads.join());

      // Proofs are computed from the public tiles: limited neither per principal nor per address.
      await checkpointCovers(srv.url, 30); // the proofs below
      for (const headers of [auth, {}]) {
        for (let i = 0; i < 30; i++) {
          const r = await fetch(`${srv.url}/v1/proofs/inclusion?index=${i}`, { headers });
          assert.equal(r.status, 200, await r.text());
        }
      }
      // Other reads without credentials still are limited per address.
      const anon: number[] = [];
      for (let i = 0; i < 7; i++) anon.push((await fetch(`${srv.url}/v1/entries/0`)).status);
      assert.deepEqual(anon, [200, 200, 200, 200, 200, 429, 429]);
    } finally {
      await srv.stop();
    }
  });

  test('a full write queue answers 503 with Retry-After and appends nothing of that request', async () => {
    const d = await initDir('limits.test/log');
    const srv = await SteleServer.start(d.dir, { args: ['--max-queued-events', '1'] });
    try {
      const health = async () => ((await (await fetch(`${srv.url}/healthz`)).json()) as { size: number }).size;
      const start = await health();
      const acked = new Set<string>();
      const refused = new Set<string>();
      let retryAfter: string | null = null;
      let refusal = '';
      // Bursts of concurrent appends of 20 events each: with one event of queue, most find a write
      // in flight and are refused.
      for (let round = 0; round < 5 && refused.size === 0; round++) {
        await Promise.all(
          Array.from({ length: 40 }, async () => {
            const events = Array.from({ length: 20 }, (_, i) => makeEvent(randomUUID(), i));
            const r = await fetch(`${srv.url}/v1/events`, {
              method: 'POST',
              headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' },
              body: JSON.stringify(events),
              signal: AbortSignal.timeout(60_000),
            });
            const text = await r.text();
            if (r.status === 200) for (const e of events) acked.add(e.id as string);
            else {
              assert.equal(r.status, 503, text);
              retryAfter = r.headers.get('retry-after');
              refusal = text;
              for (const e of events) refused.add(e.id as string);
            }
          }),
        );
      }
      assert.ok(refused.size > 0, 'no append was refused');
      assert.ok(Number(retryAfter) >= 1, `Retry-After: ${retryAfter}`);
      assert.equal((JSON.parse(refusal) as { error: { code: string } }).error.code, 'overloaded');
      // The log holds exactly the acknowledged events.
      const end = await health();
      assert.equal(end - start, acked.size);
      const stored = new Set<string>();
      for (let i = start; i < end; i++) {
        const r = await fetch(`${srv.url}/v1/entries/${i}`, { headers: { authorization: `Bearer ${d.token}` } });
        stored.add(((await r.json()) as { event: { id: string } }).event.id);
      }
      assert.deepEqual(stored, acked);
    } finally {
      await srv.stop();
    }
  });
});

describe('integers beyond 2^53', () => {
  const BIG = '9007199254740993';
  const fixture = (path: string) => JSON.parse(readFileSync(new URL(`../../test/fixtures/${path}`, import.meta.url), 'utf8'));
  /** JSON text of `v` with the string "__BIG__" written as the bare integer. */
  const withBig = (v: unknown) => JSON.stringify(v).replace('"__BIG__"', BIG);

  test('are refused with 400 naming the field, in every ingest path, and nothing is appended', async () => {
    const d = await initDir('limits.test/log');
    const srv = await SteleServer.start(d.dir);
    try {
      const size = async () => ((await (await fetch(`${srv.url}/healthz`)).json()) as { size: number }).size;
      const post = (path: string, body: string, type = 'application/json') =>
        fetch(`${srv.url}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${d.token}`, 'content-type': type },
          body,
        });
      const event = { ...makeEvent(), data: { n: '__BIG__' } };
      const k8s = fixture('kubernetes/event-single.json');
      k8s.requestObject = { ...k8s.requestObject, spec: { replicas: '__BIG__' } };
      const ct = fixture('cloudtrail/eventbridge-api-call.json');
      ct.detail.requestParameters = { size: '__BIG__' };
      const otlp = fixture('otlp/sdk-logs.json');
      otlp.resourceLogs[0].scopeLogs[0].logRecords[0].attributes.push({ key: 'n', value: { doubleValue: '__BIG__' } });
      const cases: [string, string, string, RegExp][] = [
        ['/v1/events', withBig(event), 'application/json', /^\/data\/n is the integer 9007199254740993, beyond/],
        ['/v1/events', withBig([makeEvent(), event]), 'application/json', /^event 1: \/data\/n is the integer/],
        [
          '/v1/events',
          `${JSON.stringify(makeEvent())}\n${withBig(event)}\n`,
          'application/x-ndjson',
          /^line 2: \/data\/n is the integer/,
        ],
        [
          '/v1/sources/kubernetes',
          withBig(k8s),
          'application/json',
          /^the request body: \/requestObject\/spec\/replicas is the integer/,
        ],
        [
          '/v1/sources/cloudtrail',
          withBig(ct),
          'application/json',
          /^the request body: \/detail\/requestParameters\/size is the integer/,
        ],
        [
          '/v1/sources/otlp/v1/logs',
          withBig(otlp),
          'application/json',
          /^the request body: \/resourceLogs\/0\/scopeLogs\/0\/logRecords\/0\/attributes\/\d+\/value\/doubleValue is the integer/,
        ],
      ];
      const start = await size();
      for (const [path, body, type, message] of cases) {
        const r = await post(path, body, type);
        const j = (await r.json()) as { error?: { code: string; message: string }; message?: string };
        assert.equal(r.status, 400, `${path}: ${JSON.stringify(j)}`);
        // OTLP answers a google.rpc.Status ({code, message}); the others {"error": {...}}.
        const msg = j.error?.message ?? (j.message as string);
        assert.match(msg, message, path);
        if (j.error) assert.equal(j.error.code, 'unsafe_integer');
      }
      assert.equal(await size(), start);
      // The largest safe integer is kept exactly; so is the big one, sent as a string.
      const ok = await post('/v1/events', JSON.stringify({ ...makeEvent(), data: { n: 9007199254740991, s: BIG } }));
      assert.equal(ok.status, 200);
      const { index } = ((await ok.json()) as { entries: { index: number }[] }).entries[0] as { index: number };
      const entry = await fetch(`${srv.url}/v1/entries/${index}`, { headers: { authorization: `Bearer ${d.token}` } });
      const text = await entry.text();
      assert.match(text, /"n":9007199254740991/);
      assert.match(text, /"s":"9007199254740993"/);
    } finally {
      await srv.stop();
    }
  });
});
