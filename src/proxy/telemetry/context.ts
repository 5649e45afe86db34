/**
 * What a proxy's telemetry shares across listeners: who this proxy is (its bootstrap node), the access log
 * sinks and the tracing exporters. Built once by the server and handed to every connection manager and
 * tcp_proxy.
 */
import type { NodeInfo } from '../bootstrap/types.ts';
import { AccessLogSinks } from '../accesslog/access-loggers.ts';
import { TracingRuntime } from '../tracing/tracer.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import type { StatsStore } from '../stats/store.ts';
import { istioMetricsOf } from './istio-metrics.ts';

export class TelemetryContext {
  /** Undefined for proxies built without a bootstrap (unit tests). */
  readonly node: NodeInfo | undefined;
  readonly accessLogs: AccessLogSinks;
  readonly tracing: TracingRuntime;

  constructor(clusters: ClusterManager, stats: StatsStore, node?: NodeInfo) {
    this.node = node;
    this.accessLogs = new AccessLogSinks(stats);
    this.tracing = new TracingRuntime(clusters, stats);
    // istio_build is exposed by every proxy, whether or not its listeners record Istio metrics.
    istioMetricsOf(stats);
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.accessLogs.close(), this.tracing.shutdown()]);
  }
}
