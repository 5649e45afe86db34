/**
 * The network filter `istio.stats` before tcp_proxy: Istio's TCP metrics (connections opened and closed,
 * bytes each way). Byte counters are reported every tcp_reporting_duration while a connection lasts and at
 * its close, as Istio does, so long connections show up before they end. Peers come from
 * istio.metadata_exchange when the connection carried it (on the session before the first report), else
 * from the endpoint's Istio workload metadata (client side) and the mTLS peer identity (server side), as
 * with Istio's workload discovery.
 */
import type { NodeInfo } from '../bootstrap/types.ts';
import type { FilterChainConfig } from '../listener/types.ts';
import type { StatsStore } from '../stats/store.ts';
import type { TcpSession, TcpSessionObserver } from '../network/tcp-session.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import { istioMetricsOf } from './istio-metrics.ts';
import type { CounterSeries, IstioMetricName, IstioMetrics } from './istio-metrics.ts';
import { clusterService, pinnedUpstreamPrincipal } from './labels.ts';
import { localityBytesOf, LocalityBytesRecorder, PROTOCOL_TCP } from './locality-bytes.ts';
import { peerFromNodeMetadata } from './peer-headers.ts';
import { peerFromPrincipal, peerFromWorkloadMetadata } from './peer-metadata.ts';
import type { PeerMetadata } from './peer-metadata.ts';
import { SeriesCache } from './series-cache.ts';
import type { SeriesList } from './series-cache.ts';
import { planMetrics } from './stats-config.ts';
import type { IstioStatsConfig } from './stats-config.ts';
import { reporterRole } from './stats-filter.ts';
import type { ReporterRole, TrafficDirection } from './stats-filter.ts';

const UNKNOWN = 'unknown';
/** Key parts before the custom expressions' values (see seriesFor). */
const FIXED_PARTS = 7;

/** What was already reported for one connection. */
interface Reported {
  /** The upstream is connected: reports may start once the peers are known too. */
  connected: boolean;
  opened: boolean;
  sent: number;
  received: number;
  /** What weft_locality_bytes_total has counted: only once connected, as until then nothing went upstream. */
  localitySent: number;
  localityReceived: number;
}

export interface TcpStatsDeps {
  readonly metrics: IstioMetrics;
  readonly clusters: ClusterManager;
  readonly node: NodeInfo | undefined;
  readonly trafficDirection: TrafficDirection;
  /** The proxy's stats store, for weft_locality_bytes_total (not counted without it). */
  readonly stats?: StatsStore;
}

export class IstioTcpStats implements TcpSessionObserver {
  private readonly role: ReporterRole;
  private readonly self: PeerMetadata;
  private readonly node: NodeInfo | undefined;
  private readonly clusters: ClusterManager;
  private readonly cache: SeriesCache;
  private readonly at: Readonly<Partial<Record<IstioMetricName, number>>>;
  private readonly periodMs: number;
  private readonly open = new Set<TcpSession>();
  private timer: NodeJS.Timeout | null = null;
  /** The cache key being looked up, reused (reports are synchronous). */
  private readonly parts: unknown[];
  /** Set on the client side only: the server side of the hop would count the same bytes again. */
  private readonly localityBytes: LocalityBytesRecorder | null;

  constructor(config: IstioStatsConfig, deps: TcpStatsDeps) {
    this.role = reporterRole(config, deps.trafficDirection);
    this.node = deps.node;
    this.self = peerFromNodeMetadata(deps.node?.metadata ?? {});
    this.clusters = deps.clusters;
    const plan = planMetrics(config, 'tcp');
    this.cache = new SeriesCache(deps.metrics, plan);
    this.parts = new Array<unknown>(FIXED_PARTS + plan.expressions.length);
    const at: Partial<Record<IstioMetricName, number>> = {};
    plan.metrics.forEach((m, i) => (at[m.metric] = i));
    this.at = at;
    this.periodMs = config.tcpReportingDurationMs;
    this.localityBytes =
      this.role !== 'destination' && deps.stats !== undefined
        ? new LocalityBytesRecorder(localityBytesOf(deps.stats), deps.node?.locality, deps.clusters)
        : null;
  }

  onOpen(session: TcpSession): void {
    if (session.downstreamPeer === undefined) {
      const principal = session.downstreamSecurity?.peerPrincipal;
      if (principal !== undefined) session.downstreamPeer = peerFromPrincipal(principal);
    }
    if (session.upstreamPeer === undefined) {
      const workload = session.upstreamHost?.istioWorkload;
      if (workload !== undefined) session.upstreamPeer = peerFromWorkloadMetadata(workload);
    }
    session.observerState.set(this, {
      connected: false,
      opened: false,
      sent: 0,
      received: 0,
      localitySent: 0,
      localityReceived: 0,
    } satisfies Reported);
    this.open.add(session);
    if (this.timer === null) {
      this.timer = setInterval(() => this.flushAll(), this.periodMs);
      this.timer.unref();
    }
  }

  onUpstreamConnected(session: TcpSession): void {
    const state = session.observerState.get(this) as Reported | undefined;
    if (state === undefined) return;
    state.connected = true;
    // With istio.metadata_exchange, the first report waits for the peer's frame (onPeersKnown).
    if (!session.peerPending) this.report(session);
  }

  onPeersKnown(session: TcpSession): void {
    const state = session.observerState.get(this) as Reported | undefined;
    if (state?.connected === true) this.report(session);
  }

  onClose(session: TcpSession): void {
    this.report(session);
    const i = this.at.tcp_connections_closed_total;
    if (i !== undefined) (this.seriesFor(session)[i] as CounterSeries).value++;
    session.observerState.delete(this);
    this.open.delete(session);
    if (this.open.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private flushAll(): void {
    for (const s of this.open) if (!s.peerPending) this.report(s);
  }

  /** Counts the connection as opened (once) and adds the bytes moved since the last report. */
  private report(session: TcpSession): void {
    const state = session.observerState.get(this) as Reported | undefined;
    if (state === undefined) return;
    const series = this.seriesFor(session);
    const at = this.at;
    if (!state.opened) {
      state.opened = true;
      const i = at.tcp_connections_opened_total;
      if (i !== undefined) (series[i] as CounterSeries).value++;
    }
    const sent = session.bytesSent;
    const received = session.bytesReceived;
    let i = at.tcp_sent_bytes_total;
    if (i !== undefined) (series[i] as CounterSeries).value += sent - state.sent;
    i = at.tcp_received_bytes_total;
    if (i !== undefined) (series[i] as CounterSeries).value += received - state.received;
    // What the downstream sent went to the upstream (request), what it was sent came from it (response).
    const host = session.upstreamHost;
    if (this.localityBytes !== null && host !== null && state.connected) {
      this.localityBytes.record(
        host.locality,
        PROTOCOL_TCP,
        received - state.localityReceived,
        sent - state.localitySent,
        session.clusterName,
      );
      state.localityReceived = received;
      state.localitySent = sent;
    }
    state.sent = sent;
    state.received = received;
  }

  private seriesFor(session: TcpSession): SeriesList {
    const role = this.role;
    const source = role === 'source' ? this.self : session.downstreamPeer;
    const destination = role === 'destination' ? this.self : session.upstreamPeer;
    const entry = session.clusterName === '' ? undefined : this.clusters.get(session.clusterName);
    const host = session.upstreamHost;
    // A connected upstream whose transport pins one identity proved it (see pinnedUpstreamPrincipal).
    const pinned =
      entry !== undefined && host !== null && session.upstream !== null && !session.flags.includes('UF')
        ? pinnedUpstreamPrincipal(entry.transportFor(host))
        : null;
    let sourcePrincipal = UNKNOWN;
    let destinationPrincipal = pinned ?? destination?.principal ?? UNKNOWN;
    let securityPolicy = UNKNOWN;
    if (role !== 'source') {
      const sec = session.downstreamSecurity;
      const mutual = sec !== undefined && (sec.peerPrincipal !== undefined || sec.peerSubject !== undefined);
      securityPolicy = mutual ? 'mutual_tls' : 'none';
      sourcePrincipal = sec?.peerPrincipal ?? source?.principal ?? UNKNOWN;
      if (role === 'destination') destinationPrincipal = sec?.localPrincipal ?? UNKNOWN;
    }
    const service = entry === undefined ? null : clusterService(entry.config);
    const parts = this.parts;
    parts[0] = source;
    parts[1] = destination;
    parts[2] = service;
    parts[3] = session.flags;
    parts[4] = sourcePrincipal;
    parts[5] = destinationPrincipal;
    parts[6] = securityPolicy;
    const exprs = this.cache.plan.expressions;
    let values: string[] | undefined;
    if (exprs.length > 0) {
      values = exprs.map((e) => e.tcp(session, this.node));
      for (let i = 0; i < values.length; i++) parts[FIXED_PARTS + i] = values[i];
    }
    return (
      this.cache.get(parts) ??
      this.cache.create(
        parts,
        {
          reporter: role,
          source,
          destination,
          sourcePrincipal,
          destinationPrincipal,
          service,
          protocol: 'tcp',
          responseCode: '',
          grpcStatus: '',
          flags: session.flags,
          securityPolicy,
        },
        values ?? [],
      )
    );
  }
}

/** The TCP observers a filter chain's istio.stats network filters ask for (none when it has none). */
export function tcpObservers(
  chain: FilterChainConfig,
  deps: {
    readonly clusters: ClusterManager;
    readonly stats: StatsStore;
    readonly node: NodeInfo | undefined;
    readonly trafficDirection: TrafficDirection;
  },
): TcpSessionObserver[] {
  const out: TcpSessionObserver[] = [];
  for (const f of chain.filters) {
    if (f.kind !== 'istio_stats') continue;
    out.push(
      new IstioTcpStats(f.stats, {
        metrics: istioMetricsOf(deps.stats),
        clusters: deps.clusters,
        node: deps.node,
        trafficDirection: deps.trafficDirection,
        stats: deps.stats,
      }),
    );
  }
  return out;
}
