/**
 * The policy half of a load balancer: picks one host out of a fixed, non-empty list. The priority
 * and panic logic (priority-lb.ts) decides which list; a policy never sees hosts it must not pick.
 */
import type { ClusterConfig, Host, LbContext } from '../types.ts';

/** Returns a number in [0, 1). Injectable so tests are reproducible. */
export type RandomSource = () => number;

export interface HostPicker {
  /**
   * Picks a host. When `ctx.attempted` is non-empty, returns a host outside it whenever the list
   * has one; otherwise returns an attempted host rather than nothing.
   */
  pick(ctx: LbContext): Host;
}

/** Builds a policy's picker for one host list (never empty). Called when hosts change, not per request. */
export type PickerFactory = (
  hosts: readonly Host[],
  config: ClusterConfig,
  random: RandomSource,
) => HostPicker;

export function allWeightsEqual(hosts: readonly Host[]): boolean {
  for (let i = 1; i < hosts.length; i++) if (hosts[i].weight !== hosts[0].weight) return false;
  return true;
}

/** A uniformly random integer in [0, n). */
export function randomIndex(random: RandomSource, n: number): number {
  return Math.floor(random() * n);
}

/** A uniformly random unsigned 32-bit integer. */
export function randomUint32(random: RandomSource): number {
  return Math.floor(random() * 4294967296) >>> 0;
}

export function isAttempted(ctx: LbContext, host: Host): boolean {
  const attempted = ctx.attempted;
  return attempted !== undefined && attempted.size > 0 && attempted.has(host);
}

/**
 * The first host not yet attempted, scanning from `start` and wrapping; `fallback` when every host
 * was attempted. The slow path for retries only.
 */
export function nextNotAttempted(
  hosts: readonly Host[],
  start: number,
  attempted: ReadonlySet<Host>,
  fallback: Host,
): Host {
  const n = hosts.length;
  for (let i = 0; i < n; i++) {
    const h = hosts[(start + i) % n];
    if (!attempted.has(h)) return h;
  }
  return fallback;
}
