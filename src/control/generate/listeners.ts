/**
 * Listeners and route configurations for sidecars and gateways.
 *
 * Sidecar without traffic capture (Istio's interception mode NONE): an outbound HTTP listener
 * (`virtualOutbound`, 127.0.0.1:15001 unless node metadata says otherwise), the applications' explicit proxy,
 * that routes by Host/:authority (or an absolute-form URI) to every visible HTTP service and tunnels
 * `CONNECT host:port` to any visible service port. With capture (node metadata `INTERCEPTION_MODE: REDIRECT`,
 * iptables sending the app's connections to that port) the same listener instead matches each connection by
 * its original destination: HTTP service ports by port, to per-port Host-routed route configurations, other
 * ports by service VIP and port, to tcp_proxy. Then one listener per Sidecar `egress` port; one per Sidecar
 * `ingress` port forwarding to the application's `defaultEndpoint`, or, captured and without `ingress`, one
 * inbound listener (`virtualInbound`, 0.0.0.0:15006) that matches each connection by its original destination
 * port to the workload port the services selecting it send to, forwarding to the application there on
 * 127.0.0.1. Gateway: one listener per Gateway server port, routes from the VirtualServices bound to it.
 */
import type { JsonObject } from '../../core/json.ts';
import type { IstioResource } from '../../api/istio/resource.ts';
import type {
  Gateway,
  L4MatchAttributes,
  RouteDestination,
  Server,
  VirtualService,
} from '../../api/istio/networking.ts';
import { labelsMatch } from '../model/discovery.ts';
import { workloadOfNode } from '../model/registry-source.ts';
import { isHttp, protocolOf } from '../model/protocol.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import type { Protocol, Service } from '../model/types.ts';
import type { ProxyNode } from '../xds/types.ts';
import { inboundCluster, servicesMetadata, tcpIdleTimeoutFields, upstreamProtocolOf } from './clusters.ts';
import { inboundRateLimit, rateLimitPolicyFor } from './rate-limit.ts';
import type { InboundRateLimit } from './rate-limit.ts';
import { authzFilters, authzPolicyKey } from './authz.ts';
import { jwtFilter, jwtPolicyKey } from './jwt.ts';
import { istioMutualDownstream, TCP_PEER_EXCHANGE_FILTER } from './mtls.ts';
import {
  downstreamTls,
  httpsRouteName,
  passthroughRoutes,
  serverNames,
  ServerNameClaims,
  serverTlsKind,
} from './gateway-tls.ts';
import { inboundMtlsKey, inboundMtlsMode } from './peer-authentication.ts';
import type { InboundMtlsMode } from './peer-authentication.ts';
import { FAIL_CLOSED_JWKS } from '../security/jwks-resolver.ts';
import { proxyTelemetry, telemetryKey } from './telemetry.ts';
import type { SideTelemetry } from './telemetry.ts';
import {
  ADS_SOURCE,
  inboundClusterName,
  outboundClusterName,
  TYPES,
  VIRTUAL_INBOUND,
  VIRTUAL_OUTBOUND,
} from './names.ts';
import type { RouteContext } from './routes.ts';
import { domainsFor, serviceRoutes, virtualServiceRoutes } from './routes.ts';
import { exportedTo, hostMatches, sidecarFor, virtualServiceFor, visibleServices } from './scope.ts';

const METADATA_EXCHANGE = 'istio.metadata_exchange';

export interface ListenerPlan {
  listeners: JsonObject[];
  routes: JsonObject[];
  /** Clusters that exist only because of a listener (inbound). */
  clusters: JsonObject[];
}

function address(host: string, port: number): JsonObject {
  return { socket_address: { address: host, port_value: port } };
}

/**
 * Outbound and gateway connection managers carry the CORS and fault filters (in Istio's order): a
 * VirtualService's corsPolicy and faults apply on the caller's side.
 */
function httpFilters(routeFilters: boolean, inbound = false, telemetry?: SideTelemetry): JsonObject[] {
  // On the inbound side the caller is a mesh proxy: its x-envoy-expected-rq-timeout-ms caps our timeout, so
  // the workload's sidecar gives up when the caller has, instead of holding a request nobody waits for.
  const routerConfig: JsonObject = { '@type': TYPES.router };
  if (inbound) routerConfig.respect_expected_rq_timeout = true;
  const router: JsonObject = { name: 'envoy.filters.http.router', typed_config: routerConfig };
  // As in Istio: metadata exchange first, so the peer is known (and this proxy announced) even when a later
  // filter answers locally; stats last before the router.
  const telemetryFilters = telemetry?.httpFilters ?? [];
  const first = telemetryFilters.filter((f) => f.name === METADATA_EXCHANGE);
  const last = [...telemetryFilters.filter((f) => f.name !== METADATA_EXCHANGE), router];
  return routeFilters
    ? [
        ...first,
        { name: 'envoy.filters.http.cors', typed_config: { '@type': TYPES.cors } },
        { name: 'envoy.filters.http.fault', typed_config: { '@type': TYPES.fault } },
        ...last,
      ]
    : [...first, ...last];
}

/** A side's access_log (and, for connection managers, tracing), as fields to spread into a filter's config. */
function telemetryFields(telemetry: SideTelemetry | undefined, http: boolean): JsonObject {
  if (!telemetry) return {};
  return {
    ...(telemetry.accessLog.length > 0 ? { access_log: telemetry.accessLog as JsonObject[] } : {}),
    ...(http && telemetry.tracing ? { tracing: telemetry.tracing } : {}),
  };
}

function hcm(
  statPrefix: string,
  routeSource: JsonObject,
  routeFilters: boolean,
  inbound = false,
  telemetry?: SideTelemetry,
): JsonObject {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': TYPES.hcm,
      stat_prefix: statPrefix,
      ...routeSource,
      http_filters: httpFilters(routeFilters, inbound, telemetry),
      upgrade_configs: [{ upgrade_type: 'websocket' }],
      ...telemetryFields(telemetry, true),
    },
  };
}

function rds(name: string): JsonObject {
  return { rds: { config_source: ADS_SOURCE, route_config_name: name } };
}

/** tcp_proxy to one cluster, or to the weighted clusters of a VirtualService tcp route. */
function tcpProxy(
  statPrefix: string,
  target: string | JsonObject,
  telemetry?: SideTelemetry,
  idle: JsonObject = {},
): JsonObject {
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: {
      '@type': TYPES.tcpProxy,
      stat_prefix: statPrefix,
      ...(typeof target === 'string' ? { cluster: target } : target),
      ...idle,
      ...telemetryFields(telemetry, false),
    },
  };
}

/**
 * A TCP chain's network filters: Istio's metadata exchange (whenever mTLS may carry the connection; it only
 * acts on connections that negotiated its ALPN), Istio's stats filter (when metrics are on), then tcp_proxy.
 * The exchange does not follow telemetry: the ALPN is offered by clusters and inbound chains alike, so a
 * proxy without it would pass the other side's frame to its application. Outbound chains pass the proxy's
 * namespace, which picks the DestinationRule whose connectionPool.tcp.idleTimeout applies; Istio's inbound
 * chains take no DestinationRule's.
 */
function tcpFilters(
  statPrefix: string,
  target: string | JsonObject,
  telemetry: SideTelemetry | undefined,
  snap: MeshSnapshot,
  outboundFrom?: string,
): JsonObject[] {
  const idle = outboundFrom === undefined ? {} : tcpIdleTimeoutFields(target, outboundFrom, snap);
  const proxy = tcpProxy(statPrefix, target, telemetry, idle);
  return [
    ...(snap.security !== undefined ? [TCP_PEER_EXCHANGE_FILTER] : []),
    ...(telemetry?.tcpFilters ?? []),
    proxy,
  ];
}

/** The cluster of a route destination (its port: given, the service's only one, else the listener's). */
function destinationClusterName(d: RouteDestination, listenerPort: number, snap: MeshSnapshot): string {
  const service = snap.serviceByHost.get(d.destination.host);
  const port =
    d.destination.port?.number ?? (service?.ports.length === 1 ? service.ports[0].number : listenerPort);
  return outboundClusterName(port, d.destination.subset ?? '', d.destination.host);
}

/**
 * Where a VirtualService's `tcp` routes send a connection on `port` from this proxy: the first route whose
 * match admits it (port, sourceLabels, sourceNamespace, gateways), as tcp_proxy's `cluster` or
 * `weighted_clusters` (destinations with weight 0 left out, as Istio does). Undefined when none applies.
 */
export function tcpRouteTarget(
  vs: IstioResource<VirtualService>,
  port: number,
  proxy: ProxyNode,
  gateway: string,
  snap: MeshSnapshot,
): JsonObject | undefined {
  for (const route of vs.spec.tcp ?? []) {
    const matches = route.match ?? [];
    const admits = (m: L4MatchAttributes): boolean =>
      (m.port === undefined || m.port === port) &&
      (!m.sourceLabels || labelsMatch(m.sourceLabels, proxy.labels)) &&
      (!m.sourceNamespace || m.sourceNamespace === proxy.namespace) &&
      (!m.gateways || m.gateways.length === 0 || m.gateways.includes(gateway));
    if (matches.length > 0 && !matches.some(admits)) continue;
    const destinations = route.route ?? [];
    if (destinations.length === 1) return { cluster: destinationClusterName(destinations[0], port, snap) };
    const weighted = destinations.filter((d) => (d.weight ?? 0) > 0);
    if (weighted.length === 0) return undefined;
    if (weighted.length === 1) return { cluster: destinationClusterName(weighted[0], port, snap) };
    return {
      weighted_clusters: {
        clusters: weighted.map((d) => ({
          name: destinationClusterName(d, port, snap),
          weight: d.weight ?? 0,
        })),
      },
    };
  }
  return undefined;
}

/** Listener filters Istio puts on ports whose protocol is sniffed. */
const SNIFFING_LISTENER_FILTERS: JsonObject[] = [
  {
    name: 'envoy.filters.listener.tls_inspector',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
    },
  },
  {
    name: 'envoy.filters.listener.http_inspector',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
    },
  },
];

/**
 * A listener's chains for a port whose protocol is not declared (Istio's protocol sniffing): HTTP/1.x and
 * h2c clients go to the HTTP connection manager, everything else to tcp_proxy. Istio's historic detection
 * timeout of 100 ms bounds how long a silent (server-first) client can delay its connection.
 */
function sniffedPort(http: JsonObject, tcp: readonly JsonObject[]): JsonObject {
  return {
    listener_filters: SNIFFING_LISTENER_FILTERS,
    listener_filters_timeout: '0.1s',
    continue_on_listener_filters_timeout: true,
    filter_chains: [
      {
        name: 'http',
        filter_chain_match: { application_protocols: ['http/1.0', 'http/1.1', 'h2c'] },
        filters: [http],
      },
    ],
    default_filter_chain: { name: 'tcp', filters: [...tcp] },
  };
}

const TLS_INSPECTOR_ONLY: JsonObject[] = [SNIFFING_LISTENER_FILTERS[0]];

/**
 * An inbound port's chains under PeerAuthentication: DISABLE (or no CA) keeps them plaintext; STRICT serves
 * only mTLS (a plaintext client matches no chain and is closed); PERMISSIVE tells the two apart by the first
 * bytes (tls_inspector) on the same port. Over TLS, an undeclared protocol is told by the client's ALPN.
 */
function inboundChains(
  protocol: Protocol,
  http: JsonObject,
  tcp: readonly JsonObject[],
  mode: InboundMtlsMode | undefined,
  trustDomain: string,
): JsonObject {
  const plain: JsonObject =
    protocol === 'UNSPECIFIED'
      ? sniffedPort(http, tcp)
      : { filter_chains: [{ filters: isHttp(protocol) ? [http] : [...tcp] }] };
  if (mode === undefined || mode === 'DISABLE') return plain;
  const tls = istioMutualDownstream(trustDomain);
  const tcpTls = istioMutualDownstream(trustDomain, true);
  const tlsChains: JsonObject[] =
    protocol === 'UNSPECIFIED'
      ? [
          {
            name: 'tls-http',
            filter_chain_match: { transport_protocol: 'tls', application_protocols: ['h2', 'http/1.1'] },
            transport_socket: tls,
            filters: [http],
          },
          {
            name: 'tls-tcp',
            filter_chain_match: { transport_protocol: 'tls' },
            transport_socket: tcpTls,
            filters: [...tcp],
          },
        ]
      : [
          {
            name: 'tls',
            filter_chain_match: { transport_protocol: 'tls' },
            transport_socket: isHttp(protocol) ? tls : tcpTls,
            filters: isHttp(protocol) ? [http] : [...tcp],
          },
        ];
  if (mode === 'STRICT') return { listener_filters: TLS_INSPECTOR_ONLY, filter_chains: tlsChains };
  const plainChains = (plain.filter_chains as JsonObject[]).map((c) => ({
    ...c,
    filter_chain_match: {
      ...(c.filter_chain_match as JsonObject | undefined),
      transport_protocol: 'raw_buffer',
    },
  }));
  return {
    listener_filters: protocol === 'UNSPECIFIED' ? SNIFFING_LISTENER_FILTERS : TLS_INSPECTOR_ONLY,
    // A server-first protocol sends nothing: after this, the connection is taken as plaintext.
    listener_filters_timeout: '0.1s',
    continue_on_listener_filters_timeout: true,
    filter_chains: [...tlsChains, ...plainChains],
    ...(plain.default_filter_chain ? { default_filter_chain: plain.default_filter_chain } : {}),
  };
}

/** Services in the proxy's namespace whose workload selector picks it. */
function selectingServices(proxy: ProxyNode, snap: MeshSnapshot): Service[] {
  return snap.services.filter(
    (s) =>
      s.namespace === proxy.namespace &&
      s.workloadSelector !== undefined &&
      labelsMatch(s.workloadSelector, proxy.labels),
  );
}

/** Services in the proxy's namespace whose workload selector picks it, with a port (or target port) `port`. */
function inboundServices(proxy: ProxyNode, snap: MeshSnapshot, port: number): Service[] {
  return selectingServices(proxy, snap).filter((s) =>
    s.ports.some((p) => p.number === port || p.targetPort === port),
  );
}

/** A workload port that services selecting the proxy reach, with its protocol and those services. */
interface WorkloadPort {
  port: number;
  protocol: Protocol;
  served: Service[];
}

/**
 * The ports of the proxy's own workload that the services selecting it send to, in port order: for each
 * service port the number an endpoint of this workload gets (see discovery.ts: the workload's named port from
 * POD_PORTS, else the targetPort, else the service port). Two services on one workload port share it; the
 * first (services are in a stable order) gives its protocol. UDP is left out: these are TCP listeners.
 */
function workloadPorts(proxy: ProxyNode, snap: MeshSnapshot): WorkloadPort[] {
  const named = workloadOfNode(proxy)?.ports ?? {};
  const byPort = new Map<number, WorkloadPort>();
  for (const service of selectingServices(proxy, snap)) {
    for (const p of service.ports) {
      if (p.protocol === 'UDP') continue;
      const port = named[p.name] ?? p.targetPort ?? p.number;
      const entry = byPort.get(port);
      if (!entry) byPort.set(port, { port, protocol: p.protocol, served: [service] });
      else if (!entry.served.includes(service)) entry.served.push(service);
    }
  }
  return [...byPort.values()].sort((a, b) => a.port - b.port);
}

/** The HTTP filters that guard a workload or gateway: JWT authentication, then authorization. */
function securityFilters(proxy: ProxyNode, snap: MeshSnapshot): JsonObject[] {
  const jwks = snap.jwks;
  const jwt = jwtFilter(
    proxy,
    snap,
    (uri) => jwks?.lookup(uri) ?? FAIL_CLOSED_JWKS,
    (issuer) => jwks?.lookupIssuer(issuer) ?? FAIL_CLOSED_JWKS,
  );
  return [...(jwt ? [jwt] : []), ...authzFilters(proxy, snap)];
}

function metadataString(proxy: ProxyNode, key: string): string | undefined {
  const v = proxy.metadata[key];
  return typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined;
}

/** The distinct `sourceLabels` of every VirtualService match (http and tcp): the only labels routes read from a proxy. */
const sourceLabelSelectors = new WeakMap<
  readonly IstioResource<VirtualService>[],
  readonly Readonly<Record<string, string>>[]
>();

function selectorsOf(snap: MeshSnapshot): readonly Readonly<Record<string, string>>[] {
  let list = sourceLabelSelectors.get(snap.virtualServices);
  if (!list) {
    const distinct = new Map<string, Readonly<Record<string, string>>>();
    for (const vs of snap.virtualServices)
      for (const route of [...(vs.spec.http ?? []), ...(vs.spec.tcp ?? []), ...(vs.spec.tls ?? [])])
        for (const m of route.match ?? [])
          if (m.sourceLabels) distinct.set(JSON.stringify(m.sourceLabels), m.sourceLabels);
    list = [...distinct.values()];
    sourceLabelSelectors.set(snap.virtualServices, list);
  }
  return list;
}

/**
 * Everything of a proxy that its listener plan depends on, as a string: two proxies with the same key get the
 * same plan (sidecarListeners / gatewayListeners read nothing else of the proxy), so a plan is built once per
 * key and shared. Labels count only as far as a selector that applies to them matches.
 */
export function planKey(proxy: ProxyNode, snap: MeshSnapshot): string {
  const labels = selectorsOf(snap)
    .map((s) => (labelsMatch(s, proxy.labels) ? '1' : '0'))
    .join('');
  if (proxy.type === 'router') {
    const gateways = snap.gateways
      .map((gw) =>
        Object.keys(gw.spec.selector ?? {}).length > 0 && labelsMatch(gw.spec.selector ?? {}, proxy.labels)
          ? '1'
          : '0',
      )
      .join('');
    return [
      'router',
      proxy.namespace,
      gateways,
      labels,
      metadataString(proxy, 'WEFT_GATEWAY_BIND') ?? '',
      securityKey(proxy, snap, []),
      telemetryKey(proxy, snap),
    ].join('\u0000');
  }
  const sidecar = sidecarFor(proxy, snap);
  const virtualInbound = virtualInboundAddress(proxy, sidecar);
  const inboundPorts = virtualInbound ? workloadPorts(proxy, snap) : [];
  return [
    'sidecar',
    proxy.namespace,
    sidecar ? `${sidecar.metadata.namespace}/${sidecar.metadata.name}` : '',
    labels,
    metadataString(proxy, 'WEFT_OUTBOUND_BIND') ?? '',
    metadataString(proxy, 'WEFT_OUTBOUND_PORT') ?? '',
    metadataString(proxy, 'INTERCEPTION_MODE') ?? '',
    // Ingress listeners without a bind address listen on the proxy's own.
    sidecar?.spec.ingress?.length ? (proxy.ipAddresses[0] ?? '') : '',
    sidecar?.spec.ingress?.length ? rateLimitKey(proxy, snap) : '',
    sidecar?.spec.ingress?.length ? securityKey(proxy, snap, sidecar.spec.ingress) : '',
    sidecar?.spec.ingress?.length
      ? sidecar.spec.ingress
          .map((i) => inboundServices(proxy, snap, i.port?.number ?? 0).map((s) => s.hostname))
          .join('\u0001')
      : '',
    virtualInbound ? `${virtualInbound.host}:${virtualInbound.port}` : '',
    virtualInbound ? rateLimitKey(proxy, snap) : '',
    virtualInbound
      ? securityKey(
          proxy,
          snap,
          inboundPorts.map((p) => ({ port: { number: p.port } })),
        )
      : '',
    inboundPorts
      .map((p) => [p.port, p.protocol, ...p.served.map((s) => s.hostname)].join(','))
      .join('\u0001'),
    telemetryKey(proxy, snap),
  ].join('\u0000');
}

/** What of a proxy its inbound security depends on: the policies that select it and its ports' mTLS modes. */
function securityKey(
  proxy: ProxyNode,
  snap: MeshSnapshot,
  ingress: readonly { port?: { number?: number }; defaultEndpoint?: string }[],
): string {
  const ports = ingress.map((i) => [
    i.port?.number ?? 0,
    ...(i.defaultEndpoint ? [parseEndpoint(i.defaultEndpoint).port] : []),
  ]);
  return [jwtPolicyKey(proxy, snap), authzPolicyKey(proxy, snap), inboundMtlsKey(proxy, snap, ports)].join(
    '\u0001',
  );
}

/** The RateLimitPolicy of a proxy's inbound side, for planKey. */
function rateLimitKey(proxy: ProxyNode, snap: MeshSnapshot): string {
  const p = rateLimitPolicyFor(proxy, snap);
  return p === undefined ? '' : `${p.metadata.namespace}/${p.metadata.name}`;
}

/**
 * A route that terminates `CONNECT host:port` and tunnels the bytes, raw, to `target` (a cluster, or a tcp
 * route's weighted clusters) over that cluster's transport: how HTTPS_PROXY and grpc_proxy clients reach a
 * service through the explicit outbound listener.
 */
function connectRoute(target: JsonObject): JsonObject {
  return {
    match: { connect_matcher: {} },
    route: { ...target, upgrade_configs: [{ upgrade_type: 'CONNECT', connect_config: {} }] },
  };
}

/** Where a CONNECT to a non-HTTP service port goes: its VirtualService's tcp routes, else its cluster. */
function connectTarget(service: Service, port: number, ctx: Omit<RouteContext, 'port'>): JsonObject {
  const vs = virtualServiceFor(service.hostname, 'mesh', ctx.snap, ctx.proxy.namespace);
  return (
    (vs && tcpRouteTarget(vs, port, ctx.proxy, 'mesh', ctx.snap)) ?? {
      cluster: outboundClusterName(port, '', service.hostname),
    }
  );
}

/**
 * A route configuration with one virtual host per service port, skipping domains an earlier host claimed.
 * With `connect` (the explicit outbound listener), every HTTP port's host also takes CONNECT to its
 * `host:port` names, and every other port of `connectOnly` gets a host that takes only CONNECT.
 */
function routeConfiguration(
  name: string,
  entries: readonly { service: Service; port: number }[],
  ctx: Omit<RouteContext, 'port'>,
  withBarePort: boolean,
  connectOnly?: readonly { service: Service; port: number }[],
): JsonObject {
  const used = new Set<string>();
  const virtualHosts: JsonObject[] = [];
  const connect = connectOnly !== undefined;
  for (const { service, port } of entries) {
    const domains = domainsFor(
      service,
      port,
      ctx.proxy.namespace,
      ctx.snap.options.domainSuffix,
      withBarePort || port === 80,
    ).filter((d) => !used.has(d));
    if (domains.length === 0) continue;
    for (const d of domains) used.add(d);
    const routes = serviceRoutes(service, { ...ctx, port });
    virtualHosts.push({
      name: `${service.hostname}:${port}`,
      domains,
      // A CONNECT request has no path, so it passes every path route to the connect route, kept last so the
      // service's own routes read as they do on any other listener.
      routes: connect
        ? [...routes, connectRoute({ cluster: outboundClusterName(port, '', service.hostname) })]
        : routes,
      // As Istio: the upstream sees which attempt it serves (x-envoy-attempt-count).
      include_request_attempt_count: true,
    });
  }
  for (const { service, port } of connectOnly ?? []) {
    const domains = domainsFor(
      service,
      port,
      ctx.proxy.namespace,
      ctx.snap.options.domainSuffix,
      false,
    ).filter((d) => !used.has(d));
    if (domains.length === 0) continue;
    for (const d of domains) used.add(d);
    virtualHosts.push({
      name: `${service.hostname}:${port}`,
      domains,
      routes: [connectRoute(connectTarget(service, port, ctx))],
    });
  }
  return { '@type': TYPES.route, name, virtual_hosts: virtualHosts, validate_clusters: false };
}

function httpPorts(services: readonly Service[], only?: number): { service: Service; port: number }[] {
  return services.flatMap((service) =>
    service.ports
      .filter((p) => isHttp(p.protocol) && (only === undefined || p.number === only))
      .map((p) => ({ service, port: p.number })),
  );
}

/** The ports that do not carry HTTP (TCP, and undeclared ones): reached through the outbound listener only by CONNECT. */
function nonHttpPorts(services: readonly Service[]): { service: Service; port: number }[] {
  return services.flatMap((service) =>
    service.ports.filter((p) => !isHttp(p.protocol)).map((p) => ({ service, port: p.number })),
  );
}

export function sidecarListeners(proxy: ProxyNode, snap: MeshSnapshot): ListenerPlan {
  const services = visibleServices(proxy, snap);
  const ctx = { proxy, snap, gateway: 'mesh' };
  const plan: ListenerPlan = { listeners: [], routes: [], clusters: [] };
  const telemetry = proxyTelemetry(proxy, snap);
  const bind = metadataString(proxy, 'WEFT_OUTBOUND_BIND') ?? '127.0.0.1';
  const outboundPort = Number(metadataString(proxy, 'WEFT_OUTBOUND_PORT') ?? 15001);
  if (outboundPort > 0 && metadataString(proxy, 'INTERCEPTION_MODE') === 'REDIRECT') {
    capturedOutbound(plan, services, address(bind, outboundPort), ctx, telemetry.client);
  } else if (outboundPort > 0) {
    // Applications point HTTP_PROXY / grpc_proxy here: besides Host-routed requests it takes absolute-form
    // requests (Envoy's allow_absolute_url, on by default) and CONNECT, which its connect routes terminate.
    const explicitProxyHcm = hcm(
      `outbound_${bind}_${outboundPort}`,
      rds(VIRTUAL_OUTBOUND),
      true,
      false,
      telemetry.client,
    );
    ((explicitProxyHcm.typed_config as JsonObject).upgrade_configs as JsonObject[]).push({
      upgrade_type: 'CONNECT',
    });
    plan.listeners.push({
      '@type': TYPES.listener,
      name: VIRTUAL_OUTBOUND,
      address: address(bind, outboundPort),
      traffic_direction: 'OUTBOUND',
      filter_chains: [{ filters: [explicitProxyHcm] }],
    });
    plan.routes.push(
      routeConfiguration(VIRTUAL_OUTBOUND, httpPorts(services), ctx, false, nonHttpPorts(services)),
    );
  }
  const sidecar = sidecarFor(proxy, snap);
  const virtualInbound = virtualInboundAddress(proxy, sidecar);
  const inboundSide = (sidecar?.spec.ingress?.length ?? 0) > 0 || virtualInbound !== undefined;
  const rateLimitPolicy = inboundSide ? rateLimitPolicyFor(proxy, snap) : undefined;
  const rateLimit = rateLimitPolicy && inboundRateLimit(rateLimitPolicy, snap);
  for (const egress of sidecar?.spec.egress ?? []) {
    const port = egress.port?.number;
    if (!port) continue;
    const host = egress.bind ?? bind;
    const name = `${host}_${port}`;
    const declared = protocolOf({ protocol: egress.port?.protocol, name: egress.port?.name });
    const onPort = services.filter((s) => s.ports.some((p) => p.number === port));
    const http =
      declared === 'UNSPECIFIED'
        ? onPort.some((s) => s.ports.some((p) => p.number === port && isHttp(p.protocol)))
        : isHttp(declared);
    if (http) {
      plan.listeners.push({
        '@type': TYPES.listener,
        name,
        address: address(host, port),
        traffic_direction: 'OUTBOUND',
        filter_chains: [
          { filters: [hcm(`outbound_${name}`, rds(String(port)), true, false, telemetry.client)] },
        ],
      });
      pushRoute(plan, routeConfiguration(String(port), httpPorts(onPort, port), ctx, true));
    } else if (
      declared === 'UNSPECIFIED' &&
      onPort.some((s) => s.ports.some((p) => p.number === port && p.protocol === 'UNSPECIFIED'))
    ) {
      // Neither the Sidecar nor the services say: sniff, as Istio does for undeclared outbound ports. HTTP goes
      // by Host to the services on this port; anything else to the first service's cluster.
      const sniffed = onPort.flatMap((service) =>
        service.ports
          .filter((p) => p.number === port && (p.protocol === 'UNSPECIFIED' || isHttp(p.protocol)))
          .map(() => ({ service, port })),
      );
      plan.listeners.push({
        '@type': TYPES.listener,
        name,
        address: address(host, port),
        traffic_direction: 'OUTBOUND',
        ...sniffedPort(
          hcm(`outbound_${name}`, rds(String(port)), true, false, telemetry.client),
          tcpFilters(
            `outbound_${name}`,
            outboundClusterName(port, '', onPort[0].hostname),
            telemetry.client,
            snap,
            proxy.namespace,
          ),
        ),
      });
      pushRoute(plan, routeConfiguration(String(port), sniffed, ctx, true));
    } else if (onPort.length > 0) {
      // A port-bound listener carries one TCP service (nothing tells two apart): the first; its
      // VirtualService's tcp routes (if any admit this proxy) decide where connections go.
      const service = onPort[0];
      const vs = virtualServiceFor(service.hostname, 'mesh', snap, proxy.namespace);
      const target =
        (vs && tcpRouteTarget(vs, port, proxy, 'mesh', snap)) ??
        outboundClusterName(port, '', service.hostname);
      plan.listeners.push({
        '@type': TYPES.listener,
        name,
        address: address(host, port),
        traffic_direction: 'OUTBOUND',
        filter_chains: [
          { filters: tcpFilters(`outbound_${name}`, target, telemetry.client, snap, proxy.namespace) },
        ],
      });
    }
  }
  const inbound: InboundContext = {
    proxy,
    snap,
    security: inboundSide ? securityFilters(proxy, snap) : [],
    rateLimit,
    telemetry: telemetry.server,
  };
  for (const ingress of sidecar?.spec.ingress ?? []) {
    const port = ingress.port?.number;
    if (!port || !ingress.defaultEndpoint) continue;
    const host = ingress.bind ?? proxy.ipAddresses[0] ?? '0.0.0.0';
    const name = `${host}_${port}`;
    const app = parseEndpoint(ingress.defaultEndpoint);
    const chains = inboundPort(
      plan,
      {
        name,
        port,
        protocol: protocolOf({ protocol: ingress.port?.protocol, name: ingress.port?.name }),
        app,
        served: inboundServices(proxy, snap, port),
        mtlsPorts: [port, app.port],
      },
      inbound,
    );
    plan.listeners.push({
      '@type': TYPES.listener,
      name,
      address: address(host, port),
      traffic_direction: 'INBOUND',
      ...chains,
    });
  }
  if (virtualInbound) capturedInbound(plan, virtualInbound, inbound);
  return plan;
}

/** Adds a route configuration unless one of that name is there (a captured port that is also a Sidecar egress port). */
function pushRoute(plan: ListenerPlan, route: JsonObject): void {
  if (!plan.routes.some((r) => r.name === route.name)) plan.routes.push(route);
}

const ORIGINAL_DST_LISTENER_FILTER: JsonObject = {
  name: 'envoy.filters.listener.original_dst',
  typed_config: {
    '@type': 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
  },
};

/**
 * The outbound listener of a sidecar whose app's connections iptables redirects to it: one filter chain per
 * HTTP port (any address: the Host header picks the service, as on Istio's `0.0.0.0_<port>` listeners) and
 * one per non-HTTP service port and VIP. A connection to anything else matches no chain and is closed, as
 * Istio's REGISTRY_ONLY outbound traffic policy does; there is no passthrough.
 */
function capturedOutbound(
  plan: ListenerPlan,
  services: readonly Service[],
  listenAt: JsonObject,
  ctx: Omit<RouteContext, 'port'>,
  telemetry: SideTelemetry | undefined,
): void {
  const chains: JsonObject[] = [];
  const http = [...new Set(httpPorts(services).map((p) => p.port))].sort((a, b) => a - b);
  for (const port of http) {
    const name = `0.0.0.0_${port}`;
    chains.push({
      name,
      filter_chain_match: { destination_port: port },
      filters: [hcm(`outbound_${name}`, rds(String(port)), true, false, telemetry)],
    });
    pushRoute(plan, routeConfiguration(String(port), httpPorts(services, port), ctx, true));
  }
  const claimed = new Set<string>();
  for (const { service, port } of nonHttpPorts(services)) {
    for (const vip of service.addresses) {
      // Two services claiming one VIP and port: the first (services are in a stable order) keeps it.
      if (claimed.has(`${vip}:${port}`)) continue;
      claimed.add(`${vip}:${port}`);
      const vs = virtualServiceFor(service.hostname, 'mesh', ctx.snap, ctx.proxy.namespace);
      const target =
        (vs && tcpRouteTarget(vs, port, ctx.proxy, 'mesh', ctx.snap)) ??
        outboundClusterName(port, '', service.hostname);
      const [ip, len] = vip.split('/');
      chains.push({
        name: `${vip}_${port}`,
        filter_chain_match: {
          destination_port: port,
          prefix_ranges: [{ address_prefix: ip, prefix_len: Number(len ?? (ip.includes(':') ? 128 : 32)) }],
        },
        filters: tcpFilters(`outbound_${ip}_${port}`, target, telemetry, ctx.snap, ctx.proxy.namespace),
      });
    }
  }
  if (chains.length === 0) return;
  plan.listeners.push({
    '@type': TYPES.listener,
    name: VIRTUAL_OUTBOUND,
    address: listenAt,
    traffic_direction: 'OUTBOUND',
    listener_filters: [ORIGINAL_DST_LISTENER_FILTER],
    filter_chains: chains,
  });
}

/** What every inbound port of a sidecar shares: its security filters, rate limit and server-side telemetry. */
interface InboundContext {
  proxy: ProxyNode;
  snap: MeshSnapshot;
  security: readonly JsonObject[];
  rateLimit: InboundRateLimit | undefined;
  telemetry: SideTelemetry | undefined;
}

/** One inbound port: its listener-style name (stat prefixes), the number its cluster is named by, and its application. */
interface InboundPortSpec {
  name: string;
  port: number;
  protocol: Protocol;
  app: { address: string; port: number };
  /** The services this workload serves on the port. */
  served: readonly Service[];
  /** The numbers PeerAuthentication's portLevelMtls may know the port by. */
  mtlsPorts: readonly number[];
}

/**
 * One inbound port's filter chains (and the listener filters they need, as listener fields) to its
 * application, whose inbound cluster it adds to the plan: the connection manager or tcp_proxy behind
 * PeerAuthentication's mTLS mode, with authentication, authorization and rate limiting on HTTP.
 */
function inboundPort(plan: ListenerPlan, p: InboundPortSpec, ctx: InboundContext): JsonObject {
  const { proxy, snap, rateLimit } = ctx;
  // As Istio's inbound clusters: the services this workload serves on the port, which the destination
  // reporter's metrics name (destination_service), since the Host header is not trusted for that.
  plan.clusters.push(
    inboundCluster(
      p.port,
      p.app,
      upstreamProtocolOf(p.protocol),
      p.served.length ? servicesMetadata(p.served, snap) : undefined,
    ),
  );
  const cluster = inboundClusterName(p.port);
  const httpFilter = hcm(
    `inbound_${p.name}`,
    {
      route_config: {
        name: cluster,
        virtual_hosts: [
          {
            name: `inbound|http|${p.port}`,
            domains: ['*'],
            routes: [
              {
                match: { prefix: '/' },
                route: {
                  cluster,
                  timeout: '0s',
                  // As Istio's default inbound route: a gRPC caller's grpc-timeout bounds the request.
                  max_grpc_timeout: '0s',
                  ...(rateLimit?.rateLimits.length ? { rate_limits: rateLimit.rateLimits } : {}),
                },
              },
            ],
          },
        ],
      },
    },
    false,
    true,
    ctx.telemetry,
  );
  // Authentication and authorization, then a RateLimitPolicy's limit, run after metadata exchange and
  // before the stats filter and the router.
  const filters = (httpFilter.typed_config as JsonObject).http_filters as JsonObject[];
  const at = filters.findIndex((f) => f.name !== METADATA_EXCHANGE);
  filters.splice(at, 0, ...ctx.security, ...(rateLimit?.filters ?? []));
  const tcpFilter = tcpFilters(`inbound_${p.name}`, cluster, ctx.telemetry, snap);
  const mode = snap.security ? inboundMtlsMode(proxy, snap, p.mtlsPorts) : undefined;
  if (mode !== undefined && mode !== 'DISABLE') {
    // As Istio's inbound: the application learns its caller's identity from x-forwarded-client-cert.
    Object.assign(httpFilter.typed_config as JsonObject, {
      forward_client_cert_details: 'APPEND_FORWARD',
      set_current_client_cert_details: { subject: true, dns: true, uri: true },
    });
  }
  return inboundChains(p.protocol, httpFilter, tcpFilter, mode, snap.security?.trustDomain ?? '');
}

/**
 * Where a sidecar's `virtualInbound` listens, when it has one: with capture (INTERCEPTION_MODE REDIRECT) and
 * no Sidecar `ingress` (which, as in Istio, replaces it), on 0.0.0.0:15006 unless node metadata
 * WEFT_INBOUND_BIND / WEFT_INBOUND_PORT say otherwise (port 0: none).
 */
function virtualInboundAddress(
  proxy: ProxyNode,
  sidecar: ReturnType<typeof sidecarFor>,
): { host: string; port: number } | undefined {
  if (metadataString(proxy, 'INTERCEPTION_MODE') !== 'REDIRECT' || sidecar?.spec.ingress?.length)
    return undefined;
  const port = Number(metadataString(proxy, 'WEFT_INBOUND_PORT') ?? 15006);
  if (!(port > 0)) return undefined;
  return { host: metadataString(proxy, 'WEFT_INBOUND_BIND') ?? '0.0.0.0', port };
}

/**
 * The inbound listener of a sidecar whose workload's incoming connections iptables redirects to it (Istio's
 * `virtualInbound`): the chains of each workload port, told apart by the connection's original destination
 * port, forwarding to the application on 127.0.0.1 at that port. A connection to a port no service sends to
 * matches no chain and is closed: Istio would pass it through to the application, but Weft has no
 * ORIGINAL_DST cluster to do that with.
 */
function capturedInbound(plan: ListenerPlan, at: { host: string; port: number }, ctx: InboundContext): void {
  const chains: JsonObject[] = [];
  const inspectors = new Set<string>();
  // Weft's listener filters cannot be turned off per destination port (Envoy's filter_disabled), so the
  // listener inspects every connection once one port needs it; a port that needs no inspection of its own
  // must then not lose a silent (server-first) client, hence Istio's short timeout and carrying on as
  // plaintext. Only when every port inspects on its own terms (all STRICT) are those terms kept.
  let carryOn = false;
  for (const { port, protocol, served } of workloadPorts(ctx.proxy, ctx.snap)) {
    const name = `${at.host}_${port}`;
    const fields = inboundPort(
      plan,
      { name, port, protocol, app: { address: '127.0.0.1', port }, served, mtlsPorts: [port] },
      ctx,
    );
    const own = (fields.listener_filters as JsonObject[] | undefined) ?? [];
    for (const f of own) inspectors.add(f.name as string);
    if (own.length === 0 || fields.continue_on_listener_filters_timeout === true) carryOn = true;
    const portChains = fields.filter_chains as JsonObject[];
    const fallback = fields.default_filter_chain as JsonObject | undefined;
    // A port's default chain (a sniffed port's tcp_proxy) becomes the least specific chain of that port,
    // limited to plaintext when the port's other plaintext chains are.
    const plaintext = portChains.some(
      (c) => (c.filter_chain_match as JsonObject | undefined)?.transport_protocol === 'raw_buffer',
    );
    const last: JsonObject[] = fallback
      ? [{ ...fallback, filter_chain_match: plaintext ? { transport_protocol: 'raw_buffer' } : {} }]
      : [];
    for (const c of [...portChains, ...last]) {
      chains.push({
        ...c,
        name: c.name ? `${name}/${c.name as string}` : name,
        filter_chain_match: { destination_port: port, ...(c.filter_chain_match as JsonObject | undefined) },
      });
    }
  }
  if (chains.length === 0) return;
  const inspection = SNIFFING_LISTENER_FILTERS.filter((f) => inspectors.has(f.name as string));
  plan.listeners.push({
    '@type': TYPES.listener,
    name: VIRTUAL_INBOUND,
    address: address(at.host, at.port),
    traffic_direction: 'INBOUND',
    listener_filters: [ORIGINAL_DST_LISTENER_FILTER, ...inspection],
    ...(inspection.length > 0 && carryOn
      ? { listener_filters_timeout: '0.1s', continue_on_listener_filters_timeout: true }
      : {}),
    filter_chains: chains,
  });
}

/** `127.0.0.1:8080` → address and port (Istio's Sidecar defaultEndpoint; `0.0.0.0:` and `[::]:` mean the workload's own). */
function parseEndpoint(text: string): { address: string; port: number } {
  const colon = text.lastIndexOf(':');
  let host = text.slice(0, colon).replace(/^\[|\]$/g, '');
  if (host === '0.0.0.0' || host === '::' || host === '') host = '127.0.0.1';
  return { address: host, port: Number(text.slice(colon + 1)) };
}

function gatewayName(gw: IstioResource<Gateway>): string {
  return `${gw.metadata.namespace}/${gw.metadata.name}`;
}

/** Gateway server hosts are `host` or `ns/host`; does one admit a VirtualService host? */
function serverAdmits(serverHost: string, vsHost: string): boolean {
  const host = serverHost.includes('/') ? serverHost.slice(serverHost.indexOf('/') + 1) : serverHost;
  return hostMatches(host, vsHost) || hostMatches(vsHost, host);
}

/** A Gateway server as the gateway's listeners see it. */
interface GatewayServer {
  gw: IstioResource<Gateway>;
  server: Server;
  protocol: Protocol;
}

/** What a gateway port serves: routed HTTP, TCP, or TLS chains picked by SNI (terminated or passed through). */
type GatewayPortKind = 'http' | 'tcp' | 'tls';

function gatewayPortKind(protocol: Protocol): GatewayPortKind | undefined {
  if (isHttp(protocol)) return 'http';
  if (protocol === 'TCP') return 'tcp';
  if (protocol === 'HTTPS' || protocol === 'TLS') return 'tls';
  return undefined;
}

/** Envoy's require_tls: ALL, as a route (Weft's router refuses require_tls): a 301 to the https URL. */
const HTTPS_REDIRECT_ROUTES: JsonObject[] = [{ match: { prefix: '/' }, redirect: { https_redirect: true } }];

/**
 * The virtual hosts of the VirtualServices bound to these servers' gateways, for the hosts the servers admit;
 * a domain an earlier host claimed is not repeated. A server with `tls.httpsRedirect` sends its hosts to https.
 */
function gatewayVirtualHosts(
  servers: readonly GatewayServer[],
  port: number,
  proxy: ProxyNode,
  snap: MeshSnapshot,
): JsonObject[] {
  const virtualHosts: JsonObject[] = [];
  const used = new Set<string>();
  for (const { gw, server } of servers) {
    const hosts = server.hosts ?? [];
    const redirect = server.tls?.httpsRedirect === true;
    const ctx: RouteContext = { proxy, snap, gateway: gatewayName(gw), port };
    for (const vs of snap.virtualServices) {
      if (!(vs.spec.gateways ?? []).includes(ctx.gateway)) continue;
      if (!exportedTo(vs.spec.exportTo, vs.metadata.namespace, proxy.namespace)) continue;
      for (const host of vs.spec.hosts ?? []) {
        if (!hosts.some((h) => serverAdmits(h, host))) continue;
        const domains = [host, `${host}:*`].filter((d) => !used.has(d));
        if (domains.length === 0 || (host === '*' && used.has('*'))) continue;
        for (const d of domains) used.add(d);
        virtualHosts.push({
          name: `${host}:${port}`,
          domains: host === '*' ? ['*'] : domains,
          routes: redirect ? HTTPS_REDIRECT_ROUTES : virtualServiceRoutes(vs, ctx),
        });
      }
    }
  }
  return virtualHosts;
}

/** A gateway's connection manager: its RequestAuthentication and AuthorizationPolicy guard every request first. */
function gatewayHcm(
  statPrefix: string,
  routeName: string,
  security: readonly JsonObject[],
  telemetry: SideTelemetry,
): JsonObject {
  const manager = hcm(statPrefix, rds(routeName), true, false, telemetry);
  const filters = (manager.typed_config as JsonObject).http_filters as JsonObject[];
  filters.splice(
    filters.findIndex((f) => f.name !== METADATA_EXCHANGE),
    0,
    ...security,
  );
  return manager;
}

/** A TCP (or terminated TLS) server's target: the first VirtualService bound to the gateway whose tcp routes admit the port. */
function gatewayTcpTarget(
  gateway: string,
  port: number,
  proxy: ProxyNode,
  snap: MeshSnapshot,
): JsonObject | undefined {
  for (const v of snap.virtualServices) {
    if (!(v.spec.gateways ?? []).includes(gateway) || (v.spec.tcp ?? []).length === 0) continue;
    if (!exportedTo(v.spec.exportTo, v.metadata.namespace, proxy.namespace)) continue;
    const target = tcpRouteTarget(v, port, proxy, gateway, snap);
    if (target) return target;
  }
  return undefined;
}

/** The VirtualServices with `tls` routes bound to a gateway and visible to the proxy. */
function tlsBoundVirtualServices(
  gateway: string,
  proxy: ProxyNode,
  snap: MeshSnapshot,
): IstioResource<VirtualService>[] {
  return snap.virtualServices.filter(
    (v) =>
      (v.spec.gateways ?? []).includes(gateway) &&
      (v.spec.tls ?? []).length > 0 &&
      exportedTo(v.spec.exportTo, v.metadata.namespace, proxy.namespace),
  );
}

/**
 * A TLS port's filter chains, one per terminating server (its certificate, selected by SNI from its hosts) and
 * one per passthrough `tls` route match (its sniHosts, to tcp_proxy, no termination). Terminating HTTPS
 * servers get their own route configurations, added to `routes`.
 */
function gatewayTlsChains(
  servers: readonly GatewayServer[],
  listenerName: string,
  proxy: ProxyNode,
  snap: MeshSnapshot,
  security: readonly JsonObject[],
  routes: JsonObject[],
  telemetry: SideTelemetry,
): JsonObject[] {
  const claims = new ServerNameClaims();
  const routeNames = new Set<string>();
  const chains: JsonObject[] = [];
  const statPrefix = `outbound_${listenerName}`;
  const match = (names: readonly string[]): JsonObject =>
    names.length > 0 ? { filter_chain_match: { server_names: [...names] } } : {};
  for (const s of servers) {
    const gateway = gatewayName(s.gw);
    const port = s.server.port.number;
    const kind = serverTlsKind(s.server.tls);
    if (kind === 'passthrough') {
      for (const r of passthroughRoutes(
        s.server,
        gateway,
        tlsBoundVirtualServices(gateway, proxy, snap),
        proxy,
        snap,
      )) {
        const names = claims.claim(r.serverNames);
        if (!names) continue;
        chains.push({
          name: `passthrough:${names.join(',')}`,
          ...match(names),
          filters: tcpFilters(statPrefix, r.target, telemetry, snap, proxy.namespace),
        });
      }
      continue;
    }
    if (kind !== 'terminate') continue;
    const http = s.protocol === 'HTTPS';
    const tls = downstreamTls(s.server.tls!, http, snap.security?.trustDomain);
    if ('skipped' in tls) continue;
    const target = http ? undefined : gatewayTcpTarget(gateway, port, proxy, snap);
    if (!http && !target) continue;
    const names = claims.claim(serverNames(s.server.hosts ?? []));
    if (!names) continue;
    let filters: JsonObject[];
    if (http) {
      let routeName = httpsRouteName(s.server, s.gw);
      for (let i = 1; routeNames.has(routeName); i++) routeName = `${httpsRouteName(s.server, s.gw)}.${i}`;
      routeNames.add(routeName);
      routes.push({
        '@type': TYPES.route,
        name: routeName,
        virtual_hosts: gatewayVirtualHosts([s], port, proxy, snap),
        validate_clusters: false,
      });
      filters = [gatewayHcm(statPrefix, routeName, security, telemetry)];
    } else {
      filters = tcpFilters(statPrefix, target!, telemetry, snap, proxy.namespace);
    }
    chains.push({
      name: `${gateway}/${s.server.name ?? s.server.port.name}`,
      ...match(names),
      transport_socket: tls.socket,
      filters,
    });
  }
  return chains;
}

export function gatewayListeners(proxy: ProxyNode, snap: MeshSnapshot): ListenerPlan {
  const plan: ListenerPlan = { listeners: [], routes: [], clusters: [] };
  const gateways = snap.gateways.filter(
    (gw) =>
      labelsMatch(gw.spec.selector ?? {}, proxy.labels) && Object.keys(gw.spec.selector ?? {}).length > 0,
  );
  const bind = metadataString(proxy, 'WEFT_GATEWAY_BIND') ?? '0.0.0.0';
  const security = securityFilters(proxy, snap);
  const telemetry = proxyTelemetry(proxy, snap).gateway;
  const byPort = new Map<number, GatewayServer[]>();
  for (const gw of gateways) {
    for (const server of gw.spec.servers ?? []) {
      const protocol = protocolOf({ protocol: server.port.protocol, name: server.port.name });
      if (gatewayPortKind(protocol) === undefined) continue;
      const list = byPort.get(server.port.number) ?? [];
      list.push({ gw, server, protocol });
      byPort.set(server.port.number, list);
    }
  }
  for (const [port, all] of [...byPort.entries()].sort(([a], [b]) => a - b)) {
    const name = `${bind}_${port}`;
    // One port serves one kind: the first server's; servers of another kind on it are conflicts and left out.
    const kind = gatewayPortKind(all[0].protocol);
    const servers = all.filter((s) => gatewayPortKind(s.protocol) === kind);
    const listener = (chains: JsonObject): JsonObject => ({
      '@type': TYPES.listener,
      name,
      address: address(bind, port),
      traffic_direction: 'OUTBOUND',
      ...chains,
    });
    if (kind === 'http') {
      const routeName = `http.${port}`;
      plan.routes.push({
        '@type': TYPES.route,
        name: routeName,
        virtual_hosts: gatewayVirtualHosts(servers, port, proxy, snap),
        validate_clusters: false,
      });
      plan.listeners.push(
        listener({
          filter_chains: [{ filters: [gatewayHcm(`outbound_${name}`, routeName, security, telemetry)] }],
        }),
      );
    } else if (kind === 'tls') {
      const chains = gatewayTlsChains(servers, name, proxy, snap, security, plan.routes, telemetry);
      if (chains.length === 0) continue;
      // An unknown SNI matches no chain: the connection is closed.
      plan.listeners.push(listener({ listener_filters: TLS_INSPECTOR_ONLY, filter_chains: chains }));
    } else {
      const target = gatewayTcpTarget(gatewayName(servers[0].gw), port, proxy, snap);
      if (!target) continue;
      plan.listeners.push(
        listener({
          filter_chains: [
            { filters: tcpFilters(`outbound_${name}`, target, telemetry, snap, proxy.namespace) },
          ],
        }),
      );
    }
  }
  return plan;
}

/** gRPC's proxyless client asks for a listener per target (`host:port`): an API listener with RDS of the same name. */
export function grpcListener(name: string, snap: MeshSnapshot): JsonObject | undefined {
  const target = parseTarget(name, snap);
  if (!target) return undefined;
  return {
    '@type': TYPES.listener,
    name,
    api_listener: {
      api_listener: {
        '@type': TYPES.hcm,
        stat_prefix: name,
        ...rds(name),
        // gRPC's xDS clients implement fault and router (gRFC A31/A33); an unknown filter would be NACKed.
        http_filters: httpFilters(true).filter((f) => f.name !== 'envoy.filters.http.cors'),
      },
    },
  };
}

export function grpcRouteConfiguration(
  name: string,
  proxy: ProxyNode,
  snap: MeshSnapshot,
): JsonObject | undefined {
  const target = parseTarget(name, snap);
  if (!target) return undefined;
  const { service, port } = target;
  const ctx: RouteContext = { proxy, snap, gateway: 'mesh', port, proxyless: true };
  return {
    '@type': TYPES.route,
    name,
    virtual_hosts: [
      {
        name,
        domains: [
          name,
          ...domainsFor(service, port, proxy.namespace, snap.options.domainSuffix, true).filter(
            (d) => d !== name,
          ),
        ],
        routes: serviceRoutes(service, ctx),
      },
    ],
  };
}

/** `host:port` (or `host`, meaning the service's only port) → the service and port, if known. */
function parseTarget(name: string, snap: MeshSnapshot): { service: Service; port: number } | undefined {
  const colon = name.lastIndexOf(':');
  const host = colon > 0 ? name.slice(0, colon) : name;
  const service =
    snap.serviceByHost.get(host) ??
    [...snap.serviceByHost.values()].find((s) => s.hostname.startsWith(`${host}.`));
  if (!service) return undefined;
  const port =
    colon > 0 ? Number(name.slice(colon + 1)) : service.ports.length === 1 ? service.ports[0].number : NaN;
  if (!service.ports.some((p) => p.number === port)) return undefined;
  return { service, port };
}
