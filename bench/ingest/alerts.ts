/**
 * What alert rules cost ingest (issue 15: less than 5 % at the benchmark's rate): `stele serve`
 * with a policy holding the example rules and rules that match most of the benchmark's
 * events (grouped, some by a field with thousands of values, one on full text), under the same
 * closed-loop load as the headline run. Measured two ways: the server's own count of the time
 * spent evaluating rules (`stele_alert_evaluation_seconds_total`, wall time on threads that share
 * 2 cores with four others, so an upper bound) against the CPU the server used; the CPU time one
 * entry's rules take on an idle core (testing them as an ingest worker does, counting the matches
 * as the server does) against the server's CPU per entry; and the throughput beside the runs
 * without rules (interleaved, medians).
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { Alerting, queryProblem } from '../../src/app/alerts.js';
import type { Principal } from '../../src/core/principal.js';
import { normalizeEvent } from '../../src/event/normalize.js';
import { entryRow, ftsText } from '../../src/event/searchable.js';
import { type RuleHit, RuleMatcher } from '../../src/index/alert-rules.js';
import { loadPolicyFile } from '../../src/policy/policy.js';
import { tempDir } from './cleanup.js';
import { makeEvent, rng } from './events.js';
import { type ThroughputOptions, type ThroughputResult, throughput } from './http-load.js';
import { CLI, startStele } from './server.js';

/** The rules: nothing is delivered (the notifier's port is closed), and the thresholds of those that match the load are out of reach. */
export const BENCH_ALERTS = `
alerts:
  notifiers:
    sink: { url: 'http://127.0.0.1:9/unused' }
  rules:
    exports:     { query: 'action:stele.access.export', group_by: actor, window: 1h, threshold: 5, notify: [sink] }
    tier-reads:  { query: 'action:stele.access.read resource:compliance', except: ['group:audit'], notify: [sink] }
    refusals:    { query: 'action:stele.access.denied', window: 5m, threshold: 20, notify: [sink] }
    validation:  { query: 'action:stele.validation.run outcome:failure', notify: [sink] }
    unverified:  { query: 'verified:false action:k8s.secrets.*', notify: [sink] }
    commits:     { query: 'action:git.commit', group_by: actor, window: 1h, threshold: 1000000, notify: [sink] }
    denied:      { query: 'action:k8s.* -outcome:success', group_by: resource, window: 10m, threshold: 1000000, notify: [sink] }
    role-words:  { query: 'deploy', group_by: host, window: 1h, threshold: 1000000, notify: [sink] }
`;
export const BENCH_ALERT_RULES = (BENCH_ALERTS.match(/\bquery:/g) ?? []).length;

export interface AlertRun {
  throughput: ThroughputResult;
  /** Seconds the server spent evaluating rules, and the CPU seconds it used, over its whole life. */
  evaluationS: number;
  serverCpuS: number;
  /** The server's CPU per acknowledged event inside the measured window, µs. */
  serverUsPerEvent: number;
  /** CPU per entry of testing the rules and of counting the matches, on an idle core, µs; matches per entry. */
  matchUs: number;
  countUs: number;
  hitsPerEntry: number;
}

/** CPU time of `f`, µs (this thread alone runs it). */
function cpuUs(f: () => void): number {
  const t0 = process.cpuUsage();
  f();
  const t = process.cpuUsage(t0);
  return t.user + t.system;
}

/** What the rules of `policyFile` cost per entry of the benchmark's mix, in this process. */
export async function ruleCpu(policyFile: string): Promise<{ matchUs: number; countUs: number; hitsPerEntry: number }> {
  const policy = loadPolicyFile(policyFile, { queryProblem });
  const by: Principal = { kind: 'apikey', id: 'admin', method: 'apikey', groups: [], roles: ['admin'] };
  const r = rng(0xa1e7);
  const N = 20_000;
  const entries = Array.from({ length: N }, (_, i) => {
    const e = normalizeEvent({ id: `0190a1b2-c3d4-7e5f-8a9b-${String(i).padStart(12, '0')}`, ...makeEvent(r) }, 1n);
    return [entryRow(e, 1n, 'compliance', 'k', by.id), ftsText(e)] as const;
  });
  const matcher = new RuleMatcher(policy);
  const alerting = new Alerting({ policy: () => policy, record: async () => 0, env: {}, origin: 'bench' });
  let hits: RuleHit[] = [];
  const match = () => {
    hits = [];
    for (let i = 0; i < N; i++) matcher.match(i, entries[i]?.[0] as never, entries[i]?.[1] as string, by, hits);
  };
  match(); // warm-up
  const matchUs = cpuUs(match) / N;
  let base = 0;
  const count = () => {
    alerting.observe(
      hits.map((h) => ({ index: base + h.at, rule: h.rule, group: h.group })),
      0,
    );
    base += N;
  };
  count();
  const countUs = cpuUs(count) / N;
  await alerting.stop();
  return { matchUs, countUs, hitsPerEntry: hits.length / N };
}

export async function alertsThroughput(o: ThroughputOptions): Promise<AlertRun> {
  const dir = tempDir('data');
  execFileSync(process.execPath, [CLI, 'init', '--dir', dir, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  appendFileSync(join(dir, 'stele.policy.yaml'), BENCH_ALERTS);
  const cpu = await ruleCpu(join(dir, 'stele.policy.yaml'));
  const srv = await startStele({ dir });
  try {
    const t = await throughput(srv, o);
    const res = await fetch(`http://${srv.host}:${srv.port}/metrics`, { headers: { authorization: `Bearer ${srv.token}` } });
    const text = await res.text();
    const m = /^stele_alert_evaluation_seconds_total ([\d.e+-]+)$/m.exec(text);
    if (!res.ok || !m) throw new Error(`no alert evaluation time in /metrics (HTTP ${res.status})`);
    const evaluationS = Number(m[1]);
    const serverCpuS = srv.cpuSeconds();
    const serverUsPerEvent = (t.serverCores * 1e6) / t.eventsPerSec;
    return { throughput: t, evaluationS, serverCpuS, serverUsPerEvent, ...cpu };
  } finally {
    await srv.stop();
  }
}
