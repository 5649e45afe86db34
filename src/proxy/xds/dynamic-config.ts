/**
 * Applies xDS resources to the running proxy: the receiving end of the ADS client (XdsSink).
 *
 * Every resource goes through the same path as the bootstrap's static ones: normalize() against the Envoy
 * descriptor, then the listener, cluster, route or endpoint compiler. A response is validated whole before
 * anything changes; one bad resource refuses it (NACK) with a message naming each bad resource and field.
 *
 * Runtime semantics follow Envoy:
 * - Listeners: an unchanged listener is untouched; a changed one is updated in place at the same address
 *   (unchanged filter chains keep their connections, the others drain), moved to a new socket when its
 *   address changed, and a removed one stops accepting and drains. A listener whose RDS route
 *   configurations have not arrived is warming: a new one is not bound yet, an updated one leaves its
 *   previous version serving, until they arrive or the initial fetch timeout passes.
 * - Clusters: an unchanged cluster is untouched; a changed one is replaced (in-flight requests finish on the
 *   old one); a removed one closes its pools once their requests are done. An EDS cluster whose assignment
 *   has not arrived is warming in the same way; an assignment already received for its service name is used
 *   at once, so updating an EDS cluster never leaves it without endpoints.
 * - Endpoints: each ClusterLoadAssignment replaces its clusters' host sets; hosts that stay keep their
 *   connection pools.
 * - Route configurations replace the tables connection managers read on every request.
 * - Readiness: the first CDS and LDS responses, and everything they make warm, as Envoy's init manager,
 *   bounded by each subscription's initial_fetch_timeout.
 */
import { ConfigError } from '../../core/errors.ts';
import type { JsonObject } from '../../core/json.ts';
import { createLogger } from '../../core/logger.ts';
import type { Logger } from '../../core/logger.ts';
import { asObject } from '../config-proto/fields.ts';
import { normalize } from '../config-proto/normalize.ts';
import { compileListenerWithReferences, formatAddress, routeClusterReferences } from '../listener/compile.ts';
import type { ClusterReference } from '../listener/compile.ts';
import type { ListenerManager } from '../listener/listener-manager.ts';
import type { ListenerConfig } from '../listener/types.ts';
import { compileRouteConfiguration } from '../router/compile.ts';
import type { RouteConfigProviders } from '../router/rds.ts';
import type { RouteTable } from '../router/types.ts';
import type { StatsStore } from '../stats/store.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import { compileCluster, compileEdsAssignment } from '../upstream/compile.ts';
import type { CompiledLoadAssignment } from '../upstream/compile.ts';
import type { ClusterConfig } from '../upstream/types.ts';
import { TYPE_NAME, TYPE_URL, messageTypeOf } from './type-urls.ts';
import type { XdsTypeUrl } from './type-urls.ts';
import type { XdsResourceIn, XdsSink, XdsUpdate } from './types.ts';
import { ManagerStats, ResourceUpdateStats, SubscriptionStats } from './xds-stats.ts';
import { X509Certificate } from 'node:crypto';
import { compileSecret } from '../tls/secret-config.ts';
import type { SecretManager } from '../tls/secrets.ts';

/** A trust bundle must hold at least one certificate, and nothing that is not one. */
function checkTrustBundle(pem: string): void {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0)
    throw new ConfigError('validation_context.trusted_ca', 'no PEM certificate in the trust bundle');
  blocks.forEach((b, i) => {
    try {
      new X509Certificate(b);
    } catch (err) {
      throw new ConfigError(
        'validation_context.trusted_ca',
        `certificate ${i + 1} of the trust bundle does not parse: ${(err as Error).message}`,
      );
    }
  });
}

/** A resource the proxy holds: its normalized JSON (without "@type"), what it compiled to, and when. */
export interface Held<T> {
  readonly name: string;
  readonly version: string;
  readonly json: JsonObject;
  /** JSON.stringify(json): equal keys mean an unchanged resource. */
  readonly key: string;
  /** The resource as received, serialized: a resource sent again unchanged skips normalizing altogether. */
  readonly rawKey: string;
  readonly config: T;
  readonly lastUpdated: Date;
}

interface HeldListener extends Held<ListenerConfig> {
  readonly chainKeys: readonly string[];
}

interface Warming {
  timer: NodeJS.Timeout | null;
}

/** Why a resource was last refused, for /config_dump's error_state. */
export interface UpdateFailure {
  readonly details: string;
  readonly version: string;
  readonly at: Date;
  readonly json: JsonObject | undefined;
}

export interface DynamicConfigDeps {
  readonly clusters: ClusterManager;
  readonly listeners: ListenerManager;
  readonly routes: RouteConfigProviders;
  readonly stats: StatsStore;
  readonly staticListeners: readonly ListenerConfig[];
  readonly staticClusters: readonly ClusterConfig[];
  /** lds_config / cds_config: undefined when the bootstrap does not subscribe to that type. */
  readonly lds: { readonly initialFetchTimeoutMs: number } | undefined;
  readonly cds: { readonly initialFetchTimeoutMs: number } | undefined;
  readonly logger?: Logger;
  /** Where SDS secrets go (absent: the proxy refuses Secret resources). */
  readonly secrets?: SecretManager;
}

interface Compiled<T> {
  readonly held: T;
  readonly res: XdsResourceIn;
}

function withoutType(json: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(json)) if (k !== '@type') out[k] = v;
  return out;
}

function describeError(err: unknown): string {
  // Resources compile from the root (path ''); the cluster compiler joins paths as `${path}.field`.
  if (err instanceof ConfigError && err.path.startsWith('.')) return `${err.path.slice(1)}: ${err.detail}`;
  return err instanceof Error ? err.message : String(err);
}

/** The route configuration names a listener's connection managers take from RDS, with their stat prefixes. */
function rdsNamesOf(config: ListenerConfig): { name: string; statPrefix: string; timeoutMs: number }[] {
  const out: { name: string; statPrefix: string; timeoutMs: number }[] = [];
  const chains = [...config.filterChains, ...(config.defaultFilterChain ? [config.defaultFilterChain] : [])];
  for (const chain of chains) {
    for (const f of chain.filters) {
      if (f.kind === 'http_connection_manager' && f.hcm.rds !== undefined) {
        out.push({
          name: f.hcm.rds.routeConfigName,
          statPrefix: f.hcm.statPrefix,
          timeoutMs: f.hcm.rds.initialFetchTimeoutMs,
        });
      }
    }
  }
  return out;
}

function addressKey(config: ListenerConfig): string | null {
  // Port 0 asks the kernel for a fresh port each time, so such listeners never collide.
  return config.address.port === 0 ? null : formatAddress(config.address);
}

export class DynamicConfig implements XdsSink {
  private readonly deps: DynamicConfigDeps;
  private readonly log: Logger;
  private readonly listeners = new Map<string, HeldListener>();
  private readonly warmingListeners = new Map<string, HeldListener & Warming>();
  private readonly clusters = new Map<string, Held<ClusterConfig>>();
  private readonly warmingClusters = new Map<string, Held<ClusterConfig> & Warming>();
  private readonly routeConfigs = new Map<string, Held<RouteTable>>();
  private readonly endpoints = new Map<string, Held<CompiledLoadAssignment>>();
  private readonly failures = new Map<string, UpdateFailure>();
  private readonly versions = new Map<string, string>();
  private readonly staticListenerNames: ReadonlySet<string>;
  private readonly staticClusterNames: ReadonlySet<string>;
  private readonly lds: SubscriptionStats;
  private readonly cds: SubscriptionStats;
  private readonly managers: ManagerStats;
  /** Applies and warming activations run one at a time. */
  private lock: Promise<void> = Promise.resolve();
  private readonly timers = new Set<NodeJS.Timeout>();
  private statsToDrop = new Set<string>();
  private initPending: { cds: boolean; lds: boolean; staticRoutes: Set<string> };
  private initResolve: (() => void) | null = null;
  private stopped = false;
  /** Resolves when the first configuration is in place (or its timeouts passed): the proxy may report ready. */
  readonly initialized: Promise<void>;

  /** The raw JSON of each SDS secret applied, to skip unchanged ones. */
  private readonly secretKeys = new Map<string, { readonly rawKey: string }>();

  constructor(deps: DynamicConfigDeps) {
    this.deps = deps;
    this.log = deps.logger ?? createLogger('xds');
    this.staticListenerNames = new Set(deps.staticListeners.map((l) => l.name));
    this.staticClusterNames = new Set(deps.staticClusters.map((c) => c.name));
    this.lds = new SubscriptionStats(deps.stats, 'listener_manager.lds.');
    this.cds = new SubscriptionStats(deps.stats, 'cluster_manager.cds.');
    this.managers = new ManagerStats(deps.stats);
    this.initPending = {
      cds: deps.cds !== undefined,
      lds: deps.lds !== undefined,
      staticRoutes: new Set(deps.staticListeners.flatMap((l) => rdsNamesOf(l).map((r) => r.name))),
    };
    this.initialized = new Promise((resolve) => (this.initResolve = resolve));
    this.updateGauges();
  }

  /** Starts the initial fetch timeouts; call when the ADS client starts. */
  start(): void {
    const { cds, lds } = this.deps;
    const later = (ms: number, fn: () => void): void => {
      if (ms <= 0) return; // 0: wait for ever, as in Envoy
      const t = setTimeout(() => {
        this.timers.delete(t);
        fn();
      }, ms);
      t.unref();
      this.timers.add(t);
    };
    if (cds) later(cds.initialFetchTimeoutMs, () => this.initTimedOut('cds'));
    if (lds) later(lds.initialFetchTimeoutMs, () => this.initTimedOut('lds'));
    for (const l of this.deps.staticListeners) {
      for (const r of rdsNamesOf(l)) {
        later(r.timeoutMs, () => {
          if (this.initPending.staticRoutes.delete(r.name)) this.checkInit();
        });
      }
    }
    this.checkInit();
  }

  stop(): void {
    this.stopped = true;
    const resolve = this.initResolve;
    this.initResolve = null;
    resolve?.();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const w of [...this.warmingListeners.values(), ...this.warmingClusters.values()]) {
      if (w.timer) clearTimeout(w.timer);
    }
  }

  isInitialized(): boolean {
    return this.initResolve === null;
  }

  private initTimedOut(which: 'cds' | 'lds'): void {
    if (!this.initPending[which]) return;
    (which === 'cds' ? this.cds : this.lds).initFetchTimeout.inc();
    this.log.warn(`no ${which.toUpperCase()} response within the initial fetch timeout; going on without it`);
    this.initPending[which] = false;
    this.checkInit();
  }

  private checkInit(): void {
    const p = this.initPending;
    if (this.initResolve === null || p.cds || p.lds || p.staticRoutes.size > 0) return;
    if (this.warmingClusters.size > 0 || this.warmingListeners.size > 0) return;
    const resolve = this.initResolve;
    this.initResolve = null;
    resolve();
  }

  onConnectionState(connected: boolean): void {
    this.managers.connectedState.set(connected ? 1 : 0);
    if (!connected) {
      if (this.deps.lds) this.lds.updateFailure.inc();
      if (this.deps.cds) this.cds.updateFailure.inc();
    }
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn);
    this.lock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  apply(update: XdsUpdate): Promise<void> {
    return this.exclusive(async () => {
      switch (update.typeUrl) {
        case TYPE_URL.listener:
          return this.applyListeners(update);
        case TYPE_URL.cluster:
          return this.applyClusters(update);
        case TYPE_URL.route:
          return this.applyRoutes(update);
        case TYPE_URL.endpoint:
          return this.applyEndpoints(update);
        case TYPE_URL.secret:
          return this.applySecrets(update);
        default:
          throw new Error(`resources of type ${update.typeUrl} are not supported by Weft`);
      }
    });
  }

  resourceNames(typeUrl: string): ReadonlySet<string> {
    if (typeUrl === TYPE_URL.route) return new Set(this.routeUses().keys());
    if (typeUrl === TYPE_URL.endpoint) return new Set(this.edsUses().keys());
    if (typeUrl === TYPE_URL.secret && this.deps.secrets)
      return new Set(
        this.deps.secrets
          .demands()
          .filter((d) => d.source === 'ads')
          .map((d) => d.name),
      );
    return new Set();
  }

  // ---- shared validation ----

  /**
   * Normalizes and compiles each resource; returns the compiled ones, or throws one Error listing every bad
   * resource as `Type "name": field.path: detail`.
   */
  private compileAll<T>(
    update: XdsUpdate,
    current: (name: string) => { readonly rawKey: string } | undefined,
    compile: (json: JsonObject, res: XdsResourceIn, rawKey: string) => T | null,
  ): Compiled<T | null>[] {
    const typeName = TYPE_NAME[update.typeUrl as XdsTypeUrl];
    const errors: string[] = [];
    const out: Compiled<T | null>[] = [];
    const seen = new Set<string>();
    for (const res of update.resources) {
      const label = `${typeName} ${JSON.stringify(res.name)}`;
      if (seen.has(res.name)) {
        errors.push(`${label}: appears more than once in the response`);
        continue;
      }
      seen.add(res.name);
      if (res.error !== undefined || res.json === undefined) {
        errors.push(`${label}: ${res.error ?? 'no resource'}`);
        this.recordFailure(update.typeUrl, res, res.error ?? 'no resource');
        continue;
      }
      const rawKey = JSON.stringify(res.json);
      // A state-of-the-world server sends every resource again on each change: most are as they were.
      if (current(res.name)?.rawKey === rawKey) {
        out.push({ held: null, res });
        continue;
      }
      try {
        const normalized = asObject(normalize(messageTypeOf(update.typeUrl), withoutType(res.json), ''), '');
        out.push({ held: compile(normalized, res, rawKey), res });
      } catch (err) {
        errors.push(`${label}: ${describeError(err)}`);
        this.recordFailure(update.typeUrl, res, describeError(err));
      }
    }
    if (errors.length > 0) throw new Error(errors.join('\n'));
    return out;
  }

  private recordFailure(typeUrl: string, res: XdsResourceIn, details: string): void {
    this.failures.set(`${typeUrl} ${res.name}`, {
      details,
      version: res.version,
      at: new Date(),
      json: res.json,
    });
  }

  private clearFailure(typeUrl: string, name: string): void {
    this.failures.delete(`${typeUrl} ${name}`);
  }

  private held<T>(res: XdsResourceIn, json: JsonObject, config: T, rawKey: string): Held<T> {
    return {
      name: res.name,
      version: res.version,
      json,
      key: JSON.stringify(json),
      rawKey,
      config,
      lastUpdated: new Date(),
    };
  }

  private clusterKnown(name: string): boolean {
    return this.deps.clusters.get(name) !== undefined || this.warmingClusters.has(name);
  }

  private checkClusterReferences(references: readonly ClusterReference[]): void {
    for (const ref of references) {
      if (ref.tcpProxy || this.clusterKnown(ref.cluster)) continue;
      throw new ConfigError(ref.path, `unknown cluster ${JSON.stringify(ref.cluster)}`);
    }
  }

  // ---- listeners ----

  private async applyListeners(update: XdsUpdate): Promise<void> {
    this.lds.updateAttempt.inc();
    try {
      await this.applyListenersInner(update);
    } catch (err) {
      this.lds.updateRejected.inc();
      throw err;
    } finally {
      this.initDone('lds');
    }
    this.versions.set(TYPE_URL.listener, update.version);
    this.lds.succeeded(update.version);
  }

  private async applyListenersInner(update: XdsUpdate): Promise<void> {
    const current = (name: string): HeldListener | undefined =>
      this.warmingListeners.get(name) ?? this.listeners.get(name);
    const compiled = this.compileAll(update, current, (json, res, rawKey): HeldListener | null => {
      if (this.staticListenerNames.has(res.name))
        throw new ConfigError('name', 'a static listener (from the bootstrap) has this name');
      if (current(res.name)?.key === JSON.stringify(json)) return null; // unchanged
      const { listener, references } = compileListenerWithReferences(json, '');
      this.checkClusterReferences(references);
      const chains = [...((json.filter_chains as JsonObject[] | undefined) ?? [])];
      if (json.default_filter_chain) chains.push(json.default_filter_chain as JsonObject);
      return {
        ...this.held(res, json, { ...listener, name: res.name }, rawKey),
        chainKeys: chains.map((c) => JSON.stringify(c)),
      };
    });
    const changes = compiled.map((c) => c.held).filter((l): l is HeldListener => l !== null);
    const removed = update.removed.filter((n) => this.listeners.has(n) || this.warmingListeners.has(n));
    this.checkAddresses(changes, removed);

    // Bind what can be bound now (addresses not held by a listener this update removes or moves) before
    // changing anything, so that a bind failure refuses the update cleanly.
    const ready = changes.filter((l) => this.routesReady(l.config));
    const warming = changes.filter((l) => !this.routesReady(l.config));
    const freed = new Set<string>();
    for (const name of removed) {
      const a = this.listeners.get(name);
      if (a) freed.add(formatAddress(a.config.address));
    }
    for (const l of ready) {
      const a = this.listeners.get(l.name);
      if (a && formatAddress(a.config.address) !== formatAddress(l.config.address))
        freed.add(formatAddress(a.config.address));
    }
    const first = ready.filter(
      (l) => !freed.has(formatAddress(l.config.address)) || l.config.address.port === 0,
    );
    const second = ready.filter((l) => !first.includes(l));
    const prepared = new Map<string, Awaited<ReturnType<ListenerManager['prepare']>>>();
    try {
      for (const l of first) prepared.set(l.name, await this.deps.listeners.prepare(l.config, l.chainKeys));
    } catch (err) {
      for (const p of prepared.values()) p?.destroy();
      this.managers.listenerCreateFailure.inc();
      throw err;
    }

    for (const name of removed) this.removeListener(name);
    for (const l of warming) this.warmListener(l);
    for (const l of first) this.commitListener(l, prepared.get(l.name) ?? null);
    const failed: string[] = [];
    if (second.length > 0) {
      // The sockets of removed and moved listeners close asynchronously.
      await new Promise((r) => setImmediate(r));
      for (const l of second) {
        try {
          this.commitListener(l, await this.deps.listeners.prepare(l.config, l.chainKeys));
        } catch (err) {
          this.managers.listenerCreateFailure.inc();
          failed.push(`Listener ${JSON.stringify(l.name)}: ${describeError(err)}`);
          this.failures.set(`${TYPE_URL.listener} ${l.name}`, {
            details: describeError(err),
            version: l.version,
            at: new Date(),
            json: l.json,
          });
        }
      }
    }
    for (const c of compiled) if (c.held !== null) this.clearFailure(TYPE_URL.listener, c.res.name);
    this.afterListenersChanged();
    if (failed.length > 0) throw new Error(failed.join('\n'));
  }

  /** Two listeners may not share an address (static ones included); port 0 never conflicts. */
  private checkAddresses(changes: readonly HeldListener[], removed: readonly string[]): void {
    const final = new Map<string, ListenerConfig>();
    for (const l of this.deps.staticListeners) final.set(l.name, l);
    for (const [name, l] of this.listeners) final.set(name, l.config);
    for (const [name, l] of this.warmingListeners) final.set(name, l.config);
    for (const name of removed) final.delete(name);
    for (const l of changes) final.set(l.name, l.config);
    const byAddress = new Map<string, string>();
    const errors: string[] = [];
    for (const [name, config] of final) {
      const key = addressKey(config);
      if (key === null) continue;
      const other = byAddress.get(key);
      if (other === undefined) byAddress.set(key, name);
      else if (changes.some((c) => c.name === name || c.name === other)) {
        const changed = changes.some((c) => c.name === name) ? name : other;
        const holder = changed === name ? other : name;
        errors.push(
          `Listener ${JSON.stringify(changed)}: address: ${key} is already the address of listener ${JSON.stringify(holder)}`,
        );
      }
    }
    if (errors.length > 0) throw new Error(errors.join('\n'));
  }

  private routesReady(config: ListenerConfig): boolean {
    return rdsNamesOf(config).every((r) => this.deps.routes.get(r.name).ready);
  }

  private removeListener(name: string): void {
    const w = this.warmingListeners.get(name);
    if (w) {
      if (w.timer) clearTimeout(w.timer);
      this.warmingListeners.delete(name);
    }
    if (this.listeners.delete(name)) {
      this.deps.listeners.remove(name);
      this.managers.listenerRemoved.inc();
      this.log.info('listener removed', { name });
    }
    this.clearFailure(TYPE_URL.listener, name);
  }

  private warmListener(l: HeldListener): void {
    const previous = this.warmingListeners.get(l.name);
    if (previous?.timer) clearTimeout(previous.timer);
    const timeoutMs = Math.max(...rdsNamesOf(l.config).map((r) => r.timeoutMs));
    const w: HeldListener & Warming = { ...l, timer: null };
    if (timeoutMs > 0) {
      w.timer = setTimeout(() => {
        w.timer = null;
        if (this.warmingListeners.get(l.name) !== w || this.stopped) return;
        this.log.warn('route configuration not received in time; activating the listener without it', {
          listener: l.name,
        });
        void this.exclusive(() => this.activateWarmListener(w)).then(() => this.afterListenersChanged());
      }, timeoutMs);
      w.timer.unref();
    }
    this.warmingListeners.set(l.name, w);
  }

  private async activateWarmListener(w: HeldListener & Warming): Promise<void> {
    if (this.warmingListeners.get(w.name) !== w) return;
    if (w.timer) clearTimeout(w.timer);
    this.warmingListeners.delete(w.name);
    try {
      this.commitListener(w, await this.deps.listeners.prepare(w.config, w.chainKeys));
    } catch (err) {
      this.managers.listenerCreateFailure.inc();
      this.log.error('cannot activate a warmed listener', { listener: w.name, error: describeError(err) });
      this.failures.set(`${TYPE_URL.listener} ${w.name}`, {
        details: describeError(err),
        version: w.version,
        at: new Date(),
        json: w.json,
      });
    }
  }

  private commitListener(l: HeldListener, prepared: Awaited<ReturnType<ListenerManager['prepare']>>): void {
    const w = this.warmingListeners.get(l.name);
    if (w && w !== l) {
      if (w.timer) clearTimeout(w.timer);
      this.warmingListeners.delete(l.name);
    }
    const change = this.deps.listeners.commit(l.config, l.chainKeys, prepared);
    const { timer: _timer, ...plain } = l as HeldListener & Partial<Warming>;
    this.listeners.set(l.name, plain);
    if (change === 'added') this.managers.listenerAdded.inc();
    else {
      this.managers.listenerModified.inc();
      if (change === 'in_place') this.managers.listenerInPlaceUpdated.inc();
    }
    this.log.info(`listener ${change === 'added' ? 'added' : 'updated'}`, {
      name: l.name,
      address: formatAddress(l.config.address),
      version: l.version,
    });
  }

  private afterListenersChanged(): void {
    const names = new Set(this.routeUses().keys());
    this.deps.routes.retainOnly(names);
    for (const name of [...this.routeConfigs.keys()]) if (!names.has(name)) this.routeConfigs.delete(name);
    this.updateGauges();
    this.checkInit();
  }

  /** Route configuration name → the stat prefixes of the connection managers using it. */
  private routeUses(): Map<string, Set<string>> {
    const uses = new Map<string, Set<string>>();
    const add = (config: ListenerConfig): void => {
      for (const r of rdsNamesOf(config)) {
        let set = uses.get(r.name);
        if (set === undefined) uses.set(r.name, (set = new Set()));
        set.add(r.statPrefix);
      }
    };
    for (const l of this.deps.staticListeners) add(l);
    for (const l of this.listeners.values()) add(l.config);
    for (const l of this.warmingListeners.values()) add(l.config);
    return uses;
  }

  // ---- clusters ----

  private async applyClusters(update: XdsUpdate): Promise<void> {
    this.cds.updateAttempt.inc();
    try {
      await this.applyClustersInner(update);
    } catch (err) {
      this.cds.updateRejected.inc();
      throw err;
    } finally {
      this.initDone('cds');
    }
    this.versions.set(TYPE_URL.cluster, update.version);
    this.cds.succeeded(update.version);
  }

  private async applyClustersInner(update: XdsUpdate): Promise<void> {
    const current = (name: string): Held<ClusterConfig> | undefined =>
      this.warmingClusters.get(name) ?? this.clusters.get(name);
    const compiled = this.compileAll(update, current, (json, res, rawKey): Held<ClusterConfig> | null => {
      if (this.staticClusterNames.has(res.name))
        throw new ConfigError('name', 'a static cluster (from the bootstrap) has this name');
      if (current(res.name)?.key === JSON.stringify(json)) return null;
      return this.held(res, json, compileCluster(json, ''), rawKey);
    });
    for (const name of update.removed) this.removeCluster(name);
    const now: Promise<void>[] = [];
    for (const { held, res } of compiled) {
      this.clearFailure(TYPE_URL.cluster, res.name);
      if (held === null) continue;
      const service = held.config.edsServiceName;
      if (service === undefined) now.push(this.activateCluster(held, undefined));
      else {
        const assignment = this.endpoints.get(service)?.config;
        if (assignment !== undefined) now.push(this.activateCluster(held, assignment));
        else this.warmCluster(held);
      }
    }
    await Promise.all(now);
    this.afterClustersChanged();
  }

  private removeCluster(name: string): void {
    const w = this.warmingClusters.get(name);
    if (w) {
      if (w.timer) clearTimeout(w.timer);
      this.warmingClusters.delete(name);
    }
    if (this.clusters.delete(name)) {
      // In-flight requests hold the entry; its pools close once they are done, then its stats go.
      void this.deps.clusters.remove(name).then(() => this.dropClusterStats(name));
      this.managers.clusterRemoved.inc();
      this.log.info('cluster removed', { name });
    }
    this.clearFailure(TYPE_URL.cluster, name);
  }

  /**
   * Drops a removed cluster's `cluster.<name>.*` stats (as Envoy drops its scope), unless it came back
   * meanwhile. Batched: removing thousands of clusters sweeps the store once.
   */
  private dropClusterStats(name: string): void {
    this.statsToDrop.add(name);
    if (this.statsToDrop.size > 1) return;
    setImmediate(() => {
      const names = this.statsToDrop;
      this.statsToDrop = new Set();
      for (const n of names)
        if (this.deps.clusters.get(n) !== undefined || this.warmingClusters.has(n)) names.delete(n);
      // Cluster names and stat leaves may both contain dots (`circuit_breakers.default.cx_open`): a stat
      // belongs to the longest cluster name (removed or live) that it starts with, then a dot.
      this.deps.stats.removeWhere((stat) => {
        if (!stat.startsWith('cluster.')) return false;
        for (let dot = stat.lastIndexOf('.'); dot > 8; dot = stat.lastIndexOf('.', dot - 1)) {
          const cluster = stat.slice(8, dot);
          if (names.has(cluster)) return true;
          if (this.deps.clusters.get(cluster) !== undefined) return false;
        }
        return false;
      });
    });
  }

  private warmCluster(c: Held<ClusterConfig>): void {
    const previous = this.warmingClusters.get(c.name);
    if (previous?.timer) clearTimeout(previous.timer);
    const w: Held<ClusterConfig> & Warming = { ...c, timer: null };
    const timeoutMs = c.config.edsInitialFetchTimeoutMs ?? 0;
    if (timeoutMs > 0) {
      w.timer = setTimeout(() => {
        w.timer = null;
        if (this.warmingClusters.get(c.name) !== w || this.stopped) return;
        this.log.warn('endpoints not received in time; activating the cluster without them', {
          cluster: c.name,
        });
        void this.exclusive(() => this.activateCluster(w, undefined)).then(() => this.afterClustersChanged());
      }, timeoutMs);
      w.timer.unref();
    }
    this.warmingClusters.set(c.name, w);
  }

  private async activateCluster(
    c: Held<ClusterConfig> & Partial<Warming>,
    assignment: CompiledLoadAssignment | undefined,
  ): Promise<void> {
    const w = this.warmingClusters.get(c.name);
    if (w !== undefined) {
      if (w.timer) clearTimeout(w.timer);
      this.warmingClusters.delete(c.name);
    }
    const existed = this.clusters.has(c.name);
    await this.deps.clusters.addOrUpdate(c.config, assignment);
    const { timer: _timer, ...plain } = c;
    this.clusters.set(c.name, plain);
    if (existed) this.managers.clusterModified.inc();
    else this.managers.clusterAdded.inc();
    if (assignment !== undefined) {
      const version = this.endpoints.get(c.config.edsServiceName ?? '')?.version ?? '';
      new ResourceUpdateStats(this.deps.stats, `cluster.${c.name}.`).succeeded(version);
    }
    this.log.info(`cluster ${existed ? 'updated' : 'added'}`, { name: c.name, version: c.version });
  }

  private afterClustersChanged(): void {
    const services = this.edsUses();
    for (const name of [...this.endpoints.keys()]) if (!services.has(name)) this.endpoints.delete(name);
    this.updateGauges();
    this.checkInit();
  }

  /** EDS service name → the clusters (active, static or warming) that take their endpoints from it. */
  private edsUses(): Map<string, Set<string>> {
    const uses = new Map<string, Set<string>>();
    const add = (config: ClusterConfig): void => {
      if (config.edsServiceName === undefined) return;
      let set = uses.get(config.edsServiceName);
      if (set === undefined) uses.set(config.edsServiceName, (set = new Set()));
      set.add(config.name);
    };
    for (const c of this.deps.staticClusters) add(c);
    for (const c of this.clusters.values()) add(c.config);
    for (const c of this.warmingClusters.values()) add(c.config);
    return uses;
  }

  // ---- route configurations ----

  private async applyRoutes(update: XdsUpdate): Promise<void> {
    const uses = this.routeUses();
    const statsFor = (name: string): ResourceUpdateStats[] =>
      [...(uses.get(name) ?? [])].map(
        (prefix) => new ResourceUpdateStats(this.deps.stats, `http.${prefix}.rds.${name}.`),
      );
    for (const res of update.resources) for (const s of statsFor(res.name)) s.updateAttempt.inc();
    let compiled: Compiled<Held<RouteTable> | null>[];
    try {
      const current = (name: string): Held<RouteTable> | undefined => this.routeConfigs.get(name);
      compiled = this.compileAll(update, current, (json, res, rawKey) => {
        if (current(res.name)?.key === JSON.stringify(json)) return null;
        const table = compileRouteConfiguration(json, '');
        // Envoy's default for a route configuration from RDS: its clusters are not checked.
        if (json.validate_clusters === true) this.checkClusterReferences(routeClusterReferences(json, ''));
        return this.held(res, json, table, rawKey);
      });
    } catch (err) {
      for (const res of update.resources) for (const s of statsFor(res.name)) s.updateRejected.inc();
      throw err;
    }
    for (const { held, res } of compiled) {
      this.clearFailure(TYPE_URL.route, res.name);
      for (const s of statsFor(res.name)) s.succeeded(res.version);
      if (held === null) continue;
      this.deps.routes.get(held.name).update(held.config);
      this.routeConfigs.set(held.name, held);
      for (const prefix of uses.get(res.name) ?? [])
        this.deps.stats.counter(`http.${prefix}.rds.${res.name}.config_reload`).inc();
      this.log.info('route configuration updated', { name: held.name, version: held.version });
      if (this.initPending.staticRoutes.delete(held.name)) this.checkInit();
    }
    for (const name of update.removed) {
      // As Envoy, a removed route configuration stays in use until no listener names it.
      this.log.info('route configuration removed by the server; keeping the last one', { name });
    }
    this.versions.set(TYPE_URL.route, update.version);
    for (const w of [...this.warmingListeners.values()]) {
      if (this.routesReady(w.config)) await this.activateWarmListener(w);
    }
    this.afterListenersChanged();
  }

  // ---- endpoints ----

  private async applyEndpoints(update: XdsUpdate): Promise<void> {
    const uses = this.edsUses();
    const statsFor = (service: string): ResourceUpdateStats[] =>
      [...(uses.get(service) ?? [])].map((c) => new ResourceUpdateStats(this.deps.stats, `cluster.${c}.`));
    for (const res of update.resources) for (const s of statsFor(res.name)) s.updateAttempt.inc();
    let compiled: Compiled<Held<CompiledLoadAssignment> | null>[];
    try {
      const current = (name: string): Held<CompiledLoadAssignment> | undefined => this.endpoints.get(name);
      compiled = this.compileAll(update, current, (json, res, rawKey) => {
        if (current(res.name)?.key === JSON.stringify(json)) return null;
        return this.held(res, json, compileEdsAssignment(json, ''), rawKey);
      });
    } catch (err) {
      for (const res of update.resources) for (const s of statsFor(res.name)) s.updateRejected.inc();
      throw err;
    }
    const activations: Promise<void>[] = [];
    for (const { held, res } of compiled) {
      this.clearFailure(TYPE_URL.endpoint, res.name);
      if (held === null) {
        for (const s of statsFor(res.name)) s.updateSuccess.inc();
        continue;
      }
      this.endpoints.set(held.name, held);
      const empty = held.config.localityEndpoints.every((l) => l.endpoints.length === 0);
      for (const clusterName of uses.get(held.name) ?? []) {
        const warming = this.warmingClusters.get(clusterName);
        if (warming !== undefined) {
          activations.push(this.activateCluster(warming, held.config));
          continue;
        }
        const entry = this.deps.clusters.get(clusterName);
        if (entry === undefined || entry.config.type !== 'EDS') continue;
        entry.cluster.setLoadAssignment(held.config);
        const s = new ResourceUpdateStats(this.deps.stats, `cluster.${clusterName}.`);
        s.succeeded(held.version);
        if (empty) s.updateEmpty.inc();
      }
      this.log.debug('endpoints updated', { service: held.name, version: held.version });
    }
    for (const name of update.removed) {
      // As Envoy, a removed assignment leaves its clusters' hosts as they are.
      this.log.info('cluster load assignment removed by the server; keeping the last one', { service: name });
    }
    await Promise.all(activations);
    this.versions.set(TYPE_URL.endpoint, update.version);
    this.afterClustersChanged();
  }

  // ---- secrets (SDS) ----

  /**
   * Secrets are validated like every other resource (a bad one is refused and the last good value kept), then
   * handed to the secret manager: transport sockets read it at their next handshake.
   */
  private applySecrets(update: XdsUpdate): Promise<void> {
    const manager = this.deps.secrets;
    if (manager === undefined) throw new Error('Secret resources are not expected by this proxy');
    const compiled = this.compileAll(
      update,
      (name) => this.secretKeys.get(name),
      (json, _res, rawKey) => {
        const secret = compileSecret(json, '');
        if (secret.value.kind === 'validation_context') checkTrustBundle(secret.value.trustedCa);
        return { ...secret, rawKey };
      },
    );
    for (const { held, res } of compiled) {
      this.clearFailure(TYPE_URL.secret, res.name);
      if (held === null) continue;
      this.secretKeys.set(res.name, { rawKey: held.rawKey });
      manager.set(res.name, held.value);
      this.log.info('secret updated', { name: res.name, kind: held.value.kind, version: res.version });
    }
    for (const name of update.removed) {
      // As Envoy: a removed secret stays in use by what holds it; new handshakes would need it again.
      this.log.info('secret removed by the server; keeping the last one', { name });
    }
    this.versions.set(TYPE_URL.secret, update.version);
    return Promise.resolve();
  }

  // ---- state ----

  private initDone(which: 'cds' | 'lds'): void {
    if (!this.initPending[which]) return;
    this.initPending[which] = false;
    this.checkInit();
  }

  private updateGauges(): void {
    const m = this.managers;
    m.listenersActive.set(this.deps.staticListeners.length + this.listeners.size);
    m.listenersWarming.set(this.warmingListeners.size);
    m.listenersDraining.set(this.deps.listeners.drainingCount());
    m.clustersActive.set(this.deps.staticClusters.length + this.clusters.size);
    m.clustersWarming.set(this.warmingClusters.size);
  }

  /** What /config_dump shows of the dynamic configuration. */
  snapshot(): DynamicSnapshot {
    return {
      versions: this.versions,
      listeners: [...this.listeners.values()],
      warmingListeners: [...this.warmingListeners.values()],
      clusters: [...this.clusters.values()],
      warmingClusters: [...this.warmingClusters.values()],
      routes: [...this.routeConfigs.values()],
      endpoints: [...this.endpoints.values()],
      failures: this.failures,
    };
  }

  isDynamicCluster(name: string): boolean {
    return this.clusters.has(name);
  }
}

export interface DynamicSnapshot {
  readonly versions: ReadonlyMap<string, string>;
  readonly listeners: readonly Held<ListenerConfig>[];
  readonly warmingListeners: readonly Held<ListenerConfig>[];
  readonly clusters: readonly Held<ClusterConfig>[];
  readonly warmingClusters: readonly Held<ClusterConfig>[];
  readonly routes: readonly Held<RouteTable>[];
  readonly endpoints: readonly Held<CompiledLoadAssignment>[];
  /** Keyed `${typeUrl} ${name}`. */
  readonly failures: ReadonlyMap<string, UpdateFailure>;
}
