/**
 * The HTTP connection manager's `tracing` (HttpConnectionManager.Tracing) compiled once into plain
 * settings: sampling percentages, custom tags, path tag length and the provider (Zipkin over HTTP JSON, or
 * OpenTelemetry over OTLP/HTTP protobuf). Without a provider Weft still samples and propagates but reports
 * no span (Istio's disableSpanReporting), where Envoy would not trace at all.
 */
import { ConfigError } from '../../core/errors.ts';
import type { Json, JsonObject } from '../../core/json.ts';
import {
  asObject,
  isSet,
  optionalArray,
  optionalBool,
  optionalDurationMs,
  optionalEnum,
  optionalInteger,
  optionalNumber,
  optionalObject,
  optionalString,
  rejectUnsupported,
} from '../upstream/config-fields.ts';

export const ZIPKIN_CONFIG_TYPE = 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig';
export const OPENTELEMETRY_CONFIG_TYPE = 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig';

export interface ZipkinProviderConfig {
  readonly kind: 'zipkin';
  readonly collectorCluster: string;
  /** The path spans are POSTed to, e.g. /api/v2/spans. */
  readonly collectorEndpoint: string;
  /** Ids this proxy starts are 128-bit (else 64-bit, Zipkin's default). */
  readonly traceId128bit: boolean;
  /** Host header of export requests; the cluster name when unset. */
  readonly collectorHostname: string | undefined;
}

export interface OpenTelemetryProviderConfig {
  readonly kind: 'opentelemetry';
  readonly collectorCluster: string;
  /** Path (and query) of http_uri.uri: where OTLP/HTTP requests go, e.g. /v1/traces. */
  readonly path: string;
  /** http_uri.timeout: bound on one export request. */
  readonly timeoutMs: number;
  /** http_service.request_headers_to_add (e.g. an API key for the collector). */
  readonly headers: Readonly<Record<string, string>>;
  /** The resource's service.name; the node's cluster when unset. */
  readonly serviceName: string | undefined;
}

export type TracingProviderConfig = ZipkinProviderConfig | OpenTelemetryProviderConfig;

export type CustomTag =
  | { readonly tag: string; readonly kind: 'literal'; readonly value: string }
  | {
      readonly tag: string;
      readonly kind: 'request_header';
      readonly header: string;
      readonly defaultValue: string | undefined;
    };

export interface HttpTracingConfig {
  /** Undefined: trace context is decided and propagated, no span is reported. */
  readonly provider: TracingProviderConfig | undefined;
  /** Percentages in [0, 100]. */
  readonly randomSampling: number;
  readonly clientSampling: number;
  readonly overallSampling: number;
  readonly maxPathTagLength: number;
  readonly customTags: readonly CustomTag[];
}

const TRACING_FIELDS = [
  'client_sampling',
  'random_sampling',
  'overall_sampling',
  'verbose',
  'max_path_tag_length',
  'custom_tags',
  'provider',
  'spawn_upstream_span',
];

const DEFAULT_MAX_PATH_TAG_LENGTH = 256;
const DEFAULT_EXPORT_TIMEOUT_MS = 10_000;

/** Compiles `tracing`; undefined when the connection manager does not trace. */
export function compileHttpTracing(json: unknown, path: string): HttpTracingConfig | undefined {
  if (json === undefined || json === null) return undefined;
  const obj = asObject(json as Json, path);
  rejectUnsupported(obj, path, TRACING_FIELDS);
  // Weft makes one span per proxied request, the sidecar model (Envoy's false); an extra upstream span per
  // attempt is not implemented. `verbose` (stream event logs on spans) is accepted and has no effect.
  if (optionalBool(obj, 'spawn_upstream_span', path) === true) {
    throw new ConfigError(
      `${path}.spawn_upstream_span`,
      'true is not supported by Weft (one span per request)',
    );
  }
  optionalBool(obj, 'verbose', path);
  const providerJson = optionalObject(obj, 'provider', path);
  return {
    provider: providerJson === undefined ? undefined : compileProvider(providerJson, `${path}.provider`),
    randomSampling: percent(obj, 'random_sampling', path),
    clientSampling: percent(obj, 'client_sampling', path),
    overallSampling: percent(obj, 'overall_sampling', path),
    maxPathTagLength:
      optionalInteger(obj, 'max_path_tag_length', path, { min: 1 }) ?? DEFAULT_MAX_PATH_TAG_LENGTH,
    customTags: compileCustomTags(optionalArray(obj, 'custom_tags', path), `${path}.custom_tags`),
  };
}

/** envoy.type.v3.Percent; Envoy's default for every tracing percentage is 100. */
function percent(obj: JsonObject, key: string, path: string): number {
  const p = optionalObject(obj, key, path);
  if (p === undefined) return 100;
  const pPath = `${path}.${key}`;
  rejectUnsupported(p, pPath, ['value']);
  const value = optionalNumber(p, 'value', pPath) ?? 0;
  if (value < 0 || value > 100)
    throw new ConfigError(`${pPath}.value`, `must be within [0, 100], got ${value}`);
  return value;
}

function compileCustomTags(list: Json[], path: string): CustomTag[] {
  const out: CustomTag[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < list.length; i++) {
    const p = `${path}[${i}]`;
    const t = asObject(list[i], p);
    rejectUnsupported(t, p, ['tag', 'literal', 'environment', 'request_header', 'metadata']);
    const tag = optionalString(t, 'tag', p);
    if (tag === undefined || tag === '') throw new ConfigError(`${p}.tag`, 'is required');
    if (seen.has(tag)) throw new ConfigError(`${p}.tag`, `duplicate tag ${JSON.stringify(tag)}`);
    seen.add(tag);
    const kinds = ['literal', 'environment', 'request_header', 'metadata'].filter((k) => isSet(t[k]));
    if (kinds.length !== 1) {
      throw new ConfigError(p, 'exactly one of literal, environment, request_header must be set');
    }
    const kind = kinds[0];
    const kPath = `${p}.${kind}`;
    const body = asObject(t[kind], kPath);
    if (kind === 'metadata') throw new ConfigError(kPath, 'is not supported by Weft');
    if (kind === 'literal') {
      rejectUnsupported(body, kPath, ['value']);
      const value = optionalString(body, 'value', kPath);
      if (value === undefined || value === '') throw new ConfigError(`${kPath}.value`, 'is required');
      out.push({ tag, kind: 'literal', value });
      continue;
    }
    rejectUnsupported(body, kPath, ['name', 'default_value']);
    const name = optionalString(body, 'name', kPath);
    if (name === undefined || name === '') throw new ConfigError(`${kPath}.name`, 'is required');
    const defaultValue = optionalString(body, 'default_value', kPath) || undefined;
    if (kind === 'environment') {
      // Read once, as Envoy does when it loads the configuration; an unset variable without a default adds no tag.
      const value = process.env[name] ?? defaultValue;
      if (value !== undefined) out.push({ tag, kind: 'literal', value });
      continue;
    }
    out.push({ tag, kind: 'request_header', header: name.toLowerCase(), defaultValue });
  }
  return out;
}

function compileProvider(obj: JsonObject, path: string): TracingProviderConfig {
  rejectUnsupported(obj, path, ['name', 'typed_config']);
  const typed = optionalObject(obj, 'typed_config', path);
  if (typed === undefined) throw new ConfigError(`${path}.typed_config`, 'is required');
  const tPath = `${path}.typed_config`;
  const type = typed['@type'];
  if (type === ZIPKIN_CONFIG_TYPE) return compileZipkin(typed, tPath);
  if (type === OPENTELEMETRY_CONFIG_TYPE) return compileOpenTelemetry(typed, tPath);
  throw new ConfigError(
    `${tPath}.@type`,
    `tracer ${JSON.stringify(type)} is not supported by Weft (ZipkinConfig and OpenTelemetryConfig are)`,
  );
}

function requiredString(obj: JsonObject, key: string, path: string): string {
  const v = optionalString(obj, key, path);
  if (v === undefined || v === '') throw new ConfigError(`${path}.${key}`, 'is required');
  return v;
}

function compileZipkin(obj: JsonObject, path: string): ZipkinProviderConfig {
  rejectUnsupported(obj, path, [
    'collector_cluster',
    'collector_endpoint',
    'trace_id_128bit',
    'shared_span_context',
    'collector_endpoint_version',
    'collector_hostname',
  ]);
  // Envoy's zero value is deprecated; an unset version means the JSON API, as everyone configures it.
  const version = optionalEnum(
    obj,
    'collector_endpoint_version',
    path,
    ['HTTP_JSON', 'DEPRECATED_AND_UNAVAILABLE_DO_NOT_USE'],
    ['HTTP_PROTO', 'GRPC'],
  );
  void version;
  // Every Weft proxy starts its own span, a child of the caller's (shared_span_context false). Sharing
  // the caller's span id with the server side is not implemented, so only an explicit true is refused.
  if (obj.shared_span_context === true) {
    throw new ConfigError(
      `${path}.shared_span_context`,
      'true is not supported by Weft (each proxy reports its own span, as with false)',
    );
  }
  optionalBool(obj, 'shared_span_context', path);
  return {
    kind: 'zipkin',
    collectorCluster: requiredString(obj, 'collector_cluster', path),
    collectorEndpoint: requiredString(obj, 'collector_endpoint', path),
    traceId128bit: optionalBool(obj, 'trace_id_128bit', path) ?? false,
    collectorHostname: optionalString(obj, 'collector_hostname', path) || undefined,
  };
}

function compileOpenTelemetry(obj: JsonObject, path: string): OpenTelemetryProviderConfig {
  if (isSet(obj.grpc_service)) {
    throw new ConfigError(
      `${path}.grpc_service`,
      'is not supported by Weft (OTLP over HTTP only: use http_service)',
    );
  }
  rejectUnsupported(obj, path, ['http_service', 'service_name']);
  const svc = optionalObject(obj, 'http_service', path);
  if (svc === undefined) throw new ConfigError(`${path}.http_service`, 'is required');
  const sPath = `${path}.http_service`;
  rejectUnsupported(svc, sPath, ['http_uri', 'request_headers_to_add']);
  const uriObj = optionalObject(svc, 'http_uri', sPath);
  if (uriObj === undefined) throw new ConfigError(`${sPath}.http_uri`, 'is required');
  const uPath = `${sPath}.http_uri`;
  rejectUnsupported(uriObj, uPath, ['uri', 'cluster', 'timeout']);
  const uri = requiredString(uriObj, 'uri', uPath);
  let parsed: URL;
  try {
    parsed = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(uri) ? uri : `http://${uri}`);
  } catch {
    throw new ConfigError(`${uPath}.uri`, `not a valid URI: ${JSON.stringify(uri)}`);
  }
  const timeoutMs = optionalDurationMs(uriObj, 'timeout', uPath) ?? DEFAULT_EXPORT_TIMEOUT_MS;
  if (timeoutMs <= 0) throw new ConfigError(`${uPath}.timeout`, 'must be greater than 0');
  const headers: Record<string, string> = {};
  const toAdd = optionalArray(svc, 'request_headers_to_add', sPath);
  for (let i = 0; i < toAdd.length; i++) {
    const hPath = `${sPath}.request_headers_to_add[${i}]`;
    const opt = asObject(toAdd[i], hPath);
    // A fresh export request has no header to append to: every append mode adds the header.
    rejectUnsupported(opt, hPath, ['header', 'append', 'append_action', 'keep_empty_value']);
    const header = optionalObject(opt, 'header', hPath);
    if (header === undefined) throw new ConfigError(`${hPath}.header`, 'is required');
    rejectUnsupported(header, `${hPath}.header`, ['key', 'value']);
    const key = requiredString(header, 'key', `${hPath}.header`).toLowerCase();
    headers[key] = optionalString(header, 'value', `${hPath}.header`) ?? '';
  }
  return {
    kind: 'opentelemetry',
    collectorCluster: requiredString(uriObj, 'cluster', uPath),
    path: (parsed.pathname || '/') + parsed.search,
    timeoutMs,
    headers,
    serviceName: optionalString(obj, 'service_name', path) || undefined,
  };
}
