/**
 * Alerts as code, end to end against `stele serve` and real HTTP receivers: the policy's rules
 * fire as events arrive (exports by one principal above a threshold, a read of a tier by someone
 * outside the allowed members, refusals, a policy load, an unverified actor on a sensitive action),
 * each firing is a stele.alert event in the log and a webhook (JSON signed with HMAC-SHA256, or the
 * Slack shape), and a receiver that is down at first gets it once it is up.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePort } from './helpers/rgw.js';
import {
  appendHttp,
  cleanup,
  type DataDir,
  getJson,
  initDir,
  makeEvent,
  requestJson,
  runStele,
  SteleServer,
  sleep,
} from './helpers/stele.js';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** An HTTP receiver on `port` recording every POST (answered 204). */
function receiver(port: number, got: Received[]): Promise<Server> {
  const srv = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => {
      got.push({ path: req.url ?? '', headers: req.headers, body });
      res.statusCode = 204;
      res.end();
    });
  });
  return new Promise((resolve) => srv.listen(port, '127.0.0.1', () => resolve(srv)));
}

const SECRET = 'alert-test-secret-0123456789';

async function until<T>(what: string, f: () => T | undefined, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

describe('alerts as code', { timeout: 180_000 }, () => {
  const got: Received[] = [];
  const late: Received[] = [];
  const servers: Server[] = [];
  let latePort: number;
  let data: DataDir;
  let srv: SteleServer;
  let auditorKey: string;
  let internKey: string;

  before(async () => {
    const [hookPort, lp] = [await freePort(), await freePort()];
    latePort = lp;
    servers.push(await receiver(hookPort, got));
    data = await initDir('alerts.test/log');
    const policy = join(data.dir, 'stele.policy.yaml');
    writeFileSync(
      policy,
      `version: 1
retention:
  default: general
  tiers:
    - name: restricted
      keep: forever
      match: { actions: ['hr.*'] }
    - name: general
      keep: forever
      match: { actions: ['*'] }
roles:
  admin: { actions: [append, read, search, export, erase, hold, admin, metrics], vouch: ['*'] }
  writer: { actions: [append] }
  reader: { actions: [read, search] }
alerts:
  notifiers:
    hook: { url: 'http://127.0.0.1:${hookPort}/hook', secret_env: STELE_TEST_ALERT_SECRET }
    slack: { url: 'http://127.0.0.1:${hookPort}/slack', format: slack }
    late: { url: 'http://127.0.0.1:${latePort}/late' }
  rules:
    many-exports: { query: 'action:stele.access.export', group_by: actor, window: 1h, threshold: 2, notify: [hook] }
    restricted-read: { query: 'action:stele.access.read resource:restricted', except: ['key:auditor'], notify: [hook] }
    refusals: { query: 'action:stele.access.denied', window: 1m, threshold: 1, notify: [slack] }
    policy-load: { query: 'action:stele.policy.load', notify: [late] }
    unverified-secrets: { query: 'verified:false action:k8s.secrets.*', notify: [hook] }
`,
    );
    const check = await runStele(['policy', 'check', policy]);
    assert.equal(check.code, 0, check.output);
    // The late receiver is down when the server starts (its policy load fires at once).
    srv = await SteleServer.start(data.dir, { env: { STELE_TEST_ALERT_SECRET: SECRET } });
    const mk = async (name: string) => {
      const r = await requestJson(`${srv.url}/v1/keys`, 'POST', data.token, { name, roles: ['reader'] });
      assert.equal(r.status, 201, r.text);
      return r.body.key as string;
    };
    auditorKey = await mk('auditor');
    internKey = await mk('intern');
  });
  after(async () => {
    await srv?.kill();
    for (const s of servers) s.close();
    await cleanup();
  });

  const firings = (rule: string) => got.filter((r) => r.path === '/hook' && JSON.parse(r.body).rule === rule);

  test('a bad alert query is refused by stele policy check, naming the rule', async () => {
    const bad = join(data.dir, 'bad.policy.yaml');
    writeFileSync(
      bad,
      "version: 1\nalerts:\n  notifiers:\n    hook: { url: 'http://127.0.0.1:9/x' }\n  rules:\n    broken: { query: 'actor:(', notify: [hook] }\n    orphan: { query: 'action:x', notify: [nobody] }\n",
    );
    const r = await runStele(['policy', 'check', bad]);
    assert.notEqual(r.code, 0);
    assert.match(r.output, /alerts\.rules\.broken\.query: the query does not parse/);
    assert.match(r.output, /alerts\.rules\.orphan\.notify\[0\]: no notifier named "nobody"/);
  });

  test('more than N exports by one principal fire once, as a signed JSON webhook and a stele.alert event', async () => {
    for (let i = 0; i < 4; i++) {
      const r = await fetch(`${srv.url}/v1/export?q=&format=jsonl`, { headers: { authorization: `Bearer ${data.token}` } });
      assert.equal(r.status, 200);
      await r.text();
    }
    const [hit] = await until('the many-exports webhook', () =>
      firings('many-exports').length ? firings('many-exports') : undefined,
    );
    await sleep(500);
    assert.equal(firings('many-exports').length, 1, 'once a window, not once per export past the threshold');
    const body = JSON.parse((hit as Received).body);
    assert.equal(body.group_by, 'actor');
    assert.equal(body.group, 'admin');
    assert.equal(body.count, 3);
    assert.equal(body.log, 'alerts.test/log');
    const ts = (hit as Received).headers['x-stele-timestamp'] as string;
    const want = `sha256=${createHmac('sha256', SECRET)
      .update(`${ts}.${(hit as Received).body}`)
      .digest('hex')}`;
    assert.equal((hit as Received).headers['x-stele-signature'], want, 'HMAC over timestamp and body');
    const recorded = await getJson<{ hits: { index: number; event: { data: { rule: string } } }[] }>(
      `${srv.url}/v1/events?q=${encodeURIComponent('action:stele.alert')}&after=${body.event}`,
      30_000,
      data.token,
    );
    assert.ok(recorded.hits.some((h) => h.index === body.event && h.event.data.rule === 'many-exports'));
  });

  test('a read of the restricted tier by someone outside the allowed members fires; by a member it does not', async () => {
    const [e] = await appendHttp(srv.url, data.token, [{ ...makeEvent(), action: 'hr.review.read' }]);
    const entry = `${srv.url}/v1/entries/${(e as { index: number }).index}`;
    assert.equal((await requestJson(entry, 'GET', auditorKey)).status, 200);
    await sleep(300);
    assert.equal(firings('restricted-read').length, 0, 'the auditor is excepted');
    assert.equal((await requestJson(entry, 'GET', internKey)).status, 200);
    const [hit] = await until('the restricted-read webhook', () =>
      firings('restricted-read').length ? firings('restricted-read') : undefined,
    );
    assert.deepEqual(JSON.parse((hit as Received).body).entries.length, 1);
  });

  test('refusals above a rate go to the Slack-shaped notifier', async () => {
    for (const token of ['stele_not-a-key', 'garbage', 'stele_another-made-up-key'])
      assert.equal((await requestJson(`${srv.url}/v1/events?q=`, 'GET', token)).status, 401);
    await sleep(1200); // refusals are written once a second per (who, reason)
    assert.equal((await requestJson(`${srv.url}/v1/events?q=`, 'GET', 'stele_yet-another')).status, 401);
    const slack = await until('the refusals webhook', () => got.find((r) => r.path === '/slack'));
    const text = JSON.parse(slack.body).text as string;
    assert.match(text, /^Stele alert \*refusals\* on alerts\.test\/log: \d+ entries matched `action:stele\.access\.denied`/);
    assert.equal(slack.headers['x-stele-signature'], undefined, 'no secret, no signature');
  });

  test('an unverified actor on a sensitive action fires', async () => {
    await appendHttp(srv.url, data.token, [
      { ...makeEvent(), action: 'k8s.secrets.get', actor: { id: 'someone@example.com', type: 'human' } },
    ]);
    await until('the unverified-secrets webhook', () => (firings('unverified-secrets').length ? true : undefined));
  });

  test('/metrics counts firings by rule and the time spent evaluating rules', async () => {
    const r = await fetch(`${srv.url}/metrics`, { headers: { authorization: `Bearer ${data.token}` } });
    assert.equal(r.status, 200);
    const text = await r.text();
    const fired = /^stele_alerts_fired_total\{rule="many-exports"\} (\d+)$/m.exec(text);
    assert.equal(fired?.[1], '1', text);
    const spent = Number(/^stele_alert_evaluation_seconds_total ([\d.e+-]+)$/m.exec(text)?.[1]);
    assert.ok(spent > 0 && spent < 60, `evaluation seconds: ${spent}`);
  });

  test('a receiver that was down gets the policy load once it is up', async () => {
    assert.equal(late.length, 0);
    servers.push(await receiver(latePort, late));
    const hit = await until('the late delivery', () => late[0], 60_000);
    assert.equal(JSON.parse(hit.body).rule, 'policy-load');
  });
});
