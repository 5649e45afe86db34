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
import { aggregate, changedEndpointKeys } from './model/discovery.ts';
import type { DiscoveryState } from './model/types.ts';
import { RegistrySource } from './model/registry-source.ts';
import { buildSnapshot } from './model/snapshot.ts';
import type { MeshSnapshot } from './model/snapshot.ts';
import { AdsServer } from './xds/ads-server.ts';
import { CertificateAuthority } from './ca/authority.ts';
import { certificateServiceDefinition, certificateServiceHandlers } from './ca/certificate-service.ts';
import { WorkloadTokens } from './ca/workload-tokens.ts';
import { JwksResolver } from './security/jwks-resolver.ts';
import { loadRegistrations, REGISTRATIONS_FILE, saveRegistrations } from './model/registration-store.ts';
import type { MeshSecurity } from './model/snapshot.ts';
import fs from 'node:fs';
import path from 'node:path';
import { endpointClusterNames } from './generate/endpoints.ts';
import type { MeshConfig } from '../api/istio/mesh-config.ts';
import type { Telemetry } from '../api/istio/telemetry.ts';
import { Codes, codeOf } from '../config/codes.ts';
import { telemetryProblems } from './generate/telemetry.ts';
import { loadMeshConfigFile } from './model/mesh-config-file.ts';
import { DEFAULT_MESH_OPTIONS } from './model/snapshot.ts';
import type { MeshOptions } from './model/snapshot.ts';

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
  /**
   * Registrations (a storm of proxies connecting at once) are folded into one snapshot per this many ms
   * (default 50); configuration changes are already debounced by the watcher and apply at once.
   */
  registrationBatchMs?: number;
  logger?: Logger;
  /**
   * The CA's state dir (its root key and the workload token key, 0600). Without it the control plane runs no
   * CA and generates no mTLS.
   */
  stateDir?: string;
  /** An operator's CA in Istio's plug-in layout (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem). */
  caPluginDir?: string;
  /** Default cluster.local (or the MeshConfig's trustDomain). */
  trustDomain?: string;
  /**
   * Istio's MeshConfig as a YAML file (`--mesh-config`): telemetry providers and defaults, rootNamespace,
   * trustDomain. Read at start; a file that does not validate stops the start. Not watched.
   */
  meshConfigFile?: string;
  /** The MeshConfig itself (tests; `meshConfigFile` wins). */
  meshConfig?: MeshConfig;
  /** Lifetime of workload certificates (default 24 h); also the most a workload may ask for. */
  workloadCertTtlMs?: number;
  /** Roots trusted beside the CA's own (PEM file), for a root rotation's overlap. */
  extraTrustedRootsFile?: string;
  /** How often the plug-in CA files and extra roots are checked for a change (default 5 s). */
  caReloadIntervalMs?: number;
  /**
   * With a state dir, registered workloads are kept in it and restored by the next start, each for this
   * long unless its proxy reconnects (default 60 s: beyond a proxy's longest reconnect backoff, 30 s).
   */
  restoredRegistrationGraceMs?: number;
}

/** Kinds whose change alters listeners, routes or clusters; anything else is an endpoint-only change. */
const TRAFFIC_KINDS = [
  'VirtualService',
  'DestinationRule',
  'Gateway',
  'Sidecar',
  'RateLimitPolicy',
  'PeerAuthentication',
  'AuthorizationPolicy',
  'RequestAuthentication',
  'Telemetry',
] as const;

/** checkSupport per resource object: the watcher hands over the same object while its file is unchanged. */
const supportOf = new WeakMap<IstioResource, readonly Diagnostic[]>();

function supportDiagnostics(resources: readonly IstioResource[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const r of resources) {
    let found = supportOf.get(r);
    if (!found) {
      found = checkSupport([r]);
      supportOf.set(r, found);
    }
    out.push(...found);
  }
  return out;
}

/** Telemetry checked against the MeshConfig, per resource object (the MeshConfig does not change while running). */
const telemetryChecks = new WeakMap<IstioResource, readonly Diagnostic[]>();

/** WE0110 for each problem of each Telemetry; a Telemetry with any is not applied (its last valid version is). */
function telemetryDiagnostics(resource: IstioResource<Telemetry>, mesh: MeshConfig): readonly Diagnostic[] {
  let found = telemetryChecks.get(resource);
  if (!found) {
    found = telemetryProblems(resource, mesh).map((p) => ({
      ...codeOf(Codes.InvalidTelemetry),
      message: `${p.message}; this version is not applied (the last valid one, if any, stays)`,
      file: resource.source.file,
      line: resource.source.line,
      resource: `Telemetry ${resource.metadata.namespace}/${resource.metadata.name}`,
      field: `spec.${p.field}`,
    }));
    telemetryChecks.set(resource, found);
  }
  return found;
}

/** Same resources, or resources with the same metadata, spec and conditions (a file re-read without a change). */
function sameTraffic(before: readonly IstioResource[], after: readonly IstioResource[]): boolean {
  if (before.length !== after.length) return false;
  for (let i = 0; i < after.length; i++) {
    const a = before[i];
    const b = after[i];
    if (
      a !== b &&
      JSON.stringify([a.metadata, a.spec, a.conditions]) !==
        JSON.stringify([b.metadata, b.spec, b.conditions])
    )
      return false;
  }
  return true;
}

function listOf<T>(
  config: ConfigSnapshot,
  kind: (typeof TRAFFIC_KINDS)[number] | 'ServiceEntry' | 'WorkloadEntry' | 'Telemetry',
): readonly IstioResource<T>[] {
  return config.list(kind) as readonly IstioResource<T>[];
}

/** Whether the service accounts behind any changed endpoint list differ from before. */
function identitiesChanged(
  changed: ReadonlySet<string>,
  before: DiscoveryState,
  after: DiscoveryState,
): boolean {
  const accounts = (state: DiscoveryState, key: string): string =>
    [...new Set((state.endpoints.get(key) ?? []).map((e) => `${e.namespace}/${e.serviceAccount}`))]
      .sort()
      .join(',');
  for (const key of changed) if (accounts(before, key) !== accounts(after, key)) return true;
  return false;
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
  #traffic: readonly (readonly IstioResource[])[] | null = null;
  #discovery: DiscoveryState = { services: [], endpoints: new Map(), workloads: [] };
  #mesh: MeshSnapshot;
  #security: MeshSecurity | undefined;
  readonly #jwks: JwksResolver;
  #ca: CertificateAuthority | undefined;
  #caTimer: NodeJS.Timeout | undefined;
  #registrationsFile: string | undefined;
  #registrationSave: NodeJS.Timeout | undefined;
  #version = 0;
  #started = false;
  #watchDiagnostics: readonly Diagnostic[] = [];
  #supportDiagnostics: readonly Diagnostic[] = [];
  #telemetryDiagnostics: readonly Diagnostic[] = [];
  /** The Telemetry resources the snapshot applies: each one's last version without problems. */
  #telemetries: readonly IstioResource<Telemetry>[] = [];
  #lastValidTelemetry = new Map<string, IstioResource<Telemetry>>();
  #meshConfig: MeshConfig;
  #meshOptions: MeshOptions;
  #reported = new Set<string>();
  #pendingRebuild: { full: boolean; reasons: Set<string>; timer: NodeJS.Timeout } | null = null;

  constructor(opts: ControlPlaneOptions) {
    this.#opts = opts;
    this.#log = opts.logger ?? createLogger('control-plane');
    this.#watcher = new ConfigWatcher(opts.configPaths);
    this.#registry = new RegistrySource({ graceMs: opts.registrationGraceMs });
    // A MeshConfig file that does not load stops the control plane here, with every problem in the message.
    this.#meshConfig = opts.meshConfigFile
      ? loadMeshConfigFile(opts.meshConfigFile)
      : (opts.meshConfig ?? {});
    this.#meshOptions = {
      ...DEFAULT_MESH_OPTIONS,
      ...(this.#meshConfig.rootNamespace ? { rootNamespace: this.#meshConfig.rootNamespace } : {}),
    };
    this.#mesh = buildSnapshot({ version: 0, discovery: this.#discovery });
    const generator = new MeshGenerator(() => this.#mesh);
    this.ads = new AdsServer({ generator, debounceMs: opts.debounceMs, logger: this.#log });
    this.#debug = new DebugServer({
      ads: this.ads,
      authority: () => this.#ca,
      ready: () => this.#started,
      diagnostics: () => ({
        configVersion: this.#config?.version ?? 0,
        diagnostics: [...this.#watchDiagnostics, ...this.#supportDiagnostics, ...this.#telemetryDiagnostics],
      }),
    });
    this.ads.on('connect', (node) => this.#registry.connected(node));
    this.ads.on('disconnect', (node) => this.#registry.disconnected(node));
    this.#registry.onChange(() => {
      this.#scheduleRebuild('workload registration');
      this.#scheduleRegistrationSave();
    });
    this.#jwks = new JwksResolver({ onChange: () => this.#scheduleRebuild('JWKS changed', true) });
  }

  /** The current mesh snapshot (for tests and the debug server). */
  get mesh(): MeshSnapshot {
    return this.#mesh;
  }

  get diagnostics(): readonly Diagnostic[] {
    return this.#watcher.diagnostics;
  }

  /** WE0110: the Telemetry resources that are not applied, and why. */
  get telemetryDiagnostics(): readonly Diagnostic[] {
    return this.#telemetryDiagnostics;
  }

  /** Loads the configuration, then serves xDS and debug; returns the bound ports. */
  async start(): Promise<{ xdsPort: number; debugPort: number }> {
    const host = this.#opts.host ?? '127.0.0.1';
    const services = await this.#openAuthority();
    this.#restoreRegistrations();
    this.#applyConfig(this.#watcher.start(), this.#watcher.diagnostics);
    this.#watcher.on('snapshot', (config, diagnostics) => this.#applyConfig(config, diagnostics));
    this.#watcher.on('diagnostics', (diagnostics) => {
      this.#watchDiagnostics = diagnostics;
      this.#report();
    });
    this.#watcher.on('error', (err) =>
      this.#log.error('config watch failed; serving the last configuration', { error: err.message }),
    );
    const xdsPort = await this.ads.listen(this.#opts.xdsPort ?? 15010, host, services);
    const debugPort = await this.#debug.listen(this.#opts.debugPort ?? 15014, host);
    this.#started = true;
    this.#log.info('control plane ready', {
      xds: `${host}:${xdsPort}`,
      debug: `http://${host}:${debugPort}`,
      resources: this.#config?.size ?? 0,
    });
    return { xdsPort, debugPort };
  }

  /** The CA, when the control plane runs one. */
  get authority(): CertificateAuthority | undefined {
    return this.#ca;
  }

  /** Workloads the previous run had registered serve until their proxies are back (or their grace ends). */
  #restoreRegistrations(): void {
    const stateDir = this.#opts.stateDir;
    if (stateDir === undefined) return;
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const file = path.join(stateDir, REGISTRATIONS_FILE);
    const entries = loadRegistrations(file, (message) => this.#log.warn(message));
    this.#registrationsFile = file;
    if (entries.length === 0) return;
    this.#registry.restore(entries, this.#opts.restoredRegistrationGraceMs ?? 60_000);
    this.#log.info('restored registered workloads until their proxies reconnect', {
      workloads: entries.length,
    });
  }

  #scheduleRegistrationSave(): void {
    if (this.#registrationsFile === undefined || this.#registrationSave !== undefined) return;
    this.#registrationSave = setTimeout(() => this.#saveRegistrations(), 500);
    this.#registrationSave.unref();
  }

  #saveRegistrations(): void {
    clearTimeout(this.#registrationSave);
    this.#registrationSave = undefined;
    const file = this.#registrationsFile;
    if (file === undefined) return;
    try {
      saveRegistrations(file, this.#registry.registered());
    } catch (err) {
      this.#log.warn('cannot save registered workloads', { file, error: (err as Error).message });
    }
  }

  /** Loads the CA and the trust bundle (its root, then the extra trusted roots). */
  async #loadAuthority(stateDir: string): Promise<{ ca: CertificateAuthority; security: MeshSecurity }> {
    const ca = await CertificateAuthority.open({
      stateDir,
      pluginDir: this.#opts.caPluginDir,
      trustDomain: this.#opts.trustDomain ?? this.#meshConfig.trustDomain,
      workloadTtlMs: this.#opts.workloadCertTtlMs,
      issuance: this.#ca?.issuance,
    });
    let bundle = ca.rootPem.trim() + '\n';
    const extra = this.#opts.extraTrustedRootsFile;
    if (extra !== undefined) {
      try {
        bundle += fs.readFileSync(extra, 'utf8').trim() + '\n';
      } catch (err) {
        throw new Error(`cannot read the extra trusted roots ${extra}: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
    return { ca, security: { trustDomain: ca.trustDomain, trustBundle: bundle } };
  }

  /** Opens (or creates) the CA and returns its gRPC service, to be served beside xDS. */
  async #openAuthority() {
    const stateDir = this.#opts.stateDir;
    if (stateDir === undefined) return [];
    const { ca, security } = await this.#loadAuthority(stateDir);
    this.#ca = ca;
    this.#security = security;
    const tokens = WorkloadTokens.open(stateDir);
    this.#log.info('certificate authority ready', { trustDomain: ca.trustDomain, stateDir });
    this.#watchAuthorityFiles(stateDir);
    return [
      {
        definition: certificateServiceDefinition,
        handlers: certificateServiceHandlers({
          // A reloaded CA signs the next request.
          authority: () => this.#ca!,
          tokens,
          maxTtlMs: this.#opts.workloadCertTtlMs,
          logger: this.#log,
        }),
      },
    ];
  }

  /**
   * Root rotation, as istiod's plug-in CA: when the operator replaces the plug-in files or the extra trusted
   * roots, the CA is loaded again and the new trust bundle pushed to every proxy. Files that do not load leave
   * the running CA as it was.
   */
  #watchAuthorityFiles(stateDir: string): void {
    const plugin = this.#opts.caPluginDir;
    const files = [
      ...(plugin
        ? ['ca-cert.pem', 'ca-key.pem', 'root-cert.pem', 'cert-chain.pem'].map((f) => path.join(plugin, f))
        : []),
      ...(this.#opts.extraTrustedRootsFile ? [this.#opts.extraTrustedRootsFile] : []),
    ];
    if (files.length === 0) return;
    const stamp = (): string =>
      files
        .map((f) => {
          try {
            const st = fs.statSync(f);
            return `${st.mtimeMs}:${st.size}`;
          } catch {
            return '-';
          }
        })
        .join(',');
    let last = stamp();
    let loading = false;
    this.#caTimer = setInterval(() => {
      const now = stamp();
      if (now === last || loading) return;
      last = now;
      loading = true;
      this.#loadAuthority(stateDir).then(
        ({ ca, security }) => {
          loading = false;
          const bundleChanged = security.trustBundle !== this.#security?.trustBundle;
          this.#ca = ca;
          this.#security = security;
          this.#log.info('certificate authority reloaded', {
            roots: security.trustBundle.match(/BEGIN CERTIFICATE/g)?.length ?? 0,
            pushing: bundleChanged,
          });
          if (bundleChanged) this.#rebuild(true, ['CA reloaded']);
        },
        (err: unknown) => {
          loading = false;
          this.#log.error('cannot reload the certificate authority; keeping the running one', {
            error: (err as Error).message,
          });
        },
      );
    }, this.#opts.caReloadIntervalMs ?? 5000);
    this.#caTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.#pendingRebuild) clearTimeout(this.#pendingRebuild.timer);
    this.#pendingRebuild = null;
    this.#saveRegistrations();
    this.#registrationsFile = undefined;
    this.#watcher.close();
    this.#registry.close();
    this.#jwks.close();
    if (this.#caTimer) clearInterval(this.#caTimer);
    await Promise.all([this.ads.close(), this.#debug.close()]);
  }

  /** Logs the diagnostics not logged last time (a change must not repeat every warning of a large mesh). */
  #report(): void {
    const now = new Set<string>();
    for (const d of [...this.#watchDiagnostics, ...this.#supportDiagnostics, ...this.#telemetryDiagnostics]) {
      if (d.severity === 'info') continue;
      const line = formatDiagnostic(d);
      now.add(line);
      if (this.#reported.has(line)) continue;
      if (d.severity === 'error') this.#log.error(line);
      else this.#log.warn(line);
    }
    this.#reported = now;
  }

  #applyConfig(config: ConfigSnapshot, diagnostics: readonly Diagnostic[]): void {
    this.#config = config;
    this.#watchDiagnostics = diagnostics;
    this.#supportDiagnostics = supportDiagnostics(config.resources);
    const telemetries = listOf<Telemetry>(config, 'Telemetry');
    const checked = telemetries.map((t) => telemetryDiagnostics(t, this.#meshConfig));
    this.#telemetryDiagnostics = checked.flat();
    // As proxies keep their last good config when Istio rejects a change: an invalid edit keeps the last valid version.
    const lastValid = new Map<string, IstioResource<Telemetry>>();
    telemetries.forEach((t, i) => {
      const key = `${t.metadata.namespace}/${t.metadata.name}`;
      const valid = checked[i].length === 0 ? t : this.#lastValidTelemetry.get(key);
      if (valid) lastValid.set(key, valid);
    });
    const applied = [...lastValid.values()];
    const previous = this.#telemetries;
    this.#lastValidTelemetry = lastValid;
    this.#telemetries =
      applied.length === previous.length && applied.every((t, i) => t === previous[i]) ? previous : applied;
    this.#report();
    const traffic = TRAFFIC_KINDS.map((k) => config.list(k));
    const before = this.#traffic;
    const trafficChanged = before === null || traffic.some((list, i) => !sameTraffic(before[i], list));
    this.#traffic = traffic;
    const { servicesChanged } = this.#configSource.update(
      listOf(config, 'ServiceEntry'),
      listOf(config, 'WorkloadEntry'),
    );
    this.#rebuild(trafficChanged || servicesChanged, [`config v${config.version}`]);
  }

  /** Registrations that arrive together become one snapshot and one push. */
  #scheduleRebuild(reason: string, full = false): void {
    if (this.#pendingRebuild) {
      this.#pendingRebuild.reasons.add(reason);
      this.#pendingRebuild.full ||= full;
      return;
    }
    const timer = setTimeout(() => {
      const pending = this.#pendingRebuild;
      this.#pendingRebuild = null;
      if (pending) this.#rebuild(pending.full, [...pending.reasons]);
    }, this.#opts.registrationBatchMs ?? 50);
    timer.unref();
    this.#pendingRebuild = { full, reasons: new Set([reason]), timer };
  }

  #rebuild(full: boolean, reasons: string[]): void {
    const pending = this.#pendingRebuild;
    if (pending) {
      // This rebuild reads every source, so it covers the registrations waiting for theirs.
      clearTimeout(pending.timer);
      this.#pendingRebuild = null;
      reasons = [...reasons, ...pending.reasons];
    }
    const config = this.#config;
    const previous = this.#discovery;
    const discovery = aggregate([this.#configSource, this.#registry], previous);
    this.#discovery = discovery;
    const changed = changedEndpointKeys(previous, discovery);
    if (!full && changed.size === 0) return; // e.g. a workload no service selects: nothing to push
    // DNS clusters carry their endpoints inline (in CDS), so a change of theirs needs a full push.
    const dnsChanged = [...changed].some((key) => {
      const s = this.#mesh.serviceByHost.get(key.slice(0, key.lastIndexOf('|')));
      return s?.resolution === 'DNS' || s?.resolution === 'DNS_ROUND_ROBIN';
    });
    full ||= dnsChanged;
    // Callers verify a server against its service's identities (in CDS): a new service account needs a full push.
    full ||= this.#security !== undefined && identitiesChanged(changed, previous, discovery);
    const version = ++this.#version;
    if (full) {
      this.#mesh = buildSnapshot({
        version,
        configVersion: version,
        virtualServices: config ? listOf(config, 'VirtualService') : [],
        destinationRules: config ? listOf(config, 'DestinationRule') : [],
        gateways: config ? listOf(config, 'Gateway') : [],
        sidecars: config ? listOf(config, 'Sidecar') : [],
        ...(this.#security ? { security: this.#security } : {}),
        jwks: this.#jwks,
        rateLimitPolicies: config ? listOf(config, 'RateLimitPolicy') : [],
        peerAuthentications: config ? listOf(config, 'PeerAuthentication') : [],
        authorizationPolicies: config ? listOf(config, 'AuthorizationPolicy') : [],
        requestAuthentications: config ? listOf(config, 'RequestAuthentication') : [],
        telemetries: this.#telemetries,
        meshConfig: this.#meshConfig,
        options: this.#meshOptions,
        discovery,
      });
    } else {
      this.#mesh = buildSnapshot({ version, discovery, endpointsOnlySince: this.#mesh });
    }
    if (!this.#started && this.ads.connectedProxies === 0) return;
    const reason = reasons.join(', ');
    if (full) this.ads.push({ full: true, reason });
    else this.ads.push({ full: false, reason, endpointClusters: endpointClusterNames(changed, this.#mesh) });
  }
}
