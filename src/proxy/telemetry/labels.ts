/**
 * Istio's standard metric labels: their names in the order Istio's stats filter emits them, and how each
 * value is derived from the peers, the cluster and the response. Computed only when a request's label
 * combination is new (the stats filter caches series per combination).
 */
import type { UpstreamTransport } from '../tls/upstream.ts';
import type { ClusterConfig, IstioServiceRef } from '../upstream/types.ts';
import { CANONICAL_NAME_LABEL, CANONICAL_REVISION_LABEL } from './peer-metadata.ts';
import type { PeerMetadata } from './peer-metadata.ts';

const UNKNOWN = 'unknown';

export const HTTP_LABELS: readonly string[] = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_service_name',
  'destination_service_namespace',
  'destination_cluster',
  'request_protocol',
  'response_code',
  'grpc_response_status',
  'response_flags',
  'connection_security_policy',
];

/** TCP metrics carry no response code nor gRPC status. */
export const TCP_LABELS: readonly string[] = HTTP_LABELS.filter(
  (l) => l !== 'response_code' && l !== 'grpc_response_status',
);

export function peerApp(p: PeerMetadata | undefined): string {
  const l = p?.labels;
  return l?.app ?? l?.['app.kubernetes.io/name'] ?? UNKNOWN;
}

export function peerVersion(p: PeerMetadata | undefined): string {
  const l = p?.labels;
  return l?.version ?? l?.['app.kubernetes.io/version'] ?? UNKNOWN;
}

/** As Istio's injector defaults service.istio.io/canonical-name. */
export function peerCanonicalService(p: PeerMetadata | undefined): string {
  if (p === undefined) return UNKNOWN;
  const l = p.labels;
  return l?.[CANONICAL_NAME_LABEL] ?? l?.['app.kubernetes.io/name'] ?? l?.app ?? p.workload ?? UNKNOWN;
}

/** As Istio's injector defaults service.istio.io/canonical-revision ("latest" for a known peer). */
export function peerCanonicalRevision(p: PeerMetadata | undefined): string {
  if (p === undefined) return UNKNOWN;
  const l = p.labels;
  return l?.[CANONICAL_REVISION_LABEL] ?? l?.['app.kubernetes.io/version'] ?? l?.version ?? 'latest';
}

export interface DestinationService {
  readonly host: string;
  readonly name: string;
  readonly namespace: string;
}

const fromCluster = new WeakMap<ClusterConfig, DestinationService | null>();

/**
 * The destination service a cluster stands for: Istio's cluster metadata `filter_metadata.istio.services[0]`,
 * else an Istio outbound cluster name `outbound|PORT|SUBSET|HOST`; null when neither says.
 */
export function clusterService(cluster: ClusterConfig): DestinationService | null {
  let svc = fromCluster.get(cluster);
  if (svc === undefined) {
    svc = computeClusterService(cluster.name, cluster.istioServices?.[0]);
    fromCluster.set(cluster, svc);
  }
  return svc;
}

export function computeClusterService(
  clusterName: string,
  meta: IstioServiceRef | undefined,
): DestinationService | null {
  if (meta !== undefined && meta.host !== '') {
    const parsed = parseServiceHost(meta.host);
    return {
      host: meta.host,
      name: meta.name || parsed.name,
      namespace: meta.namespace || parsed.namespace,
    };
  }
  const parts = clusterName.split('|');
  if (parts.length === 4 && parts[0] === 'outbound' && parts[3] !== '') {
    return { host: parts[3], ...parseServiceHost(parts[3]) };
  }
  return null;
}

/** `name.namespace.svc.<domain>` gives name and namespace; another host is its own name. */
function parseServiceHost(host: string): { name: string; namespace: string } {
  const labels = host.split('.');
  if (labels.length >= 3 && labels[2] === 'svc') return { name: labels[0], namespace: labels[1] };
  return { name: host, namespace: UNKNOWN };
}

/** The authority without its port (IPv6 literals keep their brackets). */
export function hostOfAuthority(authority: string): string {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    return end < 0 ? authority : authority.slice(0, end + 1);
  }
  const colon = authority.lastIndexOf(':');
  return colon < 0 ? authority : authority.slice(0, colon);
}

/** Everything the standard labels are derived from. */
export interface LabelInputs {
  readonly reporter: string;
  readonly source: PeerMetadata | undefined;
  readonly destination: PeerMetadata | undefined;
  readonly sourcePrincipal: string;
  readonly destinationPrincipal: string;
  /** null: unknown destination service; a string: the host (name = host) fallback. */
  readonly service: DestinationService | string | null;
  readonly protocol: string;
  readonly responseCode: string;
  readonly grpcStatus: string;
  readonly flags: string;
  readonly securityPolicy: string;
}

/** Values for HTTP_LABELS (all 25) in order; TCP metrics project out the two HTTP-only ones. */
export function standardLabelValues(i: LabelInputs): string[] {
  const src = i.source;
  const dst = i.destination;
  let svcHost = UNKNOWN;
  let svcName = UNKNOWN;
  let svcNamespace = UNKNOWN;
  if (typeof i.service === 'string') {
    svcHost = svcName = i.service;
    svcNamespace = dst?.namespace ?? UNKNOWN;
  } else if (i.service !== null) {
    svcHost = i.service.host;
    svcName = i.service.name;
    svcNamespace = i.service.namespace;
  }
  return [
    i.reporter,
    src?.workload ?? UNKNOWN,
    peerCanonicalService(src),
    peerCanonicalRevision(src),
    src?.namespace ?? UNKNOWN,
    i.sourcePrincipal,
    peerApp(src),
    peerVersion(src),
    src?.cluster ?? UNKNOWN,
    dst?.workload ?? UNKNOWN,
    dst?.namespace ?? UNKNOWN,
    i.destinationPrincipal,
    peerApp(dst),
    peerVersion(dst),
    svcHost,
    peerCanonicalService(dst),
    peerCanonicalRevision(dst),
    svcName,
    svcNamespace,
    dst?.cluster ?? UNKNOWN,
    i.protocol,
    i.responseCode,
    i.grpcStatus,
    i.flags === '' ? '-' : i.flags,
    i.securityPolicy,
  ];
}

const pinnedPrincipals = new WeakMap<UpstreamTransport, string | null>();

/**
 * The upstream's principal when its verification pins exactly one: a transport whose only SAN matcher is
 * an exact URI (what Istio's auto mTLS generates for a service with one service account) accepts no other
 * certificate, so a connection that was made proves it. null when the transport is plaintext or accepts
 * several identities.
 */
export function pinnedUpstreamPrincipal(transport: UpstreamTransport): string | null {
  let p = pinnedPrincipals.get(transport);
  if (p === undefined) {
    const matchers = transport.tls?.validation?.sanMatchers ?? [];
    const only = matchers.length === 1 ? matchers[0] : undefined;
    p =
      only !== undefined &&
      only.sanType === 'URI' &&
      only.matcher.kind === 'exact' &&
      !only.matcher.ignoreCase
        ? only.matcher.text
        : null;
    pinnedPrincipals.set(transport, p);
  }
  return p;
}
