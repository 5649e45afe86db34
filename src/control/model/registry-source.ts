/**
 * Workloads that register themselves: a proxy that connects with node metadata (name, namespace, labels,
 * service account, locality, address, ports) becomes a workload, as Istio's WorkloadGroup auto-registration
 * does, and is removed a grace period after its last stream ends (a reconnecting proxy keeps its place).
 */
import type { ProxyNode } from '../xds/types.ts';
import type { DiscoverySource, ServiceDefinition } from './discovery.ts';
import type { Workload } from './types.ts';

type Listener = (change: { endpointsOnly: boolean }) => void;

const NO_SERVICES: readonly ServiceDefinition[] = Object.freeze([]);

/** Istio's POD_PORTS metadata: a JSON array of container ports `[{"name":"http","containerPort":8080}]`. */
function portsOf(metadata: ProxyNode['metadata']): Record<string, number> {
  const raw = metadata.POD_PORTS;
  if (typeof raw !== 'string') return {};
  try {
    const parsed: unknown = JSON.parse(raw);
    const out: Record<string, number> = {};
    if (Array.isArray(parsed)) {
      for (const p of parsed as { name?: unknown; containerPort?: unknown }[]) {
        if (typeof p.name === 'string' && typeof p.containerPort === 'number') out[p.name] = p.containerPort;
      }
    }
    return out;
  } catch {
    return {};
  }
}

/** The workload a node describes, or undefined when it says too little (no address) or is a gateway or gRPC client. */
export function workloadOfNode(node: ProxyNode): Workload | undefined {
  const address = node.ipAddresses[0];
  if (node.type !== 'sidecar' || !address) return undefined;
  return {
    name: node.name,
    namespace: node.namespace,
    address,
    labels: node.labels,
    ports: portsOf(node.metadata),
    locality: node.locality,
    weight: 1,
    serviceAccount: node.serviceAccount || 'default',
    healthy: true,
    origin: `auto-registered ${node.id}`,
  };
}

export class RegistrySource implements DiscoverySource {
  readonly name = 'auto-registration';
  private readonly byId = new Map<string, { workload: Workload; streams: number; timer?: NodeJS.Timeout }>();
  private readonly listeners = new Set<Listener>();
  private readonly graceMs: number;
  /** The workloads list handed out, rebuilt only after a change (aggregation compares lists by identity). */
  private list: readonly Workload[] | null = null;

  constructor(opts: { graceMs?: number } = {}) {
    this.graceMs = opts.graceMs ?? 10_000;
  }

  /** A stream from this node opened. Returns the workload registered, if any. */
  connected(node: ProxyNode): Workload | undefined {
    const workload = workloadOfNode(node);
    if (!workload) return undefined;
    const entry = this.byId.get(node.id);
    if (entry) {
      clearTimeout(entry.timer);
      entry.timer = undefined;
      entry.streams++;
      if (JSON.stringify(entry.workload) === JSON.stringify(workload)) return workload;
      entry.workload = workload;
    } else {
      this.byId.set(node.id, { workload, streams: 1 });
    }
    this.notify();
    return workload;
  }

  /** A stream from this node ended; the workload goes after the grace period unless the node reconnects. */
  disconnected(node: ProxyNode): void {
    const entry = this.byId.get(node.id);
    if (!entry) return;
    entry.streams = Math.max(0, entry.streams - 1);
    if (entry.streams > 0) return;
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      this.byId.delete(node.id);
      this.notify();
    }, this.graceMs);
    entry.timer.unref();
  }

  /**
   * Workloads a previous run of the control plane had registered (see `registered()`): they serve at once,
   * as if their proxies had just disconnected, and go after `graceMs` unless their proxies reconnect — so a
   * restarted control plane does not hand callers an empty endpoint list while proxies are still backing off.
   */
  restore(entries: readonly { readonly id: string; readonly workload: Workload }[], graceMs: number): void {
    let added = false;
    for (const { id, workload } of entries) {
      if (this.byId.has(id)) continue;
      const entry: { workload: Workload; streams: number; timer?: NodeJS.Timeout } = { workload, streams: 0 };
      entry.timer = setTimeout(() => {
        if (this.byId.get(id) !== entry || entry.streams > 0) return;
        this.byId.delete(id);
        this.notify();
      }, graceMs);
      entry.timer.unref();
      this.byId.set(id, entry);
      added = true;
    }
    if (added) this.notify();
  }

  /** The registered workloads by node id, for a restarted control plane to restore. */
  registered(): { id: string; workload: Workload }[] {
    return [...this.byId].map(([id, e]) => ({ id, workload: e.workload }));
  }

  close(): void {
    for (const entry of this.byId.values()) clearTimeout(entry.timer);
  }

  services(): readonly ServiceDefinition[] {
    return NO_SERVICES;
  }

  workloads(): readonly Workload[] {
    this.list ??= [...this.byId.values()].map((e) => e.workload);
    return this.list;
  }

  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify(): void {
    this.list = null;
    for (const l of this.listeners) l({ endpointsOnly: true });
  }
}
