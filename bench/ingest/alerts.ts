/**
 * What alert rules cost ingest (issue 15: less than 5 % at the benchmark's rate): `stele serve`
 * with a policy holding the example rules and rules that match most of the benchmark's
 * events (grouped, some by a field with thousands of values, one on full text), under the same
 * closed-loop load as the headline run. Measured two ways: the server's own count of the time
 * spent evaluating rules (`stele_alert_evaluation_seconds_total`) against the CPU the server used,
 * and the throughput beside the runs without rules (interleaved, medians).
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './cleanup.js';
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
export const BENCH_ALERT_RULES = (BENCH_ALERTS.match(/^ {4}[a-z-]+:/gm) ?? []).length;

export interface AlertRun {
  throughput: ThroughputResult;
  /** Seconds the server spent evaluating rules, and the CPU seconds it used, over its whole life. */
  evaluationS: number;
  serverCpuS: number;
}

export async function alertsThroughput(o: ThroughputOptions): Promise<AlertRun> {
  const dir = tempDir('data');
  execFileSync(process.execPath, [CLI, 'init', '--dir', dir, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  appendFileSync(join(dir, 'stele.policy.yaml'), BENCH_ALERTS);
  const srv = await startStele({ dir });
  try {
    const t = await throughput(srv, o);
    const res = await fetch(`http://${srv.host}:${srv.port}/metrics`, { headers: { authorization: `Bearer ${srv.token}` } });
    const text = await res.text();
    const m = /^stele_alert_evaluation_seconds_total ([\d.e+-]+)$/m.exec(text);
    if (!res.ok || !m) throw new Error(`no alert evaluation time in /metrics (HTTP ${res.status})`);
    return { throughput: t, evaluationS: Number(m[1]), serverCpuS: srv.cpuSeconds() };
  } finally {
    await srv.stop();
  }
}
