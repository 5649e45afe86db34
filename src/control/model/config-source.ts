/**
 * Discovery from configuration, Istio's way of describing non-Kubernetes workloads: ServiceEntry (hosts,
 * ports, resolution, inline endpoints or a workload selector) and WorkloadEntry (one workload instance).
 */
import type { IstioResource } from '../../api/istio/resource.ts';
import type { ServiceEntry, WorkloadEntry } from '../../api/istio/networking.ts';
import type { DiscoverySource, ServiceDefinition } from './discovery.ts';
import { protocolOf } from './protocol.ts';
import type { Resolution, Workload } from './types.ts';
import { parseLocality } from './types.ts';

type Listener = (change: { endpointsOnly: boolean }) => void;

/** Istio's opt-in: with it, a WorkloadEntry serves only while its `Healthy` condition is `True`. */
export const HEALTH_CHECKS_ANNOTATION = 'proxy.istio.io/health-checks-enabled';

/**
 * Istio's rule for a WorkloadEntry's health: without the annotation it is healthy; with it, healthy only when
 * a `Healthy` condition says `True` (no condition yet means not known to be healthy, so not).
 */
export function workloadEntryHealthy(we: IstioResource<WorkloadEntry>): boolean {
  if (we.metadata.annotations[HEALTH_CHECKS_ANNOTATION] !== 'true') return true;
  return we.conditions?.find((c) => c.type === 'Healthy')?.status === 'True';
}

/** WorkloadEntry fields (also the shape of ServiceEntry.endpoints) → Workload. */
export function workloadOf(
  entry: WorkloadEntry,
  name: string,
  namespace: string,
  origin: string,
  healthy = true,
): Workload {
  return {
    name,
    namespace,
    address: entry.address ?? '',
    labels: entry.labels ?? {},
    ports: entry.ports ?? {},
    locality: parseLocality(entry.locality),
    weight: entry.weight && entry.weight > 0 ? entry.weight : 1,
    serviceAccount: entry.serviceAccount ?? 'default',
    healthy,
    origin,
  };
}

export function servicesOf(se: IstioResource<ServiceEntry>): ServiceDefinition[] {
  const { spec, metadata } = se;
  const origin = `ServiceEntry ${metadata.namespace}/${metadata.name}`;
  const ports = (spec.ports ?? []).map((p) => ({
    name: p.name ?? `port-${p.number}`,
    number: p.number,
    protocol: protocolOf({ protocol: p.protocol, name: p.name }),
    ...(p.targetPort ? { targetPort: p.targetPort } : {}),
  }));
  const inline = spec.endpoints?.map((e, i) =>
    workloadOf(e, `${metadata.name}-${i}`, metadata.namespace, origin),
  );
  return (spec.hosts ?? []).map((hostname) => ({
    hostname,
    namespace: metadata.namespace,
    ports,
    resolution: (spec.resolution ?? 'NONE') as Resolution,
    location: spec.location === 'MESH_EXTERNAL' ? 'MESH_EXTERNAL' : 'MESH_INTERNAL',
    addresses: spec.addresses ?? [],
    origin,
    ...(spec.exportTo && spec.exportTo.length > 0 ? { exportTo: spec.exportTo } : {}),
    ...(inline && inline.length > 0 ? { inlineEndpoints: inline } : {}),
    ...(!inline?.length && spec.workloadSelector?.labels
      ? { workloadSelector: spec.workloadSelector.labels }
      : {}),
  }));
}

/** Conversions kept per resource object: the watcher hands over the same object while its file is unchanged. */
const servicesOfResource = new WeakMap<IstioResource<ServiceEntry>, ServiceDefinition[]>();
const workloadOfResource = new WeakMap<IstioResource<WorkloadEntry>, Workload>();

function cachedServices(se: IstioResource<ServiceEntry>): ServiceDefinition[] {
  let defs = servicesOfResource.get(se);
  if (!defs) {
    defs = servicesOf(se);
    servicesOfResource.set(se, defs);
  }
  return defs;
}

function cachedWorkload(we: IstioResource<WorkloadEntry>): Workload {
  let w = workloadOfResource.get(we);
  if (!w) {
    w = workloadOf(
      we.spec,
      we.metadata.name,
      we.metadata.namespace,
      `WorkloadEntry ${we.metadata.namespace}/${we.metadata.name}`,
      workloadEntryHealthy(we),
    );
    workloadOfResource.set(we, w);
  }
  return w;
}

/**
 * `next` with each item replaced by the item of `before` at the same key when their content is equal (a resource
 * re-read from a file that was rewritten without changing it is a new object): unchanged items keep their identity,
 * which is what later stages compare. Returns `before` itself when nothing differs.
 */
function keepUnchanged<T>(before: readonly T[], next: readonly T[], key: (item: T) => string): readonly T[] {
  if (before.length === next.length && next.every((item, i) => item === before[i])) return before;
  const previous = new Map(before.map((item) => [key(item), item]));
  const out = next.map((item) => {
    const old = previous.get(key(item));
    return old !== undefined && old !== item && JSON.stringify(old) === JSON.stringify(item) ? old : item;
  });
  return out.length === before.length && out.every((item, i) => item === before[i]) ? before : out;
}

export class ConfigDiscoverySource implements DiscoverySource {
  readonly name = 'config';
  private defs: readonly ServiceDefinition[] = [];
  private entries: readonly Workload[] = [];
  private readonly listeners = new Set<Listener>();

  /**
   * Replaces the ServiceEntries and WorkloadEntries; notifies only when something changed. Lists whose content
   * did not change are kept as they were (same array), so aggregation can tell what changed by identity.
   */
  update(
    serviceEntries: readonly IstioResource<ServiceEntry>[],
    workloadEntries: readonly IstioResource<WorkloadEntry>[],
  ): { servicesChanged: boolean; workloadsChanged: boolean } {
    const defs = keepUnchanged(this.defs, serviceEntries.flatMap(cachedServices), (d) => d.hostname);
    const entries = keepUnchanged(
      this.entries,
      workloadEntries.map(cachedWorkload),
      (w) => `${w.namespace}/${w.name}`,
    );
    const servicesChanged = defs !== this.defs;
    const workloadsChanged = entries !== this.entries;
    this.defs = defs;
    this.entries = entries;
    if (servicesChanged || workloadsChanged)
      for (const l of this.listeners) l({ endpointsOnly: !servicesChanged });
    return { servicesChanged, workloadsChanged };
  }

  services(): readonly ServiceDefinition[] {
    return this.defs;
  }

  workloads(): readonly Workload[] {
    return this.entries;
  }

  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
