/**
 * The dashboard's JSON API, as the browser sees it: shared by the server (src/dashboard/api.ts) and the page
 * (src/dashboard/web/), so both sides agree on every field. Types only.
 */

import type { CostReport } from '../cost/model.ts';

/** Istio's request_protocol label: http, grpc or tcp. */
export type EdgeProtocol = 'http' | 'grpc' | 'tcp';

export interface GraphNode {
  /** `workload:NAMESPACE/NAME` or `service:HOST`. */
  id: string;
  kind: 'workload' | 'service';
  name: string;
  namespace: string;
  /** Workloads: canonical service and revision (app and version labels), when known. */
  app?: string;
  version?: string;
  /** Whether a connected proxy serves this workload (workloads only). */
  proxied?: boolean;
}

/** Traffic over the graph's window (the last 30 s): per second, percent, milliseconds. */
export interface EdgeStats {
  /** Requests per second (HTTP, gRPC); connections opened per second for TCP. */
  rps: number;
  /** 5xx and gRPC non-OK over all requests, in percent; null with no request in the window. */
  errorPct: number | null;
  p50Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
  /** TCP bytes per second, both directions. */
  tcpBytesPerSecond: number;
}

export interface GraphEdge extends EdgeStats {
  id: string;
  /** A workload → service call, or a service → workload share of it (a canary split shows as several). */
  kind: 'call' | 'split';
  source: string;
  target: string;
  protocol: EdgeProtocol;
  /** Mutual TLS seen on this edge; null when no proxy said either way. */
  mtls: boolean | null;
  /** Which proxy's view the numbers come from: the caller's (source) unless only the server reported. */
  reporter: 'source' | 'destination';
}

export interface GraphResponse {
  /** When the last collection finished (ms since the epoch); 0 before the first one. */
  timestamp: number;
  windowSeconds: number;
  nodes: GraphNode[];
  edges: GraphEdge[];
  source?: DataSourceInfo;
}

/** Golden signals at the collector's resolution over its retention; null where there was no data. */
export interface SeriesResponse {
  intervalSeconds: number;
  /** ms since the epoch, oldest first. */
  timestamps: number[];
  rps: (number | null)[];
  errorPct: (number | null)[];
  p50Ms: (number | null)[];
  p90Ms: (number | null)[];
  p99Ms: (number | null)[];
  tcpBytesPerSecond: (number | null)[];
}

/** One endpoint of a service that outlier detection has taken out of some callers' pools. */
export interface EjectedEndpoint {
  /** The service host (the cluster's host; the cluster name itself when it is not Istio's). */
  service: string;
  /** address:port as the client proxies' /clusters print it. */
  endpoint: string;
  /** `workload:NAMESPACE/NAME` of the proxy at that address, when one is connected. */
  workload?: string;
  /** The client proxies (`name.namespace`) that eject it, sorted. */
  ejectedBy: string[];
  /** When the dashboard first saw it ejected (ms since the epoch; the earliest over its clients). */
  since: number;
}

/** A caller of a service that got 429 (a local or global rate limit's answer). */
export interface RateLimitedClient {
  /** `workload:NAMESPACE/NAME`, or `workload:unknown/unknown` when no proxy named the caller. */
  source: string;
  /** 429s per second over the graph's window. */
  rps: number;
  /** 429s over the collector's retention. */
  total: number;
}

/** Where the golden signals come from: the control plane's own collector, or a Prometheus. */
export interface DataSourceInfo {
  kind: 'collector' | 'prometheus';
  /** The Prometheus's URL (kind prometheus). */
  url?: string;
  /** Why the Prometheus could not answer: the numbers are the collector's instead. */
  error?: string;
}

export interface ServiceResponse {
  host: string;
  name: string;
  namespace: string;
  inbound: SeriesResponse;
  /** Callers of the service and its shares per destination workload, over the graph's window. */
  edges: GraphEdge[];
  /** Its endpoints ejected now by some caller's outlier detection. */
  ejected: EjectedEndpoint[];
  /** Callers that got 429 in the retention, most limited first. */
  rateLimited: RateLimitedClient[];
  source?: DataSourceInfo;
}

export interface WorkloadResponse {
  name: string;
  namespace: string;
  inbound: SeriesResponse;
  outbound: SeriesResponse;
  edges: GraphEdge[];
  /** This workload's endpoints ejected now by some caller's outlier detection. */
  ejected: EjectedEndpoint[];
  source?: DataSourceInfo;
}

export type SyncState = 'SYNCED' | 'STALE' | 'NACK';

export interface ProxyTypeStatus {
  /** CDS, LDS, EDS, RDS, SDS. */
  type: string;
  state: SyncState;
  sentVersion: string;
  ackedVersion: string;
  /** The proxy's NACK message, while the latest response stands NACKed. */
  error?: string;
}

export interface ProxyInfo {
  id: string;
  name: string;
  namespace: string;
  type: string;
  stream: string;
  connectedAt: string;
  /** Where the dashboard scrapes the proxy's /stats/prometheus; null when it cannot. */
  adminAddress: string | null;
  /** Why the last scrape of its stats failed, if it did. */
  scrapeError?: string;
  /** The worst state over its types: NACK, then STALE, else SYNCED. */
  state: SyncState;
  types: ProxyTypeStatus[];
}

export interface ProxiesResponse {
  proxies: ProxyInfo[];
}

export interface ConfigDiagnostic {
  code: string;
  severity: 'error' | 'warning' | 'info';
  message: string;
  field?: string;
  file?: string;
  line?: number;
}

export interface ConfigResource {
  kind: string;
  apiVersion: string;
  namespace: string;
  name: string;
  file: string;
  line: number;
  spec: unknown;
  diagnostics: ConfigDiagnostic[];
}

export interface ConfigResponse {
  resources: ConfigResource[];
  /** Diagnostics about no loaded resource (a YAML error, a document that is not a resource). */
  other: ConfigDiagnostic[];
  summary: { resources: number; errors: number; warnings: number; infos: number };
}

export type { CostEdge, CostFigures, CostPrices, Split } from '../cost/model.ts';

/** GET /api/cost (src/dashboard/cost-view.ts). */
export interface CostResponse extends CostReport {
  /** When it was computed (ms since the epoch). */
  timestamp: number;
  /** Flows the collector could not track (its bound was reached). */
  droppedFlows?: number;
}
