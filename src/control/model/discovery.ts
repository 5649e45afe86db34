/**
 * Service discovery behind one interface: a source supplies service definitions and workloads; the
 * aggregator joins them into endpoints per service port. ServiceEntry/WorkloadEntry (config) and proxies
 * that register themselves are sources today; Kubernetes (Services + Pods) will be another.
 */
import type { DiscoveryState, Endpoint, Service, ServicePort, Workload } from './types.ts';
import { endpointKey } from './types.ts';

/** A service plus how its endpoints are found: inline (ServiceEntry.endpoints) or by label selector. */
export interface ServiceDefinition extends Service {
  /** Inline endpoints (ServiceEntry.endpoints); when set, the selector is not used. */
  inlineEndpoints?: readonly Workload[];
  /** Selects workloads in the service's namespace (ServiceEntry.workloadSelector, a Kubernetes Service selector). */
  workloadSelector?: Readonly<Record<string, string>>;
}

export interface DiscoverySource {
  readonly name: string;
  services(): readonly ServiceDefinition[];
  workloads(): readonly Workload[];
  /** Called with `endpointsOnly` true when only workloads changed (the xDS fast path). Returns an unsubscribe function. */
  onChange(listener: (change: { endpointsOnly: boolean }) => void): () => void;
}

export function labelsMatch(
  selector: Readonly<Record<string, string>>,
  labels: Readonly<Record<string, string>>,
): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

function endpointFor(workload: Workload, port: ServicePort): Endpoint {
  return {
    address: workload.address,
    port: workload.ports[port.name] ?? port.targetPort ?? port.number,
    labels: workload.labels,
    locality: workload.locality,
    weight: workload.weight,
    serviceAccount: workload.serviceAccount,
    namespace: workload.namespace,
    workloadName: workload.name,
    healthy: workload.healthy,
  };
}

/** Joins every source's services and workloads. Later sources do not override earlier services of the same host. */
export function aggregate(sources: readonly DiscoverySource[]): DiscoveryState {
  const byHost = new Map<string, ServiceDefinition>();
  for (const source of sources) {
    for (const service of source.services())
      if (!byHost.has(service.hostname)) byHost.set(service.hostname, service);
  }
  const workloads = sources.flatMap((s) => s.workloads());
  const endpoints = new Map<string, Endpoint[]>();
  const services: Service[] = [];
  for (const def of [...byHost.values()].sort((a, b) => a.hostname.localeCompare(b.hostname))) {
    const { inlineEndpoints, workloadSelector, ...service } = def;
    services.push(service);
    const members =
      inlineEndpoints ??
      (workloadSelector
        ? workloads.filter((w) => w.namespace === def.namespace && labelsMatch(workloadSelector, w.labels))
        : []);
    for (const port of def.ports) {
      // As in Istio, every selected workload serves every service port; its `ports` only renames the number.
      endpoints.set(
        endpointKey(def.hostname, port.number),
        members.map((w) => endpointFor(w, port)),
      );
    }
  }
  return { services, endpoints, workloads };
}
