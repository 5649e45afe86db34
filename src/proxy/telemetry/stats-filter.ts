/**
 * The HTTP filter `istio.stats`: on each completed stream, records Istio's standard HTTP metrics
 * (requests, duration, request/response body sizes, gRPC message counts) under Istio's labels. It reads the
 * peers that `istio.metadata_exchange` (earlier in the chain) put on the stream.
 */
import type { NodeInfo } from '../bootstrap/types.ts';
import type { FilterStatus, HttpFilter } from '../http/filter.ts';
import type { HttpStream } from '../http/stream.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import type { StatsStore } from '../stats/store.ts';
import { GrpcFrameCounter } from './grpc-frames.ts';
import type { CounterSeries, HistogramSeries, IstioMetricName, IstioMetrics } from './istio-metrics.ts';
import { clusterService, hostOfAuthority, pinnedUpstreamPrincipal } from './labels.ts';
import { localityBytesOf, LocalityBytesRecorder } from './locality-bytes.ts';
import type { DestinationService } from './labels.ts';
import { peerFromNodeMetadata } from './peer-headers.ts';
import type { PeerMetadata } from './peer-metadata.ts';
import { SeriesCache } from './series-cache.ts';
import type { SeriesList } from './series-cache.ts';
import { planMetrics } from './stats-config.ts';
import type { IstioStatsConfig } from './stats-config.ts';

const UNKNOWN = 'unknown';
/** Key parts before the custom expressions' values (see seriesFor). */
const FIXED_PARTS = 10;

export type TrafficDirection = 'INBOUND' | 'OUTBOUND' | 'UNSPECIFIED';

/** Who reports: the client side ("source"), the server side ("destination") or a waypoint. */
export type ReporterRole = 'source' | 'destination' | 'waypoint';

export function reporterRole(config: IstioStatsConfig, direction: TrafficDirection): ReporterRole {
  if (config.reporter === 'SERVER_GATEWAY') return 'waypoint';
  return direction === 'OUTBOUND' ? 'source' : 'destination';
}

interface GrpcCounts {
  readonly request: GrpcFrameCounter;
  readonly response: GrpcFrameCounter;
}

export interface IstioStatsDeps {
  readonly metrics: IstioMetrics;
  readonly clusters: ClusterManager;
  readonly node: NodeInfo | undefined;
  readonly trafficDirection: TrafficDirection;
  /** The proxy's stats store, for weft_locality_bytes_total (not counted without it). */
  readonly stats?: StatsStore;
}

export class IstioStatsFilter implements HttpFilter {
  readonly name: string;
  private readonly role: ReporterRole;
  private readonly self: PeerMetadata;
  private readonly node: NodeInfo | undefined;
  private readonly clusters: ClusterManager;
  private readonly hostFallback: boolean;
  private readonly cache: SeriesCache;
  /** Where each planned metric is in a cached series list (-1: dropped). */
  private readonly at: Readonly<Partial<Record<IstioMetricName, number>>>;
  private readonly grpc = new WeakMap<HttpStream, GrpcCounts>();
  private readonly countsMessages: boolean;
  /** The cache key of the request being recorded, reused (recording is synchronous). */
  private readonly parts: unknown[];
  /** Set on the client side only: the server side of the hop would count the same bytes again. */
  private readonly localityBytes: LocalityBytesRecorder | null;

  constructor(name: string, config: IstioStatsConfig, deps: IstioStatsDeps) {
    this.name = name;
    this.role = reporterRole(config, deps.trafficDirection);
    this.node = deps.node;
    this.self = peerFromNodeMetadata(deps.node?.metadata ?? {});
    this.clusters = deps.clusters;
    this.hostFallback = !config.disableHostHeaderFallback;
    const plan = planMetrics(config, 'http');
    this.cache = new SeriesCache(deps.metrics, plan);
    this.parts = new Array<unknown>(FIXED_PARTS + plan.expressions.length);
    const at: Partial<Record<IstioMetricName, number>> = {};
    plan.metrics.forEach((m, i) => (at[m.metric] = i));
    this.at = at;
    this.countsMessages = at.request_messages_total !== undefined || at.response_messages_total !== undefined;
    this.localityBytes =
      this.role !== 'destination' && deps.stats !== undefined
        ? new LocalityBytesRecorder(localityBytesOf(deps.stats), deps.node?.locality, deps.clusters)
        : null;
  }

  onRequest(): FilterStatus {
    return 'continue';
  }

  onRequestData(stream: HttpStream, chunk: Buffer): void {
    if (stream.isGrpc && this.countsMessages) this.grpcCounts(stream).request.feed(chunk);
  }

  onResponseData(stream: HttpStream, chunk: Buffer): void {
    if (stream.isGrpc && this.countsMessages) this.grpcCounts(stream).response.feed(chunk);
  }

  private grpcCounts(stream: HttpStream): GrpcCounts {
    let c = this.grpc.get(stream);
    if (c === undefined) {
      c = { request: new GrpcFrameCounter(), response: new GrpcFrameCounter() };
      this.grpc.set(stream, c);
    }
    return c;
  }

  onComplete(stream: HttpStream): void {
    this.localityBytes?.recordStream(stream);
    const series = this.seriesFor(stream);
    const at = this.at;
    let i = at.requests_total;
    if (i !== undefined) (series[i] as CounterSeries).value++;
    i = at.request_duration_milliseconds;
    if (i !== undefined) (series[i] as HistogramSeries).record(stream.endMs - stream.startMs);
    i = at.request_bytes;
    if (i !== undefined) (series[i] as HistogramSeries).record(stream.bytesReceived);
    i = at.response_bytes;
    if (i !== undefined) (series[i] as HistogramSeries).record(stream.bytesSent);
    if (stream.isGrpc) {
      const counts = this.grpc.get(stream);
      i = at.request_messages_total;
      if (i !== undefined) (series[i] as CounterSeries).value += counts?.request.messages ?? 0;
      i = at.response_messages_total;
      if (i !== undefined) (series[i] as CounterSeries).value += counts?.response.messages ?? 0;
    }
  }

  private seriesFor(stream: HttpStream): SeriesList {
    const role = this.role;
    const source = role === 'source' ? this.self : stream.downstreamPeer;
    const destination = role === 'destination' ? this.self : stream.upstreamPeer;
    const entry = stream.clusterName === '' ? undefined : this.clusters.get(stream.clusterName);
    let sourcePrincipal = UNKNOWN;
    let destinationPrincipal: string;
    let securityPolicy = UNKNOWN;
    if (role === 'source') {
      // The upstream connection is not visible here; a transport that pins one identity and answered says it.
      const host = stream.upstreamHost;
      const pinned =
        entry !== undefined && host !== null && stream.upstreamHeaders !== null
          ? pinnedUpstreamPrincipal(entry.transportFor(host))
          : null;
      destinationPrincipal = pinned ?? destination?.principal ?? UNKNOWN;
    } else {
      const sec = stream.downstreamSecurity;
      const mutual = sec !== undefined && (sec.peerPrincipal !== undefined || sec.peerSubject !== undefined);
      securityPolicy = mutual ? 'mutual_tls' : 'none';
      sourcePrincipal = sec?.peerPrincipal ?? source?.principal ?? UNKNOWN;
      destinationPrincipal =
        role === 'destination' ? (sec?.localPrincipal ?? UNKNOWN) : (destination?.principal ?? UNKNOWN);
    }
    let service: DestinationService | string | null = null;
    if (entry !== undefined) service = clusterService(entry.config);
    if (service === null && this.hostFallback && stream.authority !== '')
      service = hostOfAuthority(stream.authority);
    const grpcStatus = stream.grpcStatus ?? '';
    const parts = this.parts;
    parts[0] = source;
    parts[1] = destination;
    parts[2] = service;
    parts[3] = stream.responseStatus;
    parts[4] = grpcStatus;
    parts[5] = stream.flags;
    parts[6] = sourcePrincipal;
    parts[7] = destinationPrincipal;
    parts[8] = securityPolicy;
    parts[9] = stream.isGrpc;
    const exprs = this.cache.plan.expressions;
    let values: string[] | undefined;
    if (exprs.length > 0) {
      values = exprs.map((e) => e.http(stream, this.node));
      for (let i = 0; i < values.length; i++) parts[FIXED_PARTS + i] = values[i];
    }
    const hit = this.cache.get(parts);
    if (hit !== undefined) return hit;
    return this.cache.create(
      parts,
      {
        reporter: role,
        source,
        destination,
        sourcePrincipal,
        destinationPrincipal,
        service,
        protocol: stream.isGrpc ? 'grpc' : 'http',
        responseCode: String(stream.responseStatus),
        grpcStatus,
        flags: stream.flags,
        securityPolicy,
      },
      values ?? [],
    );
  }
}
