/**
 * GET /metrics against a real `stele serve`: only a principal allowed `metrics` (a monitoring
 * role) or `admin` may scrape; what it shows moves with what the server did (appends, the
 * write-ahead log's fsyncs, request latency by route template, error answers by code, the log's
 * and the index's state), in the Prometheus text format.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { appendHttp, cleanup, type DataDir, initDir, makeEvent, runStele, SteleServer } from './helpers/stele.js';

const POLICY = `version: 1
retention:
  default: default
  tiers:
    - name: default
      keep: forever
roles:
  admin:
    actions: [append, read, search, export, erase, hold, admin]
    vouch: ["*"]
  writer:
    actions: [append]
    vouch: ["*"]
  monitoring:
    actions: [metrics]
`;

/** The value of a sample line `name{labels} value` (the first that matches), or undefined. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`^${esc(name)}${labels ? esc(`{${labels}}`) : '(?:\\{[^}]*\\})?'} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

describe('GET /metrics', { timeout: 120_000 }, () => {
  let data: DataDir;
  let srv: SteleServer;
  const keyFor = async (name: string, role: string) => {
    const made = await runStele(['keys', 'create', '--url', srv.url, '--dir', data.dir, '--name', name, '--role', role]);
    assert.equal(made.code, 0, made.output);
    return /stele_[A-Za-z0-9_-]+/.exec(made.stdout)?.[0] as string;
  };
  const scrape = (token?: string) => fetch(`${srv.url}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {});

  before(async () => {
    data = await initDir('metrics.test/log');
    writeFileSync(join(data.dir, 'stele.policy.yaml'), POLICY);
    srv = await SteleServer.start(data.dir);
  });
  after(cleanup);

  test('only a monitoring role or an administrator may scrape', async () => {
    const none = await scrape();
    assert.equal(none.status, 401);
    const writer = await scrape(await keyFor('ci', 'writer'));
    assert.equal(writer.status, 403);
    assert.match(((await writer.json()) as { error: { message: string } }).error.message, /may not metrics/);
    const monitoring = await scrape(await keyFor('prometheus', 'monitoring'));
    assert.equal(monitoring.status, 200);
    assert.match(monitoring.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.equal((await scrape(data.token)).status, 200, 'admin may scrape without the metrics action');
  });

  test('the numbers follow what the server did', async () => {
    const token = await keyFor('prometheus-2', 'monitoring');
    const before = await (await scrape(token)).text();
    const n0 = sample(before, 'stele_appended_events_total') ?? 0;
    const f0 = sample(before, 'stele_wal_fsync_seconds_count') ?? 0;
    for (let i = 0; i < 3; i++)
      await appendHttp(
        srv.url,
        data.token,
        Array.from({ length: 10 }, (_, k) => makeEvent(undefined, k)),
      );
    await fetch(`${srv.url}/v1/entries/999999`, { headers: { authorization: `Bearer ${data.token}` } });
    const text = await (await scrape(token)).text();
    assert.equal(sample(text, 'stele_appended_events_total'), n0 + 30);
    assert.ok((sample(text, 'stele_appended_bytes_total') ?? 0) > 30 * 100);
    assert.ok((sample(text, 'stele_wal_fsync_seconds_count') ?? 0) >= f0 + 3, 'each append was fsynced');
    assert.equal(sample(text, 'stele_append_batch_events_sum'), (sample(before, 'stele_append_batch_events_sum') ?? 0) + 30);
    assert.ok(
      (sample(text, 'stele_http_request_duration_seconds_count', 'method="POST",route="/v1/events",status="2xx"') ?? 0) >= 3,
      'appends are timed under their route template',
    );
    assert.ok((sample(text, 'stele_http_errors_total', 'code="not_found"') ?? 0) >= 1);
    assert.ok((sample(text, 'stele_http_errors_total', 'code="unauthorized"') ?? 0) >= 1, 'refusals by reason');
    assert.ok(!/route="\/v1\/entries\/999999"/.test(text), 'routes are templates, not URLs');
    assert.ok((sample(text, 'stele_log_entries') ?? 0) >= 30);
    assert.ok((sample(text, 'stele_index_lag_entries') ?? -1) >= 0);
    assert.ok((sample(text, 'stele_checkpoint_timestamp_seconds') ?? 0) > Date.now() / 1000 - 3600);
    assert.ok((sample(text, 'stele_process_resident_memory_bytes') ?? 0) > 0);
  });

  test('the sample Prometheus rules are well formed and watch only metrics the server exports', async () => {
    const text = await (await scrape(data.token)).text();
    const file = readFileSync(fileURLToPath(new URL('../../deploy/prometheus/stele-rules.yml', import.meta.url)), 'utf8');
    const rules = (parseYaml(file) as { groups: { rules: Record<string, unknown>[] }[] }).groups.flatMap((g) => g.rules);
    assert.ok(rules.length >= 8);
    for (const r of rules) {
      assert.equal(typeof r.alert, 'string');
      assert.equal(typeof r.expr, 'string', `${r.alert}: expr`);
      assert.ok((r.annotations as { summary?: string }).summary, `${r.alert}: summary`);
      for (const [m] of (r.expr as string).matchAll(/\bstele_[a-z_]+/g)) {
        const name = m.replace(/_(bucket|sum|count)$/, '');
        if (name.startsWith('stele_mirror_') || name.startsWith('stele_witness_')) continue;
        assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${r.alert}: ${name} is not exported`);
      }
    }
    const prom = parseYaml(
      readFileSync(fileURLToPath(new URL('../../deploy/prometheus/prometheus.yml', import.meta.url)), 'utf8'),
    ) as { rule_files: string[] };
    assert.deepEqual(prom.rule_files, ['stele-rules.yml']);
  });

  test('every metric the sample Grafana dashboard plots is one the server exports', async () => {
    const text = await (await scrape(data.token)).text();
    const dashboard = readFileSync(fileURLToPath(new URL('../../deploy/grafana/stele.json', import.meta.url)), 'utf8');
    const names = new Set([...dashboard.matchAll(/\bstele_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, '')));
    assert.ok(names.size >= 10);
    for (const name of names) {
      // Only with --mirror or --witness: the S3 and witness suites check those.
      if (name.startsWith('stele_mirror_') || name.startsWith('stele_witness_')) continue;
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is not exported`);
    }
  });
});
