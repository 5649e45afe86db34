/**
 * Locality-weighted load balancing (Envoy's `locality_weighted_lb_config`): within one priority, a
 * locality is chosen first, in proportion to its configured weight times its availability, and the
 * cluster's policy then picks a host among that locality's usable hosts. A locality without a weight
 * receives nothing, as in Envoy. Built when hosts or their health change; a pick is one EDF step.
 */
import type { HostSet } from '../host-set.ts';
import type { Host, LbContext } from '../types.ts';
import { EdfScheduler } from './edf.ts';
import { isAttempted } from './picker.ts';
import type { HostPicker } from './picker.ts';

class LocalityPicker implements HostPicker {
  readonly #pickers: readonly HostPicker[];
  readonly #weights: readonly number[];
  readonly #schedule: EdfScheduler;

  constructor(pickers: readonly HostPicker[], weights: readonly number[]) {
    this.#pickers = pickers;
    this.#weights = weights;
    this.#schedule = new EdfScheduler(weights);
  }

  pick(ctx: LbContext): Host {
    const chosen = this.#schedule.peek();
    this.#schedule.pick(this.#weights[chosen]);
    const host = this.#pickers[chosen].pick(ctx);
    if (!isAttempted(ctx, host)) return host;
    // A retry whose every host here was tried: another locality may have one left.
    for (let i = 0; i < this.#pickers.length; i++) {
      if (i === chosen) continue;
      const other = this.#pickers[i].pick(ctx);
      if (!isAttempted(ctx, other)) return other;
    }
    return host;
  }
}

/**
 * The picker for `usable` (a priority's healthy, degraded or — in panic — all hosts), choosing a
 * locality of `set` first. A locality's effective weight is its weight × min(1, overprovisioning ×
 * usable / total) (in panic, its weight). Undefined when no locality has a positive effective weight.
 */
export function localityWeightedPicker(
  set: HostSet,
  usable: readonly Host[],
  panic: boolean,
  overprovisioningFactor: number,
  pickerFor: (hosts: readonly Host[]) => HostPicker,
): HostPicker | undefined {
  const usableSet = new Set(usable);
  const pickers: HostPicker[] = [];
  const weights: number[] = [];
  for (const locality of set.localities) {
    const weight = locality.weight ?? 0;
    if (weight <= 0) continue;
    const members = locality.hosts.filter((h) => usableSet.has(h));
    if (members.length === 0) continue;
    const availability = panic
      ? 1
      : Math.min(1, (overprovisioningFactor / 100) * (members.length / locality.hosts.length));
    pickers.push(pickerFor(members));
    weights.push(weight * availability);
  }
  if (pickers.length === 0) return undefined;
  if (pickers.length === 1) return pickers[0];
  return new LocalityPicker(pickers, weights);
}
