/** The xDS resource types the Weft proxy subscribes to, by type URL. */
export const TYPE_URL = {
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;

export type XdsTypeUrl = (typeof TYPE_URL)[keyof typeof TYPE_URL];

/** The message type a type URL names. */
export function messageTypeOf(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

/** Short names for logs, stats and NACK messages. */
export const TYPE_NAME: Readonly<Record<XdsTypeUrl, string>> = {
  [TYPE_URL.listener]: 'Listener',
  [TYPE_URL.route]: 'RouteConfiguration',
  [TYPE_URL.cluster]: 'Cluster',
  [TYPE_URL.endpoint]: 'ClusterLoadAssignment',
  [TYPE_URL.secret]: 'Secret',
};

/** Listener and Cluster are wildcard subscriptions; routes, endpoints and secrets are requested by name. */
export function isWildcardType(typeUrl: string): boolean {
  return typeUrl === TYPE_URL.listener || typeUrl === TYPE_URL.cluster;
}

export const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
export const SOTW_PATH = `/${ADS_SERVICE}/StreamAggregatedResources`;
export const DELTA_PATH = `/${ADS_SERVICE}/DeltaAggregatedResources`;
