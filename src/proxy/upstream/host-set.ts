/**
 * A cluster's hosts grouped by priority, and Envoy's priority load: how much traffic each priority
 * level receives given the health of its hosts (docs: "Priority levels", "Degraded endpoints",
 * "Panic threshold"). Rebuilt whenever hosts or their health change, never per request.
 */
import type { Host, Locality } from './types.ts';

/** Hosts of one locality within one priority: the unit of locality-weighted load balancing. */
export interface LocalityHosts {
  readonly locality: Locality;
  /** The locality's load_balancing_weight, when the configuration set one. */
  readonly weight: number | undefined;
  readonly hosts: readonly Host[];
}

/** The hosts of one priority level. */
export interface HostSet {
  readonly priority: number;
  readonly hosts: readonly Host[];
  readonly healthyHosts: readonly Host[];
  readonly degradedHosts: readonly Host[];
  readonly localities: readonly LocalityHosts[];
}

/** Host counts of one priority level, the input of the load computation. */
export interface PriorityCounts {
  readonly total: number;
  readonly healthy: number;
  readonly degraded: number;
}

/**
 * Integer percentages of traffic per priority level, split into traffic for healthy hosts and
 * traffic for degraded hosts; together they add up to 100 (or are all 0 when there is no level).
 * A level in panic serves its share from all of its hosts, whatever their health.
 */
export interface PriorityLoad {
  readonly healthy: readonly number[];
  readonly degraded: readonly number[];
  readonly panic: readonly boolean[];
}

/** Looks up the configured weight of a locality at a priority. */
export type LocalityWeightLookup = (priority: number, locality: Locality) => number | undefined;

function availability(count: number, total: number, overprovisioningFactor: number): number {
  if (total === 0) return 0;
  return Math.min(100, Math.floor((overprovisioningFactor * count) / total));
}

/** Gives each level its share of `load` in proportion to its availability, highest priority first. */
function distribute(
  out: number[],
  avail: readonly number[],
  load: number,
  totalAvail: number,
): [number, number] {
  let first = -1;
  for (let i = 0; i < avail.length; i++) {
    if (first < 0 && avail[i] > 0) first = i;
    const share = Math.min(load, Math.floor((avail[i] * 100) / totalAvail));
    out[i] = share;
    load -= share;
  }
  return [first, load];
}

function inPanic(level: PriorityCounts, threshold: number): boolean {
  if (level.total === 0) return 0 < threshold;
  return (100 * level.healthy) / level.total + (100 * level.degraded) / level.total < threshold;
}

/**
 * Envoy's priority load. Each level's availability is min(100, overprovisioning × available/total);
 * levels take load in priority order until 100 is reached, scaled up when the levels together are
 * below 100 (the normalized total). Below a normalized total of 100, a level whose available share is
 * under the panic threshold is in panic; when every level is, load follows host counts instead.
 */
export function computePriorityLoad(
  levels: readonly PriorityCounts[],
  overprovisioningFactor: number,
  healthyPanicThreshold: number,
): PriorityLoad {
  const n = levels.length;
  const healthy = new Array<number>(n).fill(0);
  const degraded = new Array<number>(n).fill(0);
  const panic = new Array<boolean>(n).fill(false);
  if (n === 0) return { healthy, degraded, panic };

  const healthAvail = levels.map((l) => availability(l.healthy, l.total, overprovisioningFactor));
  const degradedAvail = levels.map((l) => availability(l.degraded, l.total, overprovisioningFactor));
  const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
  const totalAvail = Math.min(100, sum(healthAvail) + sum(degradedAvail));

  if (totalAvail > 0) {
    const [firstHealthy, afterHealthy] = distribute(healthy, healthAvail, 100, totalAvail);
    const [firstDegraded, rest] = distribute(degraded, degradedAvail, afterHealthy, totalAvail);
    // Rounding leftovers go to the first level that has anything available.
    if (rest > 0) {
      if (firstHealthy >= 0) healthy[firstHealthy] += rest;
      else degraded[firstDegraded] += rest;
    }
  }

  const threshold = Math.min(100, healthyPanicThreshold);
  if (threshold === 0 && totalAvail === 0) {
    // Panic disabled and nothing available: the load must still add up; nothing will be picked.
    healthy[0] = 100;
    return { healthy, degraded, panic };
  }

  let totalPanic = true;
  for (let i = 0; i < n; i++) {
    panic[i] = totalAvail === 100 ? false : inPanic(levels[i], threshold);
    totalPanic &&= panic[i];
  }
  if (!totalPanic) return { healthy, degraded, panic };

  // Every level is in panic: spread load by host count, ignoring health.
  const totalHosts = sum(levels.map((l) => l.total));
  degraded.fill(0);
  if (totalHosts === 0) {
    healthy.fill(0);
    healthy[0] = 100;
    return { healthy, degraded, panic };
  }
  let left = 100;
  let firstNonEmpty = -1;
  for (let i = 0; i < n; i++) {
    if (firstNonEmpty < 0 && levels[i].total > 0) firstNonEmpty = i;
    healthy[i] = Math.floor((100 * levels[i].total) / totalHosts);
    left -= healthy[i];
  }
  healthy[firstNonEmpty] += left;
  return { healthy, degraded, panic };
}

function sameLocality(a: Locality, b: Locality): boolean {
  return a.region === b.region && a.zone === b.zone && a.subZone === b.subZone;
}

function buildHostSet(priority: number, hosts: readonly Host[], weightOf: LocalityWeightLookup): HostSet {
  const healthyHosts: Host[] = [];
  const degradedHosts: Host[] = [];
  const localities: { locality: Locality; weight: number | undefined; hosts: Host[] }[] = [];
  for (const host of hosts) {
    // An ejected host counts as unhealthy whatever its EDS status (it still serves in panic).
    if (host.outlierEjected === true) {
      /* neither healthy nor degraded */
    } else if (host.health === 'HEALTHY') healthyHosts.push(host);
    else if (host.health === 'DEGRADED') degradedHosts.push(host);
    let group = localities.find((l) => sameLocality(l.locality, host.locality));
    if (group === undefined) {
      group = { locality: host.locality, weight: weightOf(priority, host.locality), hosts: [] };
      localities.push(group);
    }
    group.hosts.push(host);
  }
  return { priority, hosts, healthyHosts, degradedHosts, localities };
}

const noLocalityWeights: LocalityWeightLookup = () => undefined;

/** An immutable snapshot of a cluster's hosts by priority, with the load computed from their health. */
export class PrioritySet {
  /** Indexed by priority; levels without hosts between used levels are present and empty. */
  readonly hostSets: readonly HostSet[];
  readonly load: PriorityLoad;
  readonly hosts: readonly Host[];
  readonly overprovisioningFactor: number;

  constructor(
    hosts: readonly Host[],
    overprovisioningFactor: number,
    healthyPanicThreshold: number,
    localityWeight: LocalityWeightLookup = noLocalityWeights,
  ) {
    this.hosts = hosts;
    this.overprovisioningFactor = overprovisioningFactor;
    let maxPriority = -1;
    for (const h of hosts) maxPriority = Math.max(maxPriority, h.priority);
    const byPriority: Host[][] = Array.from({ length: maxPriority + 1 }, () => []);
    for (const h of hosts) byPriority[h.priority].push(h);
    this.hostSets = byPriority.map((list, p) => buildHostSet(p, list, localityWeight));
    this.load = computePriorityLoad(
      this.hostSets.map((s) => ({
        total: s.hosts.length,
        healthy: s.healthyHosts.length,
        degraded: s.degradedHosts.length,
      })),
      overprovisioningFactor,
      healthyPanicThreshold,
    );
  }
}
