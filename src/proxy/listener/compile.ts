/**
 * Compiles a normalized envoy.config.listener.v3.Listener into a ListenerConfig: address, filter chains
 * and the two terminal network filters Weft implements (http_connection_manager, tcp_proxy).
 * Every field Weft does not implement is refused, never ignored.
 */
import { compileAccessLogs } from '../accesslog/config.ts';
import { compileHttpTracing } from '../tracing/config.ts';
import net from 'node:net';
import { ConfigError } from '../../core/errors.ts';
import type { Json, JsonObject } from '../../core/json.ts';
import { typeNameOfUrl, typeUrlPrefix } from '../../api/envoy/descriptor.ts';
import {
  asObject,
  durationMs,
  intInRange,
  objectItems,
  onlyFields,
  optBool,
  optObject,
  optString,
  requiredString,
  stringItems,
} from '../config-proto/fields.ts';
import { compileAdsConfigSource } from '../config-proto/config-source.ts';
import { fieldPath, indexPath } from '../config-proto/path.ts';
import { compileRouteConfiguration } from '../router/compile.ts';
import { checkPerFilterConfigNames } from '../http/filter-registry.ts';
import { compileHttpFault, FAULT_FILTER_NAME, FAULT_TYPE_NAME } from '../http/filters/fault-config.ts';
import { compileCors, CORS_FILTER_NAME, CORS_TYPE_NAME } from '../http/filters/cors-config.ts';
import { compileRouterConfig } from '../http/filters/router-config.ts';
import { compileRbac, RBAC_FILTER_NAME, RBAC_TYPE_NAME } from '../http/filters/rbac-config.ts';
import {
  compileJwtAuthn,
  JWT_AUTHN_FILTER_NAME,
  JWT_AUTHN_TYPE_NAME,
} from '../http/filters/jwt-authn-config.ts';
import {
  compileLocalRateLimit,
  LOCAL_RATELIMIT_FILTER_NAME,
  LOCAL_RATELIMIT_TYPE_NAME,
} from '../http/filters/local-ratelimit-config.ts';
import {
  compileRateLimit,
  RATELIMIT_FILTER_NAME,
  RATELIMIT_TYPE_NAME,
} from '../http/filters/ratelimit-config.ts';
import { compileTransportSocket } from '../tls/tls-context-config.ts';
import { compileXfcc } from '../tls/xfcc-config.ts';
import { compileIstioStats } from '../telemetry/stats-config.ts';
import { compileMetadataExchange } from '../telemetry/metadata-exchange-config.ts';
import {
  compilePeerExchange,
  TCP_METADATA_EXCHANGE_FILTER_NAME,
  TCP_METADATA_EXCHANGE_TYPE_URL,
} from '../network/peer-exchange-config.ts';
import {
  identifyIstioHttpFilter,
  ISTIO_STATS_TYPE_URL,
  PEER_METADATA_TYPE_URL,
  TYPED_STRUCT_TYPE_NAMES,
  unwrapTypedStruct,
} from '../telemetry/typed-struct.ts';
import type {
  FilterChainConfig,
  FilterChainMatch,
  HcmConfig,
  HttpFilterConfig,
  ListenerConfig,
  ListenerFilterConfig,
  ListenerInspectionConfig,
  NetworkFilterConfig,
  SocketAddress,
  TcpProxyConfig,
} from './types.ts';

const HCM_TYPE = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP_PROXY_TYPE = 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const ROUTER_TYPE = 'envoy.extensions.filters.http.router.v3.Router';
const TLS_INSPECTOR_TYPE = 'envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector';
const HTTP_INSPECTOR_TYPE = 'envoy.extensions.filters.listener.http_inspector.v3.HttpInspector';
const ORIGINAL_DST_TYPE = 'envoy.extensions.filters.listener.original_dst.v3.OriginalDst';

/** Listener filters Weft implements. */
const LISTENER_FILTERS = [
  { name: 'envoy.filters.listener.tls_inspector', typeName: TLS_INSPECTOR_TYPE },
  { name: 'envoy.filters.listener.http_inspector', typeName: HTTP_INSPECTOR_TYPE },
  { name: 'envoy.filters.listener.original_dst', typeName: ORIGINAL_DST_TYPE },
] as const;

/** Envoy's default listener_filters_timeout. */
const DEFAULT_LISTENER_FILTERS_TIMEOUT_MS = 15_000;

/** Network filters Weft implements: canonical name ↔ typed_config message type. */
const NETWORK_FILTERS = [
  { name: 'envoy.filters.network.http_connection_manager', typeName: HCM_TYPE },
  { name: 'envoy.filters.network.tcp_proxy', typeName: TCP_PROXY_TYPE },
] as const;

/** HTTP filters Weft implements. */
const HTTP_FILTERS = [
  { name: 'envoy.filters.http.router', typeName: ROUTER_TYPE },
  { name: FAULT_FILTER_NAME, typeName: FAULT_TYPE_NAME },
  { name: CORS_FILTER_NAME, typeName: CORS_TYPE_NAME },
  { name: LOCAL_RATELIMIT_FILTER_NAME, typeName: LOCAL_RATELIMIT_TYPE_NAME },
  { name: RATELIMIT_FILTER_NAME, typeName: RATELIMIT_TYPE_NAME },
  { name: RBAC_FILTER_NAME, typeName: RBAC_TYPE_NAME },
  { name: JWT_AUTHN_FILTER_NAME, typeName: JWT_AUTHN_TYPE_NAME },
] as const;

/** Istio's HTTP filters (TypedStructs), by their inner type URL. */
const ISTIO_HTTP_FILTER_CHECKS = {
  [ISTIO_STATS_TYPE_URL]: compileIstioStats,
  [PEER_METADATA_TYPE_URL]: compileMetadataExchange,
};

const MIB = 1024 * 1024;
const MAX_INT32 = 2 ** 31 - 1;

/** A cluster named by a route or a tcp_proxy, with the path of the field that names it. */
export interface ClusterReference {
  readonly cluster: string;
  readonly path: string;
  /** tcp_proxy clusters are looked up per connection; Envoy checks only routes' clusters at config time. */
  readonly tcpProxy?: boolean;
}

export function compileListener(json: Json, path: string): ListenerConfig {
  return compileListenerWithReferences(json, path).listener;
}

/** Compiles a listener and also returns every cluster it names, so the caller can check they exist. */
export function compileListenerWithReferences(
  json: Json,
  path: string,
): { listener: ListenerConfig; references: ClusterReference[] } {
  const obj = asObject(json, path);
  onlyFields(obj, path, [
    'name',
    'address',
    'filter_chains',
    'default_filter_chain',
    'per_connection_buffer_limit_bytes',
    // Descriptive (INBOUND/OUTBOUND, set by Istio on every listener): it labels traffic for tracing and
    // telemetry and changes nothing in how connections are handled.
    'traffic_direction',
    'listener_filters',
    'listener_filters_timeout',
    'continue_on_listener_filters_timeout',
  ]);
  const address = compileAddress(obj.address, fieldPath(path, 'address'));
  const references: ClusterReference[] = [];
  const chains = objectItems(obj, 'filter_chains', path).map(({ item, path: p }) =>
    compileFilterChain(item, p, references),
  );
  const defaultJson = optObject(obj, 'default_filter_chain', path);
  const defaultFilterChain = defaultJson
    ? compileFilterChain(defaultJson, fieldPath(path, 'default_filter_chain'), references)
    : undefined;
  if (chains.length === 0 && !defaultFilterChain) {
    throw new ConfigError(
      fieldPath(path, 'filter_chains'),
      'a listener needs at least one filter chain (or a default_filter_chain)',
    );
  }
  checkDistinctMatches(chains, fieldPath(path, 'filter_chains'));
  const listener: ListenerConfig = {
    // Envoy names an unnamed listener itself; an address-based name is stable and readable.
    name: optString(obj, 'name', path) || `${address.host}_${address.port}`,
    address,
    filterChains: chains,
    defaultFilterChain,
    perConnectionBufferLimitBytes: intInRange(
      obj,
      'per_connection_buffer_limit_bytes',
      path,
      0,
      2 ** 32 - 1,
      MIB,
    ),
    ...compileInspection(obj, path),
    trafficDirection: compileTrafficDirection(obj, path),
  };
  return { listener, references };
}

function compileTrafficDirection(obj: JsonObject, path: string): ListenerConfig['trafficDirection'] {
  const v = optString(obj, 'traffic_direction', path) ?? 'UNSPECIFIED';
  if (v !== 'INBOUND' && v !== 'OUTBOUND' && v !== 'UNSPECIFIED')
    throw new ConfigError(fieldPath(path, 'traffic_direction'), `unknown value ${JSON.stringify(v)}`);
  return v;
}

/**
 * listener_filters and their timeout settings. Without listener filters the timeout settings change nothing
 * (nothing waits), as in Envoy, so they are accepted and dropped.
 */
function compileInspection(
  obj: JsonObject,
  path: string,
): { inspection?: ListenerInspectionConfig; originalDst?: boolean } {
  const timeoutMs = durationMs(obj, 'listener_filters_timeout', path, DEFAULT_LISTENER_FILTERS_TIMEOUT_MS);
  const continueOnTimeout = optBool(obj, 'continue_on_listener_filters_timeout', path) ?? false;
  let originalDst = false;
  const filters: ListenerFilterConfig[] = [];
  for (const { item, path: p } of objectItems(obj, 'listener_filters', path)) {
    onlyFields(item, p, ['name', 'typed_config'], {
      config_discovery: 'not supported by Weft',
      filter_disabled: 'not supported by Weft',
    });
    const { extension, name, config } = identify(item, p, LISTENER_FILTERS, 'a listener filter');
    // None of them has options Weft implements (JA3/JA4 fingerprints, buffer sizes, upstream socket marks).
    if (config) onlyFields(config, fieldPath(p, 'typed_config'), ['@type']);
    // original_dst reads no bytes, so it needs no inspection pass; its place in the list changes nothing.
    if (extension.typeName === ORIGINAL_DST_TYPE) originalDst = true;
    else
      filters.push({
        kind: extension.typeName === TLS_INSPECTOR_TYPE ? 'tls_inspector' : 'http_inspector',
        name,
      });
  }
  return {
    ...(filters.length > 0 ? { inspection: { filters, timeoutMs, continueOnTimeout } } : {}),
    ...(originalDst ? { originalDst } : {}),
  };
}

/** An envoy.config.core.v3.Address that must be a TCP socket address with a literal IP (listeners, admin). */
export function compileAddress(json: Json | undefined, path: string): SocketAddress {
  if (json === undefined || json === null) throw new ConfigError(path, 'required');
  const obj = asObject(json, path);
  onlyFields(obj, path, ['socket_address']);
  const socketPath = fieldPath(path, 'socket_address');
  const socket = optObject(obj, 'socket_address', path);
  if (!socket) throw new ConfigError(socketPath, 'required');
  onlyFields(socket, socketPath, ['address', 'port_value', 'protocol']);
  const protocol = optString(socket, 'protocol', socketPath) ?? 'TCP';
  if (protocol !== 'TCP')
    throw new ConfigError(
      fieldPath(socketPath, 'protocol'),
      `${protocol} is not supported by Weft (only TCP)`,
    );
  const host = requiredString(socket, 'address', socketPath);
  if (net.isIP(host) === 0)
    throw new ConfigError(
      fieldPath(socketPath, 'address'),
      `expected an IPv4 or IPv6 address, got ${JSON.stringify(host)}`,
    );
  return { host, port: intInRange(socket, 'port_value', socketPath, 0, 65535, 0) };
}

function compileFilterChain(
  obj: JsonObject,
  path: string,
  references: ClusterReference[],
): FilterChainConfig {
  onlyFields(obj, path, ['name', 'filter_chain_match', 'filters', 'transport_socket']);
  const tls = compileTransportSocket(obj.transport_socket, fieldPath(path, 'transport_socket'), 'downstream');
  const matchJson = optObject(obj, 'filter_chain_match', path);
  const filterItems = objectItems(obj, 'filters', path);
  if (filterItems.length === 0) {
    throw new ConfigError(
      fieldPath(path, 'filters'),
      'a filter chain needs a terminal filter (http_connection_manager or tcp_proxy)',
    );
  }
  const filters = filterItems.map(({ item, path: p }, i) => {
    const isLast = i === filterItems.length - 1;
    const istio = compileIstioNetworkFilter(item, p);
    if (istio !== undefined) {
      // Istio's TCP filters work on a tcp_proxy's connections; an HTTP chain has the HTTP filters instead.
      if (isLast) throw new ConfigError(p, `${istio.name} must be followed by a terminal filter (tcp_proxy)`);
      return istio;
    }
    const filter = compileNetworkFilter(item, p, references);
    // Both terminal filters Weft implements: nothing may follow them.
    if (!isLast)
      throw new ConfigError(p, `${filter.name} is a terminal filter and must be the last in the chain`);
    return filter;
  });
  const terminal = filters[filters.length - 1];
  if (filters.length > 1 && terminal.kind !== 'tcp_proxy')
    throw new ConfigError(
      filterItems[0].path,
      `${filters[0].name} as a network filter only applies before tcp_proxy (HTTP chains use Istio's HTTP filters)`,
    );
  return {
    name: optString(obj, 'name', path) ?? '',
    match: matchJson ? compileFilterChainMatch(matchJson, fieldPath(path, 'filter_chain_match')) : undefined,
    filters,
    ...(tls === undefined ? {} : { tls }),
  };
}

function compileFilterChainMatch(obj: JsonObject, path: string): FilterChainMatch {
  onlyFields(obj, path, [
    'destination_port',
    'prefix_ranges',
    'source_prefix_ranges',
    'server_names',
    'transport_protocol',
    'application_protocols',
  ]);
  return {
    destinationPort: intInRange(obj, 'destination_port', path, 1, 65535, undefined),
    serverNames: stringItems(obj, 'server_names', path),
    transportProtocol: optString(obj, 'transport_protocol', path) || undefined,
    applicationProtocols: stringItems(obj, 'application_protocols', path),
    prefixRanges: objectItems(obj, 'prefix_ranges', path).map(({ item, path: p }) => compileCidr(item, p)),
    sourcePrefixRanges: objectItems(obj, 'source_prefix_ranges', path).map(({ item, path: p }) =>
      compileCidr(item, p),
    ),
  };
}

function compileCidr(obj: JsonObject, path: string): { address: string; prefixLen: number } {
  onlyFields(obj, path, ['address_prefix', 'prefix_len']);
  const address = requiredString(obj, 'address_prefix', path);
  const family = net.isIP(address);
  if (family === 0)
    throw new ConfigError(
      fieldPath(path, 'address_prefix'),
      `expected an IP address, got ${JSON.stringify(address)}`,
    );
  return { address, prefixLen: intInRange(obj, 'prefix_len', path, 0, family === 4 ? 32 : 128, 0) };
}

/** Envoy refuses two filter chains with the same match: the second could never be chosen. */
function checkDistinctMatches(chains: readonly FilterChainConfig[], path: string): void {
  const seen = new Map<string, number>();
  chains.forEach((chain, i) => {
    const m = chain.match;
    const sorted = <T>(xs: readonly T[]): string[] => xs.map((x) => JSON.stringify(x)).sort();
    const key = JSON.stringify([
      m?.destinationPort,
      sorted(m?.serverNames ?? []),
      m?.transportProtocol,
      sorted(m?.applicationProtocols ?? []),
      sorted(m?.prefixRanges ?? []),
      sorted(m?.sourcePrefixRanges ?? []),
    ]);
    const first = seen.get(key);
    if (first !== undefined) {
      throw new ConfigError(indexPath(path, i), `has the same filter_chain_match as filter_chains[${first}]`);
    }
    seen.set(key, i);
  });
}

interface Extension {
  readonly name: string;
  readonly typeName: string;
}

/**
 * Which extension a filter entry means. Envoy identifies it by typed_config's @type; a bare name
 * (no typed_config) selects the extension of that name with an empty config.
 */
function identify(
  obj: JsonObject,
  path: string,
  known: readonly Extension[],
  kind: string,
): { extension: Extension; name: string; config: JsonObject | undefined } {
  const name = optString(obj, 'name', path) ?? '';
  const config = optObject(obj, 'typed_config', path);
  if (config) {
    const typeUrl = optString(config, '@type', fieldPath(path, 'typed_config')) ?? '';
    const extension = known.find((e) => e.typeName === typeNameOfUrl(typeUrl));
    if (!extension)
      throw new ConfigError(
        fieldPath(path, 'typed_config'),
        `unsupported extension ${JSON.stringify(typeUrl)} for ${kind}`,
      );
    return { extension, name: name || extension.name, config };
  }
  if (!name) throw new ConfigError(path, 'either name or typed_config is required');
  const extension = known.find((e) => e.name === name);
  if (!extension)
    throw new ConfigError(fieldPath(path, 'name'), `unsupported extension ${JSON.stringify(name)}`);
  return { extension, name, config: undefined };
}

/**
 * Istio's network filters before tcp_proxy: istio.stats (a TypedStruct of stats.PluginConfig, or the bare
 * name) and istio.metadata_exchange (a TypedStruct of the TCP MetadataExchange); else undefined.
 */
function compileIstioNetworkFilter(obj: JsonObject, path: string): NetworkFilterConfig | undefined {
  const name = optString(obj, 'name', path) ?? '';
  const typed = optObject(obj, 'typed_config', path);
  const typedPath = fieldPath(path, 'typed_config');
  if (typed === undefined) {
    if (name === TCP_METADATA_EXCHANGE_FILTER_NAME)
      // Without a protocol it could never apply: refused by the compile below.
      return {
        kind: 'peer_exchange',
        name,
        exchange: compilePeerExchange({}, fieldPath(typedPath, 'value')),
      };
    if (name !== 'istio.stats') return undefined;
    onlyFields(obj, path, ['name', 'typed_config']);
    return { kind: 'istio_stats', name, stats: compileIstioStats({}, typedPath) };
  }
  const typeName = typeNameOfUrl(optString(typed, '@type', typedPath) ?? '');
  if (!TYPED_STRUCT_TYPE_NAMES.has(typeName)) return undefined;
  onlyFields(obj, path, ['name', 'typed_config']);
  const { typeUrl, value } = unwrapTypedStruct(typed, typedPath);
  const valuePath = fieldPath(typedPath, 'value');
  if (typeUrl === TCP_METADATA_EXCHANGE_TYPE_URL)
    return {
      kind: 'peer_exchange',
      name: name || TCP_METADATA_EXCHANGE_FILTER_NAME,
      exchange: compilePeerExchange(value, valuePath),
    };
  if (typeUrl !== ISTIO_STATS_TYPE_URL)
    throw new ConfigError(
      fieldPath(typedPath, 'type_url'),
      `unsupported network filter type ${JSON.stringify(typeUrl)} (Weft knows ${ISTIO_STATS_TYPE_URL}, ${TCP_METADATA_EXCHANGE_TYPE_URL})`,
    );
  return {
    kind: 'istio_stats',
    name: name || 'istio.stats',
    stats: compileIstioStats(value, valuePath),
  };
}

function compileNetworkFilter(
  obj: JsonObject,
  path: string,
  references: ClusterReference[],
): NetworkFilterConfig {
  onlyFields(obj, path, ['name', 'typed_config'], { config_discovery: 'not supported by Weft (yet)' });
  const { extension, name, config } = identify(obj, path, NETWORK_FILTERS, 'a network filter');
  if (!config) throw new ConfigError(fieldPath(path, 'typed_config'), `required for ${extension.name}`);
  const configPath = fieldPath(path, 'typed_config');
  if (extension.typeName === HCM_TYPE) {
    return { kind: 'http_connection_manager', name, hcm: compileHcm(config, configPath, references) };
  }
  return { kind: 'tcp_proxy', name, tcpProxy: compileTcpProxy(config, configPath, references) };
}

const HCM_FIELDS = [
  '@type',
  'stat_prefix',
  'codec_type',
  'route_config',
  'rds',
  'http_filters',
  'stream_idle_timeout',
  'request_timeout',
  'request_headers_timeout',
  'max_request_headers_kb',
  'common_http_protocol_options',
  'use_remote_address',
  'xff_num_trusted_hops',
  'skip_xff_append',
  'generate_request_id',
  'preserve_external_request_id',
  'always_set_request_id_in_response',
  'server_name',
  'server_header_transformation',
  'upgrade_configs',
  'http_protocol_options',
  'http2_protocol_options',
  'drain_timeout',
  'forward_client_cert_details',
  'set_current_client_cert_details',
  'access_log',
  'tracing',
];

function compileHcm(obj: JsonObject, path: string, references: ClusterReference[]): HcmConfig {
  onlyFields(obj, path, HCM_FIELDS, {
    scoped_routes: 'not supported by Weft (yet)',
  });
  const statPrefix = requiredString(obj, 'stat_prefix', path);
  const codecType = optString(obj, 'codec_type', path) ?? 'AUTO';
  if (codecType !== 'AUTO' && codecType !== 'HTTP1' && codecType !== 'HTTP2') {
    throw new ConfigError(
      fieldPath(path, 'codec_type'),
      `${codecType} is not supported by Weft (AUTO, HTTP1 or HTTP2)`,
    );
  }
  const routeConfigPath = fieldPath(path, 'route_config');
  const routeConfig = obj.route_config;
  const rdsJson = optObject(obj, 'rds', path);
  let routeTable: HcmConfig['routeTable'];
  let rds: HcmConfig['rds'];
  if (rdsJson) {
    if (routeConfig !== undefined && routeConfig !== null)
      throw new ConfigError(routeConfigPath, 'set either route_config or rds, not both');
    rds = compileRds(rdsJson, fieldPath(path, 'rds'));
    routeTable = compileRouteConfiguration({ name: rds.routeConfigName }, fieldPath(path, 'rds'));
  } else {
    if (routeConfig === undefined || routeConfig === null)
      throw new ConfigError(routeConfigPath, 'required (an inline route configuration, or rds)');
    routeTable = compileRouteConfiguration(routeConfig, routeConfigPath);
    // Envoy's validate_clusters defaults to true for an inline route configuration.
    const validate = optBool(asObject(routeConfig, routeConfigPath), 'validate_clusters', routeConfigPath);
    if (validate !== false) references.push(...routeClusterReferences(routeConfig, routeConfigPath));
  }
  const common = optObject(obj, 'common_http_protocol_options', path);
  const commonPath = fieldPath(path, 'common_http_protocol_options');
  if (common) onlyFields(common, commonPath, ['idle_timeout', 'max_requests_per_connection']);
  const transformation = optString(obj, 'server_header_transformation', path) ?? 'OVERWRITE';
  if (
    transformation !== 'OVERWRITE' &&
    transformation !== 'APPEND_IF_ABSENT' &&
    transformation !== 'PASS_THROUGH'
  ) {
    throw new ConfigError(
      fieldPath(path, 'server_header_transformation'),
      `unknown value ${JSON.stringify(transformation)}`,
    );
  }
  const httpFilters = compileHttpFilters(obj, path);
  const tracing = compileHttpTracing(obj.tracing, fieldPath(path, 'tracing'));
  // RDS tables arrive later and may serve several connection managers: only inline ones are checked here.
  if (!rds) checkPerFilterConfigNames(routeTable, httpFilters);
  return {
    statPrefix,
    codecType,
    routeTable,
    ...(rds ? { rds } : {}),
    httpFilters,
    streamIdleTimeoutMs: durationMs(obj, 'stream_idle_timeout', path, 5 * 60_000),
    requestTimeoutMs: durationMs(obj, 'request_timeout', path, 0),
    requestHeadersTimeoutMs: durationMs(obj, 'request_headers_timeout', path, 0),
    maxRequestHeadersKb: intInRange(obj, 'max_request_headers_kb', path, 1, 8192, 60),
    idleTimeoutMs: common ? durationMs(common, 'idle_timeout', commonPath, 3_600_000) : 3_600_000,
    maxRequestsPerConnection: common
      ? intInRange(common, 'max_requests_per_connection', commonPath, 0, 2 ** 32 - 1, undefined)
      : undefined,
    useRemoteAddress: optBool(obj, 'use_remote_address', path) ?? false,
    xffNumTrustedHops: intInRange(obj, 'xff_num_trusted_hops', path, 0, 2 ** 32 - 1, 0),
    skipXffAppend: optBool(obj, 'skip_xff_append', path) ?? false,
    generateRequestId: optBool(obj, 'generate_request_id', path) ?? true,
    preserveExternalRequestId: optBool(obj, 'preserve_external_request_id', path) ?? false,
    alwaysSetRequestIdInResponse: optBool(obj, 'always_set_request_id_in_response', path) ?? false,
    // An empty server_name means "the default" in Envoy too.
    serverName: optString(obj, 'server_name', path) || 'weft',
    serverHeaderTransformation: transformation,
    upgradeTypes: compileUpgradeTypes(obj, path),
    allowAbsoluteUrl: compileHttp1Options(
      optObject(obj, 'http_protocol_options', path),
      fieldPath(path, 'http_protocol_options'),
    ),
    http2: compileHttp2Options(
      optObject(obj, 'http2_protocol_options', path),
      fieldPath(path, 'http2_protocol_options'),
    ),
    drainTimeoutMs: durationMs(obj, 'drain_timeout', path, 5000),
    ...compileXfcc(obj, path),
    accessLog: compileAccessLogs(obj.access_log, fieldPath(path, 'access_log')),
    ...(tracing === undefined ? {} : { tracing }),
  };
}

/** rds: a route configuration by name, over ADS. */
function compileRds(obj: JsonObject, path: string): NonNullable<HcmConfig['rds']> {
  onlyFields(obj, path, ['config_source', 'route_config_name']);
  const source = compileAdsConfigSource(obj.config_source, fieldPath(path, 'config_source'));
  return {
    routeConfigName: requiredString(obj, 'route_config_name', path),
    initialFetchTimeoutMs: source.initialFetchTimeoutMs,
  };
}

function compileHttpFilters(hcm: JsonObject, path: string): HttpFilterConfig[] {
  const items = objectItems(hcm, 'http_filters', path);
  if (items.length === 0) {
    throw new ConfigError(
      fieldPath(path, 'http_filters'),
      'required: the chain must end with envoy.filters.http.router',
    );
  }
  const filters = items.map(({ item, path: p }) => {
    onlyFields(item, p, ['name', 'typed_config', 'is_optional', 'disabled'], {
      config_discovery: 'not supported by Weft (yet)',
    });
    if (optBool(item, 'disabled', p))
      throw new ConfigError(fieldPath(p, 'disabled'), 'not supported by Weft');
    const istio = identifyIstioHttpFilter(item, p, ISTIO_HTTP_FILTER_CHECKS);
    if (istio !== undefined) return istio;
    const { extension, name, config } = identify(item, p, HTTP_FILTERS, 'an HTTP filter');
    const configPath = fieldPath(p, 'typed_config');
    if (extension.typeName === ROUTER_TYPE) compileRouterConfig(config, configPath);
    if (extension.typeName === FAULT_TYPE_NAME) compileHttpFault(config ?? {}, configPath);
    if (extension.typeName === CORS_TYPE_NAME) compileCors(config ?? {}, configPath);
    if (extension.typeName === LOCAL_RATELIMIT_TYPE_NAME) compileLocalRateLimit(config ?? {}, configPath);
    if (extension.typeName === RATELIMIT_TYPE_NAME) compileRateLimit(config ?? {}, configPath);
    if (extension.typeName === RBAC_TYPE_NAME) compileRbac(config ?? {}, configPath);
    if (extension.typeName === JWT_AUTHN_TYPE_NAME) compileJwtAuthn(config ?? {}, configPath);
    return {
      name,
      typeUrl: `${typeUrlPrefix}${extension.typeName}`,
      config: config ?? { '@type': `${typeUrlPrefix}${extension.typeName}` },
    };
  });
  filters.forEach((filter, i) => {
    const isRouter = filter.typeUrl === `${typeUrlPrefix}${ROUTER_TYPE}`;
    const isLast = i === filters.length - 1;
    if (isRouter && !isLast)
      throw new ConfigError(items[i].path, 'envoy.filters.http.router must be the last HTTP filter');
    if (!isRouter && isLast)
      throw new ConfigError(items[i].path, 'the last HTTP filter must be envoy.filters.http.router');
  });
  return filters;
}

function compileUpgradeTypes(hcm: JsonObject, path: string): Set<string> {
  const enabled = new Set<string>();
  const seen = new Set<string>();
  for (const { item, path: p } of objectItems(hcm, 'upgrade_configs', path)) {
    onlyFields(item, p, ['upgrade_type', 'enabled']);
    // Envoy compares upgrade types case-insensitively.
    const type = requiredString(item, 'upgrade_type', p).toLowerCase();
    if (seen.has(type))
      throw new ConfigError(fieldPath(p, 'upgrade_type'), `duplicate upgrade type ${JSON.stringify(type)}`);
    seen.add(type);
    if (optBool(item, 'enabled', p) ?? true) enabled.add(type);
  }
  return enabled;
}

/** http_protocol_options (Http1ProtocolOptions): only allow_absolute_url, which defaults to true as in Envoy. */
function compileHttp1Options(obj: JsonObject | undefined, path: string): boolean {
  if (obj === undefined) return true;
  onlyFields(obj, path, ['allow_absolute_url']);
  return optBool(obj, 'allow_absolute_url', path) ?? true;
}

function compileHttp2Options(obj: JsonObject | undefined, path: string): HcmConfig['http2'] {
  if (obj)
    onlyFields(obj, path, [
      'max_concurrent_streams',
      'initial_stream_window_size',
      'initial_connection_window_size',
    ]);
  const o = obj ?? {};
  return {
    maxConcurrentStreams: intInRange(o, 'max_concurrent_streams', path, 1, MAX_INT32, undefined),
    initialStreamWindowSize: intInRange(o, 'initial_stream_window_size', path, 65535, MAX_INT32, undefined),
    initialConnectionWindowSize: intInRange(
      o,
      'initial_connection_window_size',
      path,
      65535,
      MAX_INT32,
      undefined,
    ),
  };
}

function compileTcpProxy(obj: JsonObject, path: string, references: ClusterReference[]): TcpProxyConfig {
  onlyFields(obj, path, [
    '@type',
    'stat_prefix',
    'cluster',
    'weighted_clusters',
    'idle_timeout',
    'access_log',
  ]);
  const statPrefix = requiredString(obj, 'stat_prefix', path);
  const weighted = optObject(obj, 'weighted_clusters', path);
  const clusters: { name: string; weight: number }[] = [];
  if (weighted) {
    const weightedPath = fieldPath(path, 'weighted_clusters');
    onlyFields(weighted, weightedPath, ['clusters']);
    const items = objectItems(weighted, 'clusters', weightedPath);
    if (items.length === 0)
      throw new ConfigError(fieldPath(weightedPath, 'clusters'), 'at least one cluster is required');
    for (const { item, path: p } of items) {
      onlyFields(item, p, ['name', 'weight']);
      const name = requiredString(item, 'name', p);
      const weight = intInRange(item, 'weight', p, 1, 2 ** 32 - 1, undefined);
      if (weight === undefined) throw new ConfigError(fieldPath(p, 'weight'), 'required (at least 1)');
      clusters.push({ name, weight });
      references.push({ cluster: name, path: fieldPath(p, 'name'), tcpProxy: true });
    }
  } else {
    const name = optString(obj, 'cluster', path);
    if (!name) throw new ConfigError(fieldPath(path, 'cluster'), 'required (or weighted_clusters)');
    clusters.push({ name, weight: 1 });
    references.push({ cluster: name, path: fieldPath(path, 'cluster'), tcpProxy: true });
  }
  return {
    statPrefix,
    clusters,
    idleTimeoutMs: durationMs(obj, 'idle_timeout', path, 3_600_000),
    accessLog: compileAccessLogs(obj.access_log, fieldPath(path, 'access_log')),
  };
}

/**
 * The clusters a normalized RouteConfiguration names. RouteTable hides them behind pickCluster, so the
 * JSON is walked here for the bootstrap's "every referenced cluster exists" check.
 */
export function routeClusterReferences(json: Json, path: string): ClusterReference[] {
  const references: ClusterReference[] = [];
  const config = asObject(json, path);
  for (const { item: vhost, path: vhostPath } of objectItems(config, 'virtual_hosts', path)) {
    for (const { item: route, path: routePath } of objectItems(vhost, 'routes', vhostPath)) {
      const action = optObject(route, 'route', routePath);
      if (!action) continue;
      const actionPath = fieldPath(routePath, 'route');
      if (action.cluster_header !== undefined)
        throw new ConfigError(fieldPath(actionPath, 'cluster_header'), 'not supported by Weft');
      const cluster = optString(action, 'cluster', actionPath);
      if (cluster) references.push({ cluster, path: fieldPath(actionPath, 'cluster') });
      const weighted = optObject(action, 'weighted_clusters', actionPath);
      if (weighted) {
        for (const { item, path: p } of objectItems(
          weighted,
          'clusters',
          fieldPath(actionPath, 'weighted_clusters'),
        )) {
          const name = optString(item, 'name', p);
          if (name) references.push({ cluster: name, path: fieldPath(p, 'name') });
        }
      }
      for (const { item, path: p } of objectItems(action, 'request_mirror_policies', actionPath)) {
        const name = optString(item, 'cluster', p);
        if (name) references.push({ cluster: name, path: fieldPath(p, 'cluster') });
      }
    }
  }
  return references;
}

/** A listener's address as `host:port` for messages ([::1]:80 for IPv6). */
export function formatAddress(address: SocketAddress): string {
  return net.isIPv6(address.host) ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
