/**
 * Istio's Telemetry API, merged per proxy and side as Istio does, into proxy telemetry config.
 *
 * Which Telemetry resources apply: those of the root namespace without a selector (mesh-wide), then those of
 * the proxy's namespace without a selector, then those of its namespace whose selector matches its labels;
 * a later level overrides an earlier one. Telemetry with targetRef(s) (waypoints, Kubernetes Gateways) are
 * not applied (reported by the support table). Per side: CLIENT is a sidecar's outbound side and every
 * gateway listener, SERVER a sidecar's inbound side; a `match.mode` entry applies to the sides it names.
 *
 * - metrics: the providers of the most specific level that names some (else MeshConfig
 *   defaultProviders.metrics, else Istio's default `prometheus`); overrides accumulate from root to workload,
 *   per metric: `disabled` → drop, tagOverrides UPSERT → dimensions (the CEL value kept as written, the
 *   proxy evaluates it), REMOVE → tags_to_remove. No prometheus provider: no istio.stats and no
 *   istio.metadata_exchange filter at all.
 * - tracing: provider (the first named; else defaultProviders.tracing), randomSamplingPercentage
 *   (else MeshConfig defaultConfig.tracing.sampling, else 1%), disableSpanReporting, customTags (merged by
 *   tag): the most specific setting of each field wins. No provider: no tracing.
 * - accessLogging: providers (else defaultProviders.accessLogging, else `envoy` when accessLogFile is set),
 *   disabled and filter: the most specific setting wins. The filter's CEL is translated (access-log-filter.ts).
 */
import type { JsonObject } from '../../core/json.ts';
import type { IstioResource } from '../../api/istio/resource.ts';
import type { MeshConfig } from '../../api/istio/mesh-config.ts';
import { DEFAULT_MESH_CONFIG, DEFAULT_SAMPLING_PERCENT } from '../../api/istio/mesh-config.ts';
import type {
  CustomTag,
  IstioMetric,
  ProviderRef,
  Telemetry,
  WorkloadMode,
} from '../../api/istio/telemetry.ts';
import { istioDurationToProto } from '../../config/duration.ts';
import { labelsMatch } from '../model/discovery.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import type { ProxyNode } from '../xds/types.ts';
import { accessLogFilter, CelSubsetError } from './access-log-filter.ts';
import { collectorCluster, providerTable } from './telemetry-providers.ts';
import type { ProviderKind, ProviderTable, ResolvedProvider } from './telemetry-providers.ts';

export const TYPED_STRUCT = 'type.googleapis.com/xds.type.v3.TypedStruct';
export const PEER_METADATA_CONFIG = 'type.googleapis.com/io.istio.http.peer_metadata.Config';
export const STATS_CONFIG = 'type.googleapis.com/stats.PluginConfig';

/** Istio's metric names, as the stats filter names them (without the `istio_` prefix). */
export const METRIC_NAMES: Readonly<Record<IstioMetric, string>> = {
  ALL_METRICS: '',
  REQUEST_COUNT: 'requests_total',
  REQUEST_DURATION: 'request_duration_milliseconds',
  REQUEST_SIZE: 'request_bytes',
  RESPONSE_SIZE: 'response_bytes',
  TCP_OPENED_CONNECTIONS: 'tcp_connections_opened_total',
  TCP_CLOSED_CONNECTIONS: 'tcp_connections_closed_total',
  TCP_SENT_BYTES: 'tcp_sent_bytes_total',
  TCP_RECEIVED_BYTES: 'tcp_received_bytes_total',
  GRPC_REQUEST_MESSAGES: 'request_messages_total',
  GRPC_RESPONSE_MESSAGES: 'response_messages_total',
};

export type Side = 'CLIENT' | 'SERVER';

/** What one side (connection managers and tcp_proxy filters of one direction) of a proxy gets. */
export interface SideTelemetry {
  /** HTTP filters placed just before the router: istio.metadata_exchange, istio.stats. */
  readonly httpFilters: readonly JsonObject[];
  /** Network filters placed just before tcp_proxy: istio.stats. */
  readonly tcpFilters: readonly JsonObject[];
  /** `access_log` of connection managers and tcp_proxy. */
  readonly accessLog: readonly JsonObject[];
  /** The connection manager's `tracing`, when a tracing provider applies. */
  readonly tracing: JsonObject | undefined;
}

export interface ProxyTelemetry {
  readonly client: SideTelemetry;
  readonly server: SideTelemetry;
  /** Gateways report as clients, but Istio's stats filter takes the host header fallback off for them. */
  readonly gateway: SideTelemetry;
}

export interface TelemetryProblem {
  /** Below `spec`, e.g. `accessLogging[0].filter.expression`. */
  field: string;
  message: string;
}

const EMPTY: readonly JsonObject[] = [];
const NO_SIDE: SideTelemetry = {
  httpFilters: EMPTY,
  tcpFilters: EMPTY,
  accessLog: EMPTY,
  tracing: undefined,
};

function covers(mode: WorkloadMode | undefined, side: Side): boolean {
  return mode === undefined || mode === 'CLIENT_AND_SERVER' || mode === side;
}

function hasTargetRef(t: Telemetry): boolean {
  return t.targetRef !== undefined || (t.targetRefs?.length ?? 0) > 0;
}

function meshOf(snap: MeshSnapshot): MeshConfig {
  return snap.meshConfig ?? DEFAULT_MESH_CONFIG;
}

// ---- validation ----

function checkProviders(
  refs: readonly ProviderRef[] | undefined,
  kind: ProviderKind,
  field: string,
  table: ProviderTable,
  out: TelemetryProblem[],
): void {
  (refs ?? []).forEach((ref, i) => {
    const p = table.get(ref.name);
    if (!p)
      out.push({
        field: `${field}.providers[${i}].name`,
        message: `unknown provider "${ref.name}": not in MeshConfig extensionProviders`,
      });
    else if (p.kind !== kind)
      out.push({
        field: `${field}.providers[${i}].name`,
        message: `provider "${ref.name}" is a ${p.kind} provider, not a ${kind} one`,
      });
  });
}

/**
 * What is wrong with a Telemetry against this MeshConfig (unknown or misplaced providers, access log filters
 * outside the supported CEL subset, more than one tracing provider). A Telemetry with problems is reported
 * and not applied.
 */
export function telemetryProblems(t: IstioResource<Telemetry>, mesh: MeshConfig): TelemetryProblem[] {
  const table = providerTable(mesh);
  const out: TelemetryProblem[] = [];
  (t.spec.metrics ?? []).forEach((m, i) =>
    checkProviders(m.providers, 'metrics', `metrics[${i}]`, table, out),
  );
  (t.spec.tracing ?? []).forEach((tr, i) => {
    checkProviders(tr.providers, 'tracing', `tracing[${i}]`, table, out);
    if ((tr.providers?.length ?? 0) > 1)
      out.push({
        field: `tracing[${i}].providers`,
        message: 'only one tracing provider is supported (as Istio)',
      });
    for (const [tag, value] of Object.entries(tr.customTags ?? {}))
      if (value.formatter)
        out.push({
          field: `tracing[${i}].customTags.${tag}.formatter`,
          message: 'is not supported by Weft (literal, environment and header tags are)',
        });
  });
  (t.spec.accessLogging ?? []).forEach((a, i) => {
    checkProviders(a.providers, 'accessLogging', `accessLogging[${i}]`, table, out);
    const expression = a.filter?.expression;
    if (expression !== undefined) {
      try {
        accessLogFilter(expression);
      } catch (err) {
        if (!(err instanceof CelSubsetError)) throw err;
        out.push({
          field: `accessLogging[${i}].filter.expression`,
          message: `${err.message} (Weft translates response.code, response.flags != '-' and request.headers['x'] comparisons joined by && and ||)`,
        });
      }
    }
  });
  return out;
}

// ---- applicability ----

/** The Telemetry resources that apply to a proxy, least specific first. */
export function applicableTelemetry(proxy: ProxyNode, snap: MeshSnapshot): IstioResource<Telemetry>[] {
  const all = snap.telemetries ?? [];
  if (all.length === 0) return [];
  const root = snap.options.rootNamespace;
  const selects = (t: IstioResource<Telemetry>): boolean =>
    Object.keys(t.spec.selector?.matchLabels ?? {}).length > 0;
  const usable = all.filter((t) => !hasTargetRef(t.spec));
  return [
    ...usable.filter((t) => t.metadata.namespace === root && !selects(t) && root !== proxy.namespace),
    ...usable.filter((t) => t.metadata.namespace === proxy.namespace && !selects(t)),
    ...usable.filter(
      (t) =>
        t.metadata.namespace === proxy.namespace &&
        selects(t) &&
        labelsMatch(t.spec.selector!.matchLabels!, proxy.labels),
    ),
  ];
}

/** Istio's canonical service of a workload (its labels, else its workload name). */
export function canonicalService(labels: Readonly<Record<string, string>>, workloadName: string): string {
  return (
    labels['service.istio.io/canonical-name'] ??
    labels['app.kubernetes.io/name'] ??
    labels.app ??
    workloadName
  );
}

export function canonicalRevision(labels: Readonly<Record<string, string>>): string {
  return (
    labels['service.istio.io/canonical-revision'] ??
    labels['app.kubernetes.io/version'] ??
    labels.version ??
    'latest'
  );
}

// ---- merge ----

interface MetricEntry {
  name: string;
  dimensions: Record<string, string>;
  tagsToRemove: Set<string>;
  drop?: boolean;
}

function names(refs: readonly ProviderRef[] | undefined): string[] | undefined {
  return refs && refs.length > 0 ? refs.map((r) => r.name) : undefined;
}

function resolved(table: ProviderTable, list: readonly string[]): ResolvedProvider[] {
  return list.map((n) => table.get(n)).filter((p): p is ResolvedProvider => p !== undefined);
}

function statsFilter(
  levels: readonly IstioResource<Telemetry>[],
  side: Side,
  mesh: MeshConfig,
  table: ProviderTable,
  hostHeaderFallback: boolean,
): { http: JsonObject[]; tcp: JsonObject[] } {
  let providers = mesh.defaultProviders?.metrics ?? ['prometheus'];
  let interval: string | undefined;
  const entries = new Map<string, MetricEntry>();
  for (const t of levels) {
    for (const m of t.spec.metrics ?? []) {
      providers = names(m.providers) ?? providers;
      if (m.reportingInterval) interval = istioDurationToProto(m.reportingInterval) ?? interval;
      for (const o of m.overrides ?? []) {
        if (!covers(o.match?.mode, side)) continue;
        const name = o.match?.customMetric ?? METRIC_NAMES[o.match?.metric ?? 'ALL_METRICS'];
        let e = entries.get(name);
        if (!e) {
          e = { name, dimensions: {}, tagsToRemove: new Set() };
          entries.set(name, e);
        }
        if (o.disabled !== undefined && o.disabled !== null) e.drop = o.disabled;
        for (const [tag, op] of Object.entries(o.tagOverrides ?? {})) {
          if (op.operation === 'REMOVE') {
            delete e.dimensions[tag];
            e.tagsToRemove.add(tag);
          } else {
            e.dimensions[tag] = op.value ?? '';
            e.tagsToRemove.delete(tag);
          }
        }
      }
    }
  }
  if (!resolved(table, providers).some((p) => p.kind === 'metrics')) return { http: [], tcp: [] };
  const value: JsonObject = {};
  if (entries.size > 0)
    value.metrics = [...entries.values()].map((e) => ({
      ...(e.name ? { name: e.name } : {}),
      ...(Object.keys(e.dimensions).length > 0 ? { dimensions: e.dimensions } : {}),
      ...(e.tagsToRemove.size > 0 ? { tags_to_remove: [...e.tagsToRemove] } : {}),
      ...(e.drop ? { drop: true } : {}),
    }));
  if (!hostHeaderFallback) value.disable_host_header_fallback = true;
  if (interval) value.tcp_reporting_duration = interval;
  const stats: JsonObject = {
    name: 'istio.stats',
    typed_config: { '@type': TYPED_STRUCT, type_url: STATS_CONFIG, value },
  };
  const exchange: JsonObject = {
    name: 'istio.metadata_exchange',
    typed_config: {
      '@type': TYPED_STRUCT,
      type_url: PEER_METADATA_CONFIG,
      value:
        side === 'SERVER'
          ? {
              downstream_discovery: [{ istio_headers: {} }, { workload_discovery: {} }],
              downstream_propagation: [{ istio_headers: {} }],
            }
          : {
              upstream_discovery: [{ istio_headers: {} }, { workload_discovery: {} }],
              upstream_propagation: [{ istio_headers: {} }],
            },
    },
  };
  return { http: [exchange, stats], tcp: [stats] };
}

function customTag(tag: string, t: CustomTag): JsonObject | undefined {
  if (t.literal) return { tag, literal: { value: t.literal.value } };
  if (t.environment)
    return {
      tag,
      environment: {
        name: t.environment.name,
        ...(t.environment.defaultValue ? { default_value: t.environment.defaultValue } : {}),
      },
    };
  if (t.header)
    return {
      tag,
      request_header: {
        name: t.header.name,
        ...(t.header.defaultValue ? { default_value: t.header.defaultValue } : {}),
      },
    };
  return undefined;
}

function tracingConfig(
  levels: readonly IstioResource<Telemetry>[],
  side: Side,
  mesh: MeshConfig,
  table: ProviderTable,
  serviceName: string,
): JsonObject | undefined {
  let providers = mesh.defaultProviders?.tracing ?? [];
  let sampling = mesh.defaultConfig?.tracing?.sampling ?? DEFAULT_SAMPLING_PERCENT;
  let disableReporting = false;
  const tags = new Map<string, CustomTag>();
  for (const t of levels) {
    for (const tr of t.spec.tracing ?? []) {
      if (!covers(tr.match?.mode, side)) continue;
      providers = names(tr.providers) ?? providers;
      if (typeof tr.randomSamplingPercentage === 'number') sampling = tr.randomSamplingPercentage;
      if (typeof tr.disableSpanReporting === 'boolean') disableReporting = tr.disableSpanReporting;
      for (const [tag, value] of Object.entries(tr.customTags ?? {})) tags.set(tag, value);
    }
  }
  const provider = resolved(table, providers).find((p) => p.kind === 'tracing');
  if (!provider || provider.kind !== 'tracing') return undefined;
  const customTags = [...tags.entries()]
    .map(([tag, value]) => customTag(tag, value))
    .filter((t): t is JsonObject => t !== undefined);
  return {
    // disableSpanReporting: sampling decisions and propagation stay, no span is exported.
    ...(disableReporting ? {} : { provider: provider.tracer(serviceName) }),
    random_sampling: { value: sampling },
    ...(customTags.length > 0 ? { custom_tags: customTags } : {}),
    ...(provider.maxTagLength ? { max_path_tag_length: provider.maxTagLength } : {}),
  };
}

function accessLogs(
  levels: readonly IstioResource<Telemetry>[],
  side: Side,
  mesh: MeshConfig,
  table: ProviderTable,
): JsonObject[] {
  let providers = mesh.defaultProviders?.accessLogging ?? (mesh.accessLogFile ? ['envoy'] : []);
  let disabled = false;
  let expression: string | undefined;
  for (const t of levels) {
    for (const a of t.spec.accessLogging ?? []) {
      if (!covers(a.match?.mode, side)) continue;
      providers = names(a.providers) ?? providers;
      if (typeof a.disabled === 'boolean') disabled = a.disabled;
      if (a.filter?.expression !== undefined) expression = a.filter.expression;
    }
  }
  if (disabled) return [];
  const filter = expression === undefined ? undefined : accessLogFilter(expression);
  return resolved(table, providers).flatMap((p) =>
    p.kind === 'accessLogging' ? [filter ? { ...p.logger, filter } : p.logger] : [],
  );
}

function side(
  levels: readonly IstioResource<Telemetry>[],
  which: Side,
  snap: MeshSnapshot,
  serviceName: string,
  hostHeaderFallback: boolean,
): SideTelemetry {
  const mesh = meshOf(snap);
  const table = providerTable(mesh);
  const stats = statsFilter(levels, which, mesh, table, hostHeaderFallback);
  const out: SideTelemetry = {
    httpFilters: stats.http,
    tcpFilters: stats.tcp,
    accessLog: accessLogs(levels, which, mesh, table),
    tracing: tracingConfig(levels, which, mesh, table, serviceName),
  };
  return out.httpFilters.length + out.accessLog.length === 0 && !out.tracing ? NO_SIDE : out;
}

/** Memo per (snapshot configuration: its telemetries and MeshConfig) → telemetry key → result. */
const memo = new WeakMap<
  readonly IstioResource<Telemetry>[],
  WeakMap<MeshConfig, Map<string, ProxyTelemetry>>
>();
const NO_TELEMETRIES: readonly IstioResource<Telemetry>[] = [];

/** The tracing providers in use: MeshConfig's defaults and those Telemetry resources name. */
function usedTracingProviders(snap: MeshSnapshot): ResolvedProvider[] {
  const mesh = meshOf(snap);
  const used = new Set(mesh.defaultProviders?.tracing ?? []);
  for (const t of snap.telemetries ?? [])
    for (const tr of t.spec.tracing ?? []) for (const p of tr.providers ?? []) used.add(p.name);
  return resolved(providerTable(mesh), [...used]).filter((p) => p.kind === 'tracing');
}

const perWorkload = new WeakMap<readonly IstioResource<Telemetry>[], WeakMap<MeshConfig, boolean>>();

/**
 * Whether a tracing provider in use is configured per workload (OpenTelemetry's service_name): only then do
 * proxies of one namespace stop sharing their telemetry (and listener plans) across workloads.
 */
function perWorkloadTracing(snap: MeshSnapshot): boolean {
  const telemetries = snap.telemetries ?? NO_TELEMETRIES;
  const mesh = meshOf(snap);
  let byMesh = perWorkload.get(telemetries);
  if (!byMesh) {
    byMesh = new WeakMap();
    perWorkload.set(telemetries, byMesh);
  }
  let known = byMesh.get(mesh);
  if (known === undefined) {
    known = usedTracingProviders(snap).some((p) => p.kind === 'tracing' && p.perWorkload);
    byMesh.set(mesh, known);
  }
  return known;
}

/**
 * What of a proxy its telemetry depends on, as a string: the Telemetry resources that apply to it (and, with
 * an OpenTelemetry provider, its canonical service). Part of the listener plan key.
 */
export function telemetryKey(proxy: ProxyNode, snap: MeshSnapshot): string {
  const applied = applicableTelemetry(proxy, snap)
    .map((t) => `${t.metadata.namespace}/${t.metadata.name}`)
    .join(',');
  return perWorkloadTracing(snap) ? `${applied}\u0001${serviceNameOf(proxy)}` : applied;
}

function serviceNameOf(proxy: ProxyNode): string {
  return `${canonicalService(proxy.labels, proxy.workloadName || proxy.name)}.${proxy.namespace}`;
}

/** The telemetry config of a proxy's sides; equal keys give the same objects. */
export function proxyTelemetry(proxy: ProxyNode, snap: MeshSnapshot): ProxyTelemetry {
  const telemetries = snap.telemetries ?? NO_TELEMETRIES;
  const mesh = meshOf(snap);
  let byMesh = memo.get(telemetries);
  if (!byMesh) {
    byMesh = new WeakMap();
    memo.set(telemetries, byMesh);
  }
  let byKey = byMesh.get(mesh);
  if (!byKey) {
    byKey = new Map();
    byMesh.set(mesh, byKey);
  }
  const key = telemetryKey(proxy, snap);
  let out = byKey.get(key);
  if (!out) {
    const levels = applicableTelemetry(proxy, snap);
    const serviceName = serviceNameOf(proxy);
    out = {
      client: side(levels, 'CLIENT', snap, serviceName, true),
      server: side(levels, 'SERVER', snap, serviceName, false),
      gateway: side(levels, 'CLIENT', snap, serviceName, false),
    };
    byKey.set(key, out);
  }
  return out;
}

/**
 * Clusters for tracing collectors that some proxy may export to (a provider in defaultProviders.tracing or
 * named by a Telemetry) and that the registry does not know: Istio's `outbound|PORT||HOST`, STRICT_DNS.
 */
export function collectorClusters(snap: MeshSnapshot): JsonObject[] {
  const out = new Map<string, JsonObject>();
  for (const p of usedTracingProviders(snap)) {
    if (p.kind !== 'tracing') continue;
    if (snap.serviceByHost.get(p.cluster.host)?.ports.some((x) => x.number === p.cluster.port)) continue;
    if (!out.has(p.cluster.name)) out.set(p.cluster.name, collectorCluster(p.cluster));
  }
  return [...out.values()];
}
