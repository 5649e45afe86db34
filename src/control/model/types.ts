/**
 * The mesh as the control plane sees it: services (what callers name), their ports and protocols, and the
 * endpoints (one address of one workload replica) behind each port. Discovery sources fill it; the xDS
 * generators read it. Everything here is plain immutable data.
 */
import type { Locality } from '../xds/types.ts';

/**
 * Istio's protocols for a port. UNSPECIFIED means nothing declared it: the inbound side sniffs the first bytes
 * (HTTP/1.1, HTTP/2, TLS, else TCP).
 */
export type Protocol =
  | 'HTTP'
  | 'HTTP2'
  | 'GRPC'
  | 'GRPC-WEB'
  | 'HTTPS'
  | 'TLS'
  | 'TCP'
  | 'MONGO'
  | 'REDIS'
  | 'MYSQL'
  | 'UDP'
  | 'UNSPECIFIED';

export interface ServicePort {
  name: string;
  number: number;
  protocol: Protocol;
  /** ServiceEntry targetPort: the endpoint port when the endpoint does not name one. */
  targetPort?: number;
}

export type Resolution = 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';

export interface Service {
  /** Fully qualified host name, e.g. `reviews.default.svc.cluster.local` or `api.example.com`. */
  hostname: string;
  namespace: string;
  ports: readonly ServicePort[];
  resolution: Resolution;
  location: 'MESH_INTERNAL' | 'MESH_EXTERNAL';
  /** Virtual IPs (ServiceEntry addresses), if any. */
  addresses: readonly string[];
  /** Where the service was declared, e.g. `ServiceEntry default/reviews`. */
  origin: string;
  /** The ServiceEntry's exportTo: the namespaces that may see it (absent: all). */
  exportTo?: readonly string[];
  /** The labels that select its workloads (ServiceEntry.workloadSelector), when it has no inline endpoints. */
  workloadSelector?: Readonly<Record<string, string>>;
}

/** One address of one workload replica, for one service port. */
export interface Endpoint {
  /** IP (or, for DNS resolution, a host name). */
  address: string;
  port: number;
  labels: Readonly<Record<string, string>>;
  locality: Locality;
  weight: number;
  serviceAccount: string;
  namespace: string;
  workloadName: string;
  healthy: boolean;
}

/** A running workload instance, from a WorkloadEntry or a proxy that registered itself. */
export interface Workload {
  name: string;
  namespace: string;
  address: string;
  labels: Readonly<Record<string, string>>;
  /** Port name → number, as WorkloadEntry.ports. */
  ports: Readonly<Record<string, number>>;
  locality: Locality;
  weight: number;
  serviceAccount: string;
  healthy: boolean;
  /** `WorkloadEntry default/reviews-v1` or `auto-registered sidecar~...`. */
  origin: string;
}

/** What discovery knows at one moment. */
export interface DiscoveryState {
  services: readonly Service[];
  /** Endpoints per `hostname|port`. */
  endpoints: ReadonlyMap<string, readonly Endpoint[]>;
  workloads: readonly Workload[];
}

export function endpointKey(hostname: string, port: number): string {
  return `${hostname}|${port}`;
}

/** `us-east1/us-east1-b/rack1` → Locality; missing parts are empty. */
export function parseLocality(text: string | undefined): Locality {
  const [region = '', zone = '', subZone = ''] = (text ?? '').split('/');
  return { region, zone, subZone };
}
