/** The API groups and versions Weft accepts for each Istio kind. */
import type { IstioKind } from './resource.ts';

/** The API group of each kind Weft accepts. */
export const groupOfKind: Readonly<Record<IstioKind, string>> = {
  VirtualService: 'networking.istio.io',
  DestinationRule: 'networking.istio.io',
  Gateway: 'networking.istio.io',
  ServiceEntry: 'networking.istio.io',
  WorkloadEntry: 'networking.istio.io',
  WorkloadGroup: 'networking.istio.io',
  Sidecar: 'networking.istio.io',
  PeerAuthentication: 'security.istio.io',
  AuthorizationPolicy: 'security.istio.io',
  RequestAuthentication: 'security.istio.io',
  Telemetry: 'telemetry.istio.io',
  RateLimitPolicy: 'weft.dev',
};

/** The versions Weft accepts for each group (the ones the issue names, all of which the CRDs serve). */
export const versionsOfGroup: Readonly<Record<string, readonly string[]>> = {
  'networking.istio.io': ['v1', 'v1beta1', 'v1alpha3'],
  'security.istio.io': ['v1', 'v1beta1'],
  'telemetry.istio.io': ['v1', 'v1alpha1'],
  'weft.dev': ['v1alpha1'],
};

export function isIstioKind(kind: unknown): kind is IstioKind {
  return typeof kind === 'string' && Object.hasOwn(groupOfKind, kind);
}
