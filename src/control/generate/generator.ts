/**
 * The XdsGenerator: what each connected proxy gets, as pure functions of (proxy, MeshSnapshot). Sidecars
 * and gateways get the full listener/route/cluster/endpoint set; proxyless gRPC clients get exactly the
 * resources they name.
 *
 * At scale most proxies get the same resources, so results are memoized by what actually varies between
 * proxies, and equal results are the same objects (which is what lets the ADS server encode each once):
 * - per configuration (snapshot.configVersion, unchanged by endpoint-only snapshots): each cluster, keyed by
 *   its name and the DestinationRule that shaped it; the outbound cluster list per namespace and Sidecar; the
 *   listener plan (listeners, routes, inbound clusters) per planKey; each ClusterLoadAssignment, rebuilt only
 *   when its endpoint list changed;
 * - per snapshot version: the assignment map of a subscription shared by many proxies.
 */
import type { JsonObject } from '../../core/json.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import type { ProxyNode, ResourceSet, XdsGenerator } from '../xds/types.ts';
import { TYPE_URL } from '../xds/types.ts';
import { outboundClusters } from './clusters.ts';
import { AssignmentCache } from './endpoints.ts';
import { localityUse } from './locality-lb.ts';
import type { LocalityUse } from './locality-lb.ts';
import type { ListenerPlan } from './listeners.ts';
import {
  gatewayListeners,
  grpcListener,
  grpcRouteConfiguration,
  planKey,
  sidecarListeners,
} from './listeners.ts';
import { sidecarFor, visibleServices } from './scope.ts';
import { secretResources } from './mtls.ts';
import { collectorClusters } from './telemetry.ts';

function byName(resources: readonly JsonObject[], nameField = 'name'): Map<string, JsonObject> {
  return new Map(resources.map((r) => [r[nameField] as string, r]));
}

/** The named resources of `all`; `all` itself when the names cover it exactly (no copy, same identity). */
function pick(all: ReadonlyMap<string, JsonObject>, names: ReadonlySet<string> | null): ResourceSet {
  if (!names) return all;
  if (names.size === all.size) {
    let covers = true;
    for (const n of all.keys()) {
      if (!names.has(n)) {
        covers = false;
        break;
      }
    }
    if (covers) return all;
  }
  const out = new Map<string, JsonObject>();
  for (const n of names) {
    const r = all.get(n);
    if (r) out.set(n, r);
  }
  return out;
}

interface PlanEntry {
  readonly plan: ListenerPlan;
  readonly listeners: Map<string, JsonObject>;
  readonly routes: Map<string, JsonObject>;
}

interface OutboundEntry {
  readonly clusters: readonly JsonObject[];
  readonly byName: Map<string, JsonObject>;
  /** Outbound plus a plan's inbound clusters, per plan (most plans have none: then byName itself). */
  readonly withInbound: WeakMap<ListenerPlan, Map<string, JsonObject>>;
}

/** What stays valid while the configuration does (endpoint-only snapshots share it). */
class ConfigCaches {
  readonly configVersion: number;
  readonly clusters = new Map<string, JsonObject>();
  readonly outbound = new Map<string, OutboundEntry>();
  readonly plans = new Map<string, PlanEntry>();
  readonly assignments = new AssignmentCache();
  readonly planKeys = new WeakMap<ProxyNode, string>();
  /** SDS: the trust bundle (workload certificates come from each proxy's own agent, never from here). */
  secrets: Map<string, JsonObject> | undefined;
  /** Clusters of tracing collectors outside the registry. */
  collectors: JsonObject[] | undefined;
  #callerKeys = new WeakMap<ProxyNode, string>();
  #localityUse: LocalityUse | undefined;

  constructor(configVersion: number) {
    this.configVersion = configVersion;
  }

  /**
   * What of a proxy its endpoint assignments depend on: its namespace (which DestinationRule applies) and,
   * only while some rule has a locality policy, its locality (and labels, for failoverPriority).
   */
  callerKey(proxy: ProxyNode, snap: MeshSnapshot): string {
    let key = this.#callerKeys.get(proxy);
    if (key !== undefined) return key;
    this.#localityUse ??= localityUse(snap.destinationRules);
    key = proxy.namespace;
    if (this.#localityUse !== 'none') {
      const { region, zone, subZone } = proxy.locality;
      key += `\u0000${region}/${zone}/${subZone}`;
      if (this.#localityUse === 'labels')
        key += `\u0000${JSON.stringify(Object.entries(proxy.labels).sort(([a], [b]) => a.localeCompare(b)))}`;
    }
    this.#callerKeys.set(proxy, key);
    return key;
  }
}

/** What stays valid for one snapshot version. */
class VersionCaches {
  readonly version: number;
  /** Names (the server hands the same set to every proxy that sent the same names) → caller key → assignments. */
  readonly assignmentsBySubscription = new WeakMap<
    ReadonlySet<string>,
    Map<string, Map<string, JsonObject>>
  >();
  /** The EDS names of an outbound entry's clusters (for a wildcard endpoint request). */
  readonly edsNames = new WeakMap<OutboundEntry, ReadonlySet<string>>();

  constructor(version: number) {
    this.version = version;
  }
}

export class MeshGenerator implements XdsGenerator {
  private readonly snapshot: () => MeshSnapshot;
  #config: ConfigCaches | null = null;
  #version: VersionCaches | null = null;

  constructor(snapshot: () => MeshSnapshot) {
    this.snapshot = snapshot;
  }

  generate(proxy: ProxyNode, typeUrl: string, names: ReadonlySet<string> | null): ResourceSet {
    const snap = this.snapshot();
    if (this.#config?.configVersion !== snap.configVersion)
      this.#config = new ConfigCaches(snap.configVersion);
    if (this.#version?.version !== snap.version) this.#version = new VersionCaches(snap.version);
    const config = this.#config;
    if (proxy.type === 'grpc') return this.proxyless(proxy, typeUrl, names, snap, config);
    switch (typeUrl) {
      case TYPE_URL.listener:
        return pick(this.plan(proxy, snap, config).listeners, names);
      case TYPE_URL.route:
        return pick(this.plan(proxy, snap, config).routes, names);
      case TYPE_URL.cluster:
        return pick(this.clusters(proxy, snap, config), names);
      case TYPE_URL.endpoint:
        return this.endpoints(proxy, names, snap, config);
      case TYPE_URL.secret:
        return pick((config.secrets ??= secretResources(snap)), names);
      default:
        return new Map();
    }
  }

  private plan(proxy: ProxyNode, snap: MeshSnapshot, config: ConfigCaches): PlanEntry {
    let key = config.planKeys.get(proxy);
    if (key === undefined) {
      key = planKey(proxy, snap);
      config.planKeys.set(proxy, key);
    }
    let entry = config.plans.get(key);
    if (!entry) {
      const plan = proxy.type === 'router' ? gatewayListeners(proxy, snap) : sidecarListeners(proxy, snap);
      entry = { plan, listeners: byName(plan.listeners), routes: byName(plan.routes) };
      config.plans.set(key, entry);
    }
    return entry;
  }

  /** Outbound clusters as seen from a namespace through a Sidecar's egress (or all services, proxyless). */
  private outbound(
    proxy: ProxyNode,
    snap: MeshSnapshot,
    config: ConfigCaches,
    proxyless: boolean,
  ): OutboundEntry {
    const sidecar = proxyless ? undefined : sidecarFor(proxy, snap);
    const key = [
      proxyless ? 'grpc' : 'sidecar',
      proxy.namespace,
      sidecar ? `${sidecar.metadata.namespace}/${sidecar.metadata.name}` : '',
    ].join('\u0000');
    let entry = config.outbound.get(key);
    if (!entry) {
      const services = proxyless ? snap.services : visibleServices(proxy, snap);
      const clusters = outboundClusters(services, proxy.namespace, snap, { proxyless }, config.clusters);
      // Tracing collectors the registry does not know (Istio generates a DNS cluster for each).
      if (!proxyless) clusters.push(...(config.collectors ??= collectorClusters(snap)));
      entry = { clusters, byName: byName(clusters), withInbound: new WeakMap() };
      config.outbound.set(key, entry);
    }
    return entry;
  }

  private clusters(
    proxy: ProxyNode,
    snap: MeshSnapshot,
    config: ConfigCaches,
  ): ReadonlyMap<string, JsonObject> {
    const outbound = this.outbound(proxy, snap, config, false);
    const plan = this.plan(proxy, snap, config).plan;
    if (plan.clusters.length === 0) return outbound.byName;
    let all = outbound.withInbound.get(plan);
    if (!all) {
      all = byName([...outbound.clusters, ...plan.clusters]);
      outbound.withInbound.set(plan, all);
    }
    return all;
  }

  private endpoints(
    proxy: ProxyNode,
    names: ReadonlySet<string> | null,
    snap: MeshSnapshot,
    config: ConfigCaches,
  ): ResourceSet {
    const versioned = this.#version!;
    let wanted = names;
    if (!wanted) {
      // As for a sidecar, whatever the proxy's type: the EDS clusters its namespace and Sidecar let it see.
      const outbound = this.outbound(proxy, snap, config, false);
      wanted = versioned.edsNames.get(outbound) ?? null;
      if (!wanted) {
        wanted = new Set(outbound.clusters.filter((c) => c.type === 'EDS').map((c) => c.name as string));
        versioned.edsNames.set(outbound, wanted);
      }
    }
    // The server hands every proxy with the same subscription (or the same endpoint push) the same set.
    let byCaller = versioned.assignmentsBySubscription.get(wanted);
    const callerKey = config.callerKey(proxy, snap);
    const known = byCaller?.get(callerKey);
    if (known) return known;
    const out = new Map<string, JsonObject>();
    for (const name of wanted) {
      const cla = config.assignments.get(name, proxy, snap);
      if (cla) out.set(name, cla);
    }
    if (!byCaller) {
      byCaller = new Map();
      versioned.assignmentsBySubscription.set(wanted, byCaller);
    }
    byCaller.set(callerKey, out);
    return out;
  }

  private proxyless(
    proxy: ProxyNode,
    typeUrl: string,
    names: ReadonlySet<string> | null,
    snap: MeshSnapshot,
    config: ConfigCaches,
  ): ResourceSet {
    const out = new Map<string, JsonObject>();
    switch (typeUrl) {
      case TYPE_URL.listener:
        for (const n of names ?? []) {
          const l = grpcListener(n, snap);
          if (l) out.set(n, l);
        }
        return out;
      case TYPE_URL.route:
        for (const n of names ?? []) {
          const r = grpcRouteConfiguration(n, proxy, snap);
          if (r) out.set(n, r);
        }
        return out;
      case TYPE_URL.cluster:
        return pick(this.outbound(proxy, snap, config, true).byName, names);
      case TYPE_URL.endpoint:
        return this.endpoints(proxy, names, snap, config);
      case TYPE_URL.secret:
        return pick((config.secrets ??= secretResources(snap)), names);
      default:
        return out;
    }
  }
}
