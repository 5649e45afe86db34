/**
 * The Weft proxy process: stats, clusters, listeners and the admin server, built from a bootstrap.
 * Also the lifecycle: start, drain (stop accepting, let in-flight requests finish), stop.
 */
import os from 'node:os';
import type { AdminClusterStatus, AdminTarget } from './admin/types.ts';
import { startAdminServer } from './admin/server.ts';
import type { BootstrapConfig } from './bootstrap/types.ts';
import { ActiveListener } from './listener/listener-manager.ts';
import { StatsStore } from './stats/store.ts';
import { ClusterManager, useUndiciForHttp1 } from './upstream/cluster-manager.ts';
import { createLogger } from '../core/logger.ts';
import { VERSION } from '../core/version.ts';

const log = createLogger('proxy');

export interface ProxyServerOptions {
  /** How long a drain waits for in-flight requests before closing what is left (default 5 s). */
  readonly drainMs?: number;
  /** Called when /quitquitquit or a signal asks the process to end. */
  readonly onQuit?: () => void;
}

export class ProxyServer implements AdminTarget {
  readonly bootstrap: BootstrapConfig;
  readonly stats = new StatsStore();
  readonly clusterManager: ClusterManager;
  readonly listeners: ActiveListener[] = [];
  private admin: { port: number; close(): Promise<void> } | null = null;
  private ready = false;
  private state: 'INITIALIZING' | 'LIVE' | 'DRAINING' | 'STOPPED' = 'INITIALIZING';
  private readonly startedAt = Date.now();
  private readonly opts: ProxyServerOptions;
  private stopping: Promise<void> | null = null;
  private flushTimer: NodeJS.Timeout | null = null;

  constructor(bootstrap: BootstrapConfig, opts: ProxyServerOptions = {}) {
    this.bootstrap = bootstrap;
    this.opts = opts;
    this.clusterManager = new ClusterManager(this.stats);
    this.stats.gauge('server.live');
  }

  /** Starts admin first (so /ready can report initialisation), then clusters, then listeners. */
  async start(): Promise<void> {
    if (process.env.WEFT_H1_CLIENT === 'undici') await useUndiciForHttp1();
    const admin = this.bootstrap.admin;
    if (admin) this.admin = await startAdminServer({ ...admin.address, target: this, stats: this.stats });
    for (const c of this.bootstrap.clusters) await this.clusterManager.addOrUpdate(c);
    for (const l of this.bootstrap.listeners) {
      const active = new ActiveListener(l, this.clusterManager, this.stats);
      await active.listen();
      this.listeners.push(active);
    }
    this.flushTimer = setInterval(() => this.flushStats(), 5000).unref();
    this.flushStats();
    this.ready = true;
    this.state = 'LIVE';
    this.stats.gauge('server.live').set(1);
    log.info('proxy ready', {
      listeners: this.listeners.map((l) => `${l.config.name}@${l.config.address.host}:${l.boundPort}`),
      admin: this.admin ? this.admin.port : null,
    });
  }

  /** Periodic stats work, as Envoy's stats flush: memory gauges and the histogram interval. */
  private flushStats(): void {
    const m = process.memoryUsage();
    this.stats.gauge('server.memory_allocated').set(m.heapUsed);
    this.stats.gauge('server.memory_heap_size').set(m.heapTotal);
    this.stats.gauge('server.memory_physical_size').set(m.rss);
    this.stats.gauge('server.memory_external').set(m.external);
    this.stats.gauge('server.uptime').set(Math.floor((Date.now() - this.startedAt) / 1000));
    this.stats.mergeHistograms();
  }

  adminPort(): number | undefined {
    return this.admin?.port;
  }

  listenerPort(name: string): number | undefined {
    return this.listeners.find((l) => l.config.name === name)?.boundPort;
  }

  isReady(): boolean {
    return this.ready && this.state === 'LIVE';
  }

  serverInfo(): Record<string, unknown> {
    const node = this.bootstrap.node;
    return {
      version: `weft/${VERSION}`,
      state: this.state,
      hot_restart_version: 'disabled',
      uptime_current_epoch: `${Math.floor((Date.now() - this.startedAt) / 1000)}s`,
      uptime_all_epochs: `${Math.floor((Date.now() - this.startedAt) / 1000)}s`,
      node: { id: node.id, cluster: node.cluster, metadata: node.metadata, locality: node.locality },
      command_line_options: { config_path: this.bootstrap.source, argv: process.argv.slice(2) },
      host: os.hostname(),
      pid: process.pid,
    };
  }

  configDump(): unknown {
    return {
      configs: [
        {
          '@type': 'type.googleapis.com/envoy.admin.v3.BootstrapConfigDump',
          bootstrap: this.bootstrap.normalized,
        },
      ],
    };
  }

  clusters(): readonly AdminClusterStatus[] {
    const out: AdminClusterStatus[] = [];
    for (const e of this.clusterManager.all()) {
      out.push({
        name: e.name,
        hosts: e.cluster.hosts(),
        extras: { added_via_api: 'false', lb_policy: e.config.lbPolicy },
        connectionCount: (h) => e.connectionCount(h),
      });
    }
    return out;
  }

  drainListeners(): Promise<void> {
    if (this.state === 'LIVE') this.state = 'DRAINING';
    for (const l of this.listeners) l.stopAccepting();
    return Promise.resolve();
  }

  /** Graceful stop: stop accepting, drain in-flight requests for up to drainMs, then close everything. */
  stop(drainMs = this.opts.drainMs ?? 5000): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      await this.drainListeners();
      const deadline = Date.now() + drainMs;
      while (Date.now() < deadline && this.listeners.some((l) => l.busy())) {
        await new Promise((r) => setTimeout(r, 20));
      }
      if (this.flushTimer) clearInterval(this.flushTimer);
      for (const l of this.listeners) l.destroy();
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
