/**
 * The compiled routing model (RouteConfiguration → virtual hosts → routes), built once from config
 * and then only read on the hot path.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { MirrorPolicy } from './mirror-policy.ts';
import type { RateLimitPolicyEntry } from './rate-limit-actions.ts';
import type { RetryPolicy } from './retry-policy.ts';
import type { GrpcTimeoutPolicy } from './deadline.ts';

/** What routing needs to know about a request. Header names are lower-case. */
export interface RouteRequest {
  /** `:authority` / Host, as received (may include a port). */
  readonly authority: string;
  /** Path including the query string, as received. */
  readonly path: string;
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  /** `http` or `https`: the scheme the downstream used (for redirects and x-forwarded-proto). */
  readonly scheme: string;
  /** The downstream peer's IP address (after x-forwarded-for handling), for hash policies. */
  readonly sourceIp: string;
  /** What the downstream TLS handshake verified, when there was one: the peer's SPIFFE ID. */
  readonly downstreamSecurity?: { readonly peerPrincipal: string | undefined };
}

/** A mutable header map on its way upstream or downstream (node's outgoing header shape). */
export type HeaderMap = Record<string, string | string[] | undefined>;

/** Adds/removes headers as configured at one level (route config, virtual host or route). */
export interface HeaderMutation {
  apply(headers: HeaderMap, req: RouteRequest): void;
}

export interface HashResult {
  hash: number;
  /** Set when a cookie hash policy generated a new cookie that the response must set. */
  setCookie?: string;
}

export interface ForwardAction {
  readonly kind: 'route';
  /** Picks the concrete cluster (honouring weighted_clusters). `random` is in [0, 1). */
  pickCluster(random: number): WeightedPick;
  /** Rewrites the path (prefix_rewrite / regex_rewrite) or returns it unchanged. */
  rewritePath(path: string): string;
  readonly hostRewriteLiteral: string | undefined;
  readonly autoHostRewrite: boolean;
  /** Upstream response timeout in ms; 0 disables (Envoy's default is 15 s). */
  readonly timeoutMs: number;
  /** Per-route stream idle timeout override in ms, or undefined to inherit the connection manager's. */
  readonly idleTimeoutMs: number | undefined;
  /** Evaluates hash_policy for ring hash / maglev; undefined when no policy yields a value. */
  computeHash(req: RouteRequest): HashResult | undefined;
  /** Whether the route allows WebSocket upgrades (route-level upgrade_configs override). */
  readonly upgradeOverrides: ReadonlyMap<string, boolean>;
  /**
   * The CONNECT upgrade config's connect_config: set when the route terminates CONNECT and tunnels the
   * payload to the cluster as raw TCP (absent: the route does not terminate CONNECT).
   */
  readonly connectConfig?: ConnectConfig;
  /** retry_policy; undefined means a single try (and no body buffering). */
  readonly retryPolicy: RetryPolicy | undefined;
  /**
   * request_mirror_policies of the route, else of its virtual host, else of the route configuration;
   * undefined when no level sets any (no shadow requests).
   */
  readonly mirrorPolicies?: readonly MirrorPolicy[];
  /** rate_limits: descriptor producers for the local rate limit filter; undefined when the route sets none. */
  readonly rateLimits?: readonly RateLimitPolicyEntry[];
  /** max_grpc_timeout (or MaxStreamDuration's grpc_timeout_header_*): how grpc-timeout caps the timeout. */
  readonly grpcTimeout?: GrpcTimeoutPolicy;
}

/** UpgradeConfig.connect_config; Weft implements none of its options (proxy_protocol_config, allow_post). */
export type ConnectConfig = Readonly<Record<string, never>>;

export interface WeightedPick {
  readonly cluster: string;
  /** Header mutations of the chosen weighted cluster entry, if any. */
  readonly requestHeaders?: HeaderMutation;
  readonly responseHeaders?: HeaderMutation;
}

export interface RedirectAction {
  readonly kind: 'redirect';
  /** The status (301 by default) and Location for a request. */
  redirect(req: RouteRequest): { status: number; location: string };
}

export interface DirectResponseAction {
  readonly kind: 'direct_response';
  readonly status: number;
  readonly body: Buffer | undefined;
}

export type RouteAction = ForwardAction | RedirectAction | DirectResponseAction;

export interface CompiledRoute {
  readonly name: string;
  readonly action: RouteAction;
}

/** The outcome of routing one request. */
export interface MatchedRoute {
  readonly virtualHostName: string;
  readonly route: CompiledRoute;
  /**
   * Request header mutations in the order to apply them: route, virtual host, route configuration (so the
   * least specific level's overwrites win, as in Envoy), reversed under most_specific_header_mutations_wins.
   */
  readonly requestHeaders: readonly HeaderMutation[];
  /** Response header mutations in the same order. */
  readonly responseHeaders: readonly HeaderMutation[];
  /** Virtual host include_request_attempt_count: send x-envoy-attempt-count upstream. */
  readonly includeRequestAttemptCount?: boolean;
  /** Virtual host include_attempt_count_in_response: x-envoy-attempt-count on the downstream response. */
  readonly includeAttemptCountInResponse?: boolean;
  /** Route per_request_buffer_limit_bytes: how much request body is kept for retries. */
  readonly perRequestBufferLimitBytes?: number;
  /**
   * typed_per_filter_config by HTTP filter name, compiled by the filter's own config compiler; for each
   * filter the most specific level (route, else virtual host, else route configuration) wins. Absent when
   * no level configures any filter.
   */
  readonly perFilterConfig?: ReadonlyMap<string, unknown>;
}

/** Where a route table uses typed_per_filter_config, so a connection manager can check its filter names. */
export interface PerFilterConfigUse {
  readonly filterName: string;
  /** The message type of the config, e.g. envoy.extensions.filters.http.fault.v3.HTTPFault. */
  readonly typeName: string;
  /** The config's field path, for errors. */
  readonly path: string;
}

export interface RouteTable {
  readonly name: string;
  /** Selects the virtual host by authority, then the first matching route; null when nothing matches (→ 404 NR). */
  match(req: RouteRequest): MatchedRoute | null;
  /** Every typed_per_filter_config entry of the configuration (absent or empty when there is none). */
  readonly perFilterConfigUses?: readonly PerFilterConfigUse[];
}
