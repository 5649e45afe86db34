/** The connection manager's tracer: trace context in and out, sampling, one span per proxied request. */
import type { HttpStream } from '../http/stream.ts';
import type { HttpTracingConfig } from './config.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import type { StatsStore } from '../stats/store.ts';

export interface HttpTracer {
  /** Called once the connection manager's header policy ran, before the filters: extracts, decides, injects. */
  onRequest(stream: HttpStream): void;
  /** Called once when the stream is complete: ends and reports the span of a sampled request. */
  onComplete(stream: HttpStream): void;
}

/** What tracers of one proxy share: exporters (one batch queue per provider), stats. */
export class TracingRuntime {
  readonly clusters: ClusterManager;
  readonly stats: StatsStore;
  constructor(clusters: ClusterManager, stats: StatsStore) {
    this.clusters = clusters;
    this.stats = stats;
  }

  /** Exports what is queued (bounded in time) and stops the exporters. */
  async shutdown(): Promise<void> {}
}

export interface TracerContext {
  readonly runtime: TracingRuntime;
  /** The listener's traffic_direction: OUTBOUND spans are CLIENT spans, the rest SERVER spans. */
  readonly trafficDirection: 'INBOUND' | 'OUTBOUND' | 'UNSPECIFIED';
}

export function createHttpTracer(
  config: HttpTracingConfig | undefined,
  _ctx: TracerContext,
): HttpTracer | null {
  if (config === undefined) return null;
  throw new Error('tracing is not implemented yet');
}
