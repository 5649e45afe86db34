/** Clusters, hosts and load balancers: the upstream half of the Envoy model. */
import type { OutlierDetectionConfig } from './outlier-config.ts';
import type { UpstreamTlsConfig } from '../tls/tls-context-config.ts';

export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subZone: string;
}

export type HealthStatus = 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'DEGRADED';

/** One endpoint of a cluster. Mutable counters are updated by the router on the hot path. */
export interface Host {
  /** `ip:port` (IPv6 as `[::1]:port`), unique within a cluster. */
  readonly key: string;
  readonly address: string;
  readonly port: number;
  /** For DNS clusters, the hostname the address was resolved from (used by auto_host_rewrite). */
  readonly hostname: string | undefined;
  readonly weight: number;
  readonly locality: Locality;
  readonly priority: number;
  health: HealthStatus;
  /** Requests currently in flight to this host (LEAST_REQUEST reads it). */
  activeRequests: number;
  /** Set while outlier detection has ejected the host: load balancers then treat it as unhealthy. */
  outlierEjected?: boolean;
  /** The endpoint's transport socket match metadata, if any. */
  readonly socketMatch?: Readonly<Record<string, string>>;
  /**
   * Istio's endpoint metadata filter_metadata.istio.workload ("name;namespace;canonical-service;
   * canonical-revision;cluster-id"), for telemetry's peer discovery. The only other metadata kept.
   */
  readonly istioWorkload?: string;
}

/** One entry of Istio's cluster metadata filter_metadata.istio.services. */
export interface IstioServiceRef {
  readonly host: string;
  readonly name: string;
  readonly namespace: string;
}

export interface LbContext {
  /** From the route's hash policy; RING_HASH and MAGLEV fall back to random when absent. */
  readonly hash: number | undefined;
  /** Hosts already tried by this request, to be avoided when possible. */
  readonly attempted?: ReadonlySet<Host>;
  /** Priorities a retry must leave out of the priority load (retry_priority previous_priorities). */
  readonly excludedPriorities?: ReadonlySet<number>;
}

export interface LoadBalancer {
  /** Picks a host, or null when none is available (→ 503 UH). */
  chooseHost(ctx: LbContext): Host | null;
}

/** PEAK_EWMA is Weft's own (selected through load_balancing_policy), not an Envoy lb_policy value. */
export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV' | 'PEAK_EWMA';

/** Settings of the PEAK_EWMA policy. */
export interface PeakEwmaConfig {
  /** Time constant of the moving average's decay. */
  readonly decayMs: number;
  /** The latency assumed for a host before its first response. */
  readonly defaultRttMs: number;
}
export type ClusterType = 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'EDS';

export interface TransportSocketMatch {
  readonly name: string;
  readonly match: Readonly<Record<string, string>>;
  readonly tls: UpstreamTlsConfig | undefined;
}

export interface EndpointConfig {
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  readonly health: HealthStatus;
  /** Set when the address is a hostname (DNS clusters). */
  readonly hostname?: string;
  /** metadata.filter_metadata["envoy.transport_socket_match"]: picks a transport_socket_matches entry. */
  readonly socketMatch?: Readonly<Record<string, string>>;
  /** metadata.filter_metadata.istio.workload, if set (telemetry's peer discovery). */
  readonly istioWorkload?: string;
}

export interface LocalityEndpoints {
  readonly locality: Locality;
  readonly priority: number;
  readonly weight: number | undefined;
  readonly endpoints: readonly EndpointConfig[];
}

export interface Http2UpstreamOptions {
  readonly maxConcurrentStreams: number | undefined;
  readonly initialStreamWindowSize: number | undefined;
  readonly initialConnectionWindowSize: number | undefined;
  /**
   * connection_keepalive: a PING every `intervalMs`; a session whose PING is not answered within `timeoutMs` is
   * closed, failing its streams (a silent peer or path is found without waiting for TCP).
   */
  readonly keepalive?: { readonly intervalMs: number; readonly timeoutMs: number };
}

/** Envoy's circuit_breakers.thresholds (DEFAULT priority): limits across all the hosts of a cluster. */
export interface CircuitBreakerThresholds {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  /** Concurrent retries; ignored when retryBudget is set. */
  readonly maxRetries: number;
  readonly retryBudget: { readonly budgetPercent: number; readonly minRetryConcurrency: number } | undefined;
  /** Publish remaining_* gauges. */
  readonly trackRemaining: boolean;
}

/** A cluster's configuration after validation; the runtime Cluster is built from it. */
export interface ClusterConfig {
  readonly name: string;
  readonly type: ClusterType;
  readonly connectTimeoutMs: number;
  readonly lbPolicy: LbPolicy;
  readonly localityEndpoints: readonly LocalityEndpoints[];
  /** Envoy's overprovisioning factor as a percentage (default 140). */
  readonly overprovisioningFactor: number;
  /** common_lb_config.healthy_panic_threshold, percent (default 50). */
  readonly healthyPanicThreshold: number;
  /**
   * common_lb_config.locality_weighted_lb_config: within a priority, a locality is chosen first, in
   * proportion to its load_balancing_weight times its availability, then a host within it.
   */
  readonly localityWeighted: boolean;
  readonly leastRequest: { readonly choiceCount: number };
  readonly ringHash: { readonly minimumRingSize: number; readonly maximumRingSize: number };
  readonly maglev: { readonly tableSize: number };
  /** Set when lbPolicy is PEAK_EWMA. */
  readonly peakEwma?: PeakEwmaConfig;
  /** Upstream protocol: HTTP/2 when explicit_http_config.http2_protocol_options is set. */
  readonly http2: Http2UpstreamOptions | undefined;
  /**
   * use_downstream_protocol_config: requests that came in over HTTP/2 go upstream over HTTP/2 with these options,
   * the others over HTTP/1.1 (`http2` is then unset).
   */
  readonly downstreamHttp2?: Http2UpstreamOptions;
  /** common_http_protocol_options.idle_timeout for upstream connections (default 1 h). */
  readonly upstreamIdleTimeoutMs: number;
  readonly maxRequestsPerConnection: number | undefined;
  /**
   * common_http_protocol_options.max_connection_duration: from this long after it was opened, a connection takes
   * no new request and closes once its requests are done (0: no limit).
   */
  readonly maxConnectionDurationMs: number;
  /** circuit_breakers.thresholds for priority DEFAULT, with Envoy's defaults filled in. */
  readonly circuitBreakers: CircuitBreakerThresholds;
  readonly dnsRefreshRateMs: number;
  readonly dnsLookupFamily: 'AUTO' | 'V4_ONLY' | 'V6_ONLY' | 'V4_PREFERRED' | 'ALL';
  readonly respectDnsTtl: boolean;
  /**
   * EDS clusters: the name their ClusterLoadAssignment is requested under (eds_cluster_config.service_name,
   * else the cluster name). Unset for the other types.
   */
  readonly edsServiceName?: string;
  /** EDS clusters: how long the cluster may wait for its first assignment (eds_config.initial_fetch_timeout). */
  readonly edsInitialFetchTimeoutMs?: number;
  /** outlier_detection, when the cluster has it. */
  readonly outlierDetection?: OutlierDetectionConfig;
  /** transport_socket envoy.transport_sockets.tls (UpstreamTlsContext); absent for plaintext. */
  readonly tls?: UpstreamTlsConfig;
  /**
   * transport_socket_matches: the first entry whose `match` the endpoint's socket match metadata satisfies
   * gives that endpoint's transport (tls undefined = plaintext); no match → `tls`. Istio's auto mTLS.
   */
  readonly transportSocketMatches?: readonly TransportSocketMatch[];
  /** metadata.filter_metadata.istio.services (Istio's destination services of this cluster), if set. */
  readonly istioServices?: readonly IstioServiceRef[];
}
