/**
 * Owns the runtime clusters and one connection pool per (cluster, host). Routers look clusters up
 * by name on every request; config updates swap entries while in-flight requests keep the old ones.
 */
import type { StatsStore } from '../stats/store.ts';
import type { ClusterConfig, Host } from './types.ts';
import type { UpstreamPool } from './codec.ts';
import { createCluster } from './cluster.ts';
import type { Cluster, LoadAssignment } from './cluster.ts';
import { NativeHttp1Pool } from './http1-native-pool.ts';
import { Http2Pool } from './http2-pool.ts';
import { ClusterStats } from './cluster-stats.ts';
import { CircuitBreakers } from './circuit-breakers.ts';
import { OutlierDetector } from './outlier.ts';
import { SecretManager } from '../tls/secrets.ts';
import { UpstreamTransport } from '../tls/upstream.ts';

type Http1PoolFactory = (
  host: Host,
  cluster: ClusterConfig,
  breakers: CircuitBreakers,
  transport: UpstreamTransport,
) => UpstreamPool;

/** HTTP/1.1 upstreams use the native-parser pool; undici's pool stays available as a fallback. */
let http1PoolFactory: Http1PoolFactory = (host, cluster, breakers, transport) =>
  new NativeHttp1Pool(host, cluster, breakers, transport);

/**
 * Switches HTTP/1.1 upstreams to undici's Pool (WEFT_H1_CLIENT=undici): a fallback should a Node upgrade
 * change the parser internals the native pool relies on. Loaded lazily: undici costs ~25 MB of RSS.
 */
export async function useUndiciForHttp1(): Promise<void> {
  const { Http1Pool } = await import('./http1-pool.ts');
  http1PoolFactory = (host, cluster, breakers, transport) =>
    new Http1Pool(host, cluster, breakers, transport);
}

export class ClusterEntry {
  readonly name: string;
  readonly config: ClusterConfig;
  readonly cluster: Cluster;
  readonly stats: ClusterStats;
  /** Passive health checking, when the cluster has outlier_detection; the router reports outcomes to it. */
  readonly outlier: OutlierDetector | undefined;
  /** Limits shared by all the cluster's pools (connections, pending and active requests, retries). */
  readonly breakers: CircuitBreakers;
  /** How connections to the hosts are opened: plain TCP or the cluster's transport_socket TLS. */
  readonly transport: UpstreamTransport;
  /** transport_socket_matches, in order, each with its transport. */
  private readonly matchTransports: readonly {
    readonly match: Readonly<Record<string, string>>;
    readonly transport: UpstreamTransport;
  }[];
  private readonly pools = new Map<Host, UpstreamPool>();
  /** use_downstream_protocol_config: the HTTP/2 pools of requests that came in over HTTP/2. */
  private readonly h2Pools = new Map<Host, UpstreamPool>();

  constructor(cluster: Cluster, stats: StatsStore, secrets: SecretManager = new SecretManager()) {
    this.cluster = cluster;
    const tls = cluster.config.tls;
    this.transport =
      tls === undefined
        ? UpstreamTransport.plaintext
        : new UpstreamTransport(tls, secrets, { store: stats, clusterName: cluster.name });
    this.matchTransports = (cluster.config.transportSocketMatches ?? []).map((m) => ({
      match: m.match,
      transport:
        m.tls === undefined
          ? UpstreamTransport.plaintext
          : new UpstreamTransport(m.tls, secrets, { store: stats, clusterName: cluster.name }),
    }));
    this.config = cluster.config;
    this.name = cluster.name;
    this.stats = new ClusterStats(stats, this.name);
    this.breakers = new CircuitBreakers(cluster.config.circuitBreakers, stats, this.name);
    const od = cluster.config.outlierDetection;
    this.outlier = od === undefined ? undefined : new OutlierDetector(cluster, od, stats);
    cluster.onHostsChanged((_added, removed) => {
      for (const h of removed) {
        for (const pools of [this.pools, this.h2Pools]) {
          const p = pools.get(h);
          if (p) {
            pools.delete(h);
            void p.close();
          }
        }
      }
      this.stats.membershipTotal.set(cluster.hosts().length);
    });
  }

  /** The transport for a host: the first transport_socket_matches entry its metadata satisfies, else the cluster's. */
  transportFor(host: Host): UpstreamTransport {
    for (const m of this.matchTransports) {
      const meta = host.socketMatch;
      let ok = true;
      for (const k in m.match) {
        if (meta?.[k] !== m.match[k]) {
          ok = false;
          break;
        }
      }
      if (ok) return m.transport;
    }
    return this.transport;
  }

  /**
   * The pool for `host`. `downstreamHttp2`: the request came in over HTTP/2, which a cluster with
   * use_downstream_protocol_config keeps upstream (its own pools, beside the HTTP/1.1 ones).
   */
  pool(host: Host, downstreamHttp2 = false): UpstreamPool {
    const h2 = this.config.downstreamHttp2;
    if (downstreamHttp2 && h2 !== undefined) {
      let p = this.h2Pools.get(host);
      if (p === undefined) {
        p = new Http2Pool(host, { ...this.config, http2: h2 }, this.breakers, this.transportFor(host));
        this.h2Pools.set(host, p);
      }
      return p;
    }
    let p = this.pools.get(host);
    if (p === undefined) {
      const transport = this.transportFor(host);
      p = this.config.http2
        ? new Http2Pool(host, this.config, this.breakers, transport)
        : http1PoolFactory(host, this.config, this.breakers, transport);
      this.pools.set(host, p);
    }
    return p;
  }

  connectionCount(host: Host): number {
    return (this.pools.get(host)?.connectionCount() ?? 0) + (this.h2Pools.get(host)?.connectionCount() ?? 0);
  }

  async close(): Promise<void> {
    this.cluster.stop();
    this.outlier?.stop();
    await Promise.all([...this.pools.values(), ...this.h2Pools.values()].map((p) => p.close()));
    this.pools.clear();
    this.h2Pools.clear();
    this.transport.release();
    for (const m of this.matchTransports) m.transport.release();
  }

  destroy(): void {
    this.cluster.stop();
    this.outlier?.stop();
    for (const p of [...this.pools.values(), ...this.h2Pools.values()]) p.destroy();
    this.pools.clear();
    this.h2Pools.clear();
    this.transport.release();
    for (const m of this.matchTransports) m.transport.release();
  }
}

export class ClusterManager {
  private readonly entries = new Map<string, ClusterEntry>();
  private readonly stats: StatsStore;
  /** Named TLS secrets the clusters' transport sockets use. */
  readonly secrets: SecretManager;

  constructor(stats: StatsStore, secrets: SecretManager = new SecretManager()) {
    this.stats = stats;
    this.secrets = secrets;
  }

  get(name: string): ClusterEntry | undefined {
    return this.entries.get(name);
  }

  all(): IterableIterator<ClusterEntry> {
    return this.entries.values();
  }

  /**
   * Adds or replaces a cluster; resolves once its first host set is known (DNS clusters resolve first;
   * an EDS cluster takes `assignment` when it is given). A replaced cluster's in-flight requests finish
   * on the old entry, whose pools then close.
   */
  async addOrUpdate(config: ClusterConfig, assignment?: LoadAssignment): Promise<void> {
    const cluster = createCluster(config);
    if (assignment !== undefined) cluster.setLoadAssignment(assignment);
    await cluster.start();
    const entry = new ClusterEntry(cluster, this.stats, this.secrets);
    entry.stats.membershipTotal.set(cluster.hosts().length);
    const old = this.entries.get(config.name);
    // Ejections survive a config update that keeps outlier detection on (hosts are matched by address).
    if (old?.outlier !== undefined && entry.outlier !== undefined) entry.outlier.adopt(old.outlier);
    this.entries.set(config.name, entry);
    if (old) void old.close();
  }

  async remove(name: string): Promise<void> {
    const old = this.entries.get(name);
    if (!old) return;
    this.entries.delete(name);
    await old.close();
  }

  async close(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => e.close()));
    this.entries.clear();
  }

  destroy(): void {
    for (const e of this.entries.values()) e.destroy();
    this.entries.clear();
  }
}
