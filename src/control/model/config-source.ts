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

/** WorkloadEntry fields (also the shape of ServiceEntry.endpoints) → Workload. */
export function workloadOf(entry: WorkloadEntry, name: string, namespace: string, origin: string): Workload {
  return {
    name,
    namespace,
    address: entry.address ?? '',
    labels: entry.labels ?? {},
    ports: entry.ports ?? {},
    locality: parseLocality(entry.locality),
    weight: entry.weight && entry.weight > 0 ? entry.weight : 1,
    serviceAccount: entry.serviceAccount ?? 'default',
    healthy: true,
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
    ...(inline && inline.length > 0 ? { inlineEndpoints: inline } : {}),
    ...(!inline?.length && spec.workloadSelector?.labels
      ? { workloadSelector: spec.workloadSelector.labels }
      : {}),
  }));
}

export class ConfigDiscoverySource implements DiscoverySource {
  readonly name = 'config';
  private defs: ServiceDefinition[] = [];
  private entries: Workload[] = [];
  private serviceKey = '';
  private workloadKey = '';
  private readonly listeners = new Set<Listener>();

  /** Replaces the ServiceEntries and WorkloadEntries; notifies only when something changed. */
  update(
    serviceEntries: readonly IstioResource<ServiceEntry>[],
    workloadEntries: readonly IstioResource<WorkloadEntry>[],
  ): { servicesChanged: boolean; workloadsChanged: boolean } {
    const defs = serviceEntries.flatMap(servicesOf);
    const entries = workloadEntries.map((we) =>
      workloadOf(
        we.spec,
        we.metadata.name,
        we.metadata.namespace,
        `WorkloadEntry ${we.metadata.namespace}/${we.metadata.name}`,
      ),
    );
    const serviceKey = JSON.stringify(defs);
    const workloadKey = JSON.stringify(entries);
    const servicesChanged = serviceKey !== this.serviceKey;
    const workloadsChanged = workloadKey !== this.workloadKey;
    this.defs = defs;
    this.entries = entries;
    this.serviceKey = serviceKey;
    this.workloadKey = workloadKey;
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
