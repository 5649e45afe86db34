/**
 * PEAK_EWMA (a Weft extension, after Finagle and Linkerd): power of two choices over a latency-aware
 * cost. Two distinct hosts are sampled at random (by endpoint weight) and the one with the lower
 * peak-EWMA latency × (active requests + 1) wins; on a tie the first sample wins, so hosts that look
 * alike (e.g. new hosts at the default RTT) share load in proportion to their weights.
 *
 * The estimates live beside the hosts, not in the picker: pickers are rebuilt whenever hosts or their
 * health change, and the latency history must survive that. The router reports each response's
 * latency with recordResponseLatency().
 */
import type { ClusterConfig, Host, LbContext, PeakEwmaConfig } from '../types.ts';
import { PeakEwmaEstimator } from './peak-ewma-estimator.ts';
import { allWeightsEqual, isAttempted, randomIndex } from './picker.ts';
import type { HostPicker, RandomSource } from './picker.ts';

/** Milliseconds from an arbitrary origin; injectable so tests control time. */
export type Clock = () => number;

export const DEFAULT_PEAK_EWMA: PeakEwmaConfig = { decayMs: 10_000, defaultRttMs: 30 };

const estimators = new WeakMap<Host, PeakEwmaEstimator>();

const monotonicNow: Clock = () => performance.now();

/**
 * Records how long `host` took to start answering. A no-op for hosts of clusters that do not use
 * PEAK_EWMA (they have no estimator), so the router may call it for every response.
 */
export function recordResponseLatency(host: Host, latencyMs: number, nowMs?: number): void {
  const e = estimators.get(host);
  if (e !== undefined) e.observe(latencyMs, nowMs ?? monotonicNow());
}

/** The host's estimator, created (or replaced after a config change) with this cluster's settings. */
export function estimatorFor(host: Host, config: PeakEwmaConfig, nowMs: number): PeakEwmaEstimator {
  let e = estimators.get(host);
  if (e === undefined || e.decayMs !== config.decayMs || e.defaultRttMs !== config.defaultRttMs) {
    e = new PeakEwmaEstimator(config.decayMs, config.defaultRttMs, nowMs);
    estimators.set(host, e);
  }
  return e;
}

class PeakEwmaPicker implements HostPicker {
  private readonly hosts: readonly Host[];
  private readonly estimators: readonly PeakEwmaEstimator[];
  /** Running sums of the weights, or null when all weights are equal (plain uniform sampling). */
  private readonly cumulative: Float64Array | null;
  private readonly random: RandomSource;
  private readonly clock: Clock;

  constructor(hosts: readonly Host[], config: PeakEwmaConfig, random: RandomSource, clock: Clock) {
    this.hosts = hosts;
    this.random = random;
    this.clock = clock;
    const now = clock();
    this.estimators = hosts.map((h) => estimatorFor(h, config, now));
    if (allWeightsEqual(hosts)) {
      this.cumulative = null;
    } else {
      const sums = new Float64Array(hosts.length);
      let total = 0;
      hosts.forEach((h, i) => {
        total += h.weight;
        sums[i] = total;
      });
      this.cumulative = sums;
    }
  }

  private cost(index: number, now: number): number {
    return this.estimators[index].estimate(now) * (this.hosts[index].activeRequests + 1);
  }

  /** A random index other than `exclude` (-1: none excluded), by weight. */
  private sample(exclude: number): number {
    const n = this.hosts.length;
    const sums = this.cumulative;
    if (sums === null) {
      if (exclude < 0) return randomIndex(this.random, n);
      const i = randomIndex(this.random, n - 1);
      return i >= exclude ? i + 1 : i;
    }
    const excludedWeight = exclude < 0 ? 0 : this.hosts[exclude].weight;
    let r = this.random() * (sums[n - 1] - excludedWeight);
    // Skip over the excluded host's slice of the weight line.
    if (exclude >= 0 && r >= sums[exclude] - excludedWeight) r += excludedWeight;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sums[mid] > r) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  pick(ctx: LbContext): Host {
    const hosts = this.hosts;
    if (hosts.length === 1) return hosts[0];
    const now = this.clock();
    const a = this.sample(-1);
    const b = this.sample(a);
    const aFree = !isAttempted(ctx, hosts[a]);
    const bFree = !isAttempted(ctx, hosts[b]);
    if (aFree && bFree) return this.cost(b, now) < this.cost(a, now) ? hosts[b] : hosts[a];
    if (aFree) return hosts[a];
    if (bFree) return hosts[b];
    return this.cheapestNotAttempted(ctx.attempted!, now) ?? hosts[a];
  }

  /** Retry slow path: the cheapest host not yet attempted, if any. */
  private cheapestNotAttempted(attempted: ReadonlySet<Host>, now: number): Host | undefined {
    let best = -1;
    let bestCost = Infinity;
    for (let i = 0; i < this.hosts.length; i++) {
      if (attempted.has(this.hosts[i])) continue;
      const c = this.cost(i, now);
      if (c < bestCost) {
        best = i;
        bestCost = c;
      }
    }
    return best < 0 ? undefined : this.hosts[best];
  }
}

export function createPeakEwmaPicker(
  hosts: readonly Host[],
  config: ClusterConfig,
  random: RandomSource,
  clock: Clock = monotonicNow,
): HostPicker {
  return new PeakEwmaPicker(hosts, config.peakEwma ?? DEFAULT_PEAK_EWMA, random, clock);
}
