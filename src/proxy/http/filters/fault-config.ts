/**
 * Compiles envoy.extensions.filters.http.fault.v3.HTTPFault (the same message serves as the filter-level
 * config in http_filters and as the per-route config in typed_per_filter_config).
 *
 * Percentages follow the proto: an absent `percentage` is FractionalPercent's default, 0/HUNDRED, so the
 * fault never fires (Envoy's own examples always set it, Istio always sends one). A numerator above the
 * denominator is capped at 100%.
 */
import { ConfigError } from '../../../core/errors.ts';
import type { Json, JsonObject } from '../../../core/json.ts';
import {
  asObject,
  durationMs,
  objectItems,
  optBool,
  optNumber,
  optObject,
  optString,
} from '../../config-proto/fields.ts';
import { fieldPath } from '../../config-proto/path.ts';
import { checkFields } from '../../router/check-fields.ts';
import { compileHeaderMatcher } from '../../router/header-matcher.ts';
import type { HeaderMatcher } from '../../router/header-matcher.ts';

export const FAULT_FILTER_NAME = 'envoy.filters.http.fault';
export const FAULT_TYPE_NAME = 'envoy.extensions.filters.http.fault.v3.HTTPFault';

/** numerator / denominator; the denominator is 100, 10 000 or 1 000 000. */
export interface Fraction {
  readonly numerator: number;
  readonly denominator: number;
}

export type FaultAbortConfig =
  | { readonly kind: 'http'; readonly httpStatus: number; readonly percentage: Fraction }
  | { readonly kind: 'grpc'; readonly grpcStatus: number; readonly percentage: Fraction }
  /** Status from x-envoy-fault-abort-request / x-envoy-fault-abort-grpc-request. */
  | { readonly kind: 'header'; readonly percentage: Fraction };

export type FaultDelayConfig =
  | { readonly kind: 'fixed'; readonly delayMs: number; readonly percentage: Fraction }
  /** Duration from x-envoy-fault-delay-request (milliseconds). */
  | { readonly kind: 'header'; readonly percentage: Fraction };

export interface FaultConfig {
  readonly abort: FaultAbortConfig | undefined;
  readonly delay: FaultDelayConfig | undefined;
  /** '' = any cluster. */
  readonly upstreamCluster: string;
  /** All must match for a fault to apply. */
  readonly headers: readonly HeaderMatcher[];
  /** undefined = unlimited. */
  readonly maxActiveFaults: number | undefined;
}

const UINT32_MAX = 2 ** 32 - 1;

const DENOMINATORS: Readonly<Record<string, number>> = {
  HUNDRED: 100,
  TEN_THOUSAND: 10_000,
  MILLION: 1_000_000,
};

const HTTP_FAULT_FIELDS = {
  supported: [
    '@type',
    'delay',
    'abort',
    'upstream_cluster',
    'headers',
    'max_active_faults',
    // Weft keeps no per-downstream-cluster fault stats: `true` asks for exactly that, `false` is the default.
    'disable_downstream_cluster_stats',
  ],
  // Runtime keys are a runtime-layer feature Weft does not have; the rest are fault kinds not implemented.
  refused: {
    downstream_nodes: null,
    response_rate_limit: null,
    delay_percent_runtime: null,
    abort_percent_runtime: null,
    delay_duration_runtime: null,
    abort_http_status_runtime: null,
    max_active_faults_runtime: null,
    response_rate_limit_percent_runtime: null,
    abort_grpc_status_runtime: null,
    filter_metadata: null,
  },
};

function uint32(obj: JsonObject, key: string, path: string): number | undefined {
  const v = optNumber(obj, key, path);
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < 0 || v > UINT32_MAX)
    throw new ConfigError(fieldPath(path, key), `must be an integer from 0 to ${UINT32_MAX}, got ${v}`);
  return v;
}

/** type.v3.FractionalPercent; absent = 0/100. */
export function compileFractionalPercent(json: Json | undefined, path: string): Fraction {
  if (json === undefined || json === null) return { numerator: 0, denominator: 100 };
  const obj = asObject(json, path);
  checkFields(obj, path, { supported: ['numerator', 'denominator'], refused: {} });
  const numerator = uint32(obj, 'numerator', path) ?? 0;
  const name = optString(obj, 'denominator', path) ?? 'HUNDRED';
  const denominator = DENOMINATORS[name];
  if (denominator === undefined)
    throw new ConfigError(
      fieldPath(path, 'denominator'),
      `unknown value ${JSON.stringify(name)} (HUNDRED, TEN_THOUSAND or MILLION)`,
    );
  return { numerator: Math.min(numerator, denominator), denominator };
}

/** The oneof members of `obj` that are set; more than one is an error naming the second. */
function oneOf(obj: JsonObject, path: string, members: readonly string[], what: string): string {
  const set = members.filter((k) => obj[k] !== undefined && obj[k] !== null);
  if (set.length > 1)
    throw new ConfigError(fieldPath(path, set[1]), `conflicts with "${set[0]}": only one may be set`);
  if (set.length === 0) throw new ConfigError(path, `one of ${members.join(', ')} is required (${what})`);
  return set[0];
}

function emptyMessage(obj: JsonObject, key: string, path: string): void {
  const inner = optObject(obj, key, path);
  if (inner) checkFields(inner, fieldPath(path, key), { supported: [], refused: {} });
}

function compileAbort(json: Json | undefined, path: string): FaultAbortConfig {
  const obj = asObject(json, path);
  checkFields(obj, path, {
    supported: ['http_status', 'grpc_status', 'header_abort', 'percentage'],
    refused: {},
  });
  const percentage = compileFractionalPercent(obj.percentage, fieldPath(path, 'percentage'));
  const kind = oneOf(obj, path, ['http_status', 'grpc_status', 'header_abort'], 'the error type');
  if (kind === 'http_status') {
    const status = optNumber(obj, 'http_status', path)!;
    if (!Number.isInteger(status) || status < 200 || status > 599)
      throw new ConfigError(
        fieldPath(path, 'http_status'),
        `must be an integer from 200 to 599, got ${status}`,
      );
    return { kind: 'http', httpStatus: status, percentage };
  }
  if (kind === 'grpc_status')
    return { kind: 'grpc', grpcStatus: uint32(obj, 'grpc_status', path)!, percentage };
  emptyMessage(obj, 'header_abort', path);
  return { kind: 'header', percentage };
}

function compileDelay(json: Json | undefined, path: string): FaultDelayConfig {
  const obj = asObject(json, path);
  checkFields(obj, path, { supported: ['fixed_delay', 'header_delay', 'percentage'], refused: {} });
  const percentage = compileFractionalPercent(obj.percentage, fieldPath(path, 'percentage'));
  const kind = oneOf(obj, path, ['fixed_delay', 'header_delay'], 'the delay');
  if (kind === 'fixed_delay') {
    const delayMs = durationMs(obj, 'fixed_delay', path, 0);
    if (!(delayMs > 0)) throw new ConfigError(fieldPath(path, 'fixed_delay'), 'must be greater than 0');
    return { kind: 'fixed', delayMs, percentage };
  }
  emptyMessage(obj, 'header_delay', path);
  return { kind: 'header', percentage };
}

/** Compiles a normalized HTTPFault; `path` names it in errors. */
export function compileHttpFault(json: Json | undefined, path: string): FaultConfig {
  const obj = asObject(json ?? {}, path);
  checkFields(obj, path, HTTP_FAULT_FIELDS);
  optBool(obj, 'disable_downstream_cluster_stats', path);
  const abort =
    obj.abort === undefined || obj.abort === null
      ? undefined
      : compileAbort(obj.abort, fieldPath(path, 'abort'));
  const delay =
    obj.delay === undefined || obj.delay === null
      ? undefined
      : compileDelay(obj.delay, fieldPath(path, 'delay'));
  const headers = objectItems(obj, 'headers', path).map(({ item, path: p }) => compileHeaderMatcher(item, p));
  return Object.freeze({
    abort,
    delay,
    upstreamCluster: optString(obj, 'upstream_cluster', path) ?? '',
    headers: Object.freeze(headers),
    maxActiveFaults: uint32(obj, 'max_active_faults', path),
  });
}
