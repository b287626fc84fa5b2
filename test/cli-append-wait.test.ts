/**
 * `stele append --wait` (issue 12, target 4: read your writes) through the real CLI.
 *
 * Against a real `stele serve`: the command returns once what it appended is searchable (a search
 * right after, without --after, finds it), also with --local; a credential that may append but not
 * search is told --wait cannot work for it, the events being appended.
 *
 * The timeout path needs an index that stays behind, which a real server cannot be made to do on
 * demand here. So the retry loop is pinned against a real HTTP server (node:http) that speaks the
 * two answers of the protocol the CLI relies on: POST /v1/events answers `{"entries"}`, and GET
 * /v1/events?after= answers 503 `index_behind` with Retry-After (as src/server/routes/search.ts
 * does) until it is told to answer 200. It stands in for the index, not for the CLI's logic.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { cleanup, initDir, runStele, SteleServer } from './helpers/stele.js';

after(cleanup);

const event = (actor: string, n = 0) =>
  JSON.stringify({
    actor: { id: actor, type: 'human' },
    action: 'ci.job.run',
    source: { kind: 'ci' },
    outcome: 'success',
    data: { n },
  });

const lines = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { id: string; index: number; proof?: string[] });

describe('stele append --wait against a real server', () => {
  let dir: string;
  let srv: SteleServer;
  const api = () => ['--url', srv.url, '--dir', dir];

  before(async () => {
    dir = (await initDir('cli-append-wait.test/log')).dir;
    srv = await SteleServer.start(dir, { checkpointIntervalMs: 20 });
  });

  after(async () => {
    if (srv.running) await srv.stop();
  });

  test('append --wait returns once every entry it appended is searchable: a search right after finds them', async () => {
    const actor = `wait-${Date.now()}`;
    const r = await runStele(['append', ...api(), '--wait', '--batch', '2', event(actor, 1), event(actor, 2), event(actor, 3)]);
    assert.equal(r.code, 0, r.output);
    const appended = lines(r.stdout);
    assert.equal(appended.length, 3);
    // --wait also waits for a checkpoint: each line carries its inclusion proof, the checkpoint goes to stderr.
    for (const a of appended) assert.ok(Array.isArray(a.proof), JSON.stringify(a));
    assert.match(r.stderr, /^cli-append-wait\.test\/log\n\d+\n/);
    // No --after: the search answers at once, and still sees all three.
    const s = await runStele(['search', ...api(), '--json', '--order', 'asc', `actor:${actor}`]);
    assert.equal(s.code, 0, s.output);
    assert.deepEqual(
      lines(s.stdout).map((h) => h.index),
      appended.map((a) => a.index),
    );
  });

  test('append --wait with a credential that may not search says so, and that the events are appended', async () => {
    const made = await runStele(['keys', 'create', '--name', 'ci-writer', '--role', 'writer', ...api()]);
    assert.equal(made.code, 0, made.output);
    const key = /stele_[A-Za-z0-9_-]+/.exec(made.stdout)?.[0];
    assert.ok(key, made.output);
    const actor = `writer-${Date.now()}`;
    const r = await runStele(['append', '--url', srv.url, '--token', key, '--wait', event(actor)]);
    assert.equal(r.code, 1, r.output);
    const [line] = lines(r.stdout);
    assert.ok(line);
    assert.match(r.stderr, new RegExp(`1 event is appended \\(through entry ${line.index}\\), but --wait cannot tell`));
    assert.match(r.stderr, /may not search/);
    const s = await runStele(['search', ...api(), '--json', '--after', String(line.index), `actor:${actor}`]);
    assert.equal(lines(s.stdout)[0]?.index, line.index, s.output);
  });

  test('append --local --wait: the entries are in the query store when the command returns', async () => {
    const local = (await initDir('cli-append-wait.test/local')).dir;
    const actor = `local-${Date.now()}`;
    const r = await runStele(['append', '--local', '--dir', local, '--wait', '--wait-timeout', '10s', event(actor)]);
    assert.equal(r.code, 0, r.output);
    const [line] = lines(r.stdout);
    assert.ok(line);
    const server = await SteleServer.start(local);
    try {
      const s = await runStele(['search', '--url', server.url, '--dir', local, '--json', `actor:${actor}`]);
      assert.equal(lines(s.stdout)[0]?.index, line.index, s.output);
    } finally {
      await server.stop();
    }
  });

  test('append --wait refuses a bad --wait-timeout before appending anything', async () => {
    const r = await runStele(['append', ...api(), '--wait', '--wait-timeout', 'soon', event('nobody')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--wait-timeout/);
    assert.equal(r.stdout, '');
  });
});

/** A real HTTP server answering as a Stele server whose index is behind, until `ready` is set. */
class LaggingIndex {
  readonly searches: { at: number; url: string }[] = [];
  ready = false;
  retryAfter = '1';
  private server: Server;
  url = '';

  constructor() {
    this.server = createServer((req: IncomingMessage, res) => {
      req.resume();
      req.on('end', () => {
        const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
          res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
        if (req.method === 'POST' && req.url?.startsWith('/v1/events')) {
          json(200, {
            entries: [
              { id: 'e0', index: 40 },
              { id: 'e1', index: 41 },
            ],
          });
          return;
        }
        if (req.method === 'GET' && req.url?.startsWith('/v1/events')) {
          this.searches.push({ at: Date.now(), url: req.url });
          if (this.ready) json(200, { hits: [], indexed_through: 42 });
          else
            json(
              503,
              { error: { code: 'index_behind', message: 'the query store has not reached entry 41 within 5000 ms' } },
              { 'retry-after': this.retryAfter },
            );
          return;
        }
        json(404, { error: { code: 'not_found', message: req.url } });
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

describe('stele append --wait against an index that stays behind (a real HTTP server answering 503 index_behind)', () => {
  const token = ['--token', 'stele_test'];

  test('retries after each Retry-After, then gives up at --wait-timeout: non-zero, and says the events are appended', async () => {
    const lag = await new LaggingIndex().start();
    try {
      const started = Date.now();
      const r = await runStele([
        'append',
        '--url',
        lag.url,
        ...token,
        '--wait',
        '--wait-timeout',
        '2500ms',
        event('a'),
        event('b'),
      ]);
      const took = Date.now() - started;
      assert.equal(r.code, 1, r.output);
      assert.deepEqual(
        lines(r.stdout).map((l) => l.index),
        [40, 41],
      );
      assert.match(
        r.stderr,
        /stele: 2 events are appended \(through entry 41\), but entry 41 was not searchable within 2\.5 s; `stele search --after 41` waits for them/,
      );
      // Asked for the highest index appended, and no sooner than each Retry-After (1 s): 3 tries in 2.5 s.
      assert.equal(lag.searches.length, 3, JSON.stringify(lag.searches));
      for (const s of lag.searches) assert.match(s.url, /[?&]after=41(&|$)/);
      for (let i = 1; i < lag.searches.length; i++) {
        const gap = (lag.searches[i]?.at ?? 0) - (lag.searches[i - 1]?.at ?? 0);
        assert.ok(gap >= 950, `retried after ${gap} ms, before the Retry-After of 1 s`);
      }
      assert.ok(took < 6000, `gave up after ${took} ms, well past --wait-timeout`);
    } finally {
      await lag.close();
    }
  });

  test('exits 0 as soon as the index catches up between retries', async () => {
    const lag = await new LaggingIndex().start();
    try {
      const run = runStele(['append', '--url', lag.url, ...token, '--wait', event('a')]);
      while (lag.searches.length < 2) await new Promise((r) => setTimeout(r, 20));
      lag.ready = true;
      const r = await run;
      assert.equal(r.code, 0, r.output);
      assert.equal(lag.searches.length, 3);
    } finally {
      await lag.close();
    }
  });

  test('a Retry-After past the deadline ends the wait at once instead of sleeping through it', async () => {
    const lag = await new LaggingIndex().start();
    lag.retryAfter = '60';
    try {
      const started = Date.now();
      const r = await runStele(['append', '--url', lag.url, ...token, '--wait', '--wait-timeout', '5s', event('a')]);
      assert.equal(r.code, 1, r.output);
      assert.match(r.stderr, /not searchable within 5 s/);
      assert.equal(lag.searches.length, 1);
      assert.ok(Date.now() - started < 4000);
    } finally {
      await lag.close();
    }
  });
});
