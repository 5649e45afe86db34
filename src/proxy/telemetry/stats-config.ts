/**
 * Istio's stats filter configuration (stats.PluginConfig, given as a TypedStruct's `value`), for the HTTP
 * filter and the TCP network filter `istio.stats`. Accepted fields:
 *
 *   reporter: UNSPECIFIED | SERVER_GATEWAY      UNSPECIFIED: "source" on OUTBOUND listeners, else
 *                                               "destination"; SERVER_GATEWAY: "waypoint"
 *   disable_host_header_fallback: bool          no :authority fallback for destination_service
 *   tcp_reporting_duration: "15s"               TCP byte counters' reporting period (default 15 s)
 *   metrics: [{ name, dimensions: {tag: expr}, tags_to_remove: [tag], drop: bool }]
 *       name: requests_total, request_duration_milliseconds, request_bytes, response_bytes,
 *             request_messages_total, response_messages_total, tcp_sent_bytes_total,
 *             tcp_received_bytes_total, tcp_connections_opened_total, tcp_connections_closed_total,
 *             or empty/absent for every metric; entries apply in order.
 *       dimensions: a standard label overridden in place, or a new label appended; values are the
 *             expressions of ./expressions.ts.
 *
 * Everything else in PluginConfig is refused as not supported by Weft.
 */
import { ConfigError } from '../../core/errors.ts';
import type { Json } from '../../core/json.ts';
import {
  asObject,
  durationMs,
  objectItems,
  onlyFields,
  optBool,
  optObject,
  optString,
  stringItems,
} from '../config-proto/fields.ts';
import { fieldPath } from '../config-proto/path.ts';
import { compileExpression } from './expressions.ts';
import type { CompiledExpression } from './expressions.ts';
import { HTTP_METRICS, TCP_METRICS } from './istio-metrics.ts';
import type { IstioMetricName } from './istio-metrics.ts';
import { HTTP_LABELS, TCP_LABELS } from './labels.ts';

export interface MetricOverride {
  /** '' = every metric. */
  readonly name: string;
  readonly dimensions: readonly (readonly [tag: string, expr: CompiledExpression])[];
  readonly tagsToRemove: readonly string[];
  readonly drop: boolean;
}

export interface IstioStatsConfig {
  readonly reporter: 'UNSPECIFIED' | 'SERVER_GATEWAY';
  readonly disableHostHeaderFallback: boolean;
  readonly tcpReportingDurationMs: number;
  readonly overrides: readonly MetricOverride[];
}

const DEFAULT_TCP_REPORTING_MS = 15_000;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const ALL_METRICS: ReadonlySet<string> = new Set([...HTTP_METRICS, ...TCP_METRICS]);

export function compileIstioStats(json: Json | undefined, path: string): IstioStatsConfig {
  const obj = asObject(json ?? {}, path);
  onlyFields(obj, path, ['reporter', 'disable_host_header_fallback', 'tcp_reporting_duration', 'metrics']);
  const reporter = optString(obj, 'reporter', path) ?? 'UNSPECIFIED';
  if (reporter !== 'UNSPECIFIED' && reporter !== 'SERVER_GATEWAY')
    throw new ConfigError(fieldPath(path, 'reporter'), `unknown value ${JSON.stringify(reporter)}`);
  const tcpReportingDurationMs = durationMs(obj, 'tcp_reporting_duration', path, DEFAULT_TCP_REPORTING_MS);
  if (tcpReportingDurationMs <= 0)
    throw new ConfigError(fieldPath(path, 'tcp_reporting_duration'), 'must be greater than 0');
  const overrides = objectItems(obj, 'metrics', path).map(({ item, path: p }) => compileOverride(item, p));
  return {
    reporter,
    disableHostHeaderFallback: optBool(obj, 'disable_host_header_fallback', path) ?? false,
    tcpReportingDurationMs,
    overrides,
  };
}

function compileOverride(obj: Record<string, Json>, path: string): MetricOverride {
  onlyFields(obj, path, ['name', 'dimensions', 'tags_to_remove', 'drop']);
  const name = optString(obj, 'name', path) ?? '';
  if (name !== '' && !ALL_METRICS.has(name))
    throw new ConfigError(
      fieldPath(path, 'name'),
      `unknown metric ${JSON.stringify(name)} (Istio's standard metrics: ${[...ALL_METRICS].join(', ')})`,
    );
  const dims = optObject(obj, 'dimensions', path) ?? {};
  const dimsPath = fieldPath(path, 'dimensions');
  const dimensions = Object.entries(dims).map(([tag, expr]) => {
    const p = fieldPath(dimsPath, tag);
    if (!LABEL_NAME.test(tag) || tag.startsWith('__'))
      throw new ConfigError(p, `${JSON.stringify(tag)} is not a valid Prometheus label name`);
    if (typeof expr !== 'string') throw new ConfigError(p, `expected a string, got ${JSON.stringify(expr)}`);
    return [tag, compileExpression(expr, p)] as const;
  });
  return {
    name,
    dimensions,
    tagsToRemove: stringItems(obj, 'tags_to_remove', path),
    drop: optBool(obj, 'drop', path) ?? false,
  };
}

/**
 * Where one label of a metric gets its value: >= 0 the index in HTTP_LABELS' standard values, < 0 the
 * custom expression -(source + 1) of the plan.
 */
export interface MetricPlan {
  readonly metric: IstioMetricName;
  readonly labelNames: readonly string[];
  readonly sources: readonly number[];
}

export interface MetricsPlan {
  readonly metrics: readonly MetricPlan[];
  /** The distinct custom expressions, evaluated once per request. */
  readonly expressions: readonly CompiledExpression[];
}

/** The label sets of the metrics of one kind after the overrides. */
export function planMetrics(config: IstioStatsConfig, kind: 'http' | 'tcp'): MetricsPlan {
  const expressions: CompiledExpression[] = [];
  const exprIndex = (e: CompiledExpression): number => {
    let i = expressions.findIndex((x) => x.source === e.source);
    if (i < 0) i = expressions.push(e) - 1;
    return -(i + 1);
  };
  const standard = kind === 'http' ? HTTP_LABELS : TCP_LABELS;
  const metrics: MetricPlan[] = [];
  for (const metric of kind === 'http' ? HTTP_METRICS : TCP_METRICS) {
    const names = [...standard];
    const sources = standard.map((l) => HTTP_LABELS.indexOf(l));
    let dropped = false;
    for (const o of config.overrides) {
      if (o.name !== '' && o.name !== metric) continue;
      if (o.drop) dropped = true;
      for (const [tag, expr] of o.dimensions) {
        const at = names.indexOf(tag);
        if (at >= 0) sources[at] = exprIndex(expr);
        else {
          names.push(tag);
          sources.push(exprIndex(expr));
        }
      }
      for (const tag of o.tagsToRemove) {
        const at = names.indexOf(tag);
        if (at >= 0) {
          names.splice(at, 1);
          sources.splice(at, 1);
        }
      }
    }
    if (!dropped) metrics.push({ metric, labelNames: names, sources });
  }
  return { metrics, expressions };
}
