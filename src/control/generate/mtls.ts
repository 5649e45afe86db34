/**
 * Mutual TLS between sidecars, as Istio generates it: the names of the secrets (`default`, the workload's own
 * certificate from its proxy's agent; `ROOTCA`, the trust bundle sent by the control plane over SDS), the
 * transport sockets of ISTIO_MUTUAL clusters and of inbound listeners, and which mode PeerAuthentication
 * gives a workload's port.
 */
import type { JsonObject } from '../../core/json.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import { ADS_SOURCE, TYPES } from './names.ts';

export const WORKLOAD_SECRET = 'default';
export const ROOT_SECRET = 'ROOTCA';

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
    grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }],
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
    alpn_protocols: [...alpn],
  };
}

/**
 * The upstream side of ISTIO_MUTUAL: the workload certificate, the trust bundle, and the SPIFFE IDs the
 * server may have (its service's accounts); the SNI names the cluster, as Istio's does.
 */
export function istioMutualUpstream(sni: string, identities: readonly string[], http2: boolean): JsonObject {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': TYPES.upstreamTls,
      common_tls_context: commonTlsContext(
        http2 ? ['h2'] : ['http/1.1'],
        identities.map((id) => ({ exact: id })),
      ),
      sni,
    },
  };
}

/** The inbound side: the workload certificate, a client certificate required and checked against the trust bundle. */
export function istioMutualDownstream(trustDomain: string): JsonObject {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': TYPES.downstreamTls,
      common_tls_context: commonTlsContext(['h2', 'http/1.1'], [{ prefix: `spiffe://${trustDomain}/` }]),
      require_client_certificate: true,
    },
  };
}
