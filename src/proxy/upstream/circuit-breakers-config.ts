/** Compiles a cluster's circuit_breakers (Envoy v3 CircuitBreakers) into the DEFAULT-priority thresholds. */
import { ConfigError } from '../../core/errors.ts';
import type { JsonObject } from '../../core/json.ts';
import {
  asObject,
  optionalArray,
  optionalBool,
  optionalEnum,
  optionalInteger,
  optionalNumber,
  optionalObject,
  rejectUnsupported,
} from './config-fields.ts';
import { DEFAULT_THRESHOLDS } from './circuit-breakers.ts';
import type { CircuitBreakerThresholds } from './types.ts';

const UINT32_MAX = 4294967295;
/** Envoy's retry_budget defaults. */
const DEFAULT_BUDGET_PERCENT = 20;
const DEFAULT_MIN_RETRY_CONCURRENCY = 3;

/** `c` is the cluster object; thresholds not given keep Envoy's defaults. */
export function compileCircuitBreakers(c: JsonObject, path: string): CircuitBreakerThresholds {
  const cb = optionalObject(c, 'circuit_breakers', path);
  if (!cb) return DEFAULT_THRESHOLDS;
  const cbPath = `${path}.circuit_breakers`;
  rejectUnsupported(cb, cbPath, ['thresholds']);
  let result = DEFAULT_THRESHOLDS;
  let seenDefault = false;
  optionalArray(cb, 'thresholds', cbPath).forEach((entry, i) => {
    const tPath = `${cbPath}.thresholds[${i}]`;
    const t = asObject(entry, tPath);
    rejectUnsupported(t, tPath, [
      'priority',
      'max_connections',
      'max_pending_requests',
      'max_requests',
      'max_retries',
      'retry_budget',
      'track_remaining',
    ]);
    // Weft has no high-priority routing, so only the DEFAULT thresholds can apply.
    optionalEnum(t, 'priority', tPath, ['DEFAULT'], ['HIGH']);
    if (seenDefault) throw new ConfigError(tPath, 'duplicate thresholds for priority DEFAULT');
    seenDefault = true;
    const limit = (key: string, fallback: number): number =>
      optionalInteger(t, key, tPath, { max: UINT32_MAX }) ?? fallback;
    result = {
      maxConnections: limit('max_connections', DEFAULT_THRESHOLDS.maxConnections),
      maxPendingRequests: limit('max_pending_requests', DEFAULT_THRESHOLDS.maxPendingRequests),
      maxRequests: limit('max_requests', DEFAULT_THRESHOLDS.maxRequests),
      maxRetries: limit('max_retries', DEFAULT_THRESHOLDS.maxRetries),
      retryBudget: compileRetryBudget(t, tPath),
      trackRemaining: optionalBool(t, 'track_remaining', tPath) ?? false,
    };
  });
  return result;
}

function compileRetryBudget(t: JsonObject, tPath: string): CircuitBreakerThresholds['retryBudget'] {
  const rb = optionalObject(t, 'retry_budget', tPath);
  if (!rb) return undefined;
  const path = `${tPath}.retry_budget`;
  rejectUnsupported(rb, path, ['budget_percent', 'min_retry_concurrency']);
  let budgetPercent = DEFAULT_BUDGET_PERCENT;
  const pct = optionalObject(rb, 'budget_percent', path);
  if (pct) {
    const pctPath = `${path}.budget_percent`;
    rejectUnsupported(pct, pctPath, ['value']);
    const v = optionalNumber(pct, 'value', pctPath) ?? 0;
    if (v < 0 || v > 100) throw new ConfigError(`${pctPath}.value`, `must be between 0 and 100, got ${v}`);
    budgetPercent = v;
  }
  const minRetryConcurrency =
    optionalInteger(rb, 'min_retry_concurrency', path, { max: UINT32_MAX }) ?? DEFAULT_MIN_RETRY_CONCURRENCY;
  return { budgetPercent, minRetryConcurrency };
}
