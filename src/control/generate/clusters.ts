/**
 * Clusters: one per service port (`outbound|PORT||HOST`) and one per DestinationRule subset
 * (`outbound|PORT|SUBSET|HOST`), with the DestinationRule's traffic policy (subset over port level over
 * rule level); inbound clusters point at the workload's own application.
 */
import type { JsonObject } from '../../core/json.ts';
import type { TrafficPolicy } from '../../api/istio/networking.ts';
import { LOAD_BALANCER_ANNOTATION } from '../../api/weft/annotations.ts';
import { istioDurationToProto } from '../../config/duration.ts';
import { isHttp, isHttp2 } from '../model/protocol.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import type { Protocol, Service, ServicePort } from '../model/types.ts';
import { localityPolicy } from './locality-lb.ts';
import { clusterTransport } from './mtls.ts';
import { ADS_SOURCE, inboundClusterName, outboundClusterName, parseClusterName, TYPES } from './names.ts';
import { destinationRuleFor } from './scope.ts';

/** Istio's default connect timeout. */
const CONNECT_TIMEOUT = '10s';

export interface ClusterOptions {
  /** Proxyless gRPC clients get only what gRPC's xDS client understands. */
  proxyless: boolean;
}

/** The fields a matching port level replaces as a group (Istio's MergeTrafficPolicy). */
const PORT_LEVEL_FIELDS = ['connectionPool', 'outlierDetection', 'loadBalancer', 'tls'] as const;

/**
 * Merges the policies that apply to one port (rule, then subset): a later level overrides an earlier one per
 * top-level field. A level's port-level settings for this port then replace connectionPool, outlierDetection,
 * loadBalancer and tls together: Istio documents that port-level settings do not inherit the destination
 * level, so a field the port level leaves out gets the default, not the rule's value.
 */
export function effectivePolicy(
  levels: readonly (TrafficPolicy | undefined)[],
  port: number,
): TrafficPolicy | undefined {
  let out: TrafficPolicy | undefined;
  for (const level of levels) {
    if (!level) continue;
    const { portLevelSettings, ...rest } = level;
    out = { ...out, ...rest };
    const portLevel = portLevelSettings?.find((p) => p.port?.number === port);
    if (portLevel) {
      const merged: TrafficPolicy = { ...out };
      for (const field of PORT_LEVEL_FIELDS) {
        if (portLevel[field] === undefined) delete merged[field];
        else Object.assign(merged, { [field]: portLevel[field] });
      }
      out = merged;
    }
  }
  return out;
}

function lbPolicy(policy: TrafficPolicy | undefined): JsonObject {
  const lb = policy?.loadBalancer;
  if (lb?.consistentHash) {
    const ch = lb.consistentHash;
    if (ch.maglev) return { lb_policy: 'MAGLEV' };
    const size = ch.ringHash?.minimumRingSize ?? ch.minimumRingSize;
    return { lb_policy: 'RING_HASH', ...(size ? { ring_hash_lb_config: { minimum_ring_size: size } } : {}) };
  }
  switch (lb?.simple) {
    case 'ROUND_ROBIN':
      return { lb_policy: 'ROUND_ROBIN' };
    case 'RANDOM':
      return { lb_policy: 'RANDOM' };
    default:
      // Istio's default (and LEAST_CONN, its old name).
      return { lb_policy: 'LEAST_REQUEST' };
  }
}

/**
 * Weft's PEAK_EWMA policy, as the proxy reads it from load_balancing_policy (see
 * src/proxy/upstream/lb/peak-ewma-config.ts); the decay and default RTT keep their defaults.
 */
const PEAK_EWMA_POLICY: JsonObject = {
  load_balancing_policy: {
    policies: [
      {
        typed_extension_config: {
          name: 'weft.lb.peak_ewma',
          typed_config: {
            '@type': 'type.googleapis.com/xds.type.v3.TypedStruct',
            type_url: 'weft.dev/lb/peak_ewma',
          },
        },
      },
    ],
  },
};

/**
 * The DestinationRule annotation weft.dev/load-balancer: peak-ewma selects PEAK_EWMA, which Istio's
 * loadBalancer enum cannot name. A consistentHash policy still wins (callers rely on its stickiness);
 * other values are ignored here and reported by `weft analyze` (WE0108).
 */
function annotatedLbPolicy(
  annotation: string | undefined,
  policy: TrafficPolicy | undefined,
): JsonObject | undefined {
  if (annotation !== 'peak-ewma' || policy?.loadBalancer?.consistentHash) return undefined;
  return PEAK_EWMA_POLICY;
}

/** Istio leaves every circuit breaker open unless a DestinationRule sets it (Envoy's 1024 is too tight for a mesh). */
const UNLIMITED = 4294967295;
/** Envoy's retry_budget defaults, written out as Istio does. */
const DEFAULT_BUDGET_PERCENT = 20;
const DEFAULT_MIN_RETRY_CONCURRENCY = 3;

/** retryBudget.percent is a DoubleValue in Istio's API: a plain number in YAML, as the schema checks. */
function budgetPercent(p: number | undefined): number | undefined {
  return typeof p === 'number' ? p : undefined;
}

function positive(n: number | undefined): number | undefined {
  return typeof n === 'number' && n > 0 ? n : undefined;
}

/**
 * The protocol a cluster speaks upstream: HTTP/2, HTTP/1.1, or each request's own (`downstream`: Envoy's
 * use_downstream_protocol_config, which Istio gives ports whose protocol is sniffed, and `useClientProtocol`).
 */
export type UpstreamProtocol = 'http1' | 'http2' | 'downstream';

/**
 * Istio's connectionPool and retryBudget translation: one DEFAULT-priority threshold on every cluster
 * (0 means unset, as in Istio), and the HTTP connection options as the cluster's HttpProtocolOptions
 * (HTTP/2 options — maxConcurrentStreams, http2KeepAlive — wherever HTTP/2 may be spoken).
 */
function connectionPool(policy: TrafficPolicy | undefined, upstream: UpstreamProtocol): JsonObject {
  const http2 = upstream !== 'http1';
  const tcp = policy?.connectionPool?.tcp;
  const http = policy?.connectionPool?.http;
  const out: JsonObject = {};
  const connect = tcp?.connectTimeout ? istioDurationToProto(tcp.connectTimeout) : undefined;
  if (connect) out.connect_timeout = connect;
  const threshold: JsonObject = {
    max_connections: positive(tcp?.maxConnections) ?? UNLIMITED,
    max_pending_requests: positive(http?.http1MaxPendingRequests) ?? UNLIMITED,
    max_requests: positive(http?.http2MaxRequests) ?? UNLIMITED,
    max_retries: positive(http?.maxRetries) ?? UNLIMITED,
  };
  const budget = policy?.retryBudget;
  if (budget) {
    threshold.retry_budget = {
      budget_percent: { value: budgetPercent(budget.percent) ?? DEFAULT_BUDGET_PERCENT },
      min_retry_concurrency: positive(budget.minRetryConcurrency) ?? DEFAULT_MIN_RETRY_CONCURRENCY,
    };
  }
  threshold.track_remaining = true;
  out.circuit_breakers = { thresholds: [threshold] };

  const common: JsonObject = {};
  // As Istio: without http.idleTimeout, tcp.idleTimeout bounds idle upstream HTTP connections too.
  const idleText = http?.idleTimeout ?? tcp?.idleTimeout;
  const idle = idleText ? istioDurationToProto(idleText) : undefined;
  if (idle) common.idle_timeout = idle;
  const perConnection = positive(http?.maxRequestsPerConnection);
  if (perConnection !== undefined) common.max_requests_per_connection = perConnection;
  const lifetime = tcp?.maxConnectionDuration ? istioDurationToProto(tcp.maxConnectionDuration) : undefined;
  if (lifetime) common.max_connection_duration = lifetime;
  const h2: JsonObject = {};
  const streams = positive(http?.maxConcurrentStreams);
  if (http2 && streams !== undefined) h2.max_concurrent_streams = streams;
  // PINGs need an interval; a PING unanswered until the next is due counts as lost when no timeout is given.
  const ping = http?.http2KeepAlive;
  if (http2 && ping?.interval) {
    const interval = istioDurationToProto(ping.interval);
    const timeout = istioDurationToProto(ping.timeout ?? ping.interval);
    if (interval && timeout) h2.connection_keepalive = { interval, timeout };
  }
  if (!http2 && Object.keys(common).length === 0) return out;
  out.typed_extension_protocol_options = {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': TYPES.httpProtocolOptions,
      ...(Object.keys(common).length > 0 ? { common_http_protocol_options: common } : {}),
      ...(upstream === 'downstream'
        ? { use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: h2 } }
        : { explicit_http_config: http2 ? { http2_protocol_options: h2 } : { http_protocol_options: {} } }),
    },
  };
  return out;
}

/**
 * What a port's cluster speaks, as Istio: HTTP/2 on HTTP/2 (and gRPC) ports, each request's own protocol on a port
 * whose protocol is sniffed (an h2c or gRPC client stays HTTP/2), HTTP/1.1 otherwise.
 */
export function upstreamProtocolOf(protocol: Protocol): UpstreamProtocol {
  if (isHttp2(protocol)) return 'http2';
  return protocol === 'UNSPECIFIED' ? 'downstream' : 'http1';
}

/** An outbound cluster's: `useClientProtocol` keeps each request's; else an upgraded port's is HTTP/2. */
function outboundProtocol(
  policy: TrafficPolicy | undefined,
  declared: Protocol,
  effective: Protocol,
): UpstreamProtocol {
  if (policy?.connectionPool?.http?.useClientProtocol === true) return 'downstream';
  return isHttp2(effective) ? 'http2' : upstreamProtocolOf(declared);
}

/**
 * Istio's rule for sending HTTP/1.1 as HTTP/2 (outbound clusters only): a DestinationRule's
 * `connectionPool.http.h2UpgradePolicy` decides when it says UPGRADE or DO_NOT_UPGRADE — UPGRADE even on a port
 * whose protocol is sniffed, the rule's author vouching it is HTTP; otherwise MeshConfig's `h2UpgradePolicy:
 * UPGRADE` upgrades ports declared HTTP. Ports that already speak HTTP/2 (http2, grpc) need no upgrade.
 */
function h2Upgrade(policy: TrafficPolicy | undefined, protocol: Protocol, snap: MeshSnapshot): boolean {
  if (isHttp2(protocol)) return false;
  const override = policy?.connectionPool?.http?.h2UpgradePolicy;
  if (override === 'UPGRADE') return true;
  if (override === 'DO_NOT_UPGRADE') return false;
  return isHttp(protocol) && snap.meshConfig?.h2UpgradePolicy === 'UPGRADE';
}

/**
 * Istio's outlierDetection translation: a set consecutive5xxErrors / consecutiveGatewayErrors enables its
 * detector (0 disables it: enforcing 0); interval, baseEjectionTime and maxEjectionPercent only when
 * given (Envoy's defaults otherwise); success-rate analysis explicitly off. The deprecated
 * consecutiveErrors counts gateway errors only, as Istio translated it, unless a newer field is set.
 * Istio also sets the panic threshold to minHealthPercent (0, panic off, when absent).
 */
export function outlierDetectionFields(policy: TrafficPolicy | undefined): JsonObject {
  const od = policy?.outlierDetection;
  if (!od) return {};
  const out: JsonObject = { enforcing_success_rate: 0 };
  const enforcing = (n: number): number => (n > 0 ? 100 : 0);
  const has = (v: number | null | undefined): v is number => typeof v === 'number';
  if (!has(od.consecutive5xxErrors) && !has(od.consecutiveGatewayErrors) && (od.consecutiveErrors ?? 0) > 0) {
    out.consecutive_gateway_failure = od.consecutiveErrors!;
    out.enforcing_consecutive_gateway_failure = 100;
    out.enforcing_consecutive_5xx = 0;
  }
  if (has(od.consecutive5xxErrors)) {
    out.consecutive_5xx = od.consecutive5xxErrors;
    out.enforcing_consecutive_5xx = enforcing(od.consecutive5xxErrors);
  }
  if (has(od.consecutiveGatewayErrors)) {
    out.consecutive_gateway_failure = od.consecutiveGatewayErrors;
    out.enforcing_consecutive_gateway_failure = enforcing(od.consecutiveGatewayErrors);
  }
  const interval = od.interval ? istioDurationToProto(od.interval) : undefined;
  if (interval) out.interval = interval;
  const base = od.baseEjectionTime ? istioDurationToProto(od.baseEjectionTime) : undefined;
  if (base) out.base_ejection_time = base;
  if ((od.maxEjectionPercent ?? 0) > 0) out.max_ejection_percent = od.maxEjectionPercent!;
  if (od.splitExternalLocalOriginErrors === true) {
    out.split_external_local_origin_errors = true;
    if ((od.consecutiveLocalOriginFailures ?? 0) > 0) {
      out.consecutive_local_origin_failure = od.consecutiveLocalOriginFailures!;
      out.enforcing_consecutive_local_origin_failure = 100;
    }
    out.enforcing_local_origin_success_rate = 0;
  }
  return {
    outlier_detection: out,
    common_lb_config: { healthy_panic_threshold: { value: Math.max(0, od.minHealthPercent ?? 0) } },
  };
}

function discoveryFields(name: string, service: Service, port: ServicePort, snap: MeshSnapshot): JsonObject {
  if (service.resolution === 'DNS' || service.resolution === 'DNS_ROUND_ROBIN') {
    const endpoints = snap.endpoints(service.hostname, port.number);
    const targets =
      endpoints.length > 0
        ? endpoints.map((e) => ({ address: e.address, port: e.port }))
        : [{ address: service.hostname, port: port.targetPort ?? port.number }];
    return {
      type: service.resolution === 'DNS' ? 'STRICT_DNS' : 'LOGICAL_DNS',
      load_assignment: {
        cluster_name: name,
        endpoints: [
          {
            lb_endpoints: targets.map((t) => ({
              endpoint: { address: { socket_address: { address: t.address, port_value: t.port } } },
            })),
          },
        ],
      },
    };
  }
  return { type: 'EDS', eds_cluster_config: { eds_config: ADS_SOURCE, service_name: name } };
}

/**
 * Istio's cluster metadata `istio.services`: the service behind the cluster, which a caller's stats report as
 * destination_service (host) and destination_service_name / namespace.
 */
function serviceMetadata(service: Service, snap: MeshSnapshot): JsonObject {
  return servicesMetadata([service], snap);
}

/** The `istio.services` cluster metadata for these services (an inbound cluster may serve several). */
export function servicesMetadata(services: readonly Service[], snap: MeshSnapshot): JsonObject {
  return {
    filter_metadata: {
      istio: {
        services: services.map((service) => {
          const inMesh = `.${service.namespace}.svc.${snap.options.domainSuffix}`;
          const name = service.hostname.endsWith(inMesh)
            ? service.hostname.slice(0, -inMesh.length)
            : service.hostname;
          return { host: service.hostname, name, namespace: service.namespace };
        }),
      },
    },
  };
}

function cluster(
  name: string,
  service: Service,
  port: ServicePort,
  policy: TrafficPolicy | undefined,
  snap: MeshSnapshot,
  opts: ClusterOptions,
  lbAnnotation?: string,
): JsonObject {
  const base: JsonObject = {
    '@type': TYPES.cluster,
    name,
    ...discoveryFields(name, service, port, snap),
    connect_timeout: CONNECT_TIMEOUT,
    ...lbPolicy(policy),
  };
  const annotated = opts.proxyless ? undefined : annotatedLbPolicy(lbAnnotation, policy);
  if (annotated) {
    delete base.lb_policy;
    Object.assign(base, annotated);
  }
  if (opts.proxyless) {
    // gRPC's xDS client balances with round robin or ring hash only, and ignores the rest.
    if (base.lb_policy !== 'RING_HASH') base.lb_policy = 'ROUND_ROBIN';
    return base;
  }
  // An upgraded port is carried as HTTP/2 end to end: pool, and the ALPN that tells the server side's codec.
  const protocol = h2Upgrade(policy, port.protocol, snap) ? 'HTTP2' : port.protocol;
  Object.assign(
    base,
    connectionPool(policy, outboundProtocol(policy, port.protocol, protocol)),
    outlierDetectionFields(policy),
    clusterTransport(name, service, policy?.tls, protocol, snap),
  );
  base.metadata = serviceMetadata(service, snap);
  // distribute, and failover's zone-aware spill, set locality weights in the assignment; Envoy applies them
  // only with this flag (which changes nothing while every locality has weight 1 in its own priority).
  if (localityPolicy(policy) !== undefined) {
    base.common_lb_config = {
      ...(base.common_lb_config as JsonObject | undefined),
      locality_weighted_lb_config: {},
    };
  }
  return base;
}

/**
 * The outbound clusters for these services, with subsets, sorted by name. With `memo` (one per configuration:
 * its keys assume the DestinationRules do not change), a cluster already built for another proxy is returned
 * as the same object — clusters differ between proxies only through the rule a proxy's namespace picks.
 */
export function outboundClusters(
  services: readonly Service[],
  proxyNamespace: string,
  snap: MeshSnapshot,
  opts: ClusterOptions,
  memo?: Map<string, JsonObject>,
): JsonObject[] {
  const out: JsonObject[] = [];
  for (const service of services) {
    const dr = destinationRuleFor(service.hostname, proxyNamespace, snap);
    const rule = dr ? `${dr.metadata.namespace}/${dr.metadata.name}` : '';
    const make = (name: string, build: () => JsonObject): JsonObject => {
      if (!memo) return build();
      const key = `${opts.proxyless ? 'g' : 's'}\u0000${name}\u0000${rule}`;
      let c = memo.get(key);
      if (!c) {
        c = build();
        memo.set(key, c);
      }
      return c;
    };
    for (const port of service.ports) {
      if (port.protocol === 'UDP') continue;
      const rulePolicy = dr?.spec.trafficPolicy;
      const lbAnnotation = dr?.metadata.annotations[LOAD_BALANCER_ANNOTATION];
      const name = outboundClusterName(port.number, '', service.hostname);
      out.push(
        make(name, () =>
          cluster(name, service, port, effectivePolicy([rulePolicy], port.number), snap, opts, lbAnnotation),
        ),
      );
      for (const subset of dr?.spec.subsets ?? []) {
        const subsetName = outboundClusterName(port.number, subset.name, service.hostname);
        out.push(
          make(subsetName, () =>
            cluster(
              subsetName,
              service,
              port,
              effectivePolicy([rulePolicy, subset.trafficPolicy], port.number),
              snap,
              opts,
              lbAnnotation,
            ),
          ),
        );
      }
    }
  }
  return out.sort((a, b) => (a.name as string).localeCompare(b.name as string));
}

/**
 * The tcp_proxy `idle_timeout` of a chain sending to `target` (a cluster name, or tcp_proxy's `cluster` /
 * `weighted_clusters`), from the DestinationRule of its first destination's host, as Istio picks it for
 * weighted routes too. Istio reads only the rule's top-level connectionPool.tcp.idleTimeout here: neither a
 * subset's nor a portLevelSettings' one reaches the listener. Empty (Envoy's 1 h default) without one.
 */
export function tcpIdleTimeoutFields(
  target: string | JsonObject,
  proxyNamespace: string,
  snap: MeshSnapshot,
): JsonObject {
  const weighted =
    typeof target === 'string' ? undefined : (target.weighted_clusters as JsonObject | undefined);
  const first =
    typeof target === 'string'
      ? target
      : ((target.cluster ?? (weighted?.clusters as JsonObject[] | undefined)?.[0]?.name) as
          string | undefined);
  const parsed = first === undefined ? undefined : parseClusterName(first);
  if (parsed?.direction !== 'outbound') return {};
  const dr = destinationRuleFor(parsed.host, proxyNamespace, snap);
  const idle = dr?.spec.trafficPolicy?.connectionPool?.tcp?.idleTimeout;
  const proto = idle ? istioDurationToProto(idle) : undefined;
  return proto ? { idle_timeout: proto } : {};
}

/** The cluster an inbound listener forwards to: the application on its own address. */
export function inboundCluster(
  listenerPort: number,
  app: { address: string; port: number },
  upstream: UpstreamProtocol,
  metadata?: JsonObject,
): JsonObject {
  return {
    '@type': TYPES.cluster,
    name: inboundClusterName(listenerPort),
    ...(metadata ? { metadata } : {}),
    type: 'STATIC',
    connect_timeout: CONNECT_TIMEOUT,
    lb_policy: 'ROUND_ROBIN',
    load_assignment: {
      cluster_name: inboundClusterName(listenerPort),
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: app.address, port_value: app.port } } } },
          ],
        },
      ],
    },
    // Istio's default (unlimited) circuit breakers apply to inbound clusters too.
    ...connectionPool(undefined, upstream),
  };
}
