/**
 * Compiles a normalized envoy.config.cluster.v3.Cluster into a ClusterConfig. Field semantics and
 * defaults are Envoy's; every field Weft does not implement is rejected with its path.
 */
import { isIP } from 'node:net';
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
} from './config-fields.ts';
import { compileAdsConfigSource } from '../config-proto/config-source.ts';
import { hostKey } from './host.ts';
import { compileOutlierDetection } from './outlier-config.ts';
import { compileLoadBalancingPolicy } from './lb/peak-ewma-config.ts';
import { compileCircuitBreakers } from './circuit-breakers-config.ts';
import { compileTransportSocket } from '../tls/tls-context-config.ts';
import type {
  ClusterConfig,
  ClusterType,
  EndpointConfig,
  HealthStatus,
  IstioServiceRef,
  Http2UpstreamOptions,
  LbPolicy,
  LocalityEndpoints,
  TransportSocketMatch,
} from './types.ts';

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const DEFAULT_OVERPROVISIONING_FACTOR = 140;
const DEFAULT_PANIC_THRESHOLD = 50;
const DEFAULT_CHOICE_COUNT = 2;
const DEFAULT_MIN_RING = 1024;
const MAX_RING = 8 * 1024 * 1024;
const DEFAULT_MAGLEV_TABLE = 65537;
const MAX_MAGLEV_TABLE = 5000011;
const DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS = 3600_000;
const DEFAULT_DNS_REFRESH_MS = 5000;
const UINT32_MAX = 4294967295;

const HTTP_PROTOCOL_OPTIONS_NAME = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const HTTP_PROTOCOL_OPTIONS_TYPE = `type.googleapis.com/${HTTP_PROTOCOL_OPTIONS_NAME}`;

const CLUSTER_FIELDS = [
  'name',
  'type',
  'connect_timeout',
  'lb_policy',
  'round_robin_lb_config',
  'least_request_lb_config',
  'ring_hash_lb_config',
  'maglev_lb_config',
  'load_assignment',
  'common_lb_config',
  'typed_extension_protocol_options',
  // Deprecated cluster-level protocol options, still accepted by Envoy.
  'http2_protocol_options',
  'http_protocol_options',
  'common_http_protocol_options',
  'max_requests_per_connection',
  'circuit_breakers',
  'dns_refresh_rate',
  'dns_lookup_family',
  'respect_dns_ttl',
  'eds_cluster_config',
  'outlier_detection',
  'load_balancing_policy',
  'transport_socket',
  'transport_socket_matches',
  // Opaque to the proxy except Istio's filter_metadata.istio.services (telemetry's destination_service).
  'metadata',
] as const;

/** Which lb_policy each lb_config field belongs to. */
const LB_CONFIG_POLICY: Readonly<Record<string, LbPolicy>> = {
  round_robin_lb_config: 'ROUND_ROBIN',
  least_request_lb_config: 'LEAST_REQUEST',
  ring_hash_lb_config: 'RING_HASH',
  maglev_lb_config: 'MAGLEV',
};

export function compileCluster(json: Json, path: string): ClusterConfig {
  const c = asObject(json, path);
  if (isSet(c.cluster_type))
    throw new ConfigError(`${path}.cluster_type`, 'custom cluster types are not supported by Weft');
  rejectUnsupported(c, path, CLUSTER_FIELDS);

  const name = optionalString(c, 'name', path);
  if (name === undefined || name === '') throw new ConfigError(`${path}.name`, 'is required');

  const type = compileType(c, path);
  const eds = compileEdsClusterConfig(c, path, type, name);
  const connectTimeoutMs = optionalDurationMs(c, 'connect_timeout', path) ?? DEFAULT_CONNECT_TIMEOUT_MS;
  if (connectTimeoutMs <= 0) throw new ConfigError(`${path}.connect_timeout`, 'must be greater than 0');

  const peakEwma = compileLoadBalancingPolicy(c, path);
  const lbPolicy: LbPolicy =
    peakEwma !== undefined
      ? 'PEAK_EWMA'
      : (optionalEnum<LbPolicy>(
          c,
          'lb_policy',
          path,
          ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'],
          ['CLUSTER_PROVIDED', 'LOAD_BALANCING_POLICY_CONFIG'],
        ) ?? 'ROUND_ROBIN');
  for (const [field, policy] of Object.entries(LB_CONFIG_POLICY)) {
    if (c[field] !== undefined && c[field] !== null && policy !== lbPolicy) {
      throw new ConfigError(`${path}.${field}`, `only applies to lb_policy ${policy}, not ${lbPolicy}`);
    }
  }
  const roundRobin = optionalObject(c, 'round_robin_lb_config', path);
  if (roundRobin) rejectUnsupported(roundRobin, `${path}.round_robin_lb_config`, []);

  // An EDS cluster's endpoints come from its ClusterLoadAssignment resource, never from the cluster.
  if (type === 'EDS' && isSet(c.load_assignment))
    throw new ConfigError(`${path}.load_assignment`, 'not used by EDS clusters (endpoints come from EDS)');
  const assignment = compileLoadAssignment(c.load_assignment, `${path}.load_assignment`, type);
  const common = compileCommonLbConfig(c, path);
  const protocol = compileProtocolOptions(c, path);
  const outlierDetection = compileOutlierDetection(c, path);
  const tls = compileTransportSocket(c.transport_socket, `${path}.transport_socket`, 'upstream');
  const transportSocketMatches = compileTransportSocketMatches(c, path);
  const istioServices = compileIstioServices(c.metadata, `${path}.metadata`);

  const dnsRefreshRateMs = optionalDurationMs(c, 'dns_refresh_rate', path) ?? DEFAULT_DNS_REFRESH_MS;
  if (dnsRefreshRateMs <= 1) throw new ConfigError(`${path}.dns_refresh_rate`, 'must be greater than 1ms');

  return {
    name,
    type,
    connectTimeoutMs,
    lbPolicy,
    localityEndpoints: assignment.localityEndpoints,
    overprovisioningFactor: assignment.overprovisioningFactor,
    healthyPanicThreshold: common.healthyPanicThreshold,
    localityWeighted: common.localityWeighted,
    leastRequest: compileLeastRequest(c, path),
    ringHash: compileRingHash(c, path),
    maglev: compileMaglev(c, path),
    ...(peakEwma === undefined ? {} : { peakEwma }),
    http2: protocol.http2,
    upstreamIdleTimeoutMs: protocol.idleTimeoutMs,
    maxRequestsPerConnection: protocol.maxRequestsPerConnection,
    maxConnectionDurationMs: protocol.maxConnectionDurationMs,
    ...(protocol.downstreamHttp2 ? { downstreamHttp2: protocol.downstreamHttp2 } : {}),
    circuitBreakers: compileCircuitBreakers(c, path),
    dnsRefreshRateMs,
    dnsLookupFamily:
      optionalEnum(c, 'dns_lookup_family', path, [
        'AUTO',
        'V4_ONLY',
        'V6_ONLY',
        'V4_PREFERRED',
        'ALL',
      ] as const) ?? 'AUTO',
    respectDnsTtl: optionalBool(c, 'respect_dns_ttl', path) ?? false,
    ...eds,
    ...(outlierDetection === undefined ? {} : { outlierDetection }),
    ...(tls === undefined ? {} : { tls }),
    ...(transportSocketMatches.length > 0 ? { transportSocketMatches } : {}),
    ...(istioServices === undefined ? {} : { istioServices }),
  };
}

function compileType(c: JsonObject, path: string): ClusterType {
  const type = optionalEnum<ClusterType>(
    c,
    'type',
    path,
    ['STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'EDS'],
    ['ORIGINAL_DST'],
  );
  return type ?? 'STATIC';
}

/** eds_cluster_config: where an EDS cluster's assignment comes from (ADS only) and under which name. */
function compileEdsClusterConfig(
  c: JsonObject,
  path: string,
  type: ClusterType,
  name: string,
): { edsServiceName?: string; edsInitialFetchTimeoutMs?: number } {
  const edsPath = `${path}.eds_cluster_config`;
  const eds = optionalObject(c, 'eds_cluster_config', path);
  if (type !== 'EDS') {
    if (eds) throw new ConfigError(edsPath, `only applies to type EDS, not ${type}`);
    return {};
  }
  if (!eds) throw new ConfigError(edsPath, 'required for EDS clusters (eds_config: { ads: {} })');
  rejectUnsupported(eds, edsPath, ['eds_config', 'service_name']);
  const source = compileAdsConfigSource(eds.eds_config, `${edsPath}.eds_config`);
  return {
    edsServiceName: optionalString(eds, 'service_name', edsPath) || name,
    edsInitialFetchTimeoutMs: source.initialFetchTimeoutMs,
  };
}

// ---------------------------------------------------------------------------------------------
// Load assignment

const HEALTH: Readonly<Record<string, HealthStatus>> = {
  UNKNOWN: 'HEALTHY',
  HEALTHY: 'HEALTHY',
  UNHEALTHY: 'UNHEALTHY',
  TIMEOUT: 'UNHEALTHY',
  DRAINING: 'DRAINING',
  DEGRADED: 'DEGRADED',
};

// RFC 1123 host names; underscores are tolerated as resolvers do (e.g. SRV-style labels).
const HOSTNAME =
  /^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

export interface CompiledLoadAssignment {
  readonly localityEndpoints: readonly LocalityEndpoints[];
  readonly overprovisioningFactor: number;
}

/**
 * An EDS resource: a whole envoy.config.endpoint.v3.ClusterLoadAssignment, normalized, whose endpoints
 * must be IP addresses.
 */
export function compileEdsAssignment(json: Json, path: string): CompiledLoadAssignment {
  const la = asObject(json, path);
  const name = optionalString(la, 'cluster_name', path);
  if (name === undefined || name === '') throw new ConfigError(`${path}.cluster_name`, 'is required');
  return compileLoadAssignment(la, path, 'EDS');
}

/**
 * Compiles a ClusterLoadAssignment (the cluster's load_assignment, or an EDS resource).
 * STATIC and EDS endpoints must be IP addresses; DNS clusters also accept host names.
 */
export function compileLoadAssignment(
  json: Json | undefined,
  path: string,
  type: ClusterType,
): CompiledLoadAssignment {
  if (json === undefined || json === null) {
    if (type === 'LOGICAL_DNS')
      throw new ConfigError(path, 'LOGICAL_DNS clusters must have exactly one endpoint');
    return { localityEndpoints: [], overprovisioningFactor: DEFAULT_OVERPROVISIONING_FACTOR };
  }
  const la = asObject(json, path);
  rejectUnsupported(la, path, ['cluster_name', 'endpoints', 'policy']);

  let overprovisioningFactor = DEFAULT_OVERPROVISIONING_FACTOR;
  const policy = optionalObject(la, 'policy', path);
  if (policy) {
    const policyPath = `${path}.policy`;
    rejectUnsupported(policy, policyPath, ['overprovisioning_factor']);
    overprovisioningFactor =
      optionalInteger(policy, 'overprovisioning_factor', policyPath, { min: 1, max: UINT32_MAX }) ??
      DEFAULT_OVERPROVISIONING_FACTOR;
  }

  const seen = new Map<string, string>();
  const localityEndpoints = optionalArray(la, 'endpoints', path).map((entry, i) =>
    compileLocalityEndpoints(entry, `${path}.endpoints[${i}]`, type, seen),
  );

  if (type === 'LOGICAL_DNS') {
    const count = localityEndpoints.reduce((n, l) => n + l.endpoints.length, 0);
    if (count !== 1)
      throw new ConfigError(path, `LOGICAL_DNS clusters must have exactly one endpoint, got ${count}`);
  }
  return { localityEndpoints, overprovisioningFactor };
}

function compileLocalityEndpoints(
  json: Json,
  path: string,
  type: ClusterType,
  seen: Map<string, string>,
): LocalityEndpoints {
  const le = asObject(json, path);
  rejectUnsupported(le, path, ['locality', 'lb_endpoints', 'load_balancing_weight', 'priority']);

  let region = '';
  let zone = '';
  let subZone = '';
  const locality = optionalObject(le, 'locality', path);
  if (locality) {
    const localityPath = `${path}.locality`;
    rejectUnsupported(locality, localityPath, ['region', 'zone', 'sub_zone']);
    region = optionalString(locality, 'region', localityPath) ?? '';
    zone = optionalString(locality, 'zone', localityPath) ?? '';
    subZone = optionalString(locality, 'sub_zone', localityPath) ?? '';
  }

  const endpoints = optionalArray(le, 'lb_endpoints', path).map((entry, i) =>
    compileLbEndpoint(entry, `${path}.lb_endpoints[${i}]`, type, seen),
  );
  return {
    locality: { region, zone, subZone },
    priority: optionalInteger(le, 'priority', path, { max: 128 }) ?? 0,
    weight: optionalInteger(le, 'load_balancing_weight', path, { min: 1, max: UINT32_MAX }),
    endpoints,
  };
}

function compileLbEndpoint(
  json: Json,
  path: string,
  type: ClusterType,
  seen: Map<string, string>,
): EndpointConfig {
  const lbe = asObject(json, path);
  // metadata is opaque to load balancing (Istio puts its workload facts there); only the transport socket
  // match entry and Istio's workload string (telemetry's peer discovery) are read.
  rejectUnsupported(lbe, path, ['endpoint', 'health_status', 'load_balancing_weight', 'metadata']);
  const socketMatch = compileSocketMatchMetadata(lbe.metadata, `${path}.metadata`);
  const istioWorkload = compileIstioWorkload(lbe.metadata, `${path}.metadata`);
  const weight = optionalInteger(lbe, 'load_balancing_weight', path, { min: 1, max: UINT32_MAX }) ?? 1;
  const status =
    optionalEnum(lbe, 'health_status', path, [
      'UNKNOWN',
      'HEALTHY',
      'UNHEALTHY',
      'DRAINING',
      'TIMEOUT',
      'DEGRADED',
    ]) ?? 'UNKNOWN';

  const endpointPath = `${path}.endpoint`;
  const endpoint = optionalObject(lbe, 'endpoint', path);
  if (!endpoint) throw new ConfigError(endpointPath, 'is required');
  rejectUnsupported(endpoint, endpointPath, ['address']);
  const addressPath = `${endpointPath}.address`;
  const address = optionalObject(endpoint, 'address', endpointPath);
  if (!address) throw new ConfigError(addressPath, 'is required');
  rejectUnsupported(address, addressPath, ['socket_address']);
  const socketPath = `${addressPath}.socket_address`;
  const socket = optionalObject(address, 'socket_address', addressPath);
  if (!socket) throw new ConfigError(socketPath, 'is required');
  rejectUnsupported(socket, socketPath, ['address', 'port_value', 'protocol']);
  optionalEnum(socket, 'protocol', socketPath, ['TCP'], ['UDP']);

  const host = optionalString(socket, 'address', socketPath) ?? '';
  const port = optionalInteger(socket, 'port_value', socketPath, { max: 65535 });
  if (port === undefined || port === 0)
    throw new ConfigError(`${socketPath}.port_value`, 'is required (1-65535)');

  const isAddress = isIP(host) !== 0;
  if (!isAddress) {
    if (type === 'STATIC' || type === 'EDS') {
      throw new ConfigError(
        `${socketPath}.address`,
        `${JSON.stringify(host)} is not an IP address (${type} clusters need IP addresses; use STRICT_DNS or LOGICAL_DNS for host names)`,
      );
    }
    if (!HOSTNAME.test(host))
      throw new ConfigError(`${socketPath}.address`, `${JSON.stringify(host)} is not a valid host name`);
  }

  // Hosts are identified by address and port, so a fixed address may appear only once.
  if (isAddress) {
    const key = hostKey(host, port);
    const first = seen.get(key);
    if (first !== undefined) throw new ConfigError(path, `duplicate endpoint ${key} (also at ${first})`);
    seen.set(key, path);
  }

  return {
    address: host,
    port,
    weight,
    health: HEALTH[status],
    ...(isAddress ? {} : { hostname: host }),
    ...(socketMatch ? { socketMatch } : {}),
    ...(istioWorkload === undefined ? {} : { istioWorkload }),
  };
}

/** The metadata.filter_metadata["istio"] object, if any. */
function istioFilterMetadata(json: Json | undefined, path: string): JsonObject | undefined {
  if (!isSet(json)) return undefined;
  const filters = optionalObject(asObject(json, path), 'filter_metadata', path);
  if (!filters || !isSet(filters.istio)) return undefined;
  return asObject(filters.istio, `${path}.filter_metadata.istio`);
}

/** An endpoint's metadata.filter_metadata.istio.workload string, if present. */
function compileIstioWorkload(json: Json | undefined, path: string): string | undefined {
  const istio = istioFilterMetadata(json, path);
  if (istio === undefined || !isSet(istio.workload)) return undefined;
  return optionalString(istio, 'workload', `${path}.filter_metadata.istio`) || undefined;
}

/** A cluster's metadata.filter_metadata.istio.services ([{host, name, namespace}]), if present. */
function compileIstioServices(json: Json | undefined, path: string): IstioServiceRef[] | undefined {
  const istio = istioFilterMetadata(json, path);
  if (istio === undefined || !isSet(istio.services)) return undefined;
  const listPath = `${path}.filter_metadata.istio.services`;
  if (!Array.isArray(istio.services)) throw new ConfigError(listPath, 'must be a list');
  return istio.services.map((item, i) => {
    const p = `${listPath}[${i}]`;
    const o = asObject(item, p);
    return {
      host: optionalString(o, 'host', p) ?? '',
      name: optionalString(o, 'name', p) ?? '',
      namespace: optionalString(o, 'namespace', p) ?? '',
    };
  });
}

const SOCKET_MATCH_FILTER = 'envoy.transport_socket_match';

/** A Struct's flat scalar fields as strings (what transport_socket_matches compares). */
function scalarFields(json: Json | undefined, path: string): Record<string, string> {
  const obj = asObject(json ?? {}, path);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
    else
      throw new ConfigError(
        `${path}.${k}`,
        'transport socket match values must be strings, numbers or booleans',
      );
  }
  return out;
}

/** An endpoint's metadata.filter_metadata["envoy.transport_socket_match"], if present. */
function compileSocketMatchMetadata(
  json: Json | undefined,
  path: string,
): Record<string, string> | undefined {
  if (!isSet(json)) return undefined;
  const filters = optionalObject(asObject(json, path), 'filter_metadata', path);
  if (!filters || !isSet(filters[SOCKET_MATCH_FILTER])) return undefined;
  return scalarFields(filters[SOCKET_MATCH_FILTER], `${path}.filter_metadata["${SOCKET_MATCH_FILTER}"]`);
}

function compileTransportSocketMatches(c: Record<string, Json>, path: string): TransportSocketMatch[] {
  if (!isSet(c.transport_socket_matches)) return [];
  const list = c.transport_socket_matches;
  if (!Array.isArray(list)) throw new ConfigError(`${path}.transport_socket_matches`, 'must be a list');
  return list.map((item, i) => {
    const p = `${path}.transport_socket_matches[${i}]`;
    const m = asObject(item, p);
    rejectUnsupported(m, p, ['name', 'match', 'transport_socket']);
    const name = optionalString(m, 'name', p);
    if (name === undefined || name === '') throw new ConfigError(`${p}.name`, 'is required');
    return {
      name,
      match: scalarFields(m.match, `${p}.match`),
      tls: compileTransportSocket(m.transport_socket, `${p}.transport_socket`, 'upstream'),
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Load balancing options

function compileCommonLbConfig(
  c: JsonObject,
  path: string,
): { healthyPanicThreshold: number; localityWeighted: boolean } {
  const common = optionalObject(c, 'common_lb_config', path);
  if (!common) return { healthyPanicThreshold: DEFAULT_PANIC_THRESHOLD, localityWeighted: false };
  const commonPath = `${path}.common_lb_config`;
  rejectUnsupported(common, commonPath, ['healthy_panic_threshold', 'locality_weighted_lb_config']);
  const weighted = optionalObject(common, 'locality_weighted_lb_config', commonPath);
  if (weighted) rejectUnsupported(weighted, `${commonPath}.locality_weighted_lb_config`, []);
  const localityWeighted = weighted !== undefined;
  const threshold = optionalObject(common, 'healthy_panic_threshold', commonPath);
  if (!threshold) return { healthyPanicThreshold: DEFAULT_PANIC_THRESHOLD, localityWeighted };
  const thresholdPath = `${commonPath}.healthy_panic_threshold`;
  rejectUnsupported(threshold, thresholdPath, ['value']);
  const value = optionalNumber(threshold, 'value', thresholdPath) ?? 0;
  if (value < 0 || value > 100)
    throw new ConfigError(`${thresholdPath}.value`, `must be between 0 and 100, got ${value}`);
  // Envoy rounds the percentage to an integer.
  return { healthyPanicThreshold: Math.round(value), localityWeighted };
}

function compileLeastRequest(c: JsonObject, path: string): { choiceCount: number } {
  const lr = optionalObject(c, 'least_request_lb_config', path);
  if (!lr) return { choiceCount: DEFAULT_CHOICE_COUNT };
  const lrPath = `${path}.least_request_lb_config`;
  rejectUnsupported(lr, lrPath, ['choice_count', 'active_request_bias']);
  const bias = optionalObject(lr, 'active_request_bias', lrPath);
  if (bias) {
    // Only Envoy's default bias (1.0) is implemented.
    const biasPath = `${lrPath}.active_request_bias`;
    rejectUnsupported(bias, biasPath, ['default_value']);
    const value = optionalNumber(bias, 'default_value', biasPath) ?? 0;
    if (value !== 1)
      throw new ConfigError(`${biasPath}.default_value`, `only 1.0 is supported by Weft, got ${value}`);
  }
  return {
    choiceCount:
      optionalInteger(lr, 'choice_count', lrPath, { min: 2, max: UINT32_MAX }) ?? DEFAULT_CHOICE_COUNT,
  };
}

function compileRingHash(c: JsonObject, path: string): { minimumRingSize: number; maximumRingSize: number } {
  const rh = optionalObject(c, 'ring_hash_lb_config', path);
  if (!rh) return { minimumRingSize: DEFAULT_MIN_RING, maximumRingSize: MAX_RING };
  const rhPath = `${path}.ring_hash_lb_config`;
  rejectUnsupported(rh, rhPath, ['minimum_ring_size', 'maximum_ring_size', 'hash_function']);
  // Weft hashes with its own function (src/core/hash.ts); XX_HASH, the default, stands for "the default".
  optionalEnum(rh, 'hash_function', rhPath, ['XX_HASH'], ['MURMUR_HASH_2']);
  const minimumRingSize =
    optionalInteger(rh, 'minimum_ring_size', rhPath, { min: 1, max: MAX_RING }) ?? DEFAULT_MIN_RING;
  const maximumRingSize =
    optionalInteger(rh, 'maximum_ring_size', rhPath, { min: 1, max: MAX_RING }) ?? MAX_RING;
  if (minimumRingSize > maximumRingSize) {
    throw new ConfigError(
      `${rhPath}.minimum_ring_size`,
      `must not exceed maximum_ring_size (${minimumRingSize} > ${maximumRingSize})`,
    );
  }
  return { minimumRingSize, maximumRingSize };
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

function compileMaglev(c: JsonObject, path: string): { tableSize: number } {
  const mg = optionalObject(c, 'maglev_lb_config', path);
  if (!mg) return { tableSize: DEFAULT_MAGLEV_TABLE };
  const mgPath = `${path}.maglev_lb_config`;
  rejectUnsupported(mg, mgPath, ['table_size']);
  const tableSize =
    optionalInteger(mg, 'table_size', mgPath, { max: MAX_MAGLEV_TABLE }) ?? DEFAULT_MAGLEV_TABLE;
  if (!isPrime(tableSize))
    throw new ConfigError(`${mgPath}.table_size`, `must be a prime number, got ${tableSize}`);
  return { tableSize };
}

// ---------------------------------------------------------------------------------------------
// Upstream HTTP protocol options

interface ProtocolOptions {
  readonly http2: Http2UpstreamOptions | undefined;
  readonly idleTimeoutMs: number;
  readonly maxRequestsPerConnection: number | undefined;
  readonly maxConnectionDurationMs: number;
  readonly downstreamHttp2?: Http2UpstreamOptions;
}

const DEPRECATED_PROTOCOL_FIELDS = [
  'http2_protocol_options',
  'http_protocol_options',
  'common_http_protocol_options',
  'max_requests_per_connection',
] as const;

function compileProtocolOptions(c: JsonObject, path: string): ProtocolOptions {
  const typed = optionalObject(c, 'typed_extension_protocol_options', path);
  const typedPath = `${path}.typed_extension_protocol_options`;
  let options: JsonObject | undefined;
  if (typed) {
    for (const key of Object.keys(typed)) {
      if (key !== HTTP_PROTOCOL_OPTIONS_NAME) {
        throw new ConfigError(
          `${typedPath}["${key}"]`,
          'protocol options extension is not supported by Weft',
        );
      }
    }
    const entryPath = `${typedPath}["${HTTP_PROTOCOL_OPTIONS_NAME}"]`;
    options = optionalObject(typed, HTTP_PROTOCOL_OPTIONS_NAME, typedPath);
    if (options && options['@type'] !== HTTP_PROTOCOL_OPTIONS_TYPE) {
      throw new ConfigError(
        `${entryPath}["@type"]`,
        `expected ${JSON.stringify(HTTP_PROTOCOL_OPTIONS_TYPE)}`,
      );
    }
  }

  const deprecated = DEPRECATED_PROTOCOL_FIELDS.filter((f) => c[f] !== undefined && c[f] !== null);
  if (options) {
    if (deprecated.length > 0) {
      throw new ConfigError(
        `${path}.${deprecated[0]}`,
        `cannot be combined with typed_extension_protocol_options["${HTTP_PROTOCOL_OPTIONS_NAME}"]`,
      );
    }
    return compileHttpProtocolOptions(options, `${typedPath}["${HTTP_PROTOCOL_OPTIONS_NAME}"]`);
  }

  // Envoy's deprecated cluster-level fields: HTTP/2 when http2_protocol_options is present.
  const http1 = optionalObject(c, 'http_protocol_options', path);
  if (http1) rejectUnsupported(http1, `${path}.http_protocol_options`, []);
  const h2 = optionalObject(c, 'http2_protocol_options', path);
  if (http1 && h2)
    throw new ConfigError(`${path}.http2_protocol_options`, 'cannot be combined with http_protocol_options');
  const common = compileCommonHttpOptions(c, 'common_http_protocol_options', path);
  const legacyMax = optionalInteger(c, 'max_requests_per_connection', path, { max: UINT32_MAX });
  if (legacyMax !== undefined && common.maxRequestsPerConnection !== undefined) {
    throw new ConfigError(
      `${path}.max_requests_per_connection`,
      'cannot be combined with common_http_protocol_options.max_requests_per_connection',
    );
  }
  return {
    http2: h2 ? compileHttp2Options(h2, `${path}.http2_protocol_options`) : undefined,
    idleTimeoutMs: common.idleTimeoutMs,
    maxRequestsPerConnection: common.maxRequestsPerConnection ?? (legacyMax === 0 ? undefined : legacyMax),
    maxConnectionDurationMs: common.maxConnectionDurationMs,
  };
}

function compileHttpProtocolOptions(options: JsonObject, path: string): ProtocolOptions {
  if (isSet(options.auto_config))
    throw new ConfigError(`${path}.auto_config`, 'not supported by Weft (use explicit_http_config)');
  rejectUnsupported(options, path, [
    'common_http_protocol_options',
    'explicit_http_config',
    'use_downstream_protocol_config',
  ]);
  const common = compileCommonHttpOptions(options, 'common_http_protocol_options', path);
  const downstream = optionalObject(options, 'use_downstream_protocol_config', path);
  if (downstream) {
    const dPath = `${path}.use_downstream_protocol_config`;
    if (isSet(options.explicit_http_config))
      throw new ConfigError(
        `${path}.explicit_http_config`,
        'cannot be combined with use_downstream_protocol_config',
      );
    if (isSet(downstream.http3_protocol_options))
      throw new ConfigError(`${dPath}.http3_protocol_options`, 'HTTP/3 upstreams are not supported by Weft');
    rejectUnsupported(downstream, dPath, ['http_protocol_options', 'http2_protocol_options']);
    const http1 = optionalObject(downstream, 'http_protocol_options', dPath);
    if (http1) rejectUnsupported(http1, `${dPath}.http_protocol_options`, []);
    const h2 = optionalObject(downstream, 'http2_protocol_options', dPath);
    return {
      http2: undefined,
      downstreamHttp2: compileHttp2Options(h2 ?? {}, `${dPath}.http2_protocol_options`),
      idleTimeoutMs: common.idleTimeoutMs,
      maxRequestsPerConnection: common.maxRequestsPerConnection,
      maxConnectionDurationMs: common.maxConnectionDurationMs,
    };
  }

  const explicitPath = `${path}.explicit_http_config`;
  const explicit = optionalObject(options, 'explicit_http_config', path);
  if (!explicit) throw new ConfigError(explicitPath, 'is required');
  if (isSet(explicit.http3_protocol_options)) {
    throw new ConfigError(
      `${explicitPath}.http3_protocol_options`,
      'HTTP/3 upstreams are not supported by Weft',
    );
  }
  rejectUnsupported(explicit, explicitPath, ['http_protocol_options', 'http2_protocol_options']);
  const http1 = optionalObject(explicit, 'http_protocol_options', explicitPath);
  const h2 = optionalObject(explicit, 'http2_protocol_options', explicitPath);
  if (http1 && h2)
    throw new ConfigError(explicitPath, 'set only one of http_protocol_options and http2_protocol_options');
  if (!http1 && !h2)
    throw new ConfigError(explicitPath, 'one of http_protocol_options or http2_protocol_options is required');
  if (http1) rejectUnsupported(http1, `${explicitPath}.http_protocol_options`, []);
  return {
    http2: h2 ? compileHttp2Options(h2, `${explicitPath}.http2_protocol_options`) : undefined,
    idleTimeoutMs: common.idleTimeoutMs,
    maxRequestsPerConnection: common.maxRequestsPerConnection,
    maxConnectionDurationMs: common.maxConnectionDurationMs,
  };
}

function compileCommonHttpOptions(
  parent: JsonObject,
  key: string,
  parentPath: string,
): { idleTimeoutMs: number; maxRequestsPerConnection: number | undefined; maxConnectionDurationMs: number } {
  const common = optionalObject(parent, key, parentPath);
  if (!common)
    return {
      idleTimeoutMs: DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS,
      maxRequestsPerConnection: undefined,
      maxConnectionDurationMs: 0,
    };
  const path = `${parentPath}.${key}`;
  rejectUnsupported(common, path, ['idle_timeout', 'max_requests_per_connection', 'max_connection_duration']);
  const max = optionalInteger(common, 'max_requests_per_connection', path, { max: UINT32_MAX });
  return {
    // "0s" disables the idle timeout, as in Envoy.
    idleTimeoutMs: optionalDurationMs(common, 'idle_timeout', path) ?? DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS,
    // 0 means no limit.
    maxRequestsPerConnection: max === 0 ? undefined : max,
    // Unset or 0s: no limit, as in Envoy.
    maxConnectionDurationMs: optionalDurationMs(common, 'max_connection_duration', path) ?? 0,
  };
}

/** Envoy's connection_keepalive: interval and timeout (both required here; Envoy's timeout has no default either). */
function compileConnectionKeepalive(
  h2: JsonObject,
  parentPath: string,
): { intervalMs: number; timeoutMs: number } | undefined {
  const ka = optionalObject(h2, 'connection_keepalive', parentPath);
  if (!ka) return undefined;
  const path = `${parentPath}.connection_keepalive`;
  rejectUnsupported(ka, path, ['interval', 'timeout']);
  const intervalMs = optionalDurationMs(ka, 'interval', path);
  const timeoutMs = optionalDurationMs(ka, 'timeout', path);
  if (timeoutMs === undefined || timeoutMs <= 0)
    throw new ConfigError(`${path}.timeout`, 'is required and must be greater than 0');
  // Without an interval Envoy pings only after idle periods; Weft supports the periodic form.
  if (intervalMs === undefined || intervalMs <= 0)
    throw new ConfigError(`${path}.interval`, 'is required by Weft and must be greater than 0');
  return { intervalMs, timeoutMs };
}

function compileHttp2Options(h2: JsonObject, path: string): Http2UpstreamOptions {
  rejectUnsupported(h2, path, [
    'max_concurrent_streams',
    'initial_stream_window_size',
    'initial_connection_window_size',
    'connection_keepalive',
  ]);
  const keepalive = compileConnectionKeepalive(h2, path);
  return {
    ...(keepalive ? { keepalive } : {}),
    maxConcurrentStreams: optionalInteger(h2, 'max_concurrent_streams', path, { min: 1, max: 2147483647 }),
    initialStreamWindowSize: optionalInteger(h2, 'initial_stream_window_size', path, {
      min: 65535,
      max: 2147483647,
    }),
    initialConnectionWindowSize: optionalInteger(h2, 'initial_connection_window_size', path, {
      min: 65535,
      max: 2147483647,
    }),
  };
}
