/**
 * Specs of Istio's networking.istio.io kinds, as they are after schema validation: camelCase field
 * names as in the CRDs, durations as Go duration strings ("1.5s", "100ms", "1m"), every field optional
 * unless the CRD requires it. Enum-valued fields list Istio's values. Fields the CRDs mark deprecated
 * are included where Istio still accepts them, so validated input always fits these types.
 */

export type Duration = string;
export type StringMap = Record<string, string>;

// ---------------------------------------------------------------------------------------------
// Shared

export interface PortSelector {
  number?: number;
}

/** Exactly one of exact, prefix, regex (RE2 syntax). */
export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

export interface Percent {
  /** 0-100, fractions allowed. */
  value?: number;
}

export interface WorkloadSelector {
  labels?: StringMap;
}

export interface Destination {
  host: string;
  subset?: string;
  port?: PortSelector;
}

// ---------------------------------------------------------------------------------------------
// VirtualService

export interface VirtualService {
  hosts?: string[];
  /** `namespace/name` of Gateways, or `mesh` (the sidecars); no entry means `mesh`. */
  gateways?: string[];
  http?: HTTPRoute[];
  tls?: TLSRoute[];
  tcp?: TCPRoute[];
  exportTo?: string[];
}

export interface HTTPRoute {
  name?: string;
  match?: HTTPMatchRequest[];
  route?: HTTPRouteDestination[];
  redirect?: HTTPRedirect;
  directResponse?: HTTPDirectResponse;
  delegate?: Delegate;
  rewrite?: HTTPRewrite;
  timeout?: Duration;
  retries?: HTTPRetry;
  fault?: HTTPFaultInjection;
  mirror?: Destination;
  mirrors?: HTTPMirrorPolicy[];
  mirrorPercentage?: Percent;
  /** Deprecated: use mirrorPercentage. */
  mirrorPercent?: number;
  /** Deprecated: use mirrorPercentage. */
  mirror_percent?: number;
  corsPolicy?: CorsPolicy;
  headers?: Headers;
}

export interface Delegate {
  name?: string;
  namespace?: string;
}

export interface HTTPMatchRequest {
  name?: string;
  uri?: StringMatch;
  scheme?: StringMatch;
  method?: StringMatch;
  authority?: StringMatch;
  headers?: Record<string, StringMatch>;
  port?: number;
  sourceLabels?: StringMap;
  gateways?: string[];
  queryParams?: Record<string, StringMatch>;
  ignoreUriCase?: boolean;
  withoutHeaders?: Record<string, StringMatch>;
  sourceNamespace?: string;
  statPrefix?: string;
}

export interface HTTPRouteDestination {
  destination: Destination;
  /** Relative proportion of traffic; a destination receives weight / (sum of weights). */
  weight?: number;
  headers?: Headers;
}

export interface HeaderOperations {
  set?: StringMap;
  add?: StringMap;
  remove?: string[];
}

export interface Headers {
  request?: HeaderOperations;
  response?: HeaderOperations;
}

export interface HTTPRewrite {
  uri?: string;
  authority?: string;
  uriRegexRewrite?: RegexRewrite;
}

export interface RegexRewrite {
  match?: string;
  rewrite?: string;
}

/** At most one of port and derivePort. */
export interface HTTPRedirect {
  uri?: string;
  authority?: string;
  port?: number;
  derivePort?: 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT';
  scheme?: string;
  redirectCode?: number;
  prefixRewrite?: string;
}

export interface HTTPDirectResponse {
  status: number;
  body?: HTTPBody;
}

/** At most one of string and bytes (base64). */
export interface HTTPBody {
  string?: string;
  bytes?: string;
}

export interface HTTPRetry {
  attempts?: number;
  perTryTimeout?: Duration;
  /** Comma-separated Envoy retry conditions and/or gRPC status names. */
  retryOn?: string;
  retryRemoteLocalities?: boolean;
  retryIgnorePreviousHosts?: boolean;
  backoff?: Duration;
}

export interface HTTPFaultInjection {
  delay?: FaultDelay;
  abort?: FaultAbort;
}

/** At most one of fixedDelay and exponentialDelay. */
export interface FaultDelay {
  fixedDelay?: Duration;
  exponentialDelay?: Duration;
  percentage?: Percent;
  /** Deprecated: use percentage. */
  percent?: number;
}

/** At most one of httpStatus, grpcStatus, http2Error. */
export interface FaultAbort {
  httpStatus?: number;
  grpcStatus?: string;
  http2Error?: string;
  percentage?: Percent;
}

export interface HTTPMirrorPolicy {
  destination: Destination;
  percentage?: Percent;
}

export interface CorsPolicy {
  allowOrigins?: StringMatch[];
  /** Deprecated: use allowOrigins. */
  allowOrigin?: string[];
  allowMethods?: string[];
  allowHeaders?: string[];
  exposeHeaders?: string[];
  maxAge?: Duration;
  allowCredentials?: boolean;
  unmatchedPreflights?: 'UNSPECIFIED' | 'FORWARD' | 'IGNORE';
}

export interface RouteDestination {
  destination: Destination;
  weight?: number;
}

export interface L4MatchAttributes {
  destinationSubnets?: string[];
  port?: number;
  sourceLabels?: StringMap;
  gateways?: string[];
  sourceNamespace?: string;
  /** TCP only. */
  sourceSubnet?: string;
}

export interface TLSMatchAttributes {
  sniHosts: string[];
  destinationSubnets?: string[];
  port?: number;
  sourceLabels?: StringMap;
  gateways?: string[];
  sourceNamespace?: string;
}

export interface TCPRoute {
  match?: L4MatchAttributes[];
  route?: RouteDestination[];
}

export interface TLSRoute {
  match: TLSMatchAttributes[];
  route?: RouteDestination[];
}

// ---------------------------------------------------------------------------------------------
// DestinationRule

export interface DestinationRule {
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets?: Subset[];
  exportTo?: string[];
  workloadSelector?: { matchLabels?: StringMap };
}

export interface TrafficPolicy {
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTLSSettings;
  portLevelSettings?: PortTrafficPolicy[];
  tunnel?: { protocol?: string; targetHost: string; targetPort: number };
  proxyProtocol?: { version?: 'V1' | 'V2' };
  retryBudget?: { percent?: number; minRetryConcurrency?: number; budgetInterval?: Duration };
}

export interface PortTrafficPolicy {
  port?: PortSelector;
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTLSSettings;
}

export interface Subset {
  name: string;
  labels?: StringMap;
  trafficPolicy?: TrafficPolicy;
}

/** At most one of simple, consistentHash, backendUtilization. */
export interface LoadBalancerSettings {
  simple?: 'UNSPECIFIED' | 'LEAST_CONN' | 'RANDOM' | 'PASSTHROUGH' | 'ROUND_ROBIN' | 'LEAST_REQUEST';
  consistentHash?: ConsistentHashLB;
  backendUtilization?: Record<string, unknown>;
  localityLbSetting?: LocalityLoadBalancerSetting;
  warmupDurationSecs?: Duration;
  warmup?: { duration: Duration; minimumPercent?: number; aggression?: number };
  zoneAwareLbSetting?: Record<string, unknown>;
}

/** At most one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName; at most one of ringHash, maglev. */
export interface ConsistentHashLB {
  httpHeaderName?: string;
  httpCookie?: HTTPCookie;
  useSourceIp?: boolean;
  httpQueryParameterName?: string;
  ringHash?: { minimumRingSize?: number };
  maglev?: { tableSize?: number };
  /** Deprecated: use ringHash. */
  minimumRingSize?: number;
}

export interface HTTPCookie {
  name: string;
  path?: string;
  ttl?: Duration;
  attributes?: { name: string; value?: string }[];
}

export interface LocalityLoadBalancerSetting {
  distribute?: { from?: string; to?: Record<string, number> }[];
  failover?: { from?: string; to?: string }[];
  failoverPriority?: string[];
  enabled?: boolean | null;
}

export interface ConnectionPoolSettings {
  tcp?: TCPSettings;
  http?: HTTPSettings;
}

export interface TCPSettings {
  maxConnections?: number;
  connectTimeout?: Duration;
  tcpKeepalive?: { probes?: number; time?: Duration; interval?: Duration };
  maxConnectionDuration?: Duration;
  idleTimeout?: Duration;
}

export interface HTTPSettings {
  http1MaxPendingRequests?: number;
  http2MaxRequests?: number;
  maxRequestsPerConnection?: number;
  maxRetries?: number;
  idleTimeout?: Duration;
  h2UpgradePolicy?: 'DEFAULT' | 'DO_NOT_UPGRADE' | 'UPGRADE';
  useClientProtocol?: boolean;
  maxConcurrentStreams?: number;
  http2KeepAlive?: { time?: Duration; timeout?: Duration; interval?: Duration };
}

export interface OutlierDetection {
  splitExternalLocalOriginErrors?: boolean;
  consecutiveLocalOriginFailures?: number | null;
  consecutiveGatewayErrors?: number | null;
  consecutive5xxErrors?: number | null;
  /** Deprecated: use consecutive5xxErrors. */
  consecutiveErrors?: number;
  interval?: Duration;
  baseEjectionTime?: Duration;
  maxEjectionPercent?: number;
  minHealthPercent?: number;
  outlierDetectionHttpErrorCodes?: number[];
}

export interface ClientTLSSettings {
  mode?: 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';
  clientCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  credentialName?: string;
  subjectAltNames?: string[];
  sni?: string;
  insecureSkipVerify?: boolean | null;
  caCrl?: string;
}

// ---------------------------------------------------------------------------------------------
// Gateway

export interface Gateway {
  servers?: Server[];
  /** Labels of the gateway workloads this configuration applies to. */
  selector?: StringMap;
}

export interface Server {
  port: Port;
  bind?: string;
  hosts: string[];
  tls?: ServerTLSSettings;
  defaultEndpoint?: string;
  name?: string;
}

export interface Port {
  number: number;
  /** HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, MONGO, TCP, TLS. */
  protocol: string;
  name: string;
  targetPort?: number;
}

export interface ServerTLSSettings {
  httpsRedirect?: boolean;
  mode?: 'PASSTHROUGH' | 'SIMPLE' | 'MUTUAL' | 'AUTO_PASSTHROUGH' | 'ISTIO_MUTUAL' | 'OPTIONAL_MUTUAL';
  serverCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  caCrl?: string;
  credentialName?: string;
  credentialNames?: string[];
  tlsCertificates?: { serverCertificate?: string; privateKey?: string; caCertificates?: string }[];
  caCertCredentialName?: string;
  subjectAltNames?: string[];
  verifyCertificateSpki?: string[];
  verifyCertificateHash?: string[];
  minProtocolVersion?: TLSProtocol;
  maxProtocolVersion?: TLSProtocol;
  cipherSuites?: string[];
  ecdhCurves?: string[];
  insecureSkipVerify?: boolean | null;
}

export type TLSProtocol = 'TLS_AUTO' | 'TLSV1_0' | 'TLSV1_1' | 'TLSV1_2' | 'TLSV1_3';

// ---------------------------------------------------------------------------------------------
// ServiceEntry, WorkloadEntry, WorkloadGroup

export interface ServiceEntry {
  hosts: string[];
  addresses?: string[];
  ports?: ServicePort[];
  location?: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
  resolution?: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'DYNAMIC_DNS';
  /** At most one of endpoints and workloadSelector. */
  endpoints?: WorkloadEntry[];
  workloadSelector?: WorkloadSelector;
  exportTo?: string[];
  subjectAltNames?: string[];
}

export interface ServicePort {
  number: number;
  /** HTTP, HTTPS, GRPC, HTTP2, MONGO, TCP, TLS; when absent the port name's prefix decides. */
  protocol?: string;
  name: string;
  targetPort?: number;
}

/** A workload outside Kubernetes; also the type of ServiceEntry.endpoints[]. */
export interface WorkloadEntry {
  address?: string;
  /** Port name → the workload's port for it. */
  ports?: Record<string, number>;
  labels?: StringMap;
  network?: string;
  /** region/zone/subzone */
  locality?: string;
  weight?: number;
  serviceAccount?: string;
}

export interface WorkloadGroup {
  metadata?: { labels?: StringMap; annotations?: StringMap };
  template: WorkloadEntry;
  probe?: ReadinessProbe;
}

export interface ReadinessProbe {
  initialDelaySeconds?: number;
  timeoutSeconds?: number;
  periodSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
  httpGet?: {
    path?: string;
    port: number;
    host?: string;
    scheme?: string;
    httpHeaders?: { name?: string; value?: string }[];
  };
  tcpSocket?: { host?: string; port: number };
  exec?: { command: string[] };
  grpc?: { port?: number; service?: string };
}

// ---------------------------------------------------------------------------------------------
// Sidecar

export interface Sidecar {
  workloadSelector?: WorkloadSelector;
  ingress?: IstioIngressListener[];
  egress?: IstioEgressListener[];
  inboundConnectionPool?: ConnectionPoolSettings;
  outboundTrafficPolicy?: OutboundTrafficPolicy;
}

export type CaptureMode = 'DEFAULT' | 'IPTABLES' | 'NONE';

export interface SidecarPort {
  number?: number;
  protocol?: string;
  name?: string;
  targetPort?: number;
}

export interface IstioIngressListener {
  port: SidecarPort;
  bind?: string;
  captureMode?: CaptureMode;
  /** `127.0.0.1:PORT`, `[::1]:PORT`, `0.0.0.0:PORT` or `unix:///path`: where the application listens. */
  defaultEndpoint?: string;
  tls?: ServerTLSSettings;
  connectionPool?: ConnectionPoolSettings;
}

export interface IstioEgressListener {
  port?: SidecarPort;
  bind?: string;
  captureMode?: CaptureMode;
  /** `namespace/dnsName` entries (`*` and `.` allowed for the namespace). */
  hosts: string[];
}

export interface OutboundTrafficPolicy {
  mode?: 'REGISTRY_ONLY' | 'ALLOW_ANY';
  egressProxy?: Destination;
}
