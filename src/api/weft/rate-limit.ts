/**
 * RateLimitPolicy (weft.dev/v1alpha1): Weft's own resource for rate limits, where Istio has no API
 * (Istio users write EnvoyFilters for envoy.filters.http.local_ratelimit). It selects server workloads
 * by labels or names a service host, and limits requests on their inbound side.
 */

/** A token bucket, written either as a rate (requestsPerUnit per unit) or as Envoy's bucket fields. */
export interface RateLimit {
  requestsPerUnit?: number;
  unit?: 'SECOND' | 'MINUTE' | 'HOUR';
  maxTokens?: number;
  tokensPerFill?: number;
  /** A duration such as "1s" or "1m". */
  fillInterval?: string;
}

/** What identifies a client; exactly one is set. */
export interface ClientKey {
  /** The client's principal: the SPIFFE ID its mTLS handshake verified (on plaintext, from x-forwarded-client-cert). */
  principal?: Record<string, never>;
  /** A request header's value. */
  header?: string;
  remoteAddress?: Record<string, never>;
  path?: Record<string, never>;
  method?: Record<string, never>;
}

export interface ClientOverride extends RateLimit {
  /** The client value (principal, header value, address, path or method) this limit is for. */
  value: string;
}

export interface PerClientLimit extends RateLimit {
  key: ClientKey;
  overrides?: ClientOverride[];
}

export interface LocalRateLimits {
  /** The limit for all requests to the workload together. */
  default?: RateLimit;
  /** A limit for each client on its own. */
  perClient?: PerClientLimit;
}

export interface RateLimitPolicy {
  selector?: { matchLabels?: Record<string, string> };
  /** A service host (short names are qualified with the policy's namespace). */
  targetRef?: { kind?: 'Service'; name: string };
  local?: LocalRateLimits;
  global?: GlobalRateLimits;
}

/** A fixed rate: requestsPerUnit per unit, counted in windows of one unit. */
export interface WindowLimit {
  requestsPerUnit: number;
  unit: 'SECOND' | 'MINUTE' | 'HOUR' | 'DAY';
}

export interface GlobalClientOverride extends WindowLimit {
  value: string;
}

export interface GlobalPerClientLimit extends WindowLimit {
  key: ClientKey;
  overrides?: GlobalClientOverride[];
}

/**
 * Limits shared by every replica of the selected workloads: each replica's proxy asks the rate limit
 * service (Envoy's RLS protocol; `weft ratelimit`, counting in Redis) before letting a request in.
 */
export interface GlobalRateLimits {
  /** The rate limit service, `host:port` of a mesh service whose port speaks gRPC. */
  service: string;
  /** The RLS domain (default "weft"). */
  domain?: string;
  /** Allow (default: fail open) or Deny requests when the service cannot answer in time. */
  failureMode?: 'Allow' | 'Deny';
  /** How long a proxy waits for the service (default 100ms). */
  timeout?: string;
  /** FixedWindow (default) or SlidingWindow counting. */
  algorithm?: 'FixedWindow' | 'SlidingWindow';
  /** The limit for all requests to the workloads together. */
  default?: WindowLimit;
  /** A limit for each client on its own, across every replica. */
  perClient?: GlobalPerClientLimit;
}
