/**
 * RouteAction.retry_policy (envoy.config.route.v3.RetryPolicy), compiled once into an immutable policy,
 * plus the pure decisions the router asks of it: is this response or this failure retriable, and how long
 * to back off before the next try. The router owns the timers and the attempts themselves.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { ConfigError } from '../../core/errors.ts';
import { parseDurationMs } from '../../core/duration.ts';
import type { Json, JsonObject } from '../../core/json.ts';
import { asObject, objectItems, optNumber, optObject, optString } from '../config-proto/fields.ts';
import { fieldPath, indexPath } from '../config-proto/path.ts';
import { checkFields } from './check-fields.ts';

/** retry_on conditions as bits, so a decision is a mask test. */
export const RetryOn = {
  FIVE_XX: 1 << 0,
  GATEWAY_ERROR: 1 << 1,
  RESET: 1 << 2,
  CONNECT_FAILURE: 1 << 3,
  RETRIABLE_4XX: 1 << 4,
  REFUSED_STREAM: 1 << 5,
  RETRIABLE_STATUS_CODES: 1 << 6,
  ENVOY_RATELIMITED: 1 << 7,
  RESET_BEFORE_REQUEST: 1 << 8,
  GRPC_CANCELLED: 1 << 9,
  GRPC_DEADLINE_EXCEEDED: 1 << 10,
  GRPC_INTERNAL: 1 << 11,
  GRPC_RESOURCE_EXHAUSTED: 1 << 12,
  GRPC_UNAVAILABLE: 1 << 13,
} as const;

const CONDITIONS: ReadonlyMap<string, number> = new Map([
  ['5xx', RetryOn.FIVE_XX],
  ['gateway-error', RetryOn.GATEWAY_ERROR],
  ['reset', RetryOn.RESET],
  ['connect-failure', RetryOn.CONNECT_FAILURE],
  ['retriable-4xx', RetryOn.RETRIABLE_4XX],
  ['refused-stream', RetryOn.REFUSED_STREAM],
  ['retriable-status-codes', RetryOn.RETRIABLE_STATUS_CODES],
  ['envoy-ratelimited', RetryOn.ENVOY_RATELIMITED],
  ['reset-before-request', RetryOn.RESET_BEFORE_REQUEST],
  ['cancelled', RetryOn.GRPC_CANCELLED],
  ['deadline-exceeded', RetryOn.GRPC_DEADLINE_EXCEEDED],
  ['internal', RetryOn.GRPC_INTERNAL],
  ['resource-exhausted', RetryOn.GRPC_RESOURCE_EXHAUSTED],
  ['unavailable', RetryOn.GRPC_UNAVAILABLE],
]);

/** Envoy conditions that need machinery Weft does not have. */
const REFUSED_CONDITIONS: ReadonlySet<string> = new Set(['retriable-headers', 'http3-post-connect-failure']);

/** grpc-status values of the gRPC retry conditions. */
const GRPC_CONDITION: ReadonlyMap<string, number> = new Map([
  ['1', RetryOn.GRPC_CANCELLED],
  ['4', RetryOn.GRPC_DEADLINE_EXCEEDED],
  ['13', RetryOn.GRPC_INTERNAL],
  ['8', RetryOn.GRPC_RESOURCE_EXHAUSTED],
  ['14', RetryOn.GRPC_UNAVAILABLE],
]);

const GRPC_MASK =
  RetryOn.GRPC_CANCELLED |
  RetryOn.GRPC_DEADLINE_EXCEEDED |
  RetryOn.GRPC_INTERNAL |
  RetryOn.GRPC_RESOURCE_EXHAUSTED |
  RetryOn.GRPC_UNAVAILABLE;

/** Conditions under which an upstream that never answered (reset, disconnect, read timeout) is retried. */
const ANY_RESET_MASK = RetryOn.FIVE_XX | RetryOn.GATEWAY_ERROR | RetryOn.RESET;

export const PREVIOUS_HOSTS_PREDICATE = 'envoy.retry_host_predicates.previous_hosts';
export const PREVIOUS_PRIORITIES = 'envoy.retry_priorities.previous_priorities';
const PREVIOUS_PRIORITIES_TYPE =
  'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig';
const PREVIOUS_HOSTS_TYPE =
  'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate';

/** Envoy's default base interval for retry back-off. */
export const DEFAULT_BASE_INTERVAL_MS = 25;

/** How an attempt failed without response headers, as the router sees it. */
export type AttemptFailure = 'connect' | 'refused' | 'reset' | 'termination' | 'protocol' | 'per-try-timeout';

export interface RetryPolicy {
  /** Bit set of RetryOn. */
  readonly retryOn: number;
  readonly numRetries: number;
  /** 0 when unset: each try is bounded only by the route timeout. */
  readonly perTryTimeoutMs: number;
  readonly retriableStatusCodes: ReadonlySet<number>;
  /** retry_host_predicate previous_hosts: later tries avoid hosts already tried. */
  readonly avoidPreviousHosts: boolean;
  readonly hostSelectionMaxAttempts: number;
  readonly baseIntervalMs: number;
  readonly maxIntervalMs: number;
  /**
   * retry_priority previous_priorities: every this many attempts, the priorities tried so far leave the
   * priority load (so retries go to other localities); undefined without it.
   */
  readonly previousPrioritiesFrequency: number | undefined;
}

const RETRY_POLICY_FIELDS = {
  supported: [
    'retry_on',
    'num_retries',
    'per_try_timeout',
    'retriable_status_codes',
    'retry_host_predicate',
    'host_selection_retry_max_attempts',
    'retry_back_off',
    'retry_priority',
  ],
  refused: {
    per_try_idle_timeout: null,
    retry_options_predicates: null,
    rate_limited_retry_back_off: null,
    retriable_headers: null,
    retriable_request_headers: null,
  },
};

const UINT32_MAX = 2 ** 32 - 1;

function parseRetryOn(value: string, path: string): number {
  let bits = 0;
  for (const raw of value.split(',')) {
    const name = raw.trim();
    if (name === '') continue;
    const bit = CONDITIONS.get(name);
    if (bit !== undefined) {
      bits |= bit;
      continue;
    }
    if (REFUSED_CONDITIONS.has(name))
      throw new ConfigError(path, `retry condition ${JSON.stringify(name)} is not supported by Weft`);
    throw new ConfigError(path, `unknown retry condition ${JSON.stringify(name)}`);
  }
  return bits;
}

function integer(value: number | undefined, path: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < min || value > max)
    throw new ConfigError(path, `must be an integer from ${min} to ${max}`);
  return value;
}

function compileHostPredicates(policy: JsonObject, path: string): boolean {
  let previousHosts = false;
  for (const { item, path: p } of objectItems(policy, 'retry_host_predicate', path)) {
    checkFields(item, p, { supported: ['name', 'typed_config'], refused: {} });
    const name = optString(item, 'name', p) ?? '';
    const typed = optObject(item, 'typed_config', p);
    const type = typed === undefined ? undefined : optString(typed, '@type', fieldPath(p, 'typed_config'));
    if (type !== undefined && type !== PREVIOUS_HOSTS_TYPE)
      throw new ConfigError(fieldPath(p, 'typed_config'), `${type} is not supported by Weft`);
    if (name !== PREVIOUS_HOSTS_PREDICATE && type === undefined)
      throw new ConfigError(
        fieldPath(p, 'name'),
        `${JSON.stringify(name)} is not supported by Weft (only ${PREVIOUS_HOSTS_PREDICATE})`,
      );
    if (typed !== undefined) {
      const extra = Object.keys(typed).find((k) => k !== '@type');
      if (extra !== undefined)
        throw new ConfigError(fieldPath(fieldPath(p, 'typed_config'), extra), 'unknown field');
    }
    previousHosts = true;
  }
  return previousHosts;
}

function compileRetryPriority(policy: JsonObject, path: string): number | undefined {
  const p = fieldPath(path, 'retry_priority');
  const item = optObject(policy, 'retry_priority', path);
  if (item === undefined) return undefined;
  checkFields(item, p, { supported: ['name', 'typed_config'], refused: {} });
  const typed = optObject(item, 'typed_config', p);
  const typedPath = fieldPath(p, 'typed_config');
  const type = typed === undefined ? undefined : optString(typed, '@type', typedPath);
  if (type !== PREVIOUS_PRIORITIES_TYPE)
    throw new ConfigError(
      type === undefined ? p : typedPath,
      `${type ?? JSON.stringify(optString(item, 'name', p) ?? '')} is not supported by Weft (only ${PREVIOUS_PRIORITIES} with its typed_config)`,
    );
  checkFields(typed!, typedPath, { supported: ['@type', 'update_frequency'], refused: {} });
  const frequency = integer(
    optNumber(typed!, 'update_frequency', typedPath),
    fieldPath(typedPath, 'update_frequency'),
    1,
    2 ** 31 - 1,
  );
  if (frequency === undefined)
    throw new ConfigError(fieldPath(typedPath, 'update_frequency'), 'required (> 0)');
  return frequency;
}

/** Compiles a normalized RetryPolicy; `path` names it in errors (e.g. `....route.retry_policy`). */
export function compileRetryPolicy(json: Json, path: string): RetryPolicy {
  const obj = asObject(json, path);
  checkFields(obj, path, RETRY_POLICY_FIELDS);
  const retryOn = parseRetryOn(optString(obj, 'retry_on', path) ?? '', fieldPath(path, 'retry_on'));
  const numRetries =
    integer(optNumber(obj, 'num_retries', path), fieldPath(path, 'num_retries'), 0, UINT32_MAX) ?? 1;
  const perTryTimeoutMs =
    obj.per_try_timeout === undefined || obj.per_try_timeout === null
      ? 0
      : parseDurationMs(obj.per_try_timeout, fieldPath(path, 'per_try_timeout'));

  const codesPath = fieldPath(path, 'retriable_status_codes');
  const codes = new Set<number>();
  const rawCodes = obj.retriable_status_codes;
  if (rawCodes !== undefined && rawCodes !== null) {
    if (!Array.isArray(rawCodes)) throw new ConfigError(codesPath, 'must be a list');
    rawCodes.forEach((c, i) => {
      const p = indexPath(codesPath, i);
      if (typeof c !== 'number') throw new ConfigError(p, 'must be a number');
      codes.add(integer(c, p, 100, 599)!);
    });
  }

  const avoidPreviousHosts = compileHostPredicates(obj, path);
  const hostSelectionMaxAttempts =
    integer(
      optNumber(obj, 'host_selection_retry_max_attempts', path),
      fieldPath(path, 'host_selection_retry_max_attempts'),
      0,
      Number.MAX_SAFE_INTEGER,
    ) ?? 1;

  let baseIntervalMs = DEFAULT_BASE_INTERVAL_MS;
  let maxIntervalMs = DEFAULT_BASE_INTERVAL_MS * 10;
  const backOff = optObject(obj, 'retry_back_off', path);
  if (backOff !== undefined) {
    const bPath = fieldPath(path, 'retry_back_off');
    checkFields(backOff, bPath, { supported: ['base_interval', 'max_interval'], refused: {} });
    if (backOff.base_interval === undefined || backOff.base_interval === null)
      throw new ConfigError(fieldPath(bPath, 'base_interval'), 'required');
    baseIntervalMs = parseDurationMs(backOff.base_interval, fieldPath(bPath, 'base_interval'));
    if (!(baseIntervalMs > 0))
      throw new ConfigError(fieldPath(bPath, 'base_interval'), 'must be greater than 0');
    maxIntervalMs = baseIntervalMs * 10;
    if (backOff.max_interval !== undefined && backOff.max_interval !== null) {
      maxIntervalMs = parseDurationMs(backOff.max_interval, fieldPath(bPath, 'max_interval'));
      if (!(maxIntervalMs > 0))
        throw new ConfigError(fieldPath(bPath, 'max_interval'), 'must be greater than 0');
      if (maxIntervalMs < baseIntervalMs)
        throw new ConfigError(
          fieldPath(bPath, 'max_interval'),
          'must be greater than or equal to base_interval',
        );
    }
  }

  return Object.freeze({
    retryOn,
    numRetries,
    perTryTimeoutMs,
    retriableStatusCodes: codes,
    avoidPreviousHosts,
    hostSelectionMaxAttempts,
    baseIntervalMs,
    maxIntervalMs,
    previousPrioritiesFrequency: compileRetryPriority(obj, path),
  });
}

function firstValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Whether upstream response headers ask for another try (the downstream has seen nothing yet). */
export function retriableResponse(
  policy: RetryPolicy,
  status: number,
  headers: IncomingHttpHeaders,
): boolean {
  const on = policy.retryOn;
  // An upstream that says it is overloaded must not be hit again by this request.
  if (headers['x-envoy-overloaded'] !== undefined) return false;
  if (on & RetryOn.FIVE_XX && status >= 500 && status <= 599) return true;
  if (on & RetryOn.GATEWAY_ERROR && status >= 502 && status <= 504) return true;
  if (on & RetryOn.RETRIABLE_4XX && status === 409) return true;
  if (on & RetryOn.RETRIABLE_STATUS_CODES && policy.retriableStatusCodes.has(status)) return true;
  if (on & RetryOn.ENVOY_RATELIMITED && headers['x-envoy-ratelimited'] !== undefined) return true;
  if (on & GRPC_MASK) {
    const grpc = firstValue(headers['grpc-status']);
    if (grpc !== undefined) {
      const bit = GRPC_CONDITION.get(grpc.trim());
      if (bit !== undefined && on & bit) return true;
    }
  }
  return false;
}

/**
 * Whether an attempt that ended without response headers is retried. As in Envoy, 5xx, gateway-error and
 * reset cover every way an upstream can fail to answer (including a per-try timeout); the narrower
 * conditions cover only their own case.
 */
export function retriableFailure(
  policy: RetryPolicy,
  failure: AttemptFailure,
  beforeRequestSent: boolean,
): boolean {
  const on = policy.retryOn;
  if (on & ANY_RESET_MASK) return true;
  if (on & RetryOn.CONNECT_FAILURE && failure === 'connect') return true;
  if (on & RetryOn.REFUSED_STREAM && failure === 'refused') return true;
  if (on & RetryOn.RESET_BEFORE_REQUEST && beforeRequestSent && failure !== 'per-try-timeout') return true;
  return false;
}

/**
 * Fully jittered exponential back-off, as Envoy documents it: before retry N (1-based) wait a uniformly
 * random time in [0, (2^N - 1) × base_interval), capped at max_interval. `random` is in [0, 1).
 */
export function backOffMs(policy: RetryPolicy, retry: number, random: number): number {
  const exp = Math.min(retry, 30);
  const ceiling = Math.min((2 ** exp - 1) * policy.baseIntervalMs, policy.maxIntervalMs);
  return Math.floor(random * ceiling);
}
