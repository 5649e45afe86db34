/**
 * Mutual TLS between sidecars, as Istio generates it: the names of the secrets (`default`, the workload's own
 * certificate from its proxy's agent; `ROOTCA`, the trust bundle sent by the control plane over SDS), the
 * transport sockets of ISTIO_MUTUAL clusters and of inbound listeners, and which mode PeerAuthentication
 * gives a workload's port.
 */
import type { JsonObject } from '../../core/json.ts';
import type { ClientTLSSettings } from '../../api/istio/networking.ts';
import { AGENT_SDS_CLUSTER, ROOT_SECRET, WORKLOAD_SECRET } from '../../api/istio/mesh-names.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import type { Protocol, Service } from '../model/types.ts';
import { isHttp, isHttp2 } from '../model/protocol.ts';
import { ADS_SOURCE, TYPES } from './names.ts';

/** The SDS resources every proxy may ask for (only the trust bundle). */
export function secretResources(snap: MeshSnapshot): Map<string, JsonObject> {
  const out = new Map<string, JsonObject>();
  if (snap.security === undefined) return out;
  out.set(ROOT_SECRET, {
    '@type': TYPES.secret,
    name: ROOT_SECRET,
    validation_context: { trusted_ca: { inline_string: snap.security.trustBundle } },
  });
  return out;
}

/** Istio's reference to the local agent: an SDS cluster named sds-grpc. */
const AGENT_SOURCE: JsonObject = {
  api_config_source: {
    api_type: 'GRPC',
    transport_api_version: 'V3',
    grpc_services: [{ envoy_grpc: { cluster_name: AGENT_SDS_CLUSTER } }],
  },
  resource_api_version: 'V3',
};

/** The certificate and validation parts every ISTIO_MUTUAL context shares. */
function commonTlsContext(alpn: readonly string[], sanMatchers: readonly JsonObject[]): JsonObject {
  return {
    tls_certificate_sds_secret_configs: [{ name: WORKLOAD_SECRET, sds_config: AGENT_SOURCE }],
    combined_validation_context: {
      default_validation_context:
        sanMatchers.length > 0
          ? { match_typed_subject_alt_names: sanMatchers.map((m) => ({ san_type: 'URI', matcher: m })) }
          : {},
      validation_context_sds_secret_config: { name: ROOT_SECRET, sds_config: ADS_SOURCE },
    },
    ...(alpn.length > 0 ? { alpn_protocols: [...alpn] } : {}),
  };
}

/**
 * The upstream side of ISTIO_MUTUAL: the workload certificate, the trust bundle, and the SPIFFE IDs the
 * server may have (its service's accounts); the SNI names the cluster, as Istio's does.
 */
export function istioMutualUpstream(
  sni: string,
  identities: readonly string[],
  alpn: readonly string[],
): JsonObject {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': TYPES.upstreamTls,
      common_tls_context: commonTlsContext(
        alpn,
        identities.map((id) => ({ exact: id })),
      ),
      sni,
    },
  };
}

/**
 * The ALPN protocol of TCP connections that carry Istio's in-band peer metadata exchange (the network
 * filter istio.metadata_exchange): offered by clients of ISTIO_MUTUAL TCP clusters, accepted by the
 * inbound side's TCP chains.
 */
export const PEER_EXCHANGE_ALPN = 'istio-peer-exchange';
/** A client's ALPN on an mTLS TCP hop (Istio's ALPNInMeshWithMxc). */
const TCP_IN_MESH_ALPN: readonly string[] = [PEER_EXCHANGE_ALPN, 'istio'];

/** The network filter that runs the exchange, before istio.stats and tcp_proxy (Istio's own TypedStruct). */
export const TCP_PEER_EXCHANGE_FILTER: JsonObject = {
  name: 'istio.metadata_exchange',
  typed_config: {
    '@type': 'type.googleapis.com/xds.type.v3.TypedStruct',
    type_url: 'type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange',
    value: { protocol: PEER_EXCHANGE_ALPN },
  },
};

/**
 * The inbound side: the workload certificate, a client certificate required and checked against the trust
 * bundle. A TCP chain also accepts the peer exchange protocol (Istio's ALPNDownstreamWithMxc); an HTTP
 * chain only h2 and http/1.1.
 */
export function istioMutualDownstream(trustDomain: string, tcp = false): JsonObject {
  const alpn = tcp ? [PEER_EXCHANGE_ALPN, 'h2', 'http/1.1'] : ['h2', 'http/1.1'];
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': TYPES.downstreamTls,
      common_tls_context: commonTlsContext(alpn, [{ prefix: `spiffe://${trustDomain}/` }]),
      require_client_certificate: true,
    },
  };
}

/** The SPIFFE IDs of a service's workloads: what a caller accepts from the server end of an mTLS hop. */
export function serviceIdentities(service: Service, snap: MeshSnapshot, trustDomain: string): string[] {
  const ids = new Set<string>();
  for (const port of service.ports)
    for (const e of snap.endpoints(service.hostname, port.number))
      ids.add(`spiffe://${trustDomain}/ns/${e.namespace}/sa/${e.serviceAccount}`);
  return [...ids].sort();
}

/** The endpoint metadata filter Envoy's transport_socket_matches read. */
export const TRANSPORT_SOCKET_MATCH = 'envoy.transport_socket_match';

const RAW_BUFFER: JsonObject = {
  name: 'envoy.transport_sockets.raw_buffer',
  typed_config: { '@type': TYPES.rawBuffer },
};

function istioSni(clusterName: string): string {
  // outbound|9080|v1|reviews.default.svc.cluster.local → outbound_.9080_.v1_.reviews.default.svc.cluster.local
  return clusterName.replaceAll('|', '_.');
}

/** A DataSource from a path Istio's DestinationRule or Gateway names. */
function file(pathName: string): JsonObject {
  return { filename: pathName };
}

/**
 * The transport fields of an outbound cluster, from DestinationRule `tls` (Istio's semantics):
 * - unset, with a CA running, for an in-mesh service: auto mTLS — endpoints labelled as having a sidecar get
 *   ISTIO_MUTUAL, the others plaintext (transport_socket_matches on endpoint metadata, as Istio);
 * - ISTIO_MUTUAL: always, with the workload certificate; DISABLE: plaintext;
 * - SIMPLE / MUTUAL: TLS origination with files (caCertificates, clientCertificate, privateKey), sni and
 *   subjectAltNames.
 */
export function clusterTransport(
  clusterName: string,
  service: Service,
  tls: ClientTLSSettings | undefined,
  protocol: Protocol,
  snap: MeshSnapshot,
): JsonObject {
  // ALPN says what the hop carries, so the server side picks its codec (or a TCP chain) before any byte.
  const alpn = isHttp2(protocol) ? ['h2'] : isHttp(protocol) ? ['http/1.1'] : [];
  const security = snap.security;
  const mode = tls?.mode;
  if (mode === 'DISABLE') return {};
  if (mode === 'SIMPLE' || mode === 'MUTUAL') return { transport_socket: originate(tls!, alpn) };
  if (security === undefined) return {};
  if (mode === undefined && service.location !== 'MESH_INTERNAL') return {};
  const identities = tls?.subjectAltNames?.length
    ? tls.subjectAltNames
    : serviceIdentities(service, snap, security.trustDomain);
  // An mTLS hop to a declared TCP port offers the peer exchange. Not for an undeclared (sniffed) port: its
  // cluster also carries HTTP, whose pools would then get a TCP chain that expects the exchange.
  const mutualAlpn = alpn.length === 0 && protocol !== 'UNSPECIFIED' ? TCP_IN_MESH_ALPN : alpn;
  const mutual = istioMutualUpstream(tls?.sni ?? istioSni(clusterName), identities, mutualAlpn);
  if (mode === 'ISTIO_MUTUAL') return { transport_socket: mutual };
  return {
    transport_socket_matches: [
      { name: 'tlsMode-istio', match: { tlsMode: 'istio' }, transport_socket: mutual },
      { name: 'tlsMode-disabled', match: {}, transport_socket: RAW_BUFFER },
    ],
  };
}

function originate(tls: ClientTLSSettings, alpn: readonly string[]): JsonObject {
  const validation: JsonObject = {};
  if (tls.caCertificates) validation.trusted_ca = file(tls.caCertificates);
  if (tls.subjectAltNames?.length)
    validation.match_subject_alt_names = tls.subjectAltNames.map((n) => ({ exact: n }));
  const common: JsonObject = alpn.length > 0 ? { alpn_protocols: [...alpn] } : {};
  if (Object.keys(validation).length > 0) common.validation_context = validation;
  if (tls.mode === 'MUTUAL' && tls.clientCertificate && tls.privateKey)
    common.tls_certificates = [
      { certificate_chain: file(tls.clientCertificate), private_key: file(tls.privateKey) },
    ];
  const context: JsonObject = { '@type': TYPES.upstreamTls, common_tls_context: common };
  if (tls.sni) context.sni = tls.sni;
  return { name: 'envoy.transport_sockets.tls', typed_config: context };
}
