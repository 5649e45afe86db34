/**
 * MAGLEV: Google's Maglev consistent hashing. A lookup table of a prime size M is filled by letting
 * hosts claim slots in turn, each following its own permutation (offset + j × skip) mod M, with
 * heavier hosts taking turns more often; a request goes to table[hash mod M]. Lookups are O(1) and
 * a host change moves few keys.
 */
import { hashString } from '../../../core/hash.ts';
import type { ClusterConfig, Host, LbContext } from '../types.ts';
import { isAttempted, nextNotAttempted, randomUint32 } from './picker.ts';
import type { HostPicker, RandomSource } from './picker.ts';

const OFFSET_SEED = 0x6d61676c; // arbitrary, fixed: every proxy must build the same table
const SKIP_SEED = 0x65763031;

/**
 * Returns, for each table slot, the index (in `hosts`) of its owner. Hosts take turns in key order so
 * that the table depends only on the set of hosts, not the order they arrived in.
 */
export function buildMaglevTable(hosts: readonly Host[], tableSize: number): Uint32Array {
  const n = hosts.length;
  const order = hosts.map((_, i) => i).sort((a, b) => (hosts[a].key < hosts[b].key ? -1 : 1));
  const position = new Float64Array(n);
  const skip = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const key = hosts[i].key;
    position[i] = hashString(key, OFFSET_SEED) % tableSize;
    skip[i] = (hashString(key, SKIP_SEED) % (tableSize - 1)) + 1;
  }
  const maxWeight = hosts.reduce((max, h) => Math.max(max, h.weight), 0);
  // Integer credit per host: a host takes a slot whenever its accumulated weight reaches the
  // heaviest weight, so it takes weight/maxWeight of the turns, exactly.
  const credit = new Float64Array(n);
  const table = new Uint32Array(tableSize);
  const filled = new Uint8Array(tableSize);
  let remaining = tableSize;
  while (remaining > 0) {
    for (let k = 0; k < n && remaining > 0; k++) {
      const i = order[k];
      credit[i] += hosts[i].weight;
      if (credit[i] < maxWeight) continue;
      credit[i] -= maxWeight;
      let c = position[i];
      while (filled[c] === 1) c = (c + skip[i]) % tableSize;
      table[c] = i;
      filled[c] = 1;
      position[i] = (c + skip[i]) % tableSize;
      remaining--;
    }
  }
  return table;
}

class MaglevPicker implements HostPicker {
  private readonly hosts: readonly Host[];
  private readonly table: Uint32Array;
  private readonly random: RandomSource;

  constructor(hosts: readonly Host[], config: ClusterConfig, random: RandomSource) {
    this.hosts = hosts;
    this.table = buildMaglevTable(hosts, config.maglev.tableSize);
    this.random = random;
  }

  pick(ctx: LbContext): Host {
    const hash = ctx.hash === undefined ? randomUint32(this.random) : ctx.hash >>> 0;
    const table = this.table;
    const slot = hash % table.length;
    const host = this.hosts[table[slot]];
    if (!isAttempted(ctx, host)) return host;
    // Neighbouring slots belong to hosts in pseudo-random order: a consistent choice of alternative.
    const probes = Math.min(table.length, 8 * this.hosts.length);
    for (let k = 1; k < probes; k++) {
      const next = this.hosts[table[(slot + k) % table.length]];
      if (!isAttempted(ctx, next)) return next;
    }
    return nextNotAttempted(this.hosts, table[slot] + 1, ctx.attempted!, host);
  }
}

export function createMaglevPicker(
  hosts: readonly Host[],
  config: ClusterConfig,
  random: RandomSource,
): HostPicker {
  return new MaglevPicker(hosts, config, random);
}
