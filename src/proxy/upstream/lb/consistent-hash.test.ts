/** RING_HASH and MAGLEV: stability of the key → host mapping, and how few keys move on host changes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom, testClusterConfig, testHosts } from '../testing.ts';
import type { Host } from '../types.ts';
import { buildMaglevTable, createMaglevPicker } from './maglev.ts';
import { buildRing, createRingHashPicker, pointsPerUnitWeight, ringIndex } from './ring-hash.ts';

const KEYS = 20_000;

function keys(seed: number): Uint32Array {
  const random = seededRandom(seed);
  return Uint32Array.from({ length: KEYS }, () => Math.floor(random() * 2 ** 32));
}

function ringMapper(hosts: readonly Host[], min = 1024, max = 8 * 1024 * 1024): (hash: number) => Host {
  const ring = buildRing(hosts, min, max);
  return (hash) => hosts[ring.owners[ringIndex(ring, hash)]];
}

function maglevMapper(hosts: readonly Host[], size = 65537): (hash: number) => Host {
  const table = buildMaglevTable(hosts, size);
  return (hash) => hosts[table[hash % size]];
}

function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const random = seededRandom(seed);
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

const MAPPERS = { RING_HASH: ringMapper, MAGLEV: maglevMapper };

for (const [policy, mapper] of Object.entries(MAPPERS)) {
  describe(`${policy} consistency`, () => {
    it('maps the same hash to the same host, whatever the order hosts arrive in', () => {
      const hosts = testHosts(Array.from({ length: 8 }, () => ({})));
      const a = mapper(hosts);
      const b = mapper(shuffled(hosts, 3));
      for (const k of keys(1)) assert.equal(a(k), b(k));
    });

    it('picks by ctx.hash deterministically through the picker', () => {
      const hosts = testHosts([{}, {}, {}, {}]);
      const config = testClusterConfig({ lbPolicy: policy as 'RING_HASH' | 'MAGLEV' });
      const create = policy === 'RING_HASH' ? createRingHashPicker : createMaglevPicker;
      const p1 = create(hosts, config, seededRandom(1));
      const p2 = create(hosts, config, seededRandom(2));
      const map = mapper(hosts);
      for (const k of keys(2).subarray(0, 2000)) {
        assert.equal(p1.pick({ hash: k }), map(k));
        assert.equal(p2.pick({ hash: k }), map(k));
      }
    });

    it('moves about 1/N of the keys when one of N hosts is removed, and only those', () => {
      const n = 10;
      const hosts = testHosts(Array.from({ length: n }, () => ({})));
      const before = mapper(hosts);
      const removed = hosts[4];
      const after = mapper(hosts.filter((h) => h !== removed));
      let onRemoved = 0;
      let movedElsewhere = 0;
      for (const k of keys(3)) {
        const b = before(k);
        if (b === removed) onRemoved++;
        else if (after(k) !== b) movedElsewhere++;
      }
      // The removed host owned ~1/N of the key space: ±5 sigma of sampling and of ring arc variance.
      const p = 1 / n;
      const tolerance = 5 * Math.sqrt(KEYS * p * (1 - p) + (KEYS * KEYS * p * (1 - p)) / 1280);
      assert.ok(Math.abs(onRemoved - KEYS * p) <= tolerance, `removed host owned ${onRemoved} keys`);
      // Keys of the other hosts stay put: exactly for the ring (its point counts do not change
      // here), nearly for Maglev (its table is rebuilt, the paper reports small extra disruption).
      const allowed = policy === 'RING_HASH' ? 0 : (KEYS * p) / 4;
      assert.ok(
        movedElsewhere <= allowed,
        `${movedElsewhere} keys of remaining hosts moved (allowed ${allowed})`,
      );
    });

    it('moves only keys to the new host when one host is added', () => {
      const hosts = testHosts(Array.from({ length: 9 }, () => ({})));
      const extra = testHosts([{}])[0];
      const before = mapper(hosts);
      const after = mapper([...hosts, extra]);
      let toNew = 0;
      let movedElsewhere = 0;
      for (const k of keys(4)) {
        const a = after(k);
        if (a === extra) toNew++;
        else if (a !== before(k)) movedElsewhere++;
      }
      assert.ok(toNew > KEYS / 20 && toNew < KEYS / 5, `new host got ${toNew} keys`);
      assert.ok(
        movedElsewhere <= (policy === 'RING_HASH' ? 0 : KEYS / 40),
        `${movedElsewhere} keys moved elsewhere`,
      );
    });

    it('retries a key on the host it would move to if its host were removed', () => {
      const hosts = testHosts(Array.from({ length: 6 }, () => ({})));
      const config = testClusterConfig({ lbPolicy: policy as 'RING_HASH' | 'MAGLEV' });
      const create = policy === 'RING_HASH' ? createRingHashPicker : createMaglevPicker;
      const picker = create(hosts, config, seededRandom(1));
      for (const k of keys(5).subarray(0, 200)) {
        const first = picker.pick({ hash: k });
        const retry = picker.pick({ hash: k, attempted: new Set([first]) });
        assert.notEqual(retry, first);
        // Deterministic, so every proxy retries a key on the same host.
        assert.equal(picker.pick({ hash: k, attempted: new Set([first]) }), retry);
        if (policy === 'RING_HASH') assert.equal(retry, mapper(hosts.filter((h) => h !== first))(k));
      }
    });
  });
}

describe('ring construction', () => {
  it('gives the lightest host a power-of-two number of points and the ring at least the minimum size', () => {
    assert.equal(pointsPerUnitWeight([1, 1, 1], 1024, 8388608), 512);
    assert.equal(pointsPerUnitWeight(Array(10).fill(1), 1024, 8388608), 128);
    assert.equal(pointsPerUnitWeight(Array(9).fill(1), 1024, 8388608), 128);
    assert.equal(pointsPerUnitWeight([1000, 3000], 1024, 8388608), 0.5);
    // The maximum caps the ring even when hosts would deserve more points.
    assert.equal(pointsPerUnitWeight([1, 1], 8000, 10000), 4096);
    assert.equal(pointsPerUnitWeight([1, 3], 8000, 6000), 1500);
  });

  it('gives hosts points in proportion to their weights', () => {
    const hosts = testHosts([{ weight: 1 }, { weight: 2 }, { weight: 5 }]);
    const ring = buildRing(hosts, 1024, 8388608);
    const counts = [0, 0, 0];
    for (const owner of ring.owners) counts[owner]++;
    assert.deepEqual(counts, [128, 256, 640]);
    for (let i = 1; i < ring.hashes.length; i++) assert.ok(ring.hashes[i - 1] <= ring.hashes[i]);
  });

  it('respects maximum_ring_size', () => {
    const hosts = testHosts([{ weight: 1 }, { weight: 1 }, { weight: 1 }, { weight: 1 }]);
    const ring = buildRing(hosts, 4096, 2000);
    assert.equal(ring.hashes.length, 2000);
  });

  it('wraps around past the last point', () => {
    const hosts = testHosts([{}, {}]);
    const ring = buildRing(hosts, 16, 1024);
    const last = ring.hashes[ring.hashes.length - 1];
    assert.ok(last < 0xffffffff);
    assert.equal(ringIndex(ring, last + 1), 0);
    assert.equal(ringIndex(ring, 0xffffffff), 0);
    assert.equal(ringIndex(ring, 0), 0);
    assert.equal(ringIndex(ring, ring.hashes[3]), 3);
    assert.equal(ringIndex(ring, ring.hashes[3] + 1), 4);
  });

  it('finds the same point as a binary search would', () => {
    for (const size of [1, 7, 1000, 5000]) {
      const hosts = testHosts(Array.from({ length: Math.min(size, 10) }, () => ({})));
      const ring = buildRing(hosts, size, size);
      for (const hash of [...keys(size), 0, 0xffffffff, ...ring.hashes.subarray(0, 100)]) {
        let lo = 0;
        let hi = ring.hashes.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (ring.hashes[mid] < hash) lo = mid + 1;
          else hi = mid;
        }
        assert.equal(ringIndex(ring, hash), lo === ring.hashes.length ? 0 : lo);
      }
    }
  });
});

describe('maglev table', () => {
  it('gives hosts table entries in proportion to their weights', () => {
    const hosts = testHosts([{ weight: 1 }, { weight: 2 }, { weight: 3 }, { weight: 4 }]);
    const size = 65537;
    const table = buildMaglevTable(hosts, size);
    const counts = [0, 0, 0, 0];
    for (const owner of table) counts[owner]++;
    counts.forEach((c, i) => assert.ok(Math.abs(c - (size * hosts[i].weight) / 10) <= 1, `host ${i}: ${c}`));
  });

  it('fills small tables', () => {
    const hosts = testHosts([{}, {}, {}]);
    const table = buildMaglevTable(hosts, 7);
    const counts = [0, 0, 0];
    for (const owner of table) counts[owner]++;
    assert.deepEqual([...counts].sort(), [2, 2, 3]);
  });
});
