/**
 * `envoy.filters.network.tcp_proxy`: plain TCP to a cluster endpoint, bytes both ways with backpressure,
 * half-close propagated (a FIN from one side ends the write side of the other), idle timeout.
 *
 * With `istio.metadata_exchange` before it, a connection whose TLS negotiated the exchange protocol carries
 * one frame each way first (peer-exchange.ts): the server side is the downstream that negotiated it, the
 * client side the upstream that did. Other connections take the plain path.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { TcpProxyConfig } from '../listener/types.ts';
import type { Counter, Gauge, StatsStore } from '../stats/store.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import { performance } from 'node:perf_hooks';
import { createTcpAccessLoggers } from '../accesslog/access-loggers.ts';
import { TelemetryContext } from '../telemetry/context.ts';
import { TcpSession } from './tcp-session.ts';
import type { TcpSessionObserver } from './tcp-session.ts';
import { connectionSecurityOf } from '../tls/connection-security.ts';
import { peerWithPrincipal } from '../telemetry/peer-metadata.ts';
import { readPeerFrame } from './peer-exchange.ts';
import type { FrameOutcome, PeerExchange } from './peer-exchange.ts';

export class TcpProxy {
  private readonly config: TcpProxyConfig;
  private readonly clusters: ClusterManager;
  private readonly totalWeight: number;
  private readonly cxTotal: Counter;
  private readonly cxActive: Gauge;
  private readonly cxNoRoute: Counter;
  private readonly idleTimeouts: Counter;
  private readonly sockets = new Set<Socket>();
  /** Access logs, then whatever else follows sessions (Istio's TCP metrics). */
  private readonly observers: readonly TcpSessionObserver[];
  /** The chain's istio.metadata_exchange, if it has one. */
  private readonly exchange: PeerExchange | null;

  constructor(
    config: TcpProxyConfig,
    clusters: ClusterManager,
    stats: StatsStore,
    telemetry?: TelemetryContext,
    observers: readonly TcpSessionObserver[] = [],
    exchange: PeerExchange | null = null,
  ) {
    this.config = config;
    this.exchange = exchange;
    this.clusters = clusters;
    const sinks = (telemetry ?? new TelemetryContext(clusters, stats)).accessLogs;
    this.observers = [...observers, ...createTcpAccessLoggers(config.accessLog, sinks)];
    this.totalWeight = config.clusters.reduce((a, c) => a + c.weight, 0);
    const p = `tcp.${config.statPrefix}.`;
    this.cxTotal = stats.counter(p + 'downstream_cx_total');
    this.cxActive = stats.gauge(p + 'downstream_cx_active');
    this.cxNoRoute = stats.counter(p + 'downstream_cx_no_route');
    this.idleTimeouts = stats.counter(p + 'idle_timeout');
  }

  private pickCluster(): string {
    const cs = this.config.clusters;
    if (cs.length === 1) return cs[0].name;
    let r = Math.random() * this.totalWeight;
    for (const c of cs) {
      r -= c.weight;
      if (r < 0) return c.name;
    }
    return cs[cs.length - 1].name;
  }

  handleConnection(downstream: Socket): void {
    this.cxTotal.inc();
    this.cxActive.inc();
    this.sockets.add(downstream);
    downstream.pause();
    downstream.on('error', () => downstream.destroy());
    const observers = this.observers;
    const session = observers.length > 0 ? new TcpSession(downstream) : null;
    const exchange = this.exchange;
    // Server side of the exchange: the frame from the downstream, once read.
    let fromDownstream: ServerExchange | null = null;
    if (exchange !== null && connectionSecurityOf(downstream)?.alpn === exchange.protocol) {
      fromDownstream = { outcome: null, onOutcome: null };
      if (session !== null) session.peerPending = true;
    }
    const clusterName = this.pickCluster();
    const entry = this.clusters.get(clusterName);
    const host = entry?.cluster.loadBalancer.chooseHost({ hash: undefined }) ?? null;
    if (session !== null) {
      session.clusterName = clusterName;
      session.upstreamHost = host;
      for (const o of observers) o.onOpen?.(session);
    }
    let upstream: Socket | null = null;
    let upstreamClosed = true;
    let downstreamClosed = false;
    const closed = (): void => {
      if (session === null || !downstreamClosed || !upstreamClosed) return;
      session.endMs = performance.now();
      for (const o of observers) o.onClose(session);
    };
    downstream.once('close', () => {
      this.cxActive.dec();
      this.sockets.delete(downstream);
      if (host) host.activeRequests--;
      upstream?.destroy();
      downstreamClosed = true;
      closed();
    });
    if (fromDownstream !== null) this.startServerExchange(downstream, session, exchange!, fromDownstream);
    if (entry === undefined || host === null) {
      this.cxNoRoute.inc();
      entry?.stats.noHealthyUpstream.inc();
      session?.addFlag(entry === undefined ? 'NC' : 'UH');
      downstream.destroy();
      return;
    }
    host.activeRequests++;
    entry.stats.upstreamRqTotal.inc();
    const { socket: up, readyEvent } = entry
      .transportFor(host)
      .connect(host, { allowHalfOpen: true, noDelay: false });
    upstream = up;
    upstreamClosed = false;
    if (session !== null) session.upstream = up;
    let connected = false;
    const connectTimer = setTimeout(
      () => up.destroy(new Error('connect timeout')),
      entry.config.connectTimeoutMs,
    );
    up.once(readyEvent, () => {
      connected = true;
      clearTimeout(connectTimer);
      // Client side of the exchange: the upstream negotiated it. Observers learn the peer is pending first.
      const toUpstream =
        exchange !== null && fromDownstream === null && (up as TLSSocket).alpnProtocol === exchange.protocol;
      if (session !== null) {
        if (toUpstream) session.peerPending = true;
        for (const o of observers) o.onUpstreamConnected?.(session);
      }
      this.armIdleTimer(up, downstream);
      if (exchange !== null) return this.connectExchanging(exchange, up, downstream, session, fromDownstream);
      up.pipe(downstream);
      downstream.pipe(up);
      downstream.resume();
    });
    up.on('error', () => {
      if (connected) return;
      entry.stats.upstreamCxConnectFail.inc();
      session?.addFlag('UF');
    });
    up.once('close', () => {
      clearTimeout(connectTimer);
      downstream.destroy();
      upstreamClosed = true;
      closed();
    });
  }

  /** Server side: our frame goes out before any application byte; the client's is read and stripped. */
  private startServerExchange(
    downstream: Socket,
    session: TcpSession | null,
    exchange: PeerExchange,
    state: ServerExchange,
  ): void {
    downstream.write(exchange.frame);
    if (session !== null) session.frameBytesSent = exchange.frame.length;
    readPeerFrame(downstream, exchange.timeoutMs, (outcome) => {
      if (session !== null) {
        session.frameBytesReceived = outcome.frameBytes;
        if (outcome.peer !== undefined) {
          const principal = session.downstreamSecurity?.peerPrincipal;
          session.downstreamPeer =
            principal === undefined ? outcome.peer : peerWithPrincipal(outcome.peer, principal);
        }
        this.peersKnown(session);
      }
      state.outcome = outcome;
      state.onOutcome?.(outcome);
    });
  }

  /** The upstream is connected on a chain with istio.metadata_exchange. */
  private connectExchanging(
    exchange: PeerExchange,
    up: Socket,
    downstream: Socket,
    session: TcpSession | null,
    fromDownstream: ServerExchange | null,
  ): void {
    if (fromDownstream !== null) {
      // Our frame is already out: the application's bytes may follow it at once.
      up.pipe(downstream);
      const forward = (outcome: FrameOutcome): void => forwardAfterFrame(outcome, downstream, up);
      if (fromDownstream.outcome !== null) forward(fromDownstream.outcome);
      else fromDownstream.onOutcome = forward;
      return;
    }
    if ((up as TLSSocket).alpnProtocol !== exchange.protocol) {
      up.pipe(downstream);
      downstream.pipe(up);
      downstream.resume();
      return;
    }
    // Client side: our frame first, then the downstream's bytes; the server's frame is stripped from the
    // upstream's first bytes before they reach the downstream.
    up.write(exchange.frame);
    downstream.pipe(up);
    downstream.resume();
    readPeerFrame(up, exchange.timeoutMs, (outcome) => {
      if (session !== null) {
        if (outcome.peer !== undefined) session.upstreamPeer = outcome.peer;
        this.peersKnown(session);
      }
      forwardAfterFrame(outcome, up, downstream);
    });
  }

  private peersKnown(session: TcpSession): void {
    session.peerPending = false;
    for (const o of this.observers) o.onPeersKnown?.(session);
  }

  /** Idle means no bytes in either direction, so one timer is shared and refreshed by both sockets. */
  private armIdleTimer(up: Socket, down: Socket): void {
    const idle = this.config.idleTimeoutMs;
    if (idle <= 0) return;
    const timer = setTimeout(() => {
      this.idleTimeouts.inc();
      up.destroy();
      down.destroy();
    }, idle).unref();
    const touch = (): void => void timer.refresh();
    up.on('data', touch);
    down.on('data', touch);
    up.once('close', () => clearTimeout(timer));
  }

  /** Closes every proxied connection (used when the proxy stops). */
  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
  }
}

/** The server side's frame reading, which may end before or after the upstream connects. */
interface ServerExchange {
  outcome: FrameOutcome | null;
  onOutcome: ((outcome: FrameOutcome) => void) | null;
}

/** After the other side's frame: what was read behind it goes on, then the rest of the stream. */
function forwardAfterFrame(outcome: FrameOutcome, from: Socket, to: Socket): void {
  if (outcome.rest.length > 0) to.write(outcome.rest);
  if (outcome.ended) to.end();
  else from.pipe(to);
}
