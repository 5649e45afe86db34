/**
 * The control plane, assembled: configuration (watched files) and discovery (ServiceEntry/WorkloadEntry,
 * self-registering proxies) → an immutable MeshSnapshot → the generators → the ADS server, which pushes to
 * the proxies a change affects; plus the debug/monitoring server. Like istiod: xDS on 15010, debug on 15014.
 */
import type { IstioResource } from '../api/istio/resource.ts';
import { checkSupport } from '../config/analyze/index.ts';
import type { Diagnostic } from '../config/diagnostic.ts';
import { formatDiagnostic } from '../config/diagnostic.ts';
import type { ConfigSnapshot } from '../config/store.ts';
import { ConfigWatcher } from '../config/watch.ts';
import { createLogger } from '../core/logger.ts';
import type { Logger } from '../core/logger.ts';
import { DebugServer } from './debug/server.ts';
import { MeshGenerator } from './generate/generator.ts';
import { ConfigDiscoverySource } from './model/config-source.ts';
import { aggregate } from './model/discovery.ts';
import { RegistrySource } from './model/registry-source.ts';
import { buildSnapshot } from './model/snapshot.ts';
import type { MeshSnapshot } from './model/snapshot.ts';
import { AdsServer } from './xds/ads-server.ts';

export interface ControlPlaneOptions {
  /** Files or directories of Istio YAML, watched for changes. */
  configPaths: readonly string[];
  host?: string;
  /** xDS (ADS, plaintext gRPC); default 15010, 0 = any free port. */
  xdsPort?: number;
  /** Debug and monitoring HTTP; default 15014, 0 = any free port. */
  debugPort?: number;
  /** Push debounce (default 100 ms). */
  debounceMs?: number;
  /** How long a self-registered workload outlives its last xDS stream (default 10 s). */
  registrationGraceMs?: number;
  logger?: Logger;
}

/** Kinds whose change alters listeners, routes or clusters; anything else is an endpoint-only change. */
const TRAFFIC_KINDS = ['VirtualService', 'DestinationRule', 'Gateway', 'Sidecar'] as const;

function listOf<T>(
  config: ConfigSnapshot,
  kind: (typeof TRAFFIC_KINDS)[number] | 'ServiceEntry' | 'WorkloadEntry',
): readonly IstioResource<T>[] {
  return config.list(kind) as readonly IstioResource<T>[];
}

export class ControlPlane {
  readonly ads: AdsServer;
  readonly #opts: ControlPlaneOptions;
  readonly #log: Logger;
  readonly #watcher: ConfigWatcher;
  readonly #configSource = new ConfigDiscoverySource();
  readonly #registry: RegistrySource;
  readonly #debug: DebugServer;
  #config: ConfigSnapshot | undefined;
  #trafficKey = '';
  #mesh: MeshSnapshot;
  #version = 0;
  #started = false;

  constructor(opts: ControlPlaneOptions) {
    this.#opts = opts;
    this.#log = opts.logger ?? createLogger('control-plane');
    this.#watcher = new ConfigWatcher(opts.configPaths);
    this.#registry = new RegistrySource({ graceMs: opts.registrationGraceMs });
    this.#mesh = buildSnapshot({
      version: 0,
      discovery: { services: [], endpoints: new Map(), workloads: [] },
    });
    const generator = new MeshGenerator(() => this.#mesh);
    this.ads = new AdsServer({ generator, debounceMs: opts.debounceMs, logger: this.#log });
    this.#debug = new DebugServer({ ads: this.ads, ready: () => this.#started });
    this.ads.on('connect', (node) => this.#registry.connected(node));
    this.ads.on('disconnect', (node) => this.#registry.disconnected(node));
    this.#registry.onChange(() => this.#rebuild(false, 'workload registration'));
  }

  /** The current mesh snapshot (for tests and the debug server). */
  get mesh(): MeshSnapshot {
    return this.#mesh;
  }

  get diagnostics(): readonly Diagnostic[] {
    return this.#watcher.diagnostics;
  }

  /** Loads the configuration, then serves xDS and debug; returns the bound ports. */
  async start(): Promise<{ xdsPort: number; debugPort: number }> {
    const host = this.#opts.host ?? '127.0.0.1';
    this.#applyConfig(this.#watcher.start(), this.#watcher.diagnostics);
    this.#watcher.on('snapshot', (config, diagnostics) => this.#applyConfig(config, diagnostics));
    this.#watcher.on('diagnostics', (diagnostics) => this.#report(diagnostics));
    this.#watcher.on('error', (err) =>
      this.#log.error('config watch failed; serving the last configuration', { error: err.message }),
    );
    const xdsPort = await this.ads.listen(this.#opts.xdsPort ?? 15010, host);
    const debugPort = await this.#debug.listen(this.#opts.debugPort ?? 15014, host);
    this.#started = true;
    this.#log.info('control plane ready', {
      xds: `${host}:${xdsPort}`,
      debug: `http://${host}:${debugPort}`,
      resources: this.#config?.size ?? 0,
    });
    return { xdsPort, debugPort };
  }

  async stop(): Promise<void> {
    this.#watcher.close();
    this.#registry.close();
    await Promise.all([this.ads.close(), this.#debug.close()]);
  }

  #report(diagnostics: readonly Diagnostic[]): void {
    for (const d of diagnostics) {
      if (d.severity === 'info') continue;
      if (d.severity === 'error') this.#log.error(formatDiagnostic(d));
      else this.#log.warn(formatDiagnostic(d));
    }
  }

  #applyConfig(config: ConfigSnapshot, diagnostics: readonly Diagnostic[]): void {
    this.#config = config;
    this.#report([...diagnostics, ...checkSupport(config.resources)]);
    const trafficKey = JSON.stringify(
      TRAFFIC_KINDS.map((k) => config.list(k).map((r) => [r.metadata, r.spec])),
    );
    const trafficChanged = trafficKey !== this.#trafficKey;
    this.#trafficKey = trafficKey;
    const { servicesChanged } = this.#configSource.update(
      listOf(config, 'ServiceEntry'),
      listOf(config, 'WorkloadEntry'),
    );
    this.#rebuild(trafficChanged || servicesChanged, `config v${config.version}`);
  }

  #rebuild(full: boolean, reason: string): void {
    const config = this.#config;
    const discovery = aggregate([this.#configSource, this.#registry]);
    // DNS clusters carry their endpoints inline (in CDS), so their endpoint changes need a full push.
    const dnsInline = discovery.services.some(
      (s) => s.resolution === 'DNS' || s.resolution === 'DNS_ROUND_ROBIN',
    );
    this.#mesh = buildSnapshot({
      version: ++this.#version,
      virtualServices: config ? listOf(config, 'VirtualService') : [],
      destinationRules: config ? listOf(config, 'DestinationRule') : [],
      gateways: config ? listOf(config, 'Gateway') : [],
      sidecars: config ? listOf(config, 'Sidecar') : [],
      discovery,
    });
    if (this.#started || this.ads.status().length > 0) this.ads.push({ full: full || dnsInline, reason });
  }
}
