/** Maps an lb_policy to the picker that implements it. */
import type { LbPolicy } from '../types.ts';
import { createLeastRequestPicker } from './least-request.ts';
import { createMaglevPicker } from './maglev.ts';
import { createPeakEwmaPicker } from './peak-ewma.ts';
import type { PickerFactory } from './picker.ts';
import { createRandomPicker } from './random.ts';
import { createRingHashPicker } from './ring-hash.ts';
import { createRoundRobinPicker } from './round-robin.ts';

const factories: Readonly<Record<LbPolicy, PickerFactory>> = {
  ROUND_ROBIN: createRoundRobinPicker,
  LEAST_REQUEST: createLeastRequestPicker,
  RANDOM: createRandomPicker,
  RING_HASH: createRingHashPicker,
  MAGLEV: createMaglevPicker,
  PEAK_EWMA: createPeakEwmaPicker,
};

export function pickerFactoryFor(policy: LbPolicy): PickerFactory {
  return factories[policy];
}

/** Policies that place a request by its hash; they also use the hash to choose the priority level. */
export function isConsistentHashPolicy(policy: LbPolicy): boolean {
  return policy === 'RING_HASH' || policy === 'MAGLEV';
}
