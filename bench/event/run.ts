/**
 * Per-event cost of the event layer on the ingest hot path: `node dist/bench/event/run.js`.
 * Reports CPU time (not wall time, so a busy shared machine skews it less), the median of several
 * rounds, next to JSON.parse of the same body as a yardstick for the machine's speed.
 */
import { canonicalize } from '../../src/event/canonical.js';
import { normalizeEvent, validateEvent } from '../../src/event/normalize.js';
import { buildLeaf, decodeLeaf, nowMicros } from '../../src/event/record.js';
import type { Ingest } from '../../src/event/types.js';

const body = JSON.stringify({
  actor: { type: 'human', id: 'alice@example.com' },
  action: 'emacs.package.install',
  source: { kind: 'emacs', host: 'alice-laptop.corp.example.com', agent: 'stele.el', version: '0.3.1' },
  resource: { type: 'package', id: 'magit-20261101.1200' },
  outcome: 'success',
  data: { archive: 'melpa', dependencies: ['transient', 'with-editor', 'compat'], bytes: 1048576 },
});
const ingest: Ingest = { principal: 'apikey:emacs-fleet', method: 'apikey' };
const inputs = Array.from({ length: 1024 }, () => JSON.parse(body) as Record<string, unknown>);
const events = inputs.map((e) => normalizeEvent(e, nowMicros()));
const leaf = buildLeaf(events[0] as (typeof events)[number], ingest, nowMicros());

function bench(name: string, f: (i: number) => unknown, n = 100_000, rounds = 9): number {
  for (let i = 0; i < 50_000; i++) f(i);
  const ns: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = process.cpuUsage();
    for (let i = 0; i < n; i++) f(i);
    const d = process.cpuUsage(start);
    ns.push(((d.user + d.system) * 1000) / n);
  }
  ns.sort((a, b) => a - b);
  const median = ns[rounds >> 1] as number;
  console.log(`${name.padEnd(44)} ${median.toFixed(0).padStart(6)} ns`);
  return median;
}

console.log(`event body ${Buffer.byteLength(body)} bytes, leaf ${leaf.length} bytes; CPU ns/event, median`);
const yardstick = bench('JSON.parse(body) [yardstick]', () => JSON.parse(body));
bench('validateEvent', (i) => validateEvent(inputs[i & 1023], i));
bench('normalizeEvent (assigns id and time)', (i) => normalizeEvent(inputs[i & 1023] as Record<string, unknown>, nowMicros()));
bench('canonicalize(event)', (i) => canonicalize(events[i & 1023]));
// The server takes one receipt time per request; here a request is 1000 events.
let received = nowMicros();
const requestTime = (i: number) => {
  if (i % 1000 === 0) received = nowMicros();
  return received;
};
bench('buildLeaf (canonical bytes + size check)', (i) =>
  buildLeaf(events[i & 1023] as (typeof events)[number], ingest, requestTime(i)),
);
const total = bench('validate + normalize + buildLeaf', (i) => {
  const input = inputs[i & 1023] as Record<string, unknown>;
  validateEvent(input, i);
  const t = requestTime(i);
  return buildLeaf(normalizeEvent(input, t), ingest, t);
});
bench('decodeLeaf (read path)', () => decodeLeaf(leaf), 20_000);
console.log(`total = ${(total / yardstick).toFixed(1)} x JSON.parse of the body`);
