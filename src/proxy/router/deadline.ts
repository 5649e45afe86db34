/**
 * Deadline propagation: how a caller's deadline (grpc-timeout, x-envoy-expected-rq-timeout-ms) shortens a
 * route's timeout, and what budget is passed on upstream. Times are in milliseconds; Infinity means "no deadline".
 */
import type { IncomingHttpHeaders } from 'node:http';

/** A route's gRPC timeout settings (RouteAction.max_grpc_timeout / grpc_timeout_offset, or MaxStreamDuration's). */
export interface GrpcTimeoutPolicy {
  /** The cap on the grpc-timeout header; 0 means no cap (infinity), as in Envoy. */
  readonly maxMs: number;
  /** Subtracted from the grpc-timeout header before the cap. */
  readonly offsetMs: number;
  /**
   * The deprecated fields apply the offset only when the header is larger than it (so the timeout never
   * reaches 0, meaning infinity); MaxStreamDuration.grpc_timeout_header_offset may expire the stream at once.
   */
  readonly offsetMayExpire: boolean;
  /** Whether grpc-timeout is rewritten upstream to the remaining budget (Envoy does so for max_grpc_timeout only). */
  readonly rewriteHeader: boolean;
}

const GRPC_TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 1e-3,
  n: 1e-6,
};

/** gRPC's TimeoutValue is at most 8 ASCII digits, followed by one unit letter. */
const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;

/** Parses a grpc-timeout header into milliseconds (possibly fractional); undefined when absent or malformed. */
export function parseGrpcTimeout(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = GRPC_TIMEOUT.exec(value);
  if (m === null) return undefined;
  return Number(m[1]) * GRPC_TIMEOUT_UNIT_MS[m[2]];
}

const GRPC_TIMEOUT_MAX_VALUE = 99_999_999;

/**
 * Formats whole milliseconds (at least 1) as a grpc-timeout value: in milliseconds when that fits in 8 digits,
 * else in the smallest coarser unit that fits, rounded down so the callee's deadline never outlives ours.
 */
export function formatGrpcTimeout(ms: number): string {
  const whole = Math.max(1, Math.floor(ms));
  if (whole <= GRPC_TIMEOUT_MAX_VALUE) return `${whole}m`;
  for (const unit of ['S', 'M', 'H'] as const) {
    const v = Math.floor(whole / GRPC_TIMEOUT_UNIT_MS[unit]);
    if (v <= GRPC_TIMEOUT_MAX_VALUE) return `${v}${unit}`;
  }
  return `${GRPC_TIMEOUT_MAX_VALUE}H`;
}

const POSITIVE_INTEGER = /^[1-9]\d{0,14}$/;

/** x-envoy-expected-rq-timeout-ms: a positive integer number of milliseconds; anything else is ignored. */
export function parseExpectedTimeout(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string' || !POSITIVE_INTEGER.test(value)) return undefined;
  return Number(value);
}

export interface TimeoutInputs {
  /** RouteAction.timeout in ms; 0 disables it. */
  readonly routeTimeoutMs: number;
  /** The route's gRPC timeout settings; undefined when the route configures none. */
  readonly grpcPolicy: GrpcTimeoutPolicy | undefined;
  /** Whether the request is gRPC (content-type application/grpc*). */
  readonly isGrpc: boolean;
  /** The router's respect_expected_rq_timeout. */
  readonly respectExpectedRqTimeout: boolean;
  readonly headers: IncomingHttpHeaders;
}

/**
 * The request's effective timeout (Infinity for none). Envoy lets grpc-timeout replace the route timeout and
 * x-envoy-expected-rq-timeout-ms replace the global timeout; Weft only ever caps, so a caller's deadline can
 * shorten the budget the route grants but never lengthen it.
 */
export function effectiveTimeoutMs(inputs: TimeoutInputs): number {
  let timeout = inputs.routeTimeoutMs > 0 ? inputs.routeTimeoutMs : Infinity;
  const policy = inputs.grpcPolicy;
  if (policy !== undefined && inputs.isGrpc) {
    // No (or a malformed) grpc-timeout header means infinity, then the cap.
    let grpc = parseGrpcTimeout(inputs.headers['grpc-timeout']) ?? Infinity;
    if (grpc !== Infinity && policy.offsetMs > 0) {
      if (policy.offsetMayExpire) grpc = Math.max(0, grpc - policy.offsetMs);
      else if (policy.offsetMs < grpc) grpc -= policy.offsetMs;
    }
    if (policy.maxMs > 0) grpc = Math.min(grpc, policy.maxMs);
    timeout = Math.min(timeout, grpc);
  }
  if (inputs.respectExpectedRqTimeout) {
    const expected = parseExpectedTimeout(inputs.headers['x-envoy-expected-rq-timeout-ms']);
    if (expected !== undefined) timeout = Math.min(timeout, expected);
  }
  return timeout;
}

/**
 * The budget to announce for one try: the per-try timeout when set (capped by what remains), else what remains;
 * whole milliseconds, at least 1. Undefined when there is no deadline at all.
 */
export function attemptBudgetMs(remainingMs: number, perTryTimeoutMs: number): number | undefined {
  const budget = perTryTimeoutMs > 0 ? Math.min(perTryTimeoutMs, remainingMs) : remainingMs;
  if (budget === Infinity) return undefined;
  return Math.max(1, Math.floor(budget));
}
