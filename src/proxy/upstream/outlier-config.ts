/**
 * Compiles a cluster's outlier_detection (envoy.config.cluster.v3.OutlierDetection) with Envoy's
 * defaults. Weft implements the consecutive-error detectors; success-rate and failure-percentage
 * analysis are accepted only when disabled.
 */
import { ConfigError } from '../../core/errors.ts';
import type { JsonObject } from '../../core/json.ts';
import {
  isSet,
  optionalBool,
  optionalDurationMs,
  optionalInteger,
  optionalObject,
  rejectUnsupported,
} from './config-fields.ts';

/** A cluster's outlier detection settings after validation (times in milliseconds, percentages 0–100). */
export interface OutlierDetectionConfig {
  readonly consecutive5xx: number;
  readonly enforcingConsecutive5xx: number;
  readonly consecutiveGatewayFailure: number;
  readonly enforcingConsecutiveGatewayFailure: number;
  /** When set, local-origin failures (connect failure, reset, timeout) count apart from upstream 5xx. */
  readonly splitExternalLocalOriginErrors: boolean;
  readonly consecutiveLocalOriginFailure: number;
  readonly enforcingConsecutiveLocalOriginFailure: number;
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionTimeMs: number;
  readonly maxEjectionTimeJitterMs: number;
  readonly maxEjectionPercent: number;
  /** Eject one host even when that alone exceeds max_ejection_percent. */
  readonly alwaysEjectOneHost: boolean;
}

const DEFAULT_MAX_EJECTION_TIME_MS = 300_000;

const SUPPORTED = [
  'consecutive_5xx',
  'enforcing_consecutive_5xx',
  'consecutive_gateway_failure',
  'enforcing_consecutive_gateway_failure',
  'split_external_local_origin_errors',
  'consecutive_local_origin_failure',
  'enforcing_consecutive_local_origin_failure',
  'interval',
  'base_ejection_time',
  'max_ejection_time',
  'max_ejection_time_jitter',
  'max_ejection_percent',
  'always_eject_one_host',
  // Accepted only while the analysis they tune is disabled (checked below).
  'enforcing_success_rate',
  'enforcing_local_origin_success_rate',
  'success_rate_minimum_hosts',
  'success_rate_request_volume',
  'success_rate_stdev_factor',
  'enforcing_failure_percentage',
  'enforcing_failure_percentage_local_origin',
  'failure_percentage_threshold',
  'failure_percentage_minimum_hosts',
  'failure_percentage_request_volume',
] as const;

/** Each analysis Weft does not run: its enforcing fields and the fields that only tune it. */
const UNSUPPORTED_ANALYSES = [
  {
    name: 'success-rate',
    enforcing: ['enforcing_success_rate', 'enforcing_local_origin_success_rate'],
    tuning: ['success_rate_minimum_hosts', 'success_rate_request_volume', 'success_rate_stdev_factor'],
  },
  {
    name: 'failure-percentage',
    enforcing: ['enforcing_failure_percentage', 'enforcing_failure_percentage_local_origin'],
    tuning: [
      'failure_percentage_threshold',
      'failure_percentage_minimum_hosts',
      'failure_percentage_request_volume',
    ],
  },
] as const;

const PERCENT = { max: 100 } as const;

function rejectEnabledAnalyses(od: JsonObject, path: string): void {
  for (const analysis of UNSUPPORTED_ANALYSES) {
    let disabled = true;
    for (const field of analysis.enforcing) {
      const value = optionalInteger(od, field, path, PERCENT);
      if (value !== undefined && value > 0) {
        throw new ConfigError(
          `${path}.${field}`,
          `${analysis.name} outlier detection is not supported by Weft`,
        );
      }
      // Envoy's enforcing_success_rate defaults to 100: tuning it only makes sense once it is explicitly 0.
      if (field === 'enforcing_success_rate' && value === undefined) disabled = false;
    }
    if (disabled) continue;
    for (const field of analysis.tuning) {
      if (isSet(od[field])) {
        throw new ConfigError(
          `${path}.${field}`,
          `${analysis.name} outlier detection is not supported by Weft (set ${analysis.enforcing[0]} to 0)`,
        );
      }
    }
  }
}

/** Reads `cluster.outlier_detection`; undefined when the cluster has none. */
export function compileOutlierDetection(
  c: JsonObject,
  clusterPath: string,
): OutlierDetectionConfig | undefined {
  const od = optionalObject(c, 'outlier_detection', clusterPath);
  if (od === undefined) return undefined;
  const path = `${clusterPath}.outlier_detection`;
  rejectUnsupported(od, path, SUPPORTED);
  rejectEnabledAnalyses(od, path);

  const positiveDuration = (key: string, fallback: number): number => {
    const ms = optionalDurationMs(od, key, path);
    if (ms === undefined) return fallback;
    if (ms <= 0) throw new ConfigError(`${path}.${key}`, 'must be greater than 0');
    return ms;
  };
  const intervalMs = positiveDuration('interval', 10_000);
  const baseEjectionTimeMs = positiveDuration('base_ejection_time', 30_000);
  const maxEjectionTimeMs = positiveDuration(
    'max_ejection_time',
    Math.max(DEFAULT_MAX_EJECTION_TIME_MS, baseEjectionTimeMs),
  );
  if (maxEjectionTimeMs < baseEjectionTimeMs) {
    throw new ConfigError(`${path}.max_ejection_time`, 'must not be smaller than base_ejection_time');
  }
  const jitter = optionalDurationMs(od, 'max_ejection_time_jitter', path) ?? 0;
  if (jitter < 0) throw new ConfigError(`${path}.max_ejection_time_jitter`, 'must not be negative');

  return {
    consecutive5xx: optionalInteger(od, 'consecutive_5xx', path) ?? 5,
    enforcingConsecutive5xx: optionalInteger(od, 'enforcing_consecutive_5xx', path, PERCENT) ?? 100,
    consecutiveGatewayFailure: optionalInteger(od, 'consecutive_gateway_failure', path) ?? 5,
    enforcingConsecutiveGatewayFailure:
      optionalInteger(od, 'enforcing_consecutive_gateway_failure', path, PERCENT) ?? 0,
    splitExternalLocalOriginErrors: optionalBool(od, 'split_external_local_origin_errors', path) ?? false,
    consecutiveLocalOriginFailure: optionalInteger(od, 'consecutive_local_origin_failure', path) ?? 5,
    enforcingConsecutiveLocalOriginFailure:
      optionalInteger(od, 'enforcing_consecutive_local_origin_failure', path, PERCENT) ?? 100,
    intervalMs,
    baseEjectionTimeMs,
    maxEjectionTimeMs,
    maxEjectionTimeJitterMs: jitter,
    maxEjectionPercent: optionalInteger(od, 'max_ejection_percent', path, PERCENT) ?? 10,
    alwaysEjectOneHost: optionalBool(od, 'always_eject_one_host', path) ?? false,
  };
}
