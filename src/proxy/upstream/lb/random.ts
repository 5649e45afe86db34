/** RANDOM: a uniformly random host, or weighted by endpoint weight when weights differ. */
import type { ClusterConfig, Host, LbContext } from '../types.ts';
import { allWeightsEqual, isAttempted, nextNotAttempted, randomIndex } from './picker.ts';
import type { HostPicker, RandomSource } from './picker.ts';

class UniformPicker implements HostPicker {
  private readonly hosts: readonly Host[];
  private readonly random: RandomSource;

  constructor(hosts: readonly Host[], random: RandomSource) {
    this.hosts = hosts;
    this.random = random;
  }

  pick(ctx: LbContext): Host {
    const i = randomIndex(this.random, this.hosts.length);
    const host = this.hosts[i];
    if (!isAttempted(ctx, host)) return host;
    return nextNotAttempted(this.hosts, i + 1, ctx.attempted!, host);
  }
}

class WeightedPicker implements HostPicker {
  private readonly hosts: readonly Host[];
  private readonly random: RandomSource;
  /** cumulative[i] = sum of the weights of hosts 0..i. */
  private readonly cumulative: Float64Array;
  private readonly total: number;

  constructor(hosts: readonly Host[], random: RandomSource) {
    this.hosts = hosts;
    this.random = random;
    this.cumulative = new Float64Array(hosts.length);
    let sum = 0;
    for (let i = 0; i < hosts.length; i++) this.cumulative[i] = sum += hosts[i].weight;
    this.total = sum;
  }

  pick(ctx: LbContext): Host {
    const target = this.random() * this.total;
    const cumulative = this.cumulative;
    // The first host whose cumulative weight exceeds the target.
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cumulative[mid] > target) hi = mid;
      else lo = mid + 1;
    }
    const host = this.hosts[lo];
    if (!isAttempted(ctx, host)) return host;
    return nextNotAttempted(this.hosts, lo + 1, ctx.attempted!, host);
  }
}

export function createRandomPicker(
  hosts: readonly Host[],
  _config: ClusterConfig,
  random: RandomSource,
): HostPicker {
  return allWeightsEqual(hosts) ? new UniformPicker(hosts, random) : new WeightedPicker(hosts, random);
}
