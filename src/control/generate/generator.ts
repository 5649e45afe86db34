/**
 * The XdsGenerator: what each connected proxy gets, as pure functions of (proxy, MeshSnapshot). Sidecars
 * and gateways get the full listener/route/cluster/endpoint set; proxyless gRPC clients get exactly the
 * resources they name.
 */
import type { JsonObject } from '../../core/json.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import type { ProxyNode, ResourceSet, XdsGenerator } from '../xds/types.ts';
import { TYPE_URL } from '../xds/types.ts';
import { outboundClusters } from './clusters.ts';
import { loadAssignment } from './endpoints.ts';
import type { ListenerPlan } from './listeners.ts';
import { gatewayListeners, grpcListener, grpcRouteConfiguration, sidecarListeners } from './listeners.ts';
import { visibleServices } from './scope.ts';

function byName(resources: readonly JsonObject[], nameField = 'name'): Map<string, JsonObject> {
  return new Map(resources.map((r) => [r[nameField] as string, r]));
}

function pick(all: Map<string, JsonObject>, names: ReadonlySet<string> | null): Map<string, JsonObject> {
  if (!names) return all;
  const out = new Map<string, JsonObject>();
  for (const n of names) {
    const r = all.get(n);
    if (r) out.set(n, r);
  }
  return out;
}

export class MeshGenerator implements XdsGenerator {
  private readonly snapshot: () => MeshSnapshot;
  /** Listener plans per proxy id for the current snapshot version: LDS, RDS and CDS of one push share one plan. */
  private planCache = new Map<string, ListenerPlan>();
  private planVersion = -1;

  constructor(snapshot: () => MeshSnapshot) {
    this.snapshot = snapshot;
  }

  generate(proxy: ProxyNode, typeUrl: string, names: ReadonlySet<string> | null): ResourceSet {
    const snap = this.snapshot();
    if (proxy.type === 'grpc') return this.proxyless(proxy, typeUrl, names, snap);
    switch (typeUrl) {
      case TYPE_URL.listener:
        return pick(byName(this.plan(proxy, snap).listeners), names);
      case TYPE_URL.route:
        return pick(byName(this.plan(proxy, snap).routes), names);
      case TYPE_URL.cluster: {
        const clusters = outboundClusters(visibleServices(proxy, snap), proxy.namespace, snap, {
          proxyless: false,
        });
        return pick(byName([...clusters, ...this.plan(proxy, snap).clusters]), names);
      }
      case TYPE_URL.endpoint:
        return this.endpoints(proxy, names, snap);
      default:
        return new Map();
    }
  }

  private plan(proxy: ProxyNode, snap: MeshSnapshot): ListenerPlan {
    if (snap.version !== this.planVersion) {
      this.planCache = new Map();
      this.planVersion = snap.version;
    }
    let plan = this.planCache.get(proxy.id);
    if (!plan) {
      plan = proxy.type === 'router' ? gatewayListeners(proxy, snap) : sidecarListeners(proxy, snap);
      this.planCache.set(proxy.id, plan);
    }
    return plan;
  }

  private endpoints(
    proxy: ProxyNode,
    names: ReadonlySet<string> | null,
    snap: MeshSnapshot,
  ): Map<string, JsonObject> {
    const wanted =
      names ??
      new Set(
        outboundClusters(visibleServices(proxy, snap), proxy.namespace, snap, { proxyless: false })
          .filter((c) => c.type === 'EDS')
          .map((c) => c.name as string),
      );
    const out = new Map<string, JsonObject>();
    for (const name of wanted) {
      const cla = loadAssignment(name, proxy.namespace, snap);
      if (cla) out.set(name, cla);
    }
    return out;
  }

  private proxyless(
    proxy: ProxyNode,
    typeUrl: string,
    names: ReadonlySet<string> | null,
    snap: MeshSnapshot,
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
        return pick(
          byName(outboundClusters(snap.services, proxy.namespace, snap, { proxyless: true })),
          names,
        );
      case TYPE_URL.endpoint:
        return this.endpoints(proxy, names, snap);
      default:
        return out;
    }
  }
}
