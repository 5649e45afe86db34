/**
 * Where the golden signals (graph edges, service and workload series) come from: the control plane's own
 * collector (the default), or a Prometheus when `--dashboard-prometheus-url` names one. Everything else the
 * API serves (proxies, configuration, ejections, rate-limited callers) stays the control plane's.
 */
import type { StatsCollector } from './stats-collector.ts';
import type { DataSourceInfo, GraphEdge, GraphResponse, SeriesResponse } from './types.ts';

export interface ServiceSignals {
  host: string;
  inbound: SeriesResponse;
  edges: GraphEdge[];
}

export interface WorkloadSignals {
  inbound: SeriesResponse;
  outbound: SeriesResponse;
  edges: GraphEdge[];
}

/** One answer and where it came from (`source` absent: the collector, as before there was a choice). */
export type Sourced<T> = T & { source?: DataSourceInfo };

export interface SignalSource {
  graph(): Promise<Sourced<GraphResponse>>;
  /** Undefined when nothing is known of the service. */
  service(namespace: string, name: string): Promise<Sourced<ServiceSignals> | undefined>;
  workload(namespace: string, name: string): Promise<Sourced<WorkloadSignals> | undefined>;
}

/** The built-in collector's rings, as a SignalSource. */
export function collectorSignals(collector: StatsCollector): SignalSource {
  return {
    graph: () => Promise.resolve(collector.graph()),
    service: (ns, name) => Promise.resolve(collector.service(ns, name)),
    workload: (ns, name) => Promise.resolve(collector.workload(ns, name)),
  };
}
