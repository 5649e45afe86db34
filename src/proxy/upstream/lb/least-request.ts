/**
 * LEAST_REQUEST. Equal weights: the power of N choices (sample choice_count hosts at random, take
 * the one with the fewest active requests). Unequal weights: earliest-deadline-first scheduling with
 * each host's weight divided by (active requests + 1), Envoy's formula with active_request_bias 1.0;
 * as in Envoy, a host's effective weight is re-evaluated each time it is picked.
 */
import type { ClusterConfig, Host, LbContext } from '../types.ts';
import { EdfScheduler } from './edf.ts';
import { allWeightsEqual, isAttempted, nextNotAttempted, randomIndex } from './picker.ts';
import type { HostPicker, RandomSource } from './picker.ts';

/** The least loaded host not yet attempted (retry slow path). */
function leastLoadedNotAttempted(hosts: readonly Host[], attempted: ReadonlySet<Host>, fallback: Host): Host {
  let best: Host | undefined;
  for (const h of hosts) {
    if (attempted.has(h)) continue;
    if (best === undefined || h.activeRequests < best.activeRequests) best = h;
  }
  return best ?? fallback;
}

class ChoicesPicker implements HostPicker {
  private readonly hosts: readonly Host[];
  private readonly choices: number;
  private readonly random: RandomSource;

  constructor(hosts: readonly Host[], choices: number, random: RandomSource) {
    this.hosts = hosts;
    this.choices = choices;
    this.random = random;
  }

  pick(ctx: LbContext): Host {
    const hosts = this.hosts;
    let best: Host | undefined;
    let sampled: Host = hosts[0];
    for (let c = 0; c < this.choices; c++) {
      sampled = hosts[randomIndex(this.random, hosts.length)];
      if (isAttempted(ctx, sampled)) continue;
      if (best === undefined || sampled.activeRequests < best.activeRequests) best = sampled;
    }
    if (best !== undefined) return best;
    if (!isAttempted(ctx, sampled)) return sampled;
    return leastLoadedNotAttempted(hosts, ctx.attempted!, sampled);
  }
}

class WeightedPicker implements HostPicker {
  private readonly hosts: readonly Host[];
  private readonly scheduler: EdfScheduler;

  constructor(hosts: readonly Host[]) {
    this.hosts = hosts;
    this.scheduler = new EdfScheduler(hosts.map((h) => h.weight));
  }

  private step(): Host {
    const host = this.hosts[this.scheduler.peek()];
    this.scheduler.pick(host.weight / (host.activeRequests + 1));
    return host;
  }

  pick(ctx: LbContext): Host {
    const first = this.step();
    if (!isAttempted(ctx, first)) return first;
    for (let k = 1; k < this.hosts.length; k++) {
      const host = this.step();
      if (!isAttempted(ctx, host)) return host;
    }
    return nextNotAttempted(this.hosts, 0, ctx.attempted!, first);
  }
}

export function createLeastRequestPicker(
  hosts: readonly Host[],
  config: ClusterConfig,
  random: RandomSource,
): HostPicker {
  return allWeightsEqual(hosts)
    ? new ChoicesPicker(hosts, config.leastRequest.choiceCount, random)
    : new WeightedPicker(hosts);
}
