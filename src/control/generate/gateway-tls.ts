/**
 * Gateway servers that speak TLS (Istio's `servers[].tls`): the DownstreamTlsContext a terminating server
 * (SIMPLE, MUTUAL, OPTIONAL_MUTUAL, ISTIO_MUTUAL) gets, the SNI names that select its filter chain, the name
 * of its route configuration, and where a PASSTHROUGH server's VirtualService `tls` routes send a connection.
 * Certificates come from files only: credentialName (a Kubernetes secret) has no source here, so the
 * config loader reports it as unsupported (WE0200) and a server with no certificate file gets no chain.
 */
import type { JsonObject } from '../../core/json.ts';
import type { IstioResource } from '../../api/istio/resource.ts';
import type {
  Gateway,
  RouteDestination,
  Server,
  ServerTLSSettings,
  TLSMatchAttributes,
  TLSProtocol,
  VirtualService,
} from '../../api/istio/networking.ts';
import { labelsMatch } from '../model/discovery.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import type { ProxyNode } from '../xds/types.ts';
import { istioMutualDownstream } from './mtls.ts';
import { outboundClusterName, TYPES } from './names.ts';
import { hostMatches } from './scope.ts';

/** What a server does with TLS, decided once from its mode. */
export type ServerTlsKind = 'terminate' | 'passthrough' | 'unsupported';

export function serverTlsKind(tls: ServerTLSSettings | undefined): ServerTlsKind {
  switch (tls?.mode) {
    case 'SIMPLE':
    case 'MUTUAL':
    case 'OPTIONAL_MUTUAL':
    case 'ISTIO_MUTUAL':
      return 'terminate';
    case 'PASSTHROUGH':
      return 'passthrough';
    default:
      // No mode (Istio refuses an HTTPS/TLS server without one) or AUTO_PASSTHROUGH (needs SNI-encoded
      // cluster names from east-west gateways, which Weft does not generate).
      return 'unsupported';
  }
}

/** A server host without its `namespace/` part. */
export function bareHost(serverHost: string): string {
  return serverHost.includes('/') ? serverHost.slice(serverHost.indexOf('/') + 1) : serverHost;
}

/** The SNI names of a server's chain: its hosts, none (any SNI, or none at all) when one of them is `*`. */
export function serverNames(hosts: readonly string[]): string[] {
  const bare = hosts.map(bareHost);
  return bare.includes('*') ? [] : [...new Set(bare)];
}

/**
 * Istio's name for an HTTPS server's route configuration (`https.<port>.<port name>.<gateway>.<namespace>`):
 * each terminating HTTPS server has its own, as its hosts (and so its virtual hosts) differ.
 */
export function httpsRouteName(server: Server, gw: IstioResource<Gateway>): string {
  return `https.${server.port.number}.${server.port.name}.${gw.metadata.name}.${gw.metadata.namespace}`;
}

/** Istio spells TLS versions TLSV1_2; Envoy TLSv1_2. */
function envoyTlsVersion(v: TLSProtocol): string {
  return v === 'TLS_AUTO' ? v : v.replace('TLSV', 'TLSv');
}

function tlsParams(tls: ServerTLSSettings): JsonObject | undefined {
  const params: JsonObject = {};
  if (tls.minProtocolVersion) params.tls_minimum_protocol_version = envoyTlsVersion(tls.minProtocolVersion);
  if (tls.maxProtocolVersion) params.tls_maximum_protocol_version = envoyTlsVersion(tls.maxProtocolVersion);
  if (tls.cipherSuites?.length) params.cipher_suites = [...tls.cipherSuites];
  if (tls.ecdhCurves?.length) params.ecdh_curves = [...tls.ecdhCurves];
  return Object.keys(params).length > 0 ? params : undefined;
}

/** Why a terminating server gets no chain, or its transport socket. */
export type DownstreamTls = { socket: JsonObject } | { skipped: string };

/**
 * The transport socket of a terminating server. SIMPLE: the server's certificate and key files; MUTUAL: also
 * the client CA (`caCertificates`), client certificates required and checked against `subjectAltNames`;
 * OPTIONAL_MUTUAL: asked for and checked when sent, not required; ISTIO_MUTUAL: the mesh's workload
 * certificate and trust bundle (needs the control plane's CA). ALPN offers h2 and http/1.1 for HTTP servers.
 */
export function downstreamTls(
  tls: ServerTLSSettings,
  http: boolean,
  trustDomain: string | undefined,
): DownstreamTls {
  const alpn = http ? ['h2', 'http/1.1'] : [];
  if (tls.mode === 'ISTIO_MUTUAL') {
    if (trustDomain === undefined) return { skipped: 'ISTIO_MUTUAL needs the control plane CA' };
    const socket = istioMutualDownstream(trustDomain);
    const context = socket.typed_config as JsonObject;
    const common = context.common_tls_context as JsonObject;
    if (alpn.length === 0) delete common.alpn_protocols;
    const params = tlsParams(tls);
    if (params) common.tls_params = params;
    return { socket };
  }
  if (!tls.serverCertificate || !tls.privateKey)
    return {
      skipped: tls.credentialName
        ? 'credentialName (a Kubernetes secret) is not supported: set serverCertificate and privateKey'
        : `${tls.mode} needs serverCertificate and privateKey`,
    };
  const mutual = tls.mode === 'MUTUAL' || tls.mode === 'OPTIONAL_MUTUAL';
  if (mutual && !tls.caCertificates) return { skipped: `${tls.mode} needs caCertificates` };
  const common: JsonObject = {
    tls_certificates: [
      { certificate_chain: { filename: tls.serverCertificate }, private_key: { filename: tls.privateKey } },
    ],
  };
  const params = tlsParams(tls);
  if (params) common.tls_params = params;
  if (mutual) {
    const validation: JsonObject = { trusted_ca: { filename: tls.caCertificates! } };
    if (tls.subjectAltNames?.length)
      validation.match_subject_alt_names = tls.subjectAltNames.map((n) => ({ exact: n }));
    common.validation_context = validation;
  }
  if (alpn.length > 0) common.alpn_protocols = alpn;
  const context: JsonObject = { '@type': TYPES.downstreamTls, common_tls_context: common };
  if (tls.mode === 'MUTUAL') context.require_client_certificate = true;
  return { socket: { name: 'envoy.transport_sockets.tls', typed_config: context } };
}

/** The cluster of a route destination (its port: given, the service's only one, else the listener's). */
function destinationCluster(d: RouteDestination, listenerPort: number, snap: MeshSnapshot): string {
  const service = snap.serviceByHost.get(d.destination.host);
  const port =
    d.destination.port?.number ?? (service?.ports.length === 1 ? service.ports[0].number : listenerPort);
  return outboundClusterName(port, d.destination.subset ?? '', d.destination.host);
}

/** tcp_proxy's `cluster` or `weighted_clusters` for a route's destinations (weight 0 left out, as Istio). */
function tcpTarget(
  destinations: readonly RouteDestination[],
  port: number,
  snap: MeshSnapshot,
): JsonObject | undefined {
  if (destinations.length === 1) return { cluster: destinationCluster(destinations[0], port, snap) };
  const weighted = destinations.filter((d) => (d.weight ?? 0) > 0);
  if (weighted.length === 0) return undefined;
  if (weighted.length === 1) return { cluster: destinationCluster(weighted[0], port, snap) };
  return {
    weighted_clusters: {
      clusters: weighted.map((d) => ({ name: destinationCluster(d, port, snap), weight: d.weight ?? 0 })),
    },
  };
}

/** One SNI-selected passthrough chain: the names it answers and where its connections go. */
export interface PassthroughRoute {
  serverNames: string[];
  target: JsonObject;
}

/**
 * A PASSTHROUGH server's chains, from the `tls` routes of the VirtualServices bound to its gateway: each
 * match whose port, gateways, source labels and namespace admit this proxy gives the chain for its
 * `sniHosts` that the server's hosts admit. The TLS stays end to end: the gateway only reads the SNI.
 */
export function passthroughRoutes(
  server: Server,
  gateway: string,
  virtualServices: readonly IstioResource<VirtualService>[],
  proxy: ProxyNode,
  snap: MeshSnapshot,
): PassthroughRoute[] {
  const port = server.port.number;
  const hosts = (server.hosts ?? []).map(bareHost);
  const admits = (m: TLSMatchAttributes): boolean =>
    (m.port === undefined || m.port === port) &&
    (!m.sourceLabels || labelsMatch(m.sourceLabels, proxy.labels)) &&
    (!m.sourceNamespace || m.sourceNamespace === proxy.namespace) &&
    (!m.gateways || m.gateways.length === 0 || m.gateways.includes(gateway));
  const out: PassthroughRoute[] = [];
  for (const vs of virtualServices) {
    for (const route of vs.spec.tls ?? []) {
      const target = tcpTarget(route.route ?? [], port, snap);
      if (!target) continue;
      for (const match of route.match ?? []) {
        if (!admits(match)) continue;
        const names = (match.sniHosts ?? []).filter((sni) =>
          hosts.some((h) => hostMatches(h, sni) || hostMatches(sni, h)),
        );
        if (names.length > 0) out.push({ serverNames: names, target });
      }
    }
  }
  return out;
}

/**
 * Keeps SNI names unique across a listener's chains, as Envoy requires: a later chain loses the names an
 * earlier one claimed (Istio's "first server wins"), and is dropped when none are left. A chain without
 * names (any SNI) may exist once.
 */
export class ServerNameClaims {
  readonly #claimed = new Set<string>();
  #catchAll = false;

  /** The names this chain may use, or undefined when it must be dropped. */
  claim(names: readonly string[]): string[] | undefined {
    if (names.length === 0) {
      if (this.#catchAll) return undefined;
      this.#catchAll = true;
      return [];
    }
    const left = [...new Set(names.map((n) => n.toLowerCase()))].filter((n) => !this.#claimed.has(n));
    if (left.length === 0) return undefined;
    for (const n of left) this.#claimed.add(n);
    return left;
  }
}
