/**
 * `weft_locality_bytes_total`: the bytes a client-side proxy (sidecar outbound, gateway) exchanged with its
 * upstream hosts, by (source locality, destination locality). Cloud providers bill traffic that crosses
 * zones and regions; this is the figure that says how much of it a mesh still sends across.
 *
 * Only the client side of a hop counts (the server side's inbound listener would see the same bytes), so a
 * hop is never counted twice. Source is the proxy's own node locality, destination the upstream host's
 * (from EDS); an empty region or zone is "unknown", as Istio labels what it does not know.
 *
 * `destination_service` names the upstream cluster's Istio service host (as istio_requests_total's label;
 * "unknown" for a cluster that stands for none), so the dashboard can price each service edge: the source
 * workload is the proxy itself. `weft_locality_requests_total` (same labels, no direction) counts the HTTP
 * and gRPC requests; a TCP connection is reported in pieces while open, so it is not counted as requests.
 *
 * Cardinality: a proxy has one source locality, so its series are bounded by the services it calls × the
 * (region, zone) pairs of their hosts × 3 protocols × 3 (two directions, requests) — never hosts or requests.
 */
import type { HttpStream } from '../http/stream.ts';
import { compareStrings, escapeLabelValue, formatSampleValue } from '../stats/prometheus.ts';
import type { PrometheusSource, RenderOptions, StatsStore } from '../stats/store.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import type { ClusterConfig } from '../upstream/types.ts';
import type { Locality } from '../upstream/types.ts';
import { clusterService, computeClusterService } from './labels.ts';

export const LOCALITY_BYTES_FAMILY = 'weft_locality_bytes_total';
export const LOCALITY_REQUESTS_FAMILY = 'weft_locality_requests_total';
const HELP =
  'Bytes this proxy exchanged with upstream hosts (client side only), by source and destination locality.';
const REQUESTS_HELP =
  'HTTP and gRPC requests this proxy sent to upstream hosts (client side only), by source and destination locality.';

/** Indexes of request_protocol values, so the hot path looks a slot up instead of comparing strings. */
export const PROTOCOL_HTTP = 0;
export const PROTOCOL_GRPC = 1;
export const PROTOCOL_TCP = 2;
export type LocalityProtocol = typeof PROTOCOL_HTTP | typeof PROTOCOL_GRPC | typeof PROTOCOL_TCP;
const PROTOCOL_NAMES = ['http', 'grpc', 'tcp'] as const;

const UNKNOWN = 'unknown';

export class ByteCounter {
  readonly labels: string;
  value = 0;
  constructor(labels: string) {
    this.labels = labels;
  }
}

/** The request (to the upstream) and response (from it) counters of one locality pair and protocol. */
export interface LocalityCounters {
  readonly request: ByteCounter;
  readonly response: ByteCounter;
  /** Requests (HTTP, gRPC) to this locality; its labels have no direction. */
  readonly requests: ByteCounter;
}

function labelOf(v: string | undefined): string {
  return v === undefined || v === '' ? UNKNOWN : v;
}

/** The family of one proxy (one per stats store), rendered in /stats/prometheus after the Envoy stats. */
export class LocalityBytesMetrics implements PrometheusSource {
  private readonly series = new Map<string, ByteCounter>();
  private readonly requestSeries = new Map<string, ByteCounter>();

  /** The counters of a pair, created (label strings rendered) on first use only. */
  counters(
    source: Locality | undefined,
    destination: Locality,
    protocol: LocalityProtocol,
    destinationService = UNKNOWN,
  ): LocalityCounters {
    const labels =
      `source_region="${escapeLabelValue(labelOf(source?.region))}",` +
      `source_zone="${escapeLabelValue(labelOf(source?.zone))}",` +
      `destination_region="${escapeLabelValue(labelOf(destination.region))}",` +
      `destination_zone="${escapeLabelValue(labelOf(destination.zone))}",` +
      `destination_service="${escapeLabelValue(labelOf(destinationService))}",` +
      `request_protocol="${PROTOCOL_NAMES[protocol]}"`;
    return {
      request: counter(this.series, `${labels},direction="request"`),
      response: counter(this.series, `${labels},direction="response"`),
      requests: counter(this.requestSeries, labels),
    };
  }

  renderPrometheus(opts: RenderOptions): string {
    return (
      render(LOCALITY_BYTES_FAMILY, HELP, this.series, opts) +
      render(LOCALITY_REQUESTS_FAMILY, REQUESTS_HELP, this.requestSeries, opts)
    );
  }
}

function counter(series: Map<string, ByteCounter>, labels: string): ByteCounter {
  let c = series.get(labels);
  if (c === undefined) {
    c = new ByteCounter(labels);
    series.set(labels, c);
  }
  return c;
}

function render(family: string, help: string, all: Map<string, ByteCounter>, opts: RenderOptions): string {
  if (opts.filter !== undefined) {
    opts.filter.lastIndex = 0;
    if (!opts.filter.test(family)) return '';
  }
  // As Envoy creates a stat on its first increment: a pair that never moved a byte is not shown.
  const series = [...all.values()]
    .filter((s) => s.value > 0)
    .sort((a, b) => compareStrings(a.labels, b.labels));
  if (series.length === 0) return '';
  let out = `# HELP ${family} ${help}\n# TYPE ${family} counter\n`;
  for (const s of series) out += `${family}{${s.labels}} ${formatSampleValue(s.value)}\n`;
  return out;
}

const byStore = new WeakMap<StatsStore, LocalityBytesMetrics>();

/** The proxy's locality byte counters, registered with the store's exposition on first use. */
export function localityBytesOf(stats: StatsStore): LocalityBytesMetrics {
  let m = byStore.get(stats);
  if (m === undefined) {
    m = new LocalityBytesMetrics();
    byStore.set(stats, m);
    stats.addPrometheusSource(m);
  }
  return m;
}

/** Cluster names remembered without a cluster manager before the cache starts over. */
const MAX_CLUSTER_NAMES = 4096;

type Slots = [LocalityCounters | undefined, LocalityCounters | undefined, LocalityCounters | undefined];

/** The counters of one cluster (one destination service), per upstream Locality object. */
interface ClusterSlots {
  readonly service: string;
  readonly byDestination: WeakMap<Locality, Slots>;
}

const newClusterSlots = (service: string): ClusterSlots => ({ service, byDestination: new WeakMap() });

/**
 * What one client-side listener filter records through: its source locality is fixed, and the counters
 * are cached per cluster (its config object when the cluster manager is known, so a CDS update that
 * changes the cluster's service is seen; else its name), then per upstream Locality object (hosts of one
 * locality share it) and protocol. A request costs a map and a WeakMap lookup and a few additions — no
 * label string is built. Locality objects replaced by an EDS update are dropped with their hosts.
 */
export class LocalityBytesRecorder {
  private readonly metrics: LocalityBytesMetrics;
  private readonly source: Locality | undefined;
  private readonly clusters: ClusterManager | undefined;
  private readonly byConfig = new WeakMap<ClusterConfig, ClusterSlots>();
  /** Clusters the manager does not know (or without one): by name, the service read off Istio's name. */
  private readonly byName = new Map<string, ClusterSlots>();

  constructor(metrics: LocalityBytesMetrics, source: Locality | undefined, clusters?: ClusterManager) {
    this.metrics = metrics;
    this.source = source;
    this.clusters = clusters;
  }

  private clusterSlots(cluster: string): ClusterSlots {
    const config = this.clusters?.get(cluster)?.config;
    if (config !== undefined) {
      let c = this.byConfig.get(config);
      if (c === undefined) {
        c = newClusterSlots(clusterService(config)?.host ?? UNKNOWN);
        this.byConfig.set(config, c);
      }
      return c;
    }
    let c = this.byName.get(cluster);
    if (c === undefined) {
      c = newClusterSlots(computeClusterService(cluster, undefined)?.host ?? UNKNOWN);
      // Names come from configuration, so they are few; still, a churning config must not grow this forever.
      if (this.byName.size >= MAX_CLUSTER_NAMES) this.byName.clear();
      this.byName.set(cluster, c);
    }
    return c;
  }

  /**
   * Bytes exchanged with a host of `destination` in `cluster` ("" when the caller does not know it: the
   * destination service is then "unknown"). `requests` counts HTTP and gRPC requests.
   */
  record(
    destination: Locality,
    protocol: LocalityProtocol,
    requestBytes: number,
    responseBytes: number,
    cluster = '',
    requests = 0,
  ): void {
    const byDestination = this.clusterSlots(cluster).byDestination;
    let slots = byDestination.get(destination);
    if (slots === undefined) {
      slots = [undefined, undefined, undefined];
      byDestination.set(destination, slots);
    }
    let c = slots[protocol];
    if (c === undefined)
      c = slots[protocol] = this.metrics.counters(
        this.source,
        destination,
        protocol,
        this.clusterSlots(cluster).service,
      );
    if (requestBytes > 0) c.request.value += requestBytes;
    if (responseBytes > 0) c.response.value += responseBytes;
    if (requests > 0) c.requests.value += requests;
  }

  /** A completed HTTP stream, against the host that served (or last tried) it. */
  recordStream(stream: HttpStream): void {
    const host = stream.upstreamHost;
    if (host === null) return;
    // A try that could not connect (UF) or was refused by a circuit breaker (UO) sent nothing.
    const flags = stream.flags;
    if (stream.upstreamHeaders === null && flags !== '' && (flags.includes('UF') || flags.includes('UO')))
      return;
    this.record(
      host.locality,
      stream.isGrpc ? PROTOCOL_GRPC : PROTOCOL_HTTP,
      requestTotalBytes(stream),
      responseTotalBytes(stream),
      stream.clusterName,
      1,
    );
  }
}

/** Envoy's header map byteSize: the name and value lengths of every entry (header values are latin1). */
function headerBytes(headers: Readonly<Record<string, string | string[] | undefined>>): number {
  let n = 0;
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    if (typeof v === 'string') n += name.length + v.length;
    else for (let i = 0; i < v.length; i++) n += name.length + v[i].length;
  }
  return n;
}

/**
 * The request's size as istio_request_bytes' request.total_size counts it: its headers as this proxy's
 * filters left them (with :method and :path for HTTP/1.1, whose request line carries them; HTTP/2 has
 * them among its headers) plus the body received. What the router adds itself (x-forwarded-*,
 * x-envoy-expected-rq-timeout-ms, ...) is not visible here and not counted, as in Envoy.
 */
export function requestTotalBytes(stream: HttpStream): number {
  let n = headerBytes(stream.headers) + stream.bytesReceived;
  if (!stream.http2) n += 7 /* :method */ + stream.method.length + 5 /* :path */ + stream.path.length;
  return n;
}

/**
 * The response's size as received from the upstream: its headers (with :status), trailers and the body
 * bytes passed on downstream. 0 when no upstream response arrived (a local reply came from this proxy).
 */
export function responseTotalBytes(stream: HttpStream): number {
  const headers = stream.upstreamHeaders;
  if (headers === null) return 0;
  let n = 10 /* ":status" + 3 digits */ + headerBytes(headers) + stream.bytesSent;
  if (stream.upstreamTrailers !== null) n += headerBytes(stream.upstreamTrailers);
  return n;
}
