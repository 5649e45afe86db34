/**
 * `envoy.filters.network.tcp_proxy`: plain TCP to a cluster endpoint, bytes both ways with backpressure,
 * half-close propagated (a FIN from one side ends the write side of the other), idle timeout.
 */
import type { Socket } from 'node:net';
import type { TcpProxyConfig } from '../listener/types.ts';
import type { Counter, Gauge, StatsStore } from '../stats/store.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';

export class TcpProxy {
  private readonly config: TcpProxyConfig;
  private readonly clusters: ClusterManager;
  private readonly totalWeight: number;
  private readonly cxTotal: Counter;
  private readonly cxActive: Gauge;
  private readonly cxNoRoute: Counter;
  private readonly idleTimeouts: Counter;
  private readonly sockets = new Set<Socket>();

  constructor(config: TcpProxyConfig, clusters: ClusterManager, stats: StatsStore) {
    this.config = config;
    this.clusters = clusters;
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
    const entry = this.clusters.get(this.pickCluster());
    const host = entry?.cluster.loadBalancer.chooseHost({ hash: undefined }) ?? null;
    let upstream: Socket | null = null;
    downstream.once('close', () => {
      this.cxActive.dec();
      this.sockets.delete(downstream);
      if (host) host.activeRequests--;
      upstream?.destroy();
    });
    if (entry === undefined || host === null) {
      this.cxNoRoute.inc();
      entry?.stats.noHealthyUpstream.inc();
      downstream.destroy();
      return;
    }
    host.activeRequests++;
    entry.stats.upstreamRqTotal.inc();
    const { socket: up, readyEvent } = entry
      .transportFor(host)
      .connect(host, { allowHalfOpen: true, noDelay: false });
    upstream = up;
    let connected = false;
    const connectTimer = setTimeout(
      () => up.destroy(new Error('connect timeout')),
      entry.config.connectTimeoutMs,
    );
    up.once(readyEvent, () => {
      connected = true;
      clearTimeout(connectTimer);
      this.armIdleTimer(up, downstream);
      up.pipe(downstream);
      downstream.pipe(up);
      downstream.resume();
    });
    up.on('error', () => {
      if (!connected) entry.stats.upstreamCxConnectFail.inc();
    });
    up.once('close', () => {
      clearTimeout(connectTimer);
      downstream.destroy();
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
