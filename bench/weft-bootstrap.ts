// The Envoy v3 bootstrap the Weft proxy runs under in the benchmark: one listener, one static cluster.
// Variants add HTTP filters and route/cluster policies to measure what they cost per request, and mTLS
// on the listener (the server side of a mesh hop) or on the cluster (the client side).
import { stringify } from 'yaml';

/**
 * plain: router only. ratelimit: local_ratelimit that never denies. resilience: what a mesh route carries
 * (cors, fault, local_ratelimit, retries, timeouts, outlier detection, circuit breakers), none of which fires.
 * telemetry: what the control plane gives a sidecar's outbound listener by default plus access logs and tracing:
 * Istio's metadata exchange and standard metrics, Istio's text access log to a file, Zipkin tracing sampling 1%.
 * tracing: the same with every request traced (always-on tracing, reported separately).
 */
export type BenchFilterSet = 'plain' | 'ratelimit' | 'resilience' | 'telemetry' | 'tracing';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface BenchBootstrapOptions {
  readonly nodeId: string;
  readonly listen: HostPort;
  readonly admin: HostPort;
  readonly upstream: HostPort;
  /** Default plain. */
  readonly filters?: BenchFilterSet;
  /** The listener terminates mTLS (the server side of a mesh hop). */
  readonly downstreamTls?: BenchDownstreamTls;
  /** The cluster originates mTLS (the client side of a mesh hop). */
  readonly upstreamTls?: BenchUpstreamTls;
  /** telemetry / tracing: where the access log goes and where spans are reported (a Zipkin collector). */
  readonly telemetry?: { readonly accessLogPath: string; readonly collector: HostPort };
}

/** A listener's DownstreamTlsContext: its certificate, and a client certificate required, chained to the root. */
export interface BenchDownstreamTls {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

/** A cluster's UpstreamTlsContext: its client certificate, the root, the server's SPIFFE ID, and the protocol. */
export interface BenchUpstreamTls {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
  /** Checked against the server certificate's URI SAN. */
  readonly serverId: string;
  /** Offered by ALPN; h2 also makes the cluster speak HTTP/2 (one multiplexed connection). */
  readonly protocol: 'http/1.1' | 'h2';
}

const socketAddress = (at: HostPort): object => ({
  socket_address: { address: at.host, port_value: at.port },
});

const typeUrl = (name: string): string => `type.googleapis.com/${name}`;

const ROUTER_FILTER = {
  name: 'envoy.filters.http.router',
  typed_config: { '@type': typeUrl('envoy.extensions.filters.http.router.v3.Router') },
};

const TLS_SOCKET = 'envoy.transport_sockets.tls';
const DOWNSTREAM_TLS = typeUrl('envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext');
const UPSTREAM_TLS = typeUrl('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext');

const certificate = (tls: { certFile: string; keyFile: string }): object => ({
  certificate_chain: { filename: tls.certFile },
  private_key: { filename: tls.keyFile },
});

/** As a mesh sidecar's inbound listener: offers h2 and http/1.1, takes only clients of the mesh's root. */
function downstreamTransportSocket(tls: BenchDownstreamTls): object {
  return {
    name: TLS_SOCKET,
    typed_config: {
      '@type': DOWNSTREAM_TLS,
      require_client_certificate: true,
      common_tls_context: {
        tls_certificates: [certificate(tls)],
        validation_context: { trusted_ca: { filename: tls.caFile } },
        alpn_protocols: ['h2', 'http/1.1'],
      },
    },
  };
}

function upstreamTransportSocket(tls: BenchUpstreamTls): object {
  return {
    name: TLS_SOCKET,
    typed_config: {
      '@type': UPSTREAM_TLS,
      common_tls_context: {
        tls_certificates: [certificate(tls)],
        validation_context: {
          trusted_ca: { filename: tls.caFile },
          match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: tls.serverId } }],
        },
        alpn_protocols: [tls.protocol],
      },
      // Envoy's default, written out: the last session is resumed on the next connection.
      max_session_keys: 1,
    },
  };
}

const HTTP2_UPSTREAM = {
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': typeUrl('envoy.extensions.upstreams.http.v3.HttpProtocolOptions'),
      explicit_http_config: { http2_protocol_options: {} },
    },
  },
};

const ALL = { default_value: { numerator: 100, denominator: 'HUNDRED' } };

// A bucket far beyond the bench's rates (it refills 1e9 tokens a second): every request takes a token and
// gets the x-ratelimit-* headers, none is denied.
const LOCAL_RATELIMIT_FILTER = {
  name: 'envoy.filters.http.local_ratelimit',
  typed_config: {
    '@type': typeUrl('envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit'),
    stat_prefix: 'bench_ratelimit',
    token_bucket: { max_tokens: 1_000_000_000, tokens_per_fill: 1_000_000_000, fill_interval: '1s' },
    filter_enabled: ALL,
    filter_enforced: ALL,
    enable_x_ratelimit_headers: 'DRAFT_VERSION_03',
  },
};

const CORS_FILTER = {
  name: 'envoy.filters.http.cors',
  typed_config: { '@type': typeUrl('envoy.extensions.filters.http.cors.v3.Cors') },
};

const FAULT_TYPE = typeUrl('envoy.extensions.filters.http.fault.v3.HTTPFault');
const FAULT_FILTER = { name: 'envoy.filters.http.fault', typed_config: { '@type': FAULT_TYPE } };
const NEVER = { numerator: 0, denominator: 'HUNDRED' };

const TYPED_STRUCT = 'type.googleapis.com/xds.type.v3.TypedStruct';

const METADATA_EXCHANGE_FILTER = {
  name: 'istio.metadata_exchange',
  typed_config: {
    '@type': TYPED_STRUCT,
    type_url: 'type.googleapis.com/io.istio.http.peer_metadata.Config',
    value: {
      upstream_discovery: [{ istio_headers: {} }, { workload_discovery: {} }],
      upstream_propagation: [{ istio_headers: {} }],
    },
  },
};

const ISTIO_STATS_FILTER = {
  name: 'istio.stats',
  typed_config: { '@type': TYPED_STRUCT, type_url: 'type.googleapis.com/stats.PluginConfig', value: {} },
};

const HTTP_FILTERS: Record<BenchFilterSet, readonly object[]> = {
  plain: [ROUTER_FILTER],
  ratelimit: [LOCAL_RATELIMIT_FILTER, ROUTER_FILTER],
  resilience: [CORS_FILTER, FAULT_FILTER, LOCAL_RATELIMIT_FILTER, ROUTER_FILTER],
  telemetry: [METADATA_EXCHANGE_FILTER, ISTIO_STATS_FILTER, ROUTER_FILTER],
  tracing: [METADATA_EXCHANGE_FILTER, ISTIO_STATS_FILTER, ROUTER_FILTER],
};

/** Istio's default text access log format (EnvoyTextLogFormat). */
const ISTIO_TEXT_LOG_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% ' +
  '%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" ' +
  '%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" ' +
  '"%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% ' +
  '%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

/** The connection manager's access_log and tracing for the telemetry variants. */
function telemetryHcmFields(filters: BenchFilterSet, t: BenchBootstrapOptions['telemetry']): object {
  if (filters !== 'telemetry' && filters !== 'tracing') return {};
  if (t === undefined) throw new Error(`the ${filters} variant needs telemetry options`);
  return {
    access_log: [
      {
        name: 'envoy.access_loggers.file',
        typed_config: {
          '@type': typeUrl('envoy.extensions.access_loggers.file.v3.FileAccessLog'),
          path: t.accessLogPath,
          log_format: { text_format_source: { inline_string: ISTIO_TEXT_LOG_FORMAT } },
        },
      },
    ],
    tracing: {
      provider: {
        name: 'envoy.tracers.zipkin',
        typed_config: {
          '@type': typeUrl('envoy.config.trace.v3.ZipkinConfig'),
          collector_cluster: 'zipkin',
          collector_endpoint: '/api/v2/spans',
          collector_endpoint_version: 'HTTP_JSON',
          trace_id_128bit: true,
          shared_span_context: false,
        },
      },
      random_sampling: { value: filters === 'tracing' ? 100 : 1 },
    },
  };
}

/** Node metadata as a sidecar agent sets it, so Istio's metric labels are filled as in a mesh. */
const SIDECAR_METADATA = {
  NAME: 'bench-1',
  NAMESPACE: 'bench',
  WORKLOAD_NAME: 'bench',
  LABELS: { app: 'bench', version: 'v1' },
  CLUSTER_ID: 'Kubernetes',
  SERVICE_ACCOUNT: 'bench',
};

/** The route a mesh would send: policies that are evaluated on every request but never fire (no Origin sent, 0% faults). */
function resilienceRoute(): object {
  return {
    match: { prefix: '/' },
    route: {
      cluster: 'upstream',
      timeout: '15s',
      retry_policy: {
        retry_on: '5xx,connect-failure,refused-stream',
        num_retries: 2,
        per_try_timeout: '5s',
        retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts' }],
        retriable_status_codes: [503],
      },
    },
    typed_per_filter_config: {
      'envoy.filters.http.cors': {
        '@type': typeUrl('envoy.extensions.filters.http.cors.v3.CorsPolicy'),
        allow_origin_string_match: [{ exact: 'https://bench.example' }],
        allow_methods: 'GET,POST',
        allow_headers: 'content-type',
        max_age: '600',
      },
      'envoy.filters.http.fault': {
        '@type': FAULT_TYPE,
        delay: { fixed_delay: '1s', percentage: NEVER },
        abort: { http_status: 503, percentage: NEVER },
      },
    },
  };
}

const LARGE = 1_000_000;

/** Outlier detection and circuit breakers that never trip at the bench's load (the upstream always answers 200). */
const RESILIENCE_CLUSTER_POLICIES = {
  outlier_detection: { consecutive_5xx: 5 },
  circuit_breakers: {
    thresholds: [
      {
        priority: 'DEFAULT',
        max_connections: LARGE,
        max_pending_requests: LARGE,
        max_requests: LARGE,
        max_retries: LARGE,
      },
    ],
  },
};

function collectorCluster(at: HostPort): object {
  return {
    name: 'zipkin',
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: 'zipkin',
      endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(at) } }] }],
    },
  };
}

export function benchBootstrap(options: BenchBootstrapOptions): object {
  const filters = options.filters ?? 'plain';
  const { downstreamTls, upstreamTls } = options;
  const route =
    filters === 'resilience' ? resilienceRoute() : { match: { prefix: '/' }, route: { cluster: 'upstream' } };
  return {
    node: {
      id: options.nodeId,
      cluster: 'bench',
      ...(filters === 'telemetry' || filters === 'tracing' ? { metadata: SIDECAR_METADATA } : {}),
    },
    admin: { address: socketAddress(options.admin) },
    static_resources: {
      listeners: [
        {
          name: 'bench',
          address: socketAddress(options.listen),
          ...(filters === 'telemetry' || filters === 'tracing' ? { traffic_direction: 'OUTBOUND' } : {}),
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type':
                      'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'bench',
                    codec_type: 'AUTO',
                    route_config: {
                      name: 'bench',
                      virtual_hosts: [
                        {
                          name: 'all',
                          domains: ['*'],
                          routes: [route],
                        },
                      ],
                    },
                    http_filters: HTTP_FILTERS[filters],
                    ...telemetryHcmFields(filters, options.telemetry),
                  },
                },
              ],
              ...(downstreamTls ? { transport_socket: downstreamTransportSocket(downstreamTls) } : {}),
            },
          ],
        },
      ],
      clusters: [
        {
          name: 'upstream',
          type: 'STATIC',
          connect_timeout: '1s',
          ...(filters === 'resilience' ? RESILIENCE_CLUSTER_POLICIES : {}),
          ...(upstreamTls?.protocol === 'h2' ? HTTP2_UPSTREAM : {}),
          ...(upstreamTls ? { transport_socket: upstreamTransportSocket(upstreamTls) } : {}),
          load_assignment: {
            cluster_name: 'upstream',
            endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(options.upstream) } }] }],
          },
        },
        ...(options.telemetry ? [collectorCluster(options.telemetry.collector)] : []),
      ],
    },
  };
}

export function benchBootstrapYaml(options: BenchBootstrapOptions): string {
  // No YAML anchors for the objects the variants share: the file stays plain to read.
  return stringify(benchBootstrap(options), { aliasDuplicateObjects: false });
}
