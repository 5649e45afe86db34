/**
 * One immutable view of the mesh: the Istio resources that shape traffic plus what discovery found. The
 * xDS generators are pure functions of (proxy, MeshSnapshot).
 */
import type { IstioResource } from '../../api/istio/resource.ts';
import type { DestinationRule, Gateway, Sidecar, VirtualService } from '../../api/istio/networking.ts';
import type { RateLimitPolicy } from '../../api/weft/rate-limit.ts';
import type { MeshConfig } from '../../api/istio/mesh-config.ts';
import type { Telemetry } from '../../api/istio/telemetry.ts';
import type {
  AuthorizationPolicy,
  PeerAuthentication,
  RequestAuthentication,
} from '../../api/istio/security.ts';
import type { DiscoveryState, Endpoint, Service } from './types.ts';
import { endpointKey } from './types.ts';

export interface MeshOptions {
  /** The DNS suffix of in-mesh service names (Istio's `cluster.local`). */
  domainSuffix: string;
  /** Namespace whose DestinationRules and Sidecars apply mesh-wide (Istio's root namespace). */
  rootNamespace: string;
}

export const DEFAULT_MESH_OPTIONS: MeshOptions = {
  domainSuffix: 'cluster.local',
  rootNamespace: 'istio-system',
};

/** What the control plane's CA contributes: present only when it runs one (mTLS is generated only then). */
export interface MeshSecurity {
  readonly trustDomain: string;
  /** PEM bundle of every root workloads must trust (several while a root rotates). */
  readonly trustBundle: string;
}

/** JWKS of RequestAuthentication jwksUri / issuers, fetched by the control plane (istiod's default). */
export interface JwksSource {
  lookup(uri: string): string;
  lookupIssuer(issuer: string): string;
}

export interface MeshSnapshot {
  /** Increases with every change; generators may memoize on it. */
  readonly version: number;
  /**
   * Changes with everything but endpoints (services, VirtualService, DestinationRule, Gateway, Sidecar): listeners,
   * routes and clusters can be memoized on it across endpoint-only snapshots.
   */
  readonly configVersion: number;
  readonly options: MeshOptions;
  readonly security?: MeshSecurity;
  readonly jwks?: JwksSource;
  readonly virtualServices: readonly IstioResource<VirtualService>[];
  readonly destinationRules: readonly IstioResource<DestinationRule>[];
  readonly gateways: readonly IstioResource<Gateway>[];
  readonly sidecars: readonly IstioResource<Sidecar>[];
  /** Weft RateLimitPolicies, sorted by namespace/name (absent in snapshots built by hand: none). */
  readonly rateLimitPolicies?: readonly IstioResource<RateLimitPolicy>[];
  /** security.istio.io resources, sorted by namespace/name (absent in snapshots built by hand: none). */
  readonly peerAuthentications?: readonly IstioResource<PeerAuthentication>[];
  readonly authorizationPolicies?: readonly IstioResource<AuthorizationPolicy>[];
  readonly requestAuthentications?: readonly IstioResource<RequestAuthentication>[];
  /** Telemetry resources that passed the control plane's checks, sorted (absent: none). */
  readonly telemetries?: readonly IstioResource<Telemetry>[];
  /** Istio's MeshConfig (absent: Istio's defaults). */
  readonly meshConfig?: MeshConfig;
  readonly services: readonly Service[];
  readonly serviceByHost: ReadonlyMap<string, Service>;
  endpoints(hostname: string, port: number): readonly Endpoint[];
}

export interface SnapshotInput {
  version: number;
  /** Default: `version`. */
  configVersion?: number;
  /**
   * An endpoint-only change: everything but the endpoints is taken from this snapshot (same objects, so what
   * generators memoized on them stays valid). The other lists of the input are then ignored.
   */
  endpointsOnlySince?: MeshSnapshot;
  options?: MeshOptions;
  security?: MeshSecurity;
  jwks?: JwksSource;
  virtualServices?: readonly IstioResource<VirtualService>[];
  destinationRules?: readonly IstioResource<DestinationRule>[];
  gateways?: readonly IstioResource<Gateway>[];
  sidecars?: readonly IstioResource<Sidecar>[];
  rateLimitPolicies?: readonly IstioResource<RateLimitPolicy>[];
  peerAuthentications?: readonly IstioResource<PeerAuthentication>[];
  authorizationPolicies?: readonly IstioResource<AuthorizationPolicy>[];
  requestAuthentications?: readonly IstioResource<RequestAuthentication>[];
  telemetries?: readonly IstioResource<Telemetry>[];
  meshConfig?: MeshConfig;
  discovery: DiscoveryState;
}

/** Resources sorted by namespace/name, so generation never depends on file or arrival order. */
function sorted<T extends IstioResource>(list: readonly T[] | undefined): readonly T[] {
  return [...(list ?? [])].sort((a, b) =>
    `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`),
  );
}

export function buildSnapshot(input: SnapshotInput): MeshSnapshot {
  const endpoints = input.discovery.endpoints;
  const lookup = (hostname: string, port: number): readonly Endpoint[] =>
    endpoints.get(endpointKey(hostname, port)) ?? [];
  const base = input.endpointsOnlySince;
  if (base) {
    return {
      version: input.version,
      configVersion: base.configVersion,
      options: base.options,
      security: base.security,
      jwks: base.jwks,
      virtualServices: base.virtualServices,
      destinationRules: base.destinationRules,
      gateways: base.gateways,
      sidecars: base.sidecars,
      rateLimitPolicies: base.rateLimitPolicies,
      peerAuthentications: base.peerAuthentications,
      authorizationPolicies: base.authorizationPolicies,
      requestAuthentications: base.requestAuthentications,
      telemetries: base.telemetries,
      meshConfig: base.meshConfig,
      services: base.services,
      serviceByHost: base.serviceByHost,
      endpoints: lookup,
    };
  }
  return {
    version: input.version,
    configVersion: input.configVersion ?? input.version,
    options: input.options ?? DEFAULT_MESH_OPTIONS,
    ...(input.security ? { security: input.security } : {}),
    ...(input.jwks ? { jwks: input.jwks } : {}),
    virtualServices: sorted(input.virtualServices),
    destinationRules: sorted(input.destinationRules),
    gateways: sorted(input.gateways),
    sidecars: sorted(input.sidecars),
    rateLimitPolicies: sorted(input.rateLimitPolicies),
    peerAuthentications: sorted(input.peerAuthentications),
    authorizationPolicies: sorted(input.authorizationPolicies),
    requestAuthentications: sorted(input.requestAuthentications),
    telemetries: sorted(input.telemetries),
    ...(input.meshConfig ? { meshConfig: input.meshConfig } : {}),
    services: input.discovery.services,
    serviceByHost: new Map(input.discovery.services.map((s) => [s.hostname, s])),
    endpoints: lookup,
  };
}
