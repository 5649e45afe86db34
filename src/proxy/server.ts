/**
 * The Weft proxy process: stats, clusters, listeners and the admin server, built from a bootstrap, and —
 * when the bootstrap has dynamic_resources — the ADS client that keeps them up to date.
 * Also the lifecycle: start, drain (stop accepting, let in-flight requests finish), stop.
 */
import os from 'node:os';
import type { AdminClusterStatus, AdminTarget } from './admin/types.ts';
import { startAdminServer } from './admin/server.ts';
import type { AdsConfig, BootstrapConfig } from './bootstrap/types.ts';
import { ListenerManager } from './listener/listener-manager.ts';
import type { ActiveListener } from './listener/listener-manager.ts';
import { RouteConfigProviders } from './router/rds.ts';
import { StatsStore } from './stats/store.ts';
import { ClusterManager, useUndiciForHttp1 } from './upstream/cluster-manager.ts';
import { SecretManager } from './tls/secrets.ts';
import { CertificateAgent } from './agent/certificate-agent.ts';
import { msUntilFirstExpiry, renderCerts } from './tls/certs.ts';
import type { CommonTlsConfig } from './tls/tls-context-config.ts';
import { AdsClient } from './xds/ads-client.ts';
import { Backoff } from './xds/backoff.ts';
import { renderConfigDump } from './xds/config-dump.ts';
import { DynamicConfig } from './xds/dynamic-config.ts';
import { DEFAULT_MAX_MESSAGE_BYTES } from './xds/grpc-framing.ts';
import { openGrpcStream } from './xds/grpc-stream.ts';
import type { GrpcStream, GrpcStreamHandlers } from './xds/grpc-stream.ts';
import { TYPE_URL } from './xds/type-urls.ts';
import { createLogger } from '../core/logger.ts';
import { isObject } from '../core/json.ts';
import type { JsonObject } from '../core/json.ts';
import { VERSION } from '../core/version.ts';
import { TelemetryContext } from './telemetry/context.ts';
import { ServerStats } from './server-stats.ts';
import { MallocTrimmer } from './memory-trim.ts';

const log = createLogger('proxy');

export interface ProxyServerOptions {
  /** How long a drain waits for in-flight requests before closing what is left (default 5 s). */
  readonly drainMs?: number;
  /** Called when /quitquitquit or a signal asks the process to end. */
  readonly onQuit?: () => void;
  /** The ADS reconnect backoff (default 250 ms doubling to 30 s); tests shorten it. */
  readonly xdsBackoff?: { readonly baseMs: number; readonly maxMs: number };
  /** Runs the workload certificate agent (the `sds-grpc` secrets) against the control plane's CA. */
  readonly agent?: ProxyAgentOptions;
}

export interface ProxyAgentOptions {
  /** host:port of the CA (gRPC). */
  readonly caAddress: string;
  /** The workload's bootstrap token file. */
  readonly tokenFile: string;
  /** Requested certificate lifetime; 0 lets the CA decide. */
  readonly ttlSeconds: number;
}

/** How long start-up waits for the first workload certificate before going on without it. */
const FIRST_CERTIFICATE_WAIT_MS = 15_000;

export class ProxyServer implements AdminTarget {
  readonly bootstrap: BootstrapConfig;
  readonly stats: StatsStore;
  /** Named TLS secrets: static ones from the bootstrap, SDS ones as they arrive. */
  readonly secrets = new SecretManager();
  readonly clusterManager: ClusterManager;
  readonly routes = new RouteConfigProviders();
  readonly listenerManager: ListenerManager;
  /** Node identity, access log sinks and tracing exporters shared by every listener. */
  readonly telemetry: TelemetryContext;
  /** Set when the bootstrap has dynamic_resources.ads_config. */
  dynamic: DynamicConfig | null = null;
  ads: AdsClient | null = null;
  /** The workload certificate agent, when configured. */
  agent: CertificateAgent | null = null;
  private admin: { port: number; close(): Promise<void> } | null = null;
  private ready = false;
  private state: 'INITIALIZING' | 'LIVE' | 'DRAINING' | 'STOPPED' = 'INITIALIZING';
  private readonly startedAt = new Date();
  private readonly opts: ProxyServerOptions;
  private stopping: Promise<void> | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private readonly serverStats: ServerStats;
  private readonly mallocTrimmer: MallocTrimmer;

  constructor(bootstrap: BootstrapConfig, opts: ProxyServerOptions = {}) {
    this.bootstrap = bootstrap;
    this.opts = opts;
    this.stats = new StatsStore(bootstrap.stats);
    this.serverStats = new ServerStats(this.stats, VERSION);
    this.mallocTrimmer = new MallocTrimmer(this.stats);
    for (const { name, value } of bootstrap.secrets ?? []) this.secrets.set(name, value);
    this.clusterManager = new ClusterManager(this.stats, this.secrets);
    this.telemetry = new TelemetryContext(this.clusterManager, this.stats, bootstrap.node);
    this.listenerManager = new ListenerManager(
      {
        clusters: this.clusterManager,
        stats: this.stats,
        routes: this.routes,
        secrets: this.secrets,
        telemetry: this.telemetry,
      },
      () => this.opts.drainMs ?? 5000,
    );
    this.stats.gauge('server.live');
  }

  /**
   * Starts admin first (so /ready can report initialisation), then static clusters and listeners, then
   * the ADS client; resolves when the first dynamic configuration is in place (or its timeouts passed).
   */
  async start(): Promise<void> {
    if (process.env.WEFT_H1_CLIENT === 'undici') await useUndiciForHttp1();
    const admin = this.bootstrap.admin;
    if (admin) this.admin = await startAdminServer({ ...admin.address, target: this, stats: this.stats });
    for (const c of this.bootstrap.clusters) await this.clusterManager.addOrUpdate(c);
    for (const l of this.bootstrap.listeners) {
      // Static listeners are never updated: their chain keys only need to be distinct.
      const keys = Array.from({ length: l.filterChains.length + 1 }, (_, i) => `static#${i}`);
      this.listenerManager.commit(l, keys, await this.listenerManager.prepare(l, keys));
    }
    this.flushTimer = setInterval(() => this.flushStats(), 5000).unref();
    this.mallocTrimmer.start();
    this.flushStats();
    const firstCertificate = this.startAgent();
    const dynamic = this.bootstrap.dynamic;
    if (dynamic?.ads) {
      this.startXds(dynamic.ads);
      await this.dynamic!.initialized;
    }
    // Ready only with the workload certificate, as a sidecar without it cannot serve mTLS.
    await firstCertificate;
    if (this.stopping) return; // stopped while initializing
    this.ready = true;
    this.state = 'LIVE';
    this.stats.gauge('server.live').set(1);
    this.serverStats.flush(this.state, this.listenerManager.all());
    log.info('proxy ready', {
      listeners: [...this.listenerManager.all()].map(
        (l) => `${l.config.name}@${l.config.address.host}:${l.boundPort}`,
      ),
      admin: this.admin ? this.admin.port : null,
    });
  }

  /** Starts the certificate agent, if configured; resolves with its first certificate (or after a bound wait). */
  private startAgent(): Promise<void> {
    const opts = this.opts.agent;
    if (opts === undefined) return Promise.resolve();
    const agent = new CertificateAgent({
      caAddress: opts.caAddress,
      tokenFile: opts.tokenFile,
      ttlSeconds: opts.ttlSeconds,
      secrets: this.secrets,
      stats: this.stats,
    });
    this.agent = agent;
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        log.warn('no workload certificate yet; going on without it (mTLS fails until it arrives)', {
          waitedMs: FIRST_CERTIFICATE_WAIT_MS,
        });
        resolve();
      }, FIRST_CERTIFICATE_WAIT_MS);
      timer.unref();
    });
    return Promise.race([agent.start(), waited]).finally(() => clearTimeout(timer));
  }

  private startXds(ads: AdsConfig): void {
    const dynamic = this.bootstrap.dynamic!;
    this.dynamic = new DynamicConfig({
      clusters: this.clusterManager,
      listeners: this.listenerManager,
      routes: this.routes,
      stats: this.stats,
      staticListeners: this.bootstrap.listeners,
      staticClusters: this.bootstrap.clusters,
      lds: dynamic.lds,
      cds: dynamic.cds,
      secrets: this.secrets,
    });
    const wildcardTypes = [
      ...(dynamic.cds ? [TYPE_URL.cluster] : []),
      ...(dynamic.lds ? [TYPE_URL.listener] : []),
    ];
    this.ads = new AdsClient({
      mode: ads.apiType === 'DELTA_GRPC' ? 'delta' : 'sotw',
      node: this.xdsNode(),
      nodeOnFirstMessageOnly: ads.nodeOnFirstMessageOnly,
      wildcardTypes,
      sink: this.dynamic,
      connect: (path, handlers) => this.connectAds(ads, path, handlers),
      backoff: new Backoff(this.opts.xdsBackoff),
    });
    this.dynamic.start();
    this.ads.start();
  }

  /** The node as sent to the control plane: the bootstrap's, plus the user agent (as Envoy adds its own). */
  private xdsNode(): JsonObject {
    const normalized = isObject(this.bootstrap.normalized) ? this.bootstrap.normalized.node : undefined;
    return {
      ...(isObject(normalized) ? normalized : {}),
      user_agent_name: 'weft',
      user_agent_version: VERSION,
    };
  }

  /** A stream to one endpoint of the ADS cluster, chosen by the cluster's load balancer. */
  private connectAds(ads: AdsConfig, path: string, handlers: GrpcStreamHandlers): GrpcStream {
    const entry = this.clusterManager.get(ads.clusterName);
    const host = entry?.cluster.loadBalancer.chooseHost({ hash: undefined });
    if (!entry || !host) throw new Error(`no endpoint in the ADS cluster ${JSON.stringify(ads.clusterName)}`);
    return openGrpcStream(
      {
        host: host.address,
        port: host.port,
        authority: ads.authority,
        path,
        connectTimeoutMs: entry.config.connectTimeoutMs,
        maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
      },
      handlers,
    );
  }

  /** Periodic stats work, as Envoy's stats flush: memory gauges and the histogram interval. */
  private flushStats(): void {
    const m = process.memoryUsage();
    this.stats.gauge('server.memory_allocated').set(m.heapUsed);
    this.stats.gauge('server.memory_heap_size').set(m.heapTotal);
    this.stats.gauge('server.memory_physical_size').set(m.rss);
    this.stats.gauge('server.memory_external').set(m.external);
    this.stats.gauge('server.uptime').set(Math.floor((Date.now() - this.startedAt.getTime()) / 1000));
    this.serverStats.flush(this.state, this.listenerManager.all());
    const untilExpiry = msUntilFirstExpiry(this.tlsContexts(), this.secrets);
    if (untilExpiry !== undefined) {
      this.stats
        .gauge('server.days_until_first_cert_expiring')
        .set(Math.max(0, Math.floor(untilExpiry / 86_400_000)));
      this.stats
        .gauge('server.seconds_until_first_cert_expiring')
        .set(Math.max(0, Math.floor(untilExpiry / 1000)));
    }
    this.stats.mergeHistograms();
  }

  adminPort(): number | undefined {
    return this.admin?.port;
  }

  listenerPort(name: string): number | undefined {
    return this.listenerManager.get(name)?.boundPort;
  }

  listener(name: string): ActiveListener | undefined {
    return this.listenerManager.get(name);
  }

  isReady(): boolean {
    return this.ready && this.state === 'LIVE';
  }

  serverInfo(): Record<string, unknown> {
    const node = this.bootstrap.node;
    const uptime = `${Math.floor((Date.now() - this.startedAt.getTime()) / 1000)}s`;
    return {
      version: `weft/${VERSION}`,
      state: this.state,
      hot_restart_version: 'disabled',
      uptime_current_epoch: uptime,
      uptime_all_epochs: uptime,
      node: { id: node.id, cluster: node.cluster, metadata: node.metadata, locality: node.locality },
      command_line_options: { config_path: this.bootstrap.source, argv: process.argv.slice(2) },
      host: os.hostname(),
      pid: process.pid,
    };
  }

  configDump(): unknown {
    return renderConfigDump(this.bootstrap.normalized, this.startedAt, this.dynamic?.snapshot() ?? null);
  }

  clusters(): readonly AdminClusterStatus[] {
    const out: AdminClusterStatus[] = [];
    for (const e of this.clusterManager.all()) {
      out.push({
        name: e.name,
        hosts: e.cluster.hosts(),
        extras: {
          added_via_api: String(this.dynamic?.isDynamicCluster(e.name) ?? false),
          lb_policy: e.config.lbPolicy,
        },
        connectionCount: (h) => e.connectionCount(h),
      });
    }
    return out;
  }

  /**
   * Every distinct set of certificates in use: listeners' filter chains, clusters and their transport socket
   * matches. With auto mTLS thousands of clusters share the same two secrets; each set is listed (and its
   * PEM parsed for the expiry gauges) once.
   */
  private tlsContexts(): CommonTlsConfig[] {
    const unique = new Map<string, CommonTlsConfig>();
    const add = (tls: CommonTlsConfig | undefined): void => {
      if (tls === undefined) return;
      const trust = tls.validation?.trust;
      const key = JSON.stringify([
        tls.certificates.map((c) => (c.kind === 'static' ? c.certificateChain : `secret:${c.name}`)),
        trust === undefined ? '' : trust.kind === 'static' ? trust.trustedCa : `secret:${trust.name}`,
      ]);
      if (!unique.has(key)) unique.set(key, tls);
    };
    for (const l of this.listenerManager.all()) {
      for (const c of l.config.filterChains) add(c.tls);
      add(l.config.defaultFilterChain?.tls);
    }
    for (const e of this.clusterManager.all()) {
      add(e.config.tls);
      for (const m of e.config.transportSocketMatches ?? []) add(m.tls);
    }
    return [...unique.values()];
  }

  certs(): unknown {
    return renderCerts(this.tlsContexts(), this.secrets);
  }

  drainListeners(): Promise<void> {
    if (this.state === 'LIVE') this.state = 'DRAINING';
    this.serverStats.flush(this.state, this.listenerManager.all());
    this.listenerManager.stopAccepting();
    return Promise.resolve();
  }

  /** Graceful stop: stop accepting, drain in-flight requests for up to drainMs, then close everything. */
  stop(drainMs = this.opts.drainMs ?? 5000): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      this.ads?.stop();
      this.agent?.stop();
      this.dynamic?.stop();
      await this.drainListeners();
      const deadline = Date.now() + drainMs;
      while (Date.now() < deadline && this.listenerManager.busy()) {
        await new Promise((r) => setTimeout(r, 20));
      }
      if (this.flushTimer) clearInterval(this.flushTimer);
      this.mallocTrimmer.stop();
      this.listenerManager.destroy();
      // Access logs of the last requests and their spans go out before the clusters they may use close.
      await this.telemetry.close();
      this.clusterManager.destroy();
      await this.admin?.close();
      this.state = 'STOPPED';
      this.stats.gauge('server.live').set(0);
    })();
    return this.stopping;
  }

  quit(): void {
    if (this.opts.onQuit) this.opts.onQuit();
    else void this.stop();
  }
}
