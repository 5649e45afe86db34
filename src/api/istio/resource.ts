/**
 * An Istio resource as Weft holds it after loading: apiVersion, kind, metadata with defaults applied
 * (namespace `default`, empty labels and annotations), the validated spec, and where it came from.
 *
 * Specs are as written in YAML (camelCase fields, durations as strings such as "1.5s" or "1m"), with one
 * normalization, as in Istio: short host names are qualified with the resource's namespace
 * (`reviews` in `ns` → `reviews.ns.svc.cluster.local`) in VirtualService hosts, destinations and
 * mirrors and in DestinationRule.host, and VirtualService gateway references become `namespace/name`.
 */
import type {
  DestinationRule,
  Gateway,
  ServiceEntry,
  Sidecar,
  VirtualService,
  WorkloadEntry,
  WorkloadGroup,
} from './networking.ts';
import type { AuthorizationPolicy, PeerAuthentication, RequestAuthentication } from './security.ts';
import type { Telemetry } from './telemetry.ts';
import type { RateLimitPolicy } from '../weft/rate-limit.ts';

export type IstioKind =
  | 'VirtualService'
  | 'DestinationRule'
  | 'Gateway'
  | 'ServiceEntry'
  | 'WorkloadEntry'
  | 'WorkloadGroup'
  | 'Sidecar'
  | 'PeerAuthentication'
  | 'AuthorizationPolicy'
  | 'RequestAuthentication'
  | 'Telemetry'
  /** Weft's own kind (weft.dev), held and validated like the Istio ones. */
  | 'RateLimitPolicy';

/** Where the resource's YAML document starts (1-based line and column). */
export interface ResourceSource {
  file: string;
  line: number;
  column: number;
}

export interface IstioMetadata {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** One entry of a resource's `status.conditions` (Kubernetes' shape), e.g. a WorkloadEntry's `Healthy`. */
export interface IstioCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface IstioResource<S = unknown> {
  apiVersion: string;
  kind: IstioKind;
  metadata: IstioMetadata;
  spec: S;
  source: ResourceSource;
  /** Only the well-formed conditions of `status`, present when there are any (controllers write them, not people). */
  conditions?: readonly IstioCondition[];
}

/** The spec type of each kind. */
export interface IstioSpecOfKind {
  VirtualService: VirtualService;
  DestinationRule: DestinationRule;
  Gateway: Gateway;
  ServiceEntry: ServiceEntry;
  WorkloadEntry: WorkloadEntry;
  WorkloadGroup: WorkloadGroup;
  Sidecar: Sidecar;
  PeerAuthentication: PeerAuthentication;
  AuthorizationPolicy: AuthorizationPolicy;
  RequestAuthentication: RequestAuthentication;
  Telemetry: Telemetry;
  RateLimitPolicy: RateLimitPolicy;
}

export type IstioResourceOf<K extends IstioKind> = IstioResource<IstioSpecOfKind[K]> & { kind: K };

export const ISTIO_KINDS: readonly IstioKind[] = [
  'VirtualService',
  'DestinationRule',
  'Gateway',
  'ServiceEntry',
  'WorkloadEntry',
  'WorkloadGroup',
  'Sidecar',
  'PeerAuthentication',
  'AuthorizationPolicy',
  'RequestAuthentication',
  'Telemetry',
  'RateLimitPolicy',
];

/** "VirtualService default/reviews": how diagnostics and logs name a resource. */
export function resourceName(r: { kind: string; metadata: { namespace: string; name: string } }): string {
  return `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`;
}
