/**
 * Generates the Envoy v3 descriptor the proxy validates its bootstrap (and later xDS) against.
 *
 * Loads the Envoy API protos shipped in @grpc/grpc-js-xds, keeps only the types reachable from the
 * roots below (the bootstrap, the extensions whose typed_config Weft understands, and ADS), strips
 * comments and almost all options, and writes protobufjs JSON to src/api/envoy/ and dist/api/envoy/.
 * The output is derived from Apache-2.0 API definitions and is never committed (see .gitignore).
 *
 * Run: node scripts/gen-envoy-descriptor.ts
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const deps = path.join(repo, 'node_modules/@grpc/grpc-js-xds/deps');
/** Import roots, in lookup order; google/protobuf/descriptor.proto comes from protobufjs itself. */
const includeDirs = [
  path.join(deps, 'envoy-api'),
  path.join(deps, 'xds'),
  path.join(deps, 'googleapis'),
  path.join(deps, 'protoc-gen-validate'),
  path.join(repo, 'node_modules/protobufjs'),
];

/** Files to load. Add an extension's proto here when Weft learns to compile its typed_config. */
const entryFiles = [
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  // Pulls in envoy/type/v3/token_bucket.proto and envoy/extensions/common/ratelimit/v3/ratelimit.proto.
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  // Global rate limiting: the filter's config and the rate limit service (the proxy calls it, `weft ratelimit` serves it).
  'envoy/extensions/filters/http/ratelimit/v3/rate_limit.proto',
  'envoy/service/ratelimit/v3/rls.proto',
  // RBAC: the HTTP filter Istio's AuthorizationPolicy translates to.
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  // Access loggers (an HCM's or tcp_proxy's access_log typed_config).
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  // Tracers (an HCM's tracing.provider typed_config).
  'envoy/config/trace/v3/zipkin.proto',
  'envoy/config/trace/v3/opentelemetry.proto',
  'envoy/service/discovery/v3/ads.proto',
  // TLS transport sockets (Downstream/UpstreamTlsContext arrive inside a transport_socket's Any).
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  // TypedStruct: how Weft's own extensions (e.g. the PEAK_EWMA load balancer) are configured.
  'xds/type/v3/typed_struct.proto',
  'udpa/type/v1/typed_struct.proto',
  // Bundled with protobufjs (google/protobuf/*.proto are resolved to its built-in copies).
  'google/protobuf/any.proto',
  'google/protobuf/duration.proto',
  'google/protobuf/empty.proto',
  'google/protobuf/field_mask.proto',
  'google/protobuf/struct.proto',
  'google/protobuf/timestamp.proto',
  'google/protobuf/wrappers.proto',
];

/** The types (and services) whose transitive closure is kept. */
const rootNames = [
  'envoy.config.bootstrap.v3.Bootstrap',
  'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  'envoy.extensions.filters.http.router.v3.Router',
  'envoy.extensions.filters.http.fault.v3.HTTPFault',
  'envoy.extensions.filters.http.cors.v3.Cors',
  'envoy.extensions.filters.http.cors.v3.CorsPolicy',
  'envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
  'envoy.extensions.filters.http.ratelimit.v3.RateLimit',
  'envoy.service.ratelimit.v3.RateLimitService',
  'envoy.extensions.filters.http.rbac.v3.RBAC',
  'envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
  'envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  'envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
  'envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
  'envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
  'envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig',
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  'envoy.extensions.access_loggers.file.v3.FileAccessLog',
  'envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
  'envoy.extensions.access_loggers.stream.v3.StderrAccessLog',
  'envoy.config.trace.v3.ZipkinConfig',
  'envoy.config.trace.v3.OpenTelemetryConfig',
  'envoy.service.discovery.v3.AggregatedDiscoveryService',
  'xds.type.v3.TypedStruct',
  'udpa.type.v1.TypedStruct',
  // Resource types an ADS stream carries (they arrive inside Any, so nothing references them).
  'envoy.config.listener.v3.Listener',
  'envoy.config.route.v3.RouteConfiguration',
  'envoy.config.cluster.v3.Cluster',
  'envoy.config.endpoint.v3.ClusterLoadAssignment',
  'envoy.extensions.transport_sockets.tls.v3.Secret',
  'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  'envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer',
  // Well-known types that may appear inside Any or Struct-typed configuration.
  'google.protobuf.Any',
  'google.protobuf.Struct',
  'google.protobuf.Duration',
  'google.protobuf.Timestamp',
  'google.protobuf.Empty',
  'google.protobuf.FieldMask',
  'google.protobuf.BoolValue',
  'google.protobuf.StringValue',
  'google.protobuf.BytesValue',
  'google.protobuf.DoubleValue',
  'google.protobuf.FloatValue',
  'google.protobuf.Int32Value',
  'google.protobuf.Int64Value',
  'google.protobuf.UInt32Value',
  'google.protobuf.UInt64Value',
];

/** Field and enum options that matter to JSON or wire handling; everything else (validation rules, annotations) is dropped. */
const keptOptions = new Set(['deprecated', 'packed', 'proto3_optional', 'allow_alias']);

type JsonMap = { [key: string]: unknown };

function loadRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string => {
    if (path.isAbsolute(target)) return target;
    for (const dir of includeDirs) {
      const candidate = path.join(dir, target);
      if (fs.existsSync(candidate)) return candidate;
    }
    // protobufjs substitutes its built-in well-known types for these names.
    if (target.startsWith('google/protobuf/')) return target;
    throw new Error(`cannot find ${target} in ${includeDirs.join(', ')}`);
  };
  root.loadSync(entryFiles, { keepCase: true });
  root.resolveAll();
  return root;
}

function isMessageOrEnum(obj: protobuf.ReflectionObject | null): obj is protobuf.Type | protobuf.Enum {
  return obj instanceof protobuf.Type || obj instanceof protobuf.Enum;
}

/** Every Type, Enum and Service reachable from the roots; a nested type pulls in its enclosing type. */
function reachable(root: protobuf.Root): Set<protobuf.ReflectionObject> {
  const seen = new Set<protobuf.ReflectionObject>();
  const queue: protobuf.ReflectionObject[] = [];
  const visit = (obj: protobuf.ReflectionObject | null): void => {
    if (obj && !seen.has(obj)) {
      seen.add(obj);
      queue.push(obj);
    }
  };
  for (const name of rootNames) {
    const obj = root.lookup(name);
    if (!obj) throw new Error(`root type ${name} not found`);
    visit(obj);
  }
  while (queue.length > 0) {
    const obj = queue.pop()!;
    if (obj.parent instanceof protobuf.Type) visit(obj.parent);
    if (obj instanceof protobuf.Type) {
      for (const field of obj.fieldsArray) if (isMessageOrEnum(field.resolvedType)) visit(field.resolvedType);
    } else if (obj instanceof protobuf.Service) {
      for (const method of obj.methodsArray) {
        visit(method.resolvedRequestType);
        visit(method.resolvedResponseType);
      }
    }
  }
  return seen;
}

function pickOptions(options: JsonMap | undefined): JsonMap | undefined {
  if (!options) return undefined;
  const kept = Object.entries(options).filter(([key]) => keptOptions.has(key));
  return kept.length > 0 ? Object.fromEntries(kept) : undefined;
}

/** The object's own descriptor JSON: no comments, no nested declarations, only the options that matter. */
function ownJson(obj: protobuf.ReflectionObject): JsonMap {
  // Every concrete reflection class takes IToJSONOptions, though ReflectionObject's typing does not say so.
  const json = (obj as protobuf.Type).toJSON({ keepComments: false }) as unknown as JsonMap;
  delete json.nested;
  delete json.valuesOptions;
  const options = pickOptions(json.options as JsonMap | undefined);
  if (options) json.options = options;
  else delete json.options;
  if (obj instanceof protobuf.Type) {
    for (const field of Object.values(json.fields as Record<string, JsonMap>)) {
      const fieldOptions = pickOptions(field.options as JsonMap | undefined);
      if (fieldOptions) field.options = fieldOptions;
      else delete field.options;
    }
    for (const oneof of Object.values((json.oneofs ?? {}) as Record<string, JsonMap>)) delete oneof.options;
  } else if (obj instanceof protobuf.Service) {
    for (const method of Object.values(json.methods as Record<string, JsonMap>)) delete method.options;
  }
  return json;
}

function prunedJson(objects: Set<protobuf.ReflectionObject>): JsonMap {
  const tree: JsonMap = { nested: {} };
  // Shallow names first, so an enclosing type is placed before the types nested in it.
  const sorted = [...objects].sort(
    (a, b) =>
      a.fullName.split('.').length - b.fullName.split('.').length || (a.fullName < b.fullName ? -1 : 1),
  );
  for (const obj of sorted) {
    const segments = obj.fullName.replace(/^\./, '').split('.');
    let node = tree;
    for (const segment of segments.slice(0, -1)) {
      const nested = (node.nested ??= {}) as JsonMap;
      node = (nested[segment] ??= { nested: {} }) as JsonMap;
    }
    const nested = (node.nested ??= {}) as JsonMap;
    nested[segments[segments.length - 1]] = ownJson(obj);
  }
  return tree;
}

function main(): void {
  const root = loadRoot();
  const objects = reachable(root);
  const text = JSON.stringify(prunedJson(objects));
  // Prove the pruned descriptor is self-contained before anything depends on it.
  protobuf.Root.fromJSON(JSON.parse(text) as protobuf.INamespace).resolveAll();
  for (const dir of ['src/api/envoy', 'dist/api/envoy']) {
    fs.mkdirSync(path.join(repo, dir), { recursive: true });
    fs.writeFileSync(path.join(repo, dir, 'descriptor.gen.json'), text);
  }
  const types = [...objects].filter((o) => o instanceof protobuf.Type).length;
  console.log(
    `envoy descriptor: ${types} message types, ${text.length} bytes → src/api/envoy/, dist/api/envoy/`,
  );
}

main();
