/**
 * The contract between the ADS server (which streams resources to proxies) and the generators (pure
 * functions of proxy + snapshot that decide what each proxy gets). Resources are canonical proto3 JSON
 * with "@type" (see src/api/envoy/wire.ts); the server encodes each distinct resource once.
 */
import type { JsonObject } from '../../core/json.ts';

export const TYPE_URL = {
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;

/** The order of a full push (Envoy's make-before-break sequencing): clusters before endpoints before listeners before routes. */
export const PUSH_ORDER: readonly string[] = [
  TYPE_URL.cluster,
  TYPE_URL.endpoint,
  TYPE_URL.listener,
  TYPE_URL.route,
  TYPE_URL.secret,
];

export interface Locality {
  region: string;
  zone: string;
  subZone: string;
}

/**
 * A connected xDS client, as it identified itself (Istio's conventions): `node.id` is
 * `TYPE~IP~NAME.NAMESPACE~NAMESPACE.svc.cluster.local`, `node.metadata` carries Istio's keys.
 */
export interface ProxyNode {
  /** node.id exactly as sent. */
  id: string;
  /** `sidecar`, `router` (a gateway), or `grpc` for a proxyless gRPC client (metadata GENERATOR=grpc, or an id that does not follow Istio's form). */
  type: 'sidecar' | 'router' | 'grpc';
  /** The pod/workload name (NAME metadata, else the id's NAME part), or the whole id for a proxyless client. */
  name: string;
  namespace: string;
  /** DNS domain from the id, e.g. `default.svc.cluster.local`. */
  dnsDomain: string;
  /** INSTANCE_IPS metadata, else the id's IP part; may be empty. */
  ipAddresses: string[];
  labels: Readonly<Record<string, string>>;
  serviceAccount: string;
  workloadName: string;
  locality: Locality;
  /** node.cluster. */
  cluster: string;
  /** All node.metadata as sent (Struct → JSON), for keys this interface does not name. */
  metadata: JsonObject;
}

/** What a generator returns for one type: resource name → canonical JSON (with "@type"). */
export type ResourceSet = ReadonlyMap<string, JsonObject>;

export interface XdsGenerator {
  /**
   * The resources of `typeUrl` this proxy should have. `names` is null for a wildcard subscription (Envoy
   * subscribes to Listener and Cluster with no names: every resource is returned); otherwise it is the set the
   * proxy subscribed to (RouteConfiguration and ClusterLoadAssignment always; proxyless gRPC clients subscribe
   * to Listener and Cluster by name too), and unknown names are simply absent. Must be pure: same proxy +
   * snapshot, same output.
   */
  generate(proxy: ProxyNode, typeUrl: string, names: ReadonlySet<string> | null): ResourceSet;
}

/** A request to push; pushes are debounced and merged. */
export interface PushRequest {
  /** false: only endpoints changed (ClusterLoadAssignment), the fast path that skips listeners/routes/clusters. */
  full: boolean;
  /** Which proxies this change can affect; absent = all. */
  affects?: (proxy: ProxyNode) => boolean;
  /** Human-readable cause, for logs and debug output ("config", "endpoint", "proxy connected", ...). */
  reason: string;
  /**
   * Endpoint-only pushes (`full: false`): the ClusterLoadAssignments whose content may have changed. The server
   * then asks the generator for just these (those a proxy subscribed to) instead of the proxy's whole
   * subscription, so the push costs the size of the change. Absent: any of them may have changed.
   */
  endpointClusters?: ReadonlySet<string>;
}
