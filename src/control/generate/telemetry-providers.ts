/**
 * MeshConfig providers as proxy config: file access loggers (Istio's default formats), tracers (Zipkin,
 * OpenTelemetry over HTTP) and the clusters their collectors need. Each provider's JSON is built once per
 * MeshConfig and shared by every listener that uses it.
 */
import type { JsonObject } from '../../core/json.ts';
import type {
  EnvoyFileAccessLogProvider,
  ExtensionProvider,
  MeshConfig,
} from '../../api/istio/mesh-config.ts';
import { BUILTIN_ENVOY_ACCESS_LOG, BUILTIN_PROMETHEUS } from '../../api/istio/mesh-config.ts';
import { istioDurationToProto } from '../../config/duration.ts';
import { outboundClusterName, TYPES } from './names.ts';

export const FILE_ACCESS_LOG_TYPE =
  'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
export const ZIPKIN_TYPE = 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig';
export const OPENTELEMETRY_TYPE = 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig';

/** Istio's default text access log format (its EnvoyTextLogFormat). */
export const ISTIO_TEXT_LOG_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" ' +
  '%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% ' +
  '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ' +
  '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" ' +
  '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% ' +
  '%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

/** Istio's default JSON access log labels (accessLogEncoding: JSON). */
export const ISTIO_JSON_LOG_LABELS: Readonly<Record<string, string>> = {
  start_time: '%START_TIME%',
  route_name: '%ROUTE_NAME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%',
  response_code: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  response_code_details: '%RESPONSE_CODE_DETAILS%',
  connection_termination_details: '%CONNECTION_TERMINATION_DETAILS%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%',
  upstream_service_time: '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%',
  x_forwarded_for: '%REQ(X-FORWARDED-FOR)%',
  user_agent: '%REQ(USER-AGENT)%',
  request_id: '%REQ(X-REQUEST-ID)%',
  authority: '%REQ(:AUTHORITY)%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_cluster: '%UPSTREAM_CLUSTER_RAW%',
  upstream_local_address: '%UPSTREAM_LOCAL_ADDRESS%',
  downstream_local_address: '%DOWNSTREAM_LOCAL_ADDRESS%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
  requested_server_name: '%REQUESTED_SERVER_NAME%',
  upstream_transport_failure_reason: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
};

export type ProviderKind = 'metrics' | 'tracing' | 'accessLogging';

/** A provider as the generator uses it. */
export type ResolvedProvider =
  | { kind: 'metrics'; name: string }
  | { kind: 'accessLogging'; name: string; logger: JsonObject }
  | {
      kind: 'tracing';
      name: string;
      tracer: (serviceName: string) => JsonObject;
      perWorkload: boolean;
      maxTagLength?: number;
      cluster: CollectorCluster;
    };

export interface CollectorCluster {
  name: string;
  host: string;
  port: number;
}

function textFormat(text: string): JsonObject {
  // Envoy writes the format as is; Istio ends a custom line with a newline when it has none.
  return { text_format_source: { inline_string: text.endsWith('\n') ? text : `${text}\n` } };
}

function fileLogger(path: string, logFormat: JsonObject): JsonObject {
  return {
    name: 'envoy.access_loggers.file',
    typed_config: { '@type': FILE_ACCESS_LOG_TYPE, path, log_format: logFormat },
  };
}

/** The built-in `envoy` provider: accessLogFile, accessLogEncoding, accessLogFormat. */
function builtinAccessLog(mesh: MeshConfig): JsonObject {
  const path = mesh.accessLogFile || '/dev/stdout';
  if (mesh.accessLogEncoding === 'JSON') {
    const labels = mesh.accessLogFormat
      ? (JSON.parse(mesh.accessLogFormat) as JsonObject)
      : { ...ISTIO_JSON_LOG_LABELS };
    return fileLogger(path, { json_format: labels });
  }
  return fileLogger(path, textFormat(mesh.accessLogFormat || ISTIO_TEXT_LOG_FORMAT));
}

function envoyFileAccessLog(p: EnvoyFileAccessLogProvider): JsonObject {
  const path = p.path || '/dev/stdout';
  if (p.logFormat?.labels) return fileLogger(path, { json_format: { ...p.logFormat.labels } });
  return fileLogger(path, textFormat(p.logFormat?.text || ISTIO_TEXT_LOG_FORMAT));
}

function collector(service: string, port: number): CollectorCluster {
  return { name: outboundClusterName(port, '', service), host: service, port };
}

function resolve(p: ExtensionProvider): ResolvedProvider | undefined {
  if (p.prometheus) return { kind: 'metrics', name: p.name };
  if (p.envoyFileAccessLog)
    return { kind: 'accessLogging', name: p.name, logger: envoyFileAccessLog(p.envoyFileAccessLog) };
  if (p.zipkin) {
    const z = p.zipkin;
    const cluster = collector(z.service, z.port);
    const tracer: JsonObject = {
      name: 'envoy.tracers.zipkin',
      typed_config: {
        '@type': ZIPKIN_TYPE,
        collector_cluster: cluster.name,
        collector_endpoint: z.path ?? '/api/v2/spans',
        collector_endpoint_version: 'HTTP_JSON',
        collector_hostname: z.service,
        trace_id_128bit: true,
        shared_span_context: false,
      },
    };
    return {
      kind: 'tracing',
      name: p.name,
      tracer: () => tracer,
      perWorkload: false,
      ...(z.maxTagLength ? { maxTagLength: z.maxTagLength } : {}),
      cluster,
    };
  }
  if (p.opentelemetry) {
    const o = p.opentelemetry;
    const cluster = collector(o.service, o.port);
    const path = o.http.path || '/v1/traces';
    const httpService: JsonObject = {
      http_uri: {
        uri: `http://${o.service}:${o.port}${path.startsWith('/') ? path : `/${path}`}`,
        cluster: cluster.name,
        timeout: (o.http.timeout && istioDurationToProto(o.http.timeout)) || '5s',
      },
      ...(o.http.headers?.length
        ? { request_headers_to_add: o.http.headers.map((h) => ({ header: { key: h.name, value: h.value } })) }
        : {}),
    };
    const byService = new Map<string, JsonObject>();
    return {
      kind: 'tracing',
      name: p.name,
      perWorkload: true,
      cluster,
      tracer: (serviceName) => {
        let t = byService.get(serviceName);
        if (!t) {
          t = {
            name: 'envoy.tracers.opentelemetry',
            typed_config: {
              '@type': OPENTELEMETRY_TYPE,
              http_service: httpService,
              service_name: serviceName,
            },
          };
          byService.set(serviceName, t);
        }
        return t;
      },
    };
  }
  return undefined;
}

/** Every provider a MeshConfig names, plus Istio's built-in `prometheus` and `envoy` unless it redefines them. */
export class ProviderTable {
  readonly #byName = new Map<string, ResolvedProvider>();

  constructor(mesh: MeshConfig) {
    this.#byName.set(BUILTIN_PROMETHEUS, { kind: 'metrics', name: BUILTIN_PROMETHEUS });
    this.#byName.set(BUILTIN_ENVOY_ACCESS_LOG, {
      kind: 'accessLogging',
      name: BUILTIN_ENVOY_ACCESS_LOG,
      logger: builtinAccessLog(mesh),
    });
    for (const p of mesh.extensionProviders ?? []) {
      const r = resolve(p);
      if (r) this.#byName.set(p.name, r);
    }
  }

  get(name: string): ResolvedProvider | undefined {
    return this.#byName.get(name);
  }
}

const tables = new WeakMap<MeshConfig, ProviderTable>();

export function providerTable(mesh: MeshConfig): ProviderTable {
  let t = tables.get(mesh);
  if (!t) {
    t = new ProviderTable(mesh);
    tables.set(mesh, t);
  }
  return t;
}

/** A tracing collector the registry does not know: a STRICT_DNS cluster, as Istio generates for it. */
export function collectorCluster(c: CollectorCluster): JsonObject {
  return {
    '@type': TYPES.cluster,
    name: c.name,
    type: 'STRICT_DNS',
    connect_timeout: '10s',
    lb_policy: 'ROUND_ROBIN',
    load_assignment: {
      cluster_name: c.name,
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: c.host, port_value: c.port } } } },
          ],
        },
      ],
    },
  };
}
