/**
 * `weft_locality_bytes_total`: the bytes a client-side proxy (sidecar outbound, gateway) exchanged with its
 * upstream hosts, by (source locality, destination locality). Cloud providers bill traffic that crosses
 * zones and regions; this is the figure that says how much of it a mesh still sends across.
 *
 * Only the client side of a hop counts (the server side's inbound listener would see the same bytes), so a
 * hop is never counted twice. Source is the proxy's own node locality, destination the upstream host's
 * (from EDS); an empty region or zone is "unknown", as Istio labels what it does not know.
 *
 * Cardinality: a proxy has one source locality, so its series are bounded by the (region, zone) pairs of
 * the hosts it talks to × 3 protocols × 2 directions — the number of zones, not of hosts or requests.
 */
import type { HttpStream } from '../http/stream.ts';
import { compareStrings, escapeLabelValue, formatSampleValue } from '../stats/prometheus.ts';
import type { PrometheusSource, RenderOptions, StatsStore } from '../stats/store.ts';
import type { Locality } from '../upstream/types.ts';

export const LOCALITY_BYTES_FAMILY = 'weft_locality_bytes_total';
const HELP =
  'Bytes this proxy exchanged with upstream hosts (client side only), by source and destination locality.';

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
}

function labelOf(v: string | undefined): string {
  return v === undefined || v === '' ? UNKNOWN : v;
}

/** The family of one proxy (one per stats store), rendered in /stats/prometheus after the Envoy stats. */
export class LocalityBytesMetrics implements PrometheusSource {
  private readonly series = new Map<string, ByteCounter>();

  /** The counters of a pair, created (label strings rendered) on first use only. */
  counters(
    source: Locality | undefined,
    destination: Locality,
    protocol: LocalityProtocol,
  ): LocalityCounters {
    const prefix =
      `source_region="${escapeLabelValue(labelOf(source?.region))}",` +
      `source_zone="${escapeLabelValue(labelOf(source?.zone))}",` +
      `destination_region="${escapeLabelValue(labelOf(destination.region))}",` +
      `destination_zone="${escapeLabelValue(labelOf(destination.zone))}",` +
      `request_protocol="${PROTOCOL_NAMES[protocol]}",direction=`;
    return { request: this.counter(`${prefix}"request"`), response: this.counter(`${prefix}"response"`) };
  }

  private counter(labels: string): ByteCounter {
    let c = this.series.get(labels);
    if (c === undefined) {
      c = new ByteCounter(labels);
      this.series.set(labels, c);
    }
    return c;
  }

  renderPrometheus(opts: RenderOptions): string {
    if (opts.filter !== undefined) {
      opts.filter.lastIndex = 0;
      if (!opts.filter.test(LOCALITY_BYTES_FAMILY)) return '';
    }
    // As Envoy creates a stat on its first increment: a pair that never moved a byte is not shown.
    const series = [...this.series.values()]
      .filter((s) => s.value > 0)
      .sort((a, b) => compareStrings(a.labels, b.labels));
    if (series.length === 0) return '';
    let out = `# HELP ${LOCALITY_BYTES_FAMILY} ${HELP}\n# TYPE ${LOCALITY_BYTES_FAMILY} counter\n`;
    for (const s of series) out += `${LOCALITY_BYTES_FAMILY}{${s.labels}} ${formatSampleValue(s.value)}\n`;
    return out;
  }
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

type Slots = [LocalityCounters | undefined, LocalityCounters | undefined, LocalityCounters | undefined];

/**
 * What one client-side listener filter records through: its source locality is fixed, and the counters
 * are cached per upstream Locality object (hosts of one locality share it) and protocol, so a request
 * costs a WeakMap lookup and two additions — no label string is built. Locality objects replaced by an
 * EDS update are dropped with their hosts.
 */
export class LocalityBytesRecorder {
  private readonly metrics: LocalityBytesMetrics;
  private readonly source: Locality | undefined;
  private readonly byDestination = new WeakMap<Locality, Slots>();

  constructor(metrics: LocalityBytesMetrics, source: Locality | undefined) {
    this.metrics = metrics;
    this.source = source;
  }

  record(
    destination: Locality,
    protocol: LocalityProtocol,
    requestBytes: number,
    responseBytes: number,
  ): void {
    let slots = this.byDestination.get(destination);
    if (slots === undefined) {
      slots = [undefined, undefined, undefined];
      this.byDestination.set(destination, slots);
    }
    let c = slots[protocol];
    if (c === undefined) c = slots[protocol] = this.metrics.counters(this.source, destination, protocol);
    if (requestBytes > 0) c.request.value += requestBytes;
    if (responseBytes > 0) c.response.value += responseBytes;
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
