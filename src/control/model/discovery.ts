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

/** Endpoints per workload and port, kept while the workload object lives: equal input, identical endpoint. */
const endpointCache = new WeakMap<Workload, Map<string, Endpoint>>();

function endpointFor(workload: Workload, port: ServicePort): Endpoint {
  let byPort = endpointCache.get(workload);
  if (!byPort) {
    byPort = new Map();
    endpointCache.set(workload, byPort);
  }
  const key = `${port.name}|${port.targetPort ?? ''}|${port.number}`;
  let endpoint = byPort.get(key);
  if (!endpoint) {
    endpoint = {
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
    byPort.set(key, endpoint);
  }
  return endpoint;
}

/**
 * Workloads by namespace and by `key=value` label, in their original order, so a selector looks at the
 * workloads carrying one of its labels instead of every workload of the mesh.
 */
class WorkloadIndex {
  readonly #byNamespace = new Map<string, Workload[]>();
  readonly #byLabel = new Map<string, Workload[]>();

  constructor(workloads: readonly Workload[]) {
    for (const w of workloads) {
      push(this.#byNamespace, w.namespace, w);
      for (const [k, v] of Object.entries(w.labels)) push(this.#byLabel, `${w.namespace}\u0000${k}=${v}`, w);
    }
  }

  select(namespace: string, selector: Readonly<Record<string, string>>): Workload[] {
    let candidates = this.#byNamespace.get(namespace) ?? [];
    for (const [k, v] of Object.entries(selector)) {
      const list = this.#byLabel.get(`${namespace}\u0000${k}=${v}`) ?? [];
      if (list.length < candidates.length) candidates = list;
    }
    return candidates.filter((w) => labelsMatch(selector, w.labels));
  }
}

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function sameItems<T>(a: readonly T[] | undefined, b: readonly T[]): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A definition without its discovery details, once per definition object, so unchanged services keep their identity. */
const serviceOfDefinition = new WeakMap<ServiceDefinition, Service>();

function serviceOf(def: ServiceDefinition): Service {
  let service = serviceOfDefinition.get(def);
  if (!service) {
    const { inlineEndpoints: _inline, ...rest } = def;
    service = rest;
    serviceOfDefinition.set(def, service);
  }
  return service;
}

/** The last sort of service definitions, reused while every source returns the same definitions. */
let lastSort: { inputs: (readonly ServiceDefinition[])[]; sorted: ServiceDefinition[] } | null = null;

function sortedDefinitions(sources: readonly DiscoverySource[]): ServiceDefinition[] {
  const inputs = sources.map((s) => s.services());
  if (lastSort && sameItems(lastSort.inputs, inputs)) return lastSort.sorted;
  const byHost = new Map<string, ServiceDefinition>();
  for (const defs of inputs) {
    for (const service of defs) if (!byHost.has(service.hostname)) byHost.set(service.hostname, service);
  }
  const sorted = [...byHost.values()].sort((a, b) => a.hostname.localeCompare(b.hostname));
  lastSort = { inputs, sorted };
  return sorted;
}

/** What an aggregation was made of, so the next one can redo only what a change of workloads touches. */
interface AggregationMemo {
  readonly definitions: readonly ServiceDefinition[];
  /** Each source's workloads list, as it was. */
  readonly inputs: readonly (readonly Workload[])[];
  /** Definitions that select workloads, by `namespace` + one `key=value` of their selector (or `namespace` alone for an empty selector). */
  readonly selecting: Map<string, ServiceDefinition[]>;
}

const memos = new WeakMap<DiscoveryState, AggregationMemo>();

function selectingIndex(definitions: readonly ServiceDefinition[]): Map<string, ServiceDefinition[]> {
  const index = new Map<string, ServiceDefinition[]>();
  for (const def of definitions) {
    if (def.inlineEndpoints || !def.workloadSelector) continue;
    const first = Object.entries(def.workloadSelector)[0];
    push(index, first ? `${def.namespace}\u0000${first[0]}=${first[1]}` : def.namespace, def);
  }
  return index;
}

/** The definitions whose selector picks this workload. */
function selectorsOf(w: Workload, selecting: Map<string, ServiceDefinition[]>): ServiceDefinition[] {
  const out = [...(selecting.get(w.namespace) ?? [])];
  for (const [k, v] of Object.entries(w.labels)) {
    for (const def of selecting.get(`${w.namespace}\u0000${k}=${v}`) ?? [])
      if (labelsMatch(def.workloadSelector!, w.labels)) out.push(def);
  }
  return out;
}

function setEndpoints(
  endpoints: Map<string, readonly Endpoint[]>,
  def: ServiceDefinition,
  members: readonly Workload[],
  previous: DiscoveryState | undefined,
): void {
  for (const port of def.ports) {
    // As in Istio, every selected workload serves every service port; its `ports` only renames the number.
    const key = endpointKey(def.hostname, port.number);
    const list = members.map((w) => endpointFor(w, port));
    const before = previous?.endpoints.get(key);
    endpoints.set(key, before && sameItems(before, list) ? before : list);
  }
}

/**
 * Joins every source's services and workloads. Later sources do not override earlier services of the same host.
 * With `previous`, an endpoint list whose members did not change is the previous list itself (same identity),
 * so consumers find what changed by comparing lists, and caches keyed on them stay valid. When only workloads
 * changed since `previous`, only the services selecting a changed workload are recomputed.
 */
export function aggregate(sources: readonly DiscoverySource[], previous?: DiscoveryState): DiscoveryState {
  const definitions = sortedDefinitions(sources);
  const inputs = sources.map((s) => s.workloads());
  const workloads = inputs.flat();
  const memo = previous && memos.get(previous);
  if (previous && memo && memo.definitions === definitions && memo.inputs.length === inputs.length) {
    const changed = new Set<Workload>();
    inputs.forEach((now, i) => {
      const before = memo.inputs[i];
      if (now === before) return;
      if (now.length === before.length) {
        // Usually one entry replaced in place: both sides of every difference count as changed (recomputing a
        // service whose workloads did not change is harmless).
        for (let k = 0; k < now.length; k++) {
          if (now[k] === before[k]) continue;
          changed.add(now[k]);
          changed.add(before[k]);
        }
        return;
      }
      const kept = new Set(now);
      for (const w of before) if (!kept.has(w)) changed.add(w);
      const had = new Set(before);
      for (const w of now) if (!had.has(w)) changed.add(w);
    });
    const affected = new Set<ServiceDefinition>();
    for (const w of changed) for (const def of selectorsOf(w, memo.selecting)) affected.add(def);
    const endpoints = new Map(previous.endpoints);
    for (const def of affected) {
      const selector = def.workloadSelector!;
      const members = workloads.filter(
        (w) => w.namespace === def.namespace && labelsMatch(selector, w.labels),
      );
      setEndpoints(endpoints, def, members, previous);
    }
    const state: DiscoveryState = { services: previous.services, endpoints, workloads };
    memos.set(state, { ...memo, inputs });
    return state;
  }
  const index = definitions.some((d) => !d.inlineEndpoints && d.workloadSelector)
    ? new WorkloadIndex(workloads)
    : null;
  const endpoints = new Map<string, readonly Endpoint[]>();
  const services: Service[] = [];
  for (const def of definitions) {
    services.push(serviceOf(def));
    const members =
      def.inlineEndpoints ??
      (def.workloadSelector && index ? index.select(def.namespace, def.workloadSelector) : []);
    setEndpoints(endpoints, def, members, previous);
  }
  const sameServices = previous && sameItems(previous.services, services);
  const state: DiscoveryState = {
    services: sameServices ? previous.services : services,
    endpoints,
    workloads,
  };
  memos.set(state, { definitions, inputs, selecting: selectingIndex(definitions) });
  return state;
}

/** The `hostname|port` keys whose endpoint list is not the same list in both states (added, removed or changed). */
export function changedEndpointKeys(before: DiscoveryState, after: DiscoveryState): Set<string> {
  const changed = new Set<string>();
  for (const [key, list] of after.endpoints) if (before.endpoints.get(key) !== list) changed.add(key);
  for (const key of before.endpoints.keys()) if (!after.endpoints.has(key)) changed.add(key);
  return changed;
}
