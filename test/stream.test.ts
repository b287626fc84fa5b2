/**
 * The live tail against a real `stele serve`: GET /v1/stream sends each matching entry the caller
 * may see, in order, as it becomes searchable, and resumes after Last-Event-ID; it never sends an
 * entry of a tier the caller may not read, nor an erased one; it is refused like a search (401,
 * 403, a bad query 400) and recorded when it opens and closes; `stele tail` follows it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  appendHttp,
  CLI,
  cleanup,
  type DataDir,
  eventually,
  getJson,
  initDir,
  makeEvent,
  requestJson,
  runStele,
  SteleServer,
  sleep,
} from './helpers/stele.js';

const POLICY = `version: 1
retention:
  default: general
  tiers:
    - name: ops
      keep: forever
      match:
        actions: ["ops.*"]
    - name: general
      keep: forever
roles:
  admin:
    actions: [append, read, search, export, erase, hold, admin]
    vouch: ["*"]
  auditor:
    actions: [read, search]
    tiers: [general]
`;

/** The messages of an SSE response, read as they arrive. */
class Sse {
  private buf = '';
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  constructor(res: Response) {
    this.reader = (res.body as ReadableStream<Uint8Array>).getReader();
  }

  /** The next entry message ({id, data}), or null when none comes within `ms`. */
  async next(
    ms = 10_000,
  ): Promise<{ id: number; data: { index: number; tier: string; event: { id: string; action: string } } } | null> {
    const deadline = Date.now() + ms;
    for (;;) {
      for (let end = this.buf.indexOf('\n\n'); end >= 0; end = this.buf.indexOf('\n\n')) {
        const block = this.buf.slice(0, end);
        this.buf = this.buf.slice(end + 2);
        const id = /^id: (\d+)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (id !== undefined && data !== undefined && /^event: entry$/m.test(block))
          return { id: Number(id), data: JSON.parse(data) };
      }
      const left = deadline - Date.now();
      if (left <= 0) return null;
      const chunk = await Promise.race([this.reader.read(), sleep(left).then(() => null)]);
      if (chunk === null) return null;
      if (chunk.done) throw new Error('the stream ended');
      this.buf += this.decoder.decode(chunk.value, { stream: true });
    }
  }

  async close(): Promise<void> {
    await this.reader.cancel().catch(() => {});
  }
}

describe('GET /v1/stream and stele tail', { timeout: 180_000 }, () => {
  let data: DataDir;
  let srv: SteleServer;
  let auditor: string;
  const open = async (q: string, token: string, lastEventId?: number) => {
    const res = await fetch(`${srv.url}/v1/stream?${new URLSearchParams({ q })}`, {
      headers: {
        authorization: `Bearer ${token}`,
        ...(lastEventId === undefined ? {} : { 'last-event-id': String(lastEventId) }),
      },
    });
    assert.equal(res.status, 200, await (res.ok ? Promise.resolve('') : res.text()));
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    return new Sse(res);
  };
  const event = (action: string, extra: Record<string, unknown> = {}) => ({ ...makeEvent(), action, ...extra });

  before(async () => {
    data = await initDir('stream.test/log');
    writeFileSync(join(data.dir, 'stele.policy.yaml'), POLICY);
    srv = await SteleServer.start(data.dir);
    const made = await runStele(['keys', 'create', '--url', srv.url, '--dir', data.dir, '--name', 'aud', '--role', 'auditor']);
    assert.equal(made.code, 0, made.output);
    auditor = /stele_[A-Za-z0-9_-]+/.exec(made.stdout)?.[0] as string;
  });
  after(cleanup);

  test('sends the matching entries in order as they arrive, and resumes after Last-Event-ID', async () => {
    const sse = await open('action:e2e.stream.*', data.token);
    const sent = await appendHttp(srv.url, data.token, [
      event('e2e.stream.one'),
      event('e2e.other'),
      event('e2e.stream.two'),
      event('e2e.stream.three'),
    ]);
    const want = [sent[0], sent[2], sent[3]].map((a) => a?.index);
    const got = [await sse.next(), await sse.next(), await sse.next()];
    assert.deepEqual(
      got.map((m) => m?.id),
      want,
    );
    assert.equal(got[1]?.data.event.action, 'e2e.stream.two');
    assert.equal(await sse.next(1500), null, 'nothing else matches');
    await sse.close();
    // A reconnect names the last entry it saw: the rest follows, nothing twice.
    const again = await open('action:e2e.stream.*', data.token, want[0]);
    assert.deepEqual([(await again.next())?.id, (await again.next())?.id], want.slice(1));
    await again.close();
  });

  test('never sends an entry of a tier the caller may not read, nor an erased one', async () => {
    const start = (await getJson<{ size: number }>(`${srv.url}/healthz`)).size - 1;
    const [ops, erased, kept] = await appendHttp(srv.url, data.token, [
      event('ops.deploy'),
      event('e2e.visible', { subject: 'zoe@example.com' }),
      event('e2e.visible'),
    ]);
    const erase = await requestJson(`${srv.url}/v1/erasures`, 'POST', data.token, { subject: 'zoe@example.com', reason: 'test' });
    assert.equal(erase.status, 200, JSON.stringify(erase.body));
    // From before those appends: the auditor sees only the general tier; the admin not the erased one.
    const aud = await open('', auditor, start);
    const seen: number[] = [];
    for (let m = await aud.next(3000); m; m = await aud.next(1500)) seen.push(m.id);
    await aud.close();
    assert.ok(seen.includes(kept?.index as number), `the auditor sees its tier: ${seen}`);
    assert.ok(!seen.includes(ops?.index as number), 'not the ops tier');
    assert.ok(!seen.includes(erased?.index as number), 'not an erased entry');
    const adm = await open('action:ops.* OR action:e2e.visible', data.token, start);
    const all: number[] = [];
    for (let m = await adm.next(3000); m; m = await adm.next(1500)) all.push(m.id);
    await adm.close();
    assert.deepEqual(all, [ops?.index, kept?.index]);
  });

  test('is refused like a search, and recorded when it opens and closes', async () => {
    assert.equal((await fetch(`${srv.url}/v1/stream`)).status, 401);
    const bad = await fetch(`${srv.url}/v1/stream?q=${encodeURIComponent('actor:(')}`, {
      headers: { authorization: `Bearer ${data.token}` },
    });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'bad_query');
    const sse = await open('action:e2e.recorded', auditor);
    await sse.close();
    let actions: string[] = [];
    await eventually('the stream and its end on record', async () => {
      const log = await requestJson(
        `${srv.url}/v1/events?q=${encodeURIComponent('action:stele.access.stream*')}&order=asc&limit=100`,
        'GET',
        data.token,
      );
      actions = (log.body as { hits: { event: { action: string } }[] }).hits.map((h) => h.event.action);
      return actions.includes('stele.access.stream') && actions.includes('stele.access.stream.end');
    }).catch((e: Error) => assert.fail(`${e.message}: ${actions.join(', ')}`));
  });

  test('stele tail prints each match as it arrives', async () => {
    // Streams opened so far: each is recorded as it opens, before it takes its starting point.
    const opened = async () =>
      (
        await getJson<{ total: number }>(
          `${srv.url}/v1/events?q=${encodeURIComponent('action:stele.access.stream')}&count=true&limit=1`,
          30_000,
          data.token,
        )
      ).total;
    const before = await opened();
    const tail = spawn(process.execPath, [CLI, 'tail', '--url', srv.url, '--token', data.token, 'action:e2e.tail'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    tail.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    try {
      // Appended only once the tail's stream is open: on a busy machine starting the CLI can take
      // longer than any fixed pause, and a stream starts from the entries after its opening.
      for (const deadline = Date.now() + 20_000; (await opened()) === before; await sleep(100))
        assert.ok(Date.now() < deadline, 'stele tail never opened its stream');
      const [a] = await appendHttp(srv.url, data.token, [event('e2e.tail'), event('e2e.not-tail')]);
      const deadline = Date.now() + 20_000;
      while (!out.includes(`#${a?.index} `)) {
        assert.ok(Date.now() < deadline, `stele tail printed: ${out}`);
        await sleep(100);
      }
      assert.match(out, /e2e\.tail {2}success/);
      assert.doesNotMatch(out, /e2e\.not-tail/);
    } finally {
      tail.kill();
    }
  });
});
