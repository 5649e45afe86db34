/**
 * The error catalogue. Config errors name the path of the offending field; data-plane failures
 * carry an Envoy response flag, which becomes the HTTP status, the access-log flag and a metric label.
 */

/** A configuration value Weft cannot accept. `path` is the field's dotted path, e.g. `static_resources.clusters[1].lb_policy`. */
export class ConfigError extends Error {
  readonly path: string;
  readonly detail: string;
  constructor(path: string, detail: string) {
    super(path ? `${path}: ${detail}` : detail);
    this.name = 'ConfigError';
    this.path = path;
    this.detail = detail;
  }
}

/** Envoy's response flags (short form), as printed in access logs and the `response_flags` metric label. */
export const ResponseFlag = {
  NoRouteFound: 'NR',
  NoHealthyUpstream: 'UH',
  UpstreamConnectionFailure: 'UF',
  UpstreamRemoteReset: 'UR',
  UpstreamConnectionTermination: 'UC',
  UpstreamRequestTimeout: 'UT',
  UpstreamOverflow: 'UO',
  UpstreamRetryLimitExceeded: 'URX',
  LocalReset: 'LR',
  DownstreamConnectionTermination: 'DC',
  StreamIdleTimeout: 'SI',
  DelayInjected: 'DI',
  FaultInjected: 'FI',
  RateLimited: 'RL',
  DurationTimeout: 'DT',
  DownstreamProtocolError: 'DPE',
  UpstreamProtocolError: 'UPE',
  NoClusterFound: 'NC',
} as const;
export type ResponseFlag = (typeof ResponseFlag)[keyof typeof ResponseFlag];

/** The HTTP status a proxy-generated reply carries for each failure flag. */
export const statusForFlag: Readonly<Record<string, number>> = {
  NR: 404,
  NC: 503,
  UH: 503,
  UF: 503,
  UR: 503,
  UC: 503,
  UO: 503,
  URX: 503,
  UT: 504,
  SI: 408,
  DT: 504,
  RL: 429,
  DPE: 400,
  UPE: 503,
};

/**
 * gRPC status for a proxy-generated HTTP status, per gRPC's "HTTP to gRPC status code mapping"
 * (400→INTERNAL, 401→UNAUTHENTICATED, 403→PERMISSION_DENIED, 404→UNIMPLEMENTED,
 * 429/502/503/504→UNAVAILABLE, otherwise UNKNOWN).
 */
export function grpcStatusForHttp(status: number): number {
  switch (status) {
    case 400:
      return 13;
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return 12;
    case 429:
    case 502:
    case 503:
    case 504:
      return 14;
    default:
      return 2;
  }
}
