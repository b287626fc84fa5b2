/**
 * What the server measures about itself, recorded by the layers where it happens (the write-ahead
 * log's fsync, the sequencer's group commits) without their knowing how it is exported: they call
 * `metrics`, and the server (src/server/metrics.ts) installs the sink that feeds Prometheus. Until
 * a sink is installed (tests, the CLI's one-shot commands) recording costs a function call.
 */

/** Every measurement, by name. Histograms take seconds or counts; counters take increments. */
export interface MetricsSink {
  /** One fdatasync of the write-ahead log (seconds) and the bytes it made durable. */
  walSync(seconds: number, bytes: number): void;
  /** One group commit: entries sequenced and made durable together. */
  groupCommit(entries: number): void;
  /** One acknowledged append of a client (not the server's own events): its events and leaf bytes. */
  appended(events: number, bytes: number): void;
}

let sink: MetricsSink | null = null;

/** Installs the sink (null: none). One per process: the server that runs in it. */
export function setMetricsSink(s: MetricsSink | null): void {
  sink = s;
}

export const metrics: MetricsSink = {
  walSync: (seconds, bytes) => sink?.walSync(seconds, bytes),
  groupCommit: (entries) => sink?.groupCommit(entries),
  appended: (events, bytes) => sink?.appended(events, bytes),
};
