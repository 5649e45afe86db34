/**
 * `envoy.filters.network.tcp_proxy`: plain TCP to a cluster endpoint, bytes both ways with backpressure,
 * half-close propagated (a FIN from one side ends the write side of the other), idle timeout.
 */
import type { Socket } from 'node:net';
import type { TcpProxyConfig } from '../listener/types.ts';
import type { Counter, Gauge, StatsStore } from '../stats/store.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import { performance } from 'node:perf_hooks';
import { createTcpAccessLoggers } from '../accesslog/access-loggers.ts';
import { TelemetryContext } from '../telemetry/context.ts';
import { TcpSession } from './tcp-session.ts';
import type { TcpSessionObserver } from './tcp-session.ts';

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

  constructor(
    config: TcpProxyConfig,
    clusters: ClusterManager,
    stats: StatsStore,
    telemetry?: TelemetryContext,
    observers: readonly TcpSessionObserver[] = [],
  ) {
    this.config = config;
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
      if (session !== null) for (const o of observers) o.onUpstreamConnected?.(session);
      this.armIdleTimer(up, downstream);
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
