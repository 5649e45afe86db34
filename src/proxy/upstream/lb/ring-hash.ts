/**
 * RING_HASH: a ketama-style consistent hash ring. Each host owns points hashString(`${key}_${i}`)
 * in proportion to its weight; a request's hash maps to the first point at or after it (wrapping).
 * Requests without a hash use a random point, which still spreads load by weight.
 */
import { hashString } from '../../../core/hash.ts';
import type { ClusterConfig, Host, LbContext } from '../types.ts';
import { isAttempted, nextNotAttempted, randomUint32 } from './picker.ts';
import type { HostPicker, RandomSource } from './picker.ts';

/** Host indices are packed below the hash in one float64 sort key: 2^21 hosts is far beyond any cluster. */
const HOST_BITS = 2 ** 21;

/**
 * How many points a host of weight 1 gets. A power of two, the smallest that gives the ring at least
 * `minimumRingSize` points and the lightest host at least one. Rounding to a power of two keeps the
 * count unchanged by most host additions and removals, so only the keys of the hosts that came or
 * went move (Envoy's exact scaling changes every host's point count whenever the host set changes,
 * moving more keys than necessary). Capped by `maximumRingSize`.
 */
export function pointsPerUnitWeight(
  weights: readonly number[],
  minimumRingSize: number,
  maximumRingSize: number,
): number {
  const total = weights.reduce((a, b) => a + b, 0);
  const lightest = weights.reduce((min, w) => Math.min(min, w), Infinity);
  let perUnit = 1;
  while (perUnit * total < minimumRingSize || perUnit * lightest < 1) perUnit *= 2;
  while (perUnit / 2 >= 1 / lightest && (perUnit / 2) * total >= minimumRingSize) perUnit /= 2;
  if (perUnit * total > maximumRingSize) perUnit = maximumRingSize / total;
  return perUnit;
}

export interface Ring {
  /** Point hashes in ascending order. */
  readonly hashes: Uint32Array;
  /** The index (in the host list) of the host owning each point. */
  readonly owners: Uint32Array;
  /**
   * A lookup accelerator: starts[b] is the first point whose hash's top `bits` bits are >= b, so
   * a lookup scans only the (about one) points sharing its top bits instead of a binary search.
   */
  readonly starts: Uint32Array;
  readonly shift: number;
}

function buildStarts(hashes: Uint32Array): { starts: Uint32Array; shift: number } {
  // About one bucket per point; at most 2^23 buckets, the largest ring's size.
  const bits = Math.min(23, Math.max(1, Math.ceil(Math.log2(hashes.length))));
  const shift = 32 - bits;
  const buckets = 2 ** bits;
  const starts = new Uint32Array(buckets + 1);
  let i = 0;
  for (let b = 0; b <= buckets; b++) {
    while (i < hashes.length && hashes[i] >>> shift < b) i++;
    starts[b] = i;
  }
  return { starts, shift };
}

export function buildRing(hosts: readonly Host[], minimumRingSize: number, maximumRingSize: number): Ring {
  if (hosts.length >= HOST_BITS) throw new Error(`ring hash supports at most ${HOST_BITS - 1} hosts`);
  const perUnit = pointsPerUnitWeight(
    hosts.map((h) => h.weight),
    minimumRingSize,
    maximumRingSize,
  );
  const counts = hosts.map((h) => Math.max(1, Math.round(perUnit * h.weight)));
  const size = counts.reduce((a, b) => a + b, 0);
  const keys = new Float64Array(size);
  let n = 0;
  for (let h = 0; h < hosts.length; h++) {
    const prefix = `${hosts[h].key}_`;
    for (let i = 0; i < counts[h]; i++) keys[n++] = hashString(prefix + String(i)) * HOST_BITS + h;
  }
  keys.sort();
  const hashes = new Uint32Array(size);
  const owners = new Uint32Array(size);
  for (let i = 0; i < size; i++) {
    const hash = Math.floor(keys[i] / HOST_BITS);
    hashes[i] = hash;
    owners[i] = keys[i] - hash * HOST_BITS;
  }
  return { hashes, owners, ...buildStarts(hashes) };
}

/** The index of the first point whose hash is >= `hash`, wrapping to 0 past the last. */
export function ringIndex(ring: Ring, hash: number): number {
  const { hashes, starts } = ring;
  const bucket = hash >>> ring.shift;
  let i = starts[bucket];
  const end = starts[bucket + 1];
  while (i < end && hashes[i] < hash) i++;
  return i === hashes.length ? 0 : i;
}

// A retry walks at most this many points clockwise (looking for a host not yet tried) before scanning hosts.
const MAX_WALK = 4096;

class RingHashPicker implements HostPicker {
  private readonly hosts: readonly Host[];
  private readonly ring: Ring;
  private readonly random: RandomSource;

  constructor(hosts: readonly Host[], config: ClusterConfig, random: RandomSource) {
    this.hosts = hosts;
    this.ring = buildRing(hosts, config.ringHash.minimumRingSize, config.ringHash.maximumRingSize);
    this.random = random;
  }

  pick(ctx: LbContext): Host {
    const hash = ctx.hash === undefined ? randomUint32(this.random) : ctx.hash >>> 0;
    const { hashes, owners } = this.ring;
    const at = ringIndex(this.ring, hash);
    const host = this.hosts[owners[at]];
    if (!isAttempted(ctx, host)) return host;
    // The next distinct hosts clockwise: where the key would go if this host were removed.
    const size = hashes.length;
    const walk = Math.min(size, MAX_WALK);
    for (let step = 1; step < walk; step++) {
      const next = this.hosts[owners[(at + step) % size]];
      if (!isAttempted(ctx, next)) return next;
    }
    return nextNotAttempted(this.hosts, owners[at] + 1, ctx.attempted!, host);
  }
}

export function createRingHashPicker(
  hosts: readonly Host[],
  config: ClusterConfig,
  random: RandomSource,
): HostPicker {
  return new RingHashPicker(hosts, config, random);
}
