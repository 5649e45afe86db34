/** Listener, filter chain and network filter configuration after validation. */
import type { AccessLogConfig } from '../accesslog/config.ts';
import type { HttpTracingConfig } from '../tracing/config.ts';
import type { RouteTable } from '../router/types.ts';
import type { DownstreamTlsConfig } from '../tls/tls-context-config.ts';
import type { XfccConfig } from '../tls/xfcc.ts';
import type { IstioStatsConfig } from '../telemetry/stats-config.ts';
import type { PeerExchangeConfig } from '../network/peer-exchange-config.ts';

export interface SocketAddress {
  readonly host: string;
  readonly port: number;
}

export interface HcmConfig {
  readonly statPrefix: string;
  readonly codecType: 'AUTO' | 'HTTP1' | 'HTTP2';
  /** The inline route_config; with `rds` an empty table that the RDS one replaces at runtime. */
  readonly routeTable: RouteTable;
  /** Set when routes come from RDS (over ADS) instead of an inline route_config. */
  readonly rds?: { readonly routeConfigName: string; readonly initialFetchTimeoutMs: number };
  /** HTTP filters in order; the last is always the router. */
  readonly httpFilters: readonly HttpFilterConfig[];
  /** Default 5 min; 0 disables. */
  readonly streamIdleTimeoutMs: number;
  /** Whole-request timeout; default 0 (disabled). */
  readonly requestTimeoutMs: number;
  /** request_headers_timeout; Envoy's default is 0 (disabled). */
  readonly requestHeadersTimeoutMs: number;
  /** Default 60, max 8192 (Envoy); exceeded → 431. */
  readonly maxRequestHeadersKb: number;
  /** common_http_protocol_options.idle_timeout for downstream connections; default 1 h, 0 disables. */
  readonly idleTimeoutMs: number;
  /** common_http_protocol_options.max_requests_per_connection, if set. */
  readonly maxRequestsPerConnection: number | undefined;
  readonly useRemoteAddress: boolean;
  readonly xffNumTrustedHops: number;
  readonly skipXffAppend: boolean;
  readonly generateRequestId: boolean;
  readonly preserveExternalRequestId: boolean;
  readonly alwaysSetRequestIdInResponse: boolean;
  /** The `server` header value for responses (default "envoy" in Envoy; Weft uses "weft"). */
  readonly serverName: string;
  readonly serverHeaderTransformation: 'OVERWRITE' | 'APPEND_IF_ABSENT' | 'PASS_THROUGH';
  /** Upgrade types enabled on this connection manager (e.g. "websocket", "connect"), lower-case. */
  readonly upgradeTypes: ReadonlySet<string>;
  /**
   * http_protocol_options.allow_absolute_url (Envoy's default: true): an HTTP/1.1 request in absolute form
   * (`GET http://host/path`, as sent to a forward proxy) is routed by the URI's authority and path; when
   * false such a request is answered 400.
   */
  readonly allowAbsoluteUrl: boolean;
  readonly http2: {
    readonly maxConcurrentStreams: number | undefined;
    readonly initialStreamWindowSize: number | undefined;
    readonly initialConnectionWindowSize: number | undefined;
  };
  /** Drain period for graceful close of this listener's connections (drain_timeout, default 5 s). */
  readonly drainTimeoutMs: number;
  /**
   * forward_client_cert_details and set_current_client_cert_details (x-forwarded-client-cert); absent when
   * neither is set, which is Envoy's default SANITIZE.
   */
  readonly xfcc?: XfccConfig;
  /** access_log: what to log when a stream completes ([] = nothing). */
  readonly accessLog: readonly AccessLogConfig[];
  /** tracing; absent when this connection manager does not trace. */
  readonly tracing?: HttpTracingConfig;
}

export interface HttpFilterConfig {
  readonly name: string;
  /** The `@type` URL of typed_config, e.g. type.googleapis.com/envoy.extensions.filters.http.router.v3.Router. */
  readonly typeUrl: string;
  /** The normalized typed_config, for the filter's own factory. */
  readonly config: unknown;
}

export interface TcpProxyConfig {
  readonly statPrefix: string;
  /** Weighted destinations; a single `cluster` becomes one entry of weight 1. */
  readonly clusters: readonly { readonly name: string; readonly weight: number }[];
  /** Default 1 h; 0 disables. */
  readonly idleTimeoutMs: number;
  /** access_log: what to log when a connection closes ([] = nothing). */
  readonly accessLog: readonly AccessLogConfig[];
}

export type NetworkFilterConfig =
  | { readonly kind: 'http_connection_manager'; readonly name: string; readonly hcm: HcmConfig }
  | { readonly kind: 'tcp_proxy'; readonly name: string; readonly tcpProxy: TcpProxyConfig }
  /** Istio's TCP metrics (`istio.stats` as a TypedStruct of stats.PluginConfig); only before tcp_proxy. */
  | { readonly kind: 'istio_stats'; readonly name: string; readonly stats: IstioStatsConfig }
  /** Istio's TCP peer metadata exchange (`istio.metadata_exchange` as a network filter); only before tcp_proxy. */
  | { readonly kind: 'peer_exchange'; readonly name: string; readonly exchange: PeerExchangeConfig };

export interface FilterChainMatch {
  readonly destinationPort: number | undefined;
  readonly serverNames: readonly string[];
  readonly transportProtocol: string | undefined;
  readonly applicationProtocols: readonly string[];
  readonly prefixRanges: readonly { readonly address: string; readonly prefixLen: number }[];
  readonly sourcePrefixRanges: readonly { readonly address: string; readonly prefixLen: number }[];
}

export interface FilterChainConfig {
  readonly name: string;
  readonly match: FilterChainMatch | undefined;
  /**
   * Network filters; the last one is terminal (http_connection_manager or tcp_proxy), the others are
   * observers (istio_stats, peer_exchange: before tcp_proxy only).
   */
  readonly filters: readonly NetworkFilterConfig[];
  /**
   * transport_socket envoy.transport_sockets.tls (DownstreamTlsContext); absent for plaintext. Part of the
   * chain's identity (its JSON), so a changed TLS configuration is a changed chain.
   */
  readonly tls?: DownstreamTlsConfig;
}

/** A listener filter Weft implements: both inspect the first bytes and set facts for filter chain matching. */
export interface ListenerFilterConfig {
  readonly kind: 'tls_inspector' | 'http_inspector';
  readonly name: string;
}

/** listener_filters with their timeout settings. */
export interface ListenerInspectionConfig {
  readonly filters: readonly ListenerFilterConfig[];
  /** listener_filters_timeout: default 15 s; 0 waits for the client's bytes forever. */
  readonly timeoutMs: number;
  /** continue_on_listener_filters_timeout: on timeout, match chains with what is known instead of closing. */
  readonly continueOnTimeout: boolean;
}

export interface ListenerConfig {
  readonly name: string;
  readonly address: SocketAddress;
  readonly filterChains: readonly FilterChainConfig[];
  readonly defaultFilterChain: FilterChainConfig | undefined;
  readonly perConnectionBufferLimitBytes: number;
  /** Absent when the listener has no inspecting listener_filters: connections go to a chain at once. */
  readonly inspection?: ListenerInspectionConfig;
  /**
   * The original_dst listener filter: a connection redirected here by iptables (REDIRECT) is matched to a
   * filter chain by the destination it was sent to, read from the kernel (SO_ORIGINAL_DST).
   */
  readonly originalDst?: boolean;
  /** traffic_direction: changes nothing in how connections are handled; labels telemetry (span kind). */
  readonly trafficDirection: 'INBOUND' | 'OUTBOUND' | 'UNSPECIFIED';
}
