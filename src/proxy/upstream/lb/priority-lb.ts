/**
 * The cluster load balancer: chooses a priority level (and healthy, degraded or — in panic — all
 * hosts of it) from the priority load, then lets the policy pick within that list. Built once per
 * host or health change; chooseHost does a table lookup and one policy pick.
 */
import { computePriorityLoad } from '../host-set.ts';
import type { HostSet, PriorityLoad, PrioritySet } from '../host-set.ts';
import type { ClusterConfig, Host, LbContext, LoadBalancer } from '../types.ts';
import { isConsistentHashPolicy, pickerFactoryFor } from './factory.ts';
import { localityWeightedPicker } from './locality-weighted.ts';
import { isAttempted, randomIndex } from './picker.ts';
import type { HostPicker, RandomSource } from './picker.ts';

/** Picks the only host there is. */
class SingleHostPicker implements HostPicker {
  private readonly host: Host;
  constructor(host: Host) {
    this.host = host;
  }
  pick(): Host {
    return this.host;
  }
}

const NO_HOSTS = -1;

class PriorityLoadBalancer implements LoadBalancer {
  /** Distinct pickers, one per host list that receives load (retries leaving priorities out may add some). */
  private readonly pickers: HostPicker[] = [];
  /** For each percent of load 0..99, the index of its picker, or NO_HOSTS. */
  private readonly slots: Int32Array;
  /** Set when every percent goes to one picker: no priority choice per request. */
  private readonly only: HostPicker | null;
  private readonly alwaysEmpty: boolean;
  private readonly hashChoosesPriority: boolean;
  private readonly random: RandomSource;
  private readonly set: PrioritySet;
  private readonly config: ClusterConfig;
  private readonly indexFor: (hostSet: HostSet, hosts: readonly Host[], panic: boolean) => number;

  constructor(set: PrioritySet, config: ClusterConfig, random: RandomSource) {
    this.random = random;
    this.set = set;
    this.config = config;
    this.hashChoosesPriority = isConsistentHashPolicy(config.lbPolicy);
    const factory = pickerFactoryFor(config.lbPolicy);
    const pickers = this.pickers;
    const pickerOf = new Map<readonly Host[], number>();
    const policyPicker = (hosts: readonly Host[]): HostPicker =>
      hosts.length === 1 ? new SingleHostPicker(hosts[0]) : factory(hosts, config, random);
    // A hash policy keeps its stickiness: it picks over the whole level, whatever the locality weights.
    const byLocality = config.localityWeighted && !this.hashChoosesPriority;
    this.indexFor = (hostSet, hosts, panic) => {
      if (hosts.length === 0) return NO_HOSTS;
      let index = pickerOf.get(hosts);
      if (index === undefined) {
        const picker = byLocality
          ? localityWeightedPicker(hostSet, hosts, panic, set.overprovisioningFactor, policyPicker)
          : policyPicker(hosts);
        if (picker === undefined) return NO_HOSTS;
        index = pickers.length;
        pickers.push(picker);
        pickerOf.set(hosts, index);
      }
      return index;
    };
    this.slots = this.slotsFor(set.load);
    const first = this.slots[0];
    const uniform = this.slots.every((s) => s === first);
    this.only = uniform && first !== NO_HOSTS ? pickers[first] : null;
    this.alwaysEmpty = uniform && first === NO_HOSTS;
  }

  /** Each percent of `load` → its picker. Envoy's order: healthy load of every level first, then degraded. */
  private slotsFor(load: PriorityLoad): Int32Array {
    const slots = new Int32Array(100).fill(NO_HOSTS);
    const { healthy, degraded, panic } = load;
    const hostSets = this.set.hostSets;
    let slot = 0;
    const assign = (percent: number, picker: number): void => {
      for (let k = 0; k < percent && slot < 100; k++) slots[slot++] = picker;
    };
    hostSets.forEach((hs, p) => {
      if (healthy[p] > 0)
        assign(healthy[p], this.indexFor(hs, panic[p] ? hs.hosts : hs.healthyHosts, panic[p]));
    });
    hostSets.forEach((hs, p) => {
      if (degraded[p] > 0)
        assign(degraded[p], this.indexFor(hs, panic[p] ? hs.hosts : hs.degradedHosts, panic[p]));
    });
    return slots;
  }

  /**
   * The slots of the priority load recomputed as if the excluded priorities had no available host (a retry
   * under previous_priorities); the normal slots when that would leave no level with any.
   */
  private slotsExcluding(excluded: ReadonlySet<number>): Int32Array {
    let available = false;
    const levels = this.set.hostSets.map((hs) => {
      const out = excluded.has(hs.priority);
      const healthy = out ? 0 : hs.healthyHosts.length;
      const degraded = out ? 0 : hs.degradedHosts.length;
      if (healthy + degraded > 0) available = true;
      return { total: hs.hosts.length, healthy, degraded };
    });
    if (!available) return this.slots;
    const load = computePriorityLoad(
      levels,
      this.set.overprovisioningFactor,
      this.config.healthyPanicThreshold,
    );
    return this.slotsFor(load);
  }

  chooseHost(ctx: LbContext): Host | null {
    const excluded = ctx.excludedPriorities;
    const slots = excluded !== undefined && excluded.size > 0 ? this.slotsExcluding(excluded) : undefined;
    if (slots === undefined) {
      const only = this.only;
      if (only !== null) return only.pick(ctx);
      if (this.alwaysEmpty) return null;
    }
    const percent =
      this.hashChoosesPriority && ctx.hash !== undefined
        ? (ctx.hash >>> 0) % 100
        : randomIndex(this.random, 100);
    const index = (slots ?? this.slots)[percent];
    if (index === NO_HOSTS) return null;
    const host = this.pickers[index].pick(ctx);
    if (!isAttempted(ctx, host)) return host;
    // Every host of the chosen level was tried: another level that receives load may have one left.
    for (let i = 0; i < this.pickers.length; i++) {
      if (i === index) continue;
      const other = this.pickers[i].pick(ctx);
      if (!isAttempted(ctx, other)) return other;
    }
    return host;
  }
}

/** Builds the load balancer for a snapshot of hosts. `random` returns numbers in [0, 1). */
export function createLoadBalancer(
  set: PrioritySet,
  config: ClusterConfig,
  random: RandomSource = Math.random,
): LoadBalancer {
  return new PriorityLoadBalancer(set, config, random);
}
