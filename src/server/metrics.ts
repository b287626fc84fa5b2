/**
 * GET /metrics: the server's measurements in the Prometheus text format (prom-client), for a
 * principal allowed `metrics` (a monitoring role) or `admin`. What the layers record through
 * src/core/metrics.ts (write-ahead log fsyncs, group commits, client appends) becomes histograms
 * and counters here; HTTP requests are timed by route template (never the raw URL: a label per
 * URL would grow without bound); error answers are counted by their code (refusals by reason);
 * the log's and the index's state are read at each scrape.
 */
import type { FastifyInstance } from 'fastify';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Stele } from '../app/stele.js';
import type { ValidationRun } from '../app/validation.js';
import type { WitnessStatus } from '../app/witnessing.js';
import { setMetricsSink } from '../core/metrics.js';
import type { MirrorStatus } from '../storage/s3/mirror.js';
import { principalOf } from './auth.js';

const LATENCY = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const SIZES = [1, 10, 100, 1000, 10_000, 65_536];

export interface ServerMetrics {
  registry: Registry;
  /** Times one answered request (onResponse). */
  request(method: string, route: string, status: number, seconds: number): void;
  /** Counts one error answer by its code. */
  error(code: string): void;
}

/** What /metrics shows of alerting. */
export interface AlertStats {
  readonly fired: ReadonlyMap<string, number>;
  readonly evaluationSeconds: number;
}

/** What the server watches besides the log (each absent when not configured). */
export interface Watched {
  mirrorStatus?: () => MirrorStatus;
  validationStatus?: () => ValidationRun | null;
  witnessStatus?: () => WitnessStatus[];
  alerts?: AlertStats;
}

export function serverMetrics(
  stele: Stele,
  { mirrorStatus: mirror, validationStatus: validation, witnessStatus: witnesses, alerts }: Watched,
): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'stele_' });
  const reg = { registers: [registry] };
  const walSync = new Histogram({
    name: 'stele_wal_fsync_seconds',
    help: 'Time of one fdatasync of the write-ahead log',
    buckets: LATENCY,
    ...reg,
  });
  const walBytes = new Counter({ name: 'stele_wal_bytes_total', help: 'Bytes made durable in the write-ahead log', ...reg });
  const commits = new Histogram({
    name: 'stele_group_commit_entries',
    help: 'Entries sequenced per group commit',
    buckets: SIZES,
    ...reg,
  });
  const events = new Counter({ name: 'stele_appended_events_total', help: 'Events of acknowledged client appends', ...reg });
  const bytes = new Counter({ name: 'stele_appended_bytes_total', help: 'Leaf bytes of acknowledged client appends', ...reg });
  const batch = new Histogram({
    name: 'stele_append_batch_events',
    help: 'Events per acknowledged client append',
    buckets: SIZES,
    ...reg,
  });
  const http = new Histogram({
    name: 'stele_http_request_duration_seconds',
    help: 'Time to answer a request, by method, route template and status class (POST /v1/events: the append latency)',
    labelNames: ['method', 'route', 'status'],
    buckets: LATENCY,
    ...reg,
  });
  const errors = new Counter({
    name: 'stele_http_errors_total',
    help: 'Error answers by code (refusals: unauthorized, forbidden, rate_limited, overloaded, ...)',
    labelNames: ['code'],
    ...reg,
  });
  const gauge = (name: string, help: string, value: () => number | null) =>
    new Gauge({
      name,
      help,
      ...reg,
      collect() {
        const v = value();
        if (v !== null) this.set(v);
      },
    });
  gauge('stele_log_entries', 'Entries durably sequenced', () => stele.log.size);
  gauge('stele_checkpoint_entries', 'Entries the newest signed checkpoint covers', () => stele.log.checkpoint.size);
  gauge('stele_checkpoint_timestamp_seconds', 'When the newest checkpoint was published', () => stele.log.checkpointTime / 1000);
  gauge('stele_index_lag_entries', 'Entries sequenced but not yet searchable', () => stele.log.size - stele.index.indexedThrough);
  if (validation) {
    gauge('stele_validation_last_timestamp_seconds', 'When the last self-validation ran', () => {
      const v = validation();
      return v === null ? null : v.at / 1000;
    });
    gauge('stele_validation_ok', 'Whether the last self-validation passed (1) or found a problem (0)', () => {
      const v = validation();
      return v === null ? null : v.ok ? 1 : 0;
    });
  }
  if (mirror) {
    gauge('stele_mirror_entries', "Entries the S3 mirror's checkpoint covers", () => mirror().size);
    gauge('stele_mirror_ok', 'Whether the last copy to the S3 mirror succeeded (1) or failed (0)', () =>
      mirror().lastError === null ? 1 : 0,
    );
    gauge('stele_mirror_last_success_timestamp_seconds', 'When the last copy to the S3 mirror succeeded', () => {
      const t = mirror().lastSuccess;
      return t === null ? null : Date.parse(t) / 1000;
    });
  }
  if (alerts) {
    new Counter({
      name: 'stele_alerts_fired_total',
      help: 'Alert firings by rule (each also a stele.alert event)',
      labelNames: ['rule'],
      ...reg,
      collect() {
        this.reset();
        for (const [rule, n] of alerts.fired) this.inc({ rule }, n);
      },
    });
    new Counter({
      name: 'stele_alert_evaluation_seconds_total',
      help: "Time spent evaluating the policy's alert rules on appended entries (their cost to ingest)",
      ...reg,
      collect() {
        this.reset();
        this.inc(alerts.evaluationSeconds);
      },
    });
  }
  if (witnesses) {
    const byWitness = (name: string, help: string, value: (w: WitnessStatus) => number | null) =>
      new Gauge({
        name,
        help,
        labelNames: ['witness'],
        ...reg,
        collect() {
          for (const w of witnesses()) {
            const v = value(w);
            if (v !== null) this.set({ witness: w.name }, v);
          }
        },
      });
    byWitness('stele_witness_cosignature_timestamp_seconds', 'When the witness last cosigned a checkpoint of this node', (w) =>
      w.lastCosigned === null ? null : w.lastCosigned / 1000,
    );
    byWitness('stele_witness_ok', 'Whether the last submission to the witness succeeded (1) or failed (0)', (w) =>
      w.lastError === null ? 1 : 0,
    );
    byWitness('stele_witness_entries', 'The tree size the witness last cosigned', (w) => w.size);
  }
  setMetricsSink({
    walSync(seconds, n) {
      walSync.observe(seconds);
      walBytes.inc(n);
    },
    groupCommit: (n) => commits.observe(n),
    appended(n, b) {
      events.inc(n);
      bytes.inc(b);
      batch.observe(n);
    },
  });
  return {
    registry,
    request: (method, route, status, seconds) =>
      http.observe({ method, route, status: `${Math.floor(status / 100)}xx` }, seconds),
    error: (code) => errors.inc({ code }),
  };
}

export const metricsRoutes = (stele: Stele, m: ServerMetrics) => async (app: FastifyInstance) => {
  app.get(
    '/metrics',
    {
      preHandler: async (req) => {
        const p = principalOf(req);
        // A monitoring role needs nothing else; an administrator may scrape too.
        if (!stele.access.allowed(p, 'admin', { type: 'Log' })) stele.access.require(p, 'metrics');
      },
      schema: { summary: 'Prometheus metrics (text format); needs the metrics or admin permission', security: [{ bearer: [] }] },
    },
    async (_req, reply) => reply.type(m.registry.contentType).send(await m.registry.metrics()),
  );
};
