/**
 * ROUND_ROBIN: plain rotation when all weights are equal; otherwise earliest-deadline-first
 * scheduling, which interleaves hosts in proportion to their weights (Envoy does the same).
 */
import type { ClusterConfig, Host, LbContext } from '../types.ts';
import { EdfScheduler } from './edf.ts';
import { allWeightsEqual, isAttempted, nextNotAttempted, randomIndex } from './picker.ts';
import type { HostPicker, RandomSource } from './picker.ts';

class RotatingPicker implements HostPicker {
  private readonly hosts: readonly Host[];
  private next: number;

  constructor(hosts: readonly Host[], random: RandomSource) {
    this.hosts = hosts;
    // A random start keeps many proxies from sending their first requests to the same host.
    this.next = randomIndex(random, hosts.length);
  }

  pick(ctx: LbContext): Host {
    const i = this.next;
    this.next = i + 1 === this.hosts.length ? 0 : i + 1;
    const host = this.hosts[i];
    if (!isAttempted(ctx, host)) return host;
    return nextNotAttempted(this.hosts, i + 1, ctx.attempted!, host);
  }
}

class WeightedPicker implements HostPicker {
  private readonly hosts: readonly Host[];
  private readonly scheduler: EdfScheduler;

  constructor(hosts: readonly Host[], random: RandomSource) {
    this.hosts = hosts;
    this.scheduler = new EdfScheduler(hosts.map((h) => h.weight));
    // Start at a random point of the schedule, for the same reason as the rotating picker.
    const total = hosts.reduce((sum, h) => sum + h.weight, 0);
    const skip = randomIndex(random, Math.min(total, 4096));
    for (let i = 0; i < skip; i++) this.step();
  }

  private step(): Host {
    const i = this.scheduler.peek();
    this.scheduler.pick(this.hosts[i].weight);
    return this.hosts[i];
  }

  pick(ctx: LbContext): Host {
    const first = this.step();
    if (!isAttempted(ctx, first)) return first;
    // Keep following the schedule, so retries are spread by weight too; then give up and scan.
    for (let k = 1; k < this.hosts.length; k++) {
      const host = this.step();
      if (!isAttempted(ctx, host)) return host;
    }
    return nextNotAttempted(this.hosts, 0, ctx.attempted!, first);
  }
}

export function createRoundRobinPicker(
  hosts: readonly Host[],
  _config: ClusterConfig,
  random: RandomSource,
): HostPicker {
  return allWeightsEqual(hosts) ? new RotatingPicker(hosts, random) : new WeightedPicker(hosts, random);
}
