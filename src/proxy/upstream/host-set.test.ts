/** Envoy's priority load, checked against the examples of Envoy's "Priority levels" and "Panic threshold" docs. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { computePriorityLoad, PrioritySet } from './host-set.ts';
import type { PriorityCounts } from './host-set.ts';
import { testHosts } from './testing.ts';

/** A level of 100 hosts with the given percentages healthy and degraded. */
const level = (healthy: number, degraded = 0): PriorityCounts => ({ total: 100, healthy, degraded });
const load = (levels: PriorityCounts[], threshold = 50) => computePriorityLoad(levels, 140, threshold);

describe('priority load', () => {
  it('spills from P0 to P1 as P0 loses health (two levels, P1 healthy)', () => {
    const cases: [number, number][] = [
      [100, 100],
      [72, 100],
      [71, 99],
      [50, 70],
      [25, 35],
      [0, 0],
    ];
    for (const [healthy, toP0] of cases) {
      const l = load([level(healthy), level(100)]);
      assert.deepEqual(l.healthy, [toP0, 100 - toP0], `P0 ${healthy}% healthy`);
      assert.deepEqual(l.panic, [false, false]);
    }
  });

  it('normalizes when the levels together are below 100% health', () => {
    assert.deepEqual(load([level(25), level(25)], 0).healthy, [50, 50]);
    assert.deepEqual(load([level(50), level(50)]).healthy, [70, 30]);
    // Health 35 + 35 + 28 = 98: 35/35/28 after scaling, the rounding leftover to the first level.
    assert.deepEqual(load([level(25), level(25), level(20)], 0).healthy, [37, 35, 28]);
    assert.deepEqual(load([level(25), level(25), level(100)]).healthy, [35, 35, 30]);
  });

  it('honours the overprovisioning factor', () => {
    assert.deepEqual(computePriorityLoad([level(80), level(100)], 100, 50).healthy, [80, 20]);
    assert.deepEqual(computePriorityLoad([level(50), level(100)], 200, 50).healthy, [100, 0]);
  });

  it('sends what healthy hosts cannot take to degraded hosts', () => {
    // Envoy's own example: health 10/20/10 and degraded 20/10/0 (after the 1.4 factor).
    const l = computePriorityLoad(
      [
        { total: 14, healthy: 1, degraded: 2 },
        { total: 14, healthy: 2, degraded: 1 },
        { total: 14, healthy: 1, degraded: 0 },
      ],
      140,
      0,
    );
    assert.deepEqual(l.healthy, [16, 28, 14]);
    assert.deepEqual(l.degraded, [28, 14, 0]);
  });

  it('puts a level below the panic threshold in panic only when total health is under 100', () => {
    // P0 at 40% healthy (< 50%) but P1 makes up the rest: no panic.
    assert.deepEqual(load([level(40), level(100)]).panic, [false, false]);
    // P0 at 40%, P1 at 30%: health 56 + 42 = 98 < 100; both under the threshold → total panic.
    const total = load([level(40), level(30)]);
    assert.deepEqual(total.panic, [true, true]);
    // In total panic the load follows host counts.
    assert.deepEqual(total.healthy, [50, 50]);
    // P0 at 40% (panic), P1 at 60% (not): 56 + 84 → 100, so no panic at all.
    assert.deepEqual(load([level(40), level(60)]).panic, [false, false]);
    // P0 at 20%, P1 at 50%: 28 + 70 = 98 < 100; only P0 is under the threshold.
    const partial = load([level(20), level(50)]);
    assert.deepEqual(partial.panic, [true, false]);
    assert.deepEqual(partial.healthy, [29, 71]);
    // A single level under the threshold is in total panic.
    assert.deepEqual(load([level(30)]), { healthy: [100], degraded: [0], panic: [true] });
  });

  it('spreads load by host count in total panic', () => {
    const l = load([
      { total: 3, healthy: 0, degraded: 0 },
      { total: 1, healthy: 0, degraded: 0 },
    ]);
    assert.deepEqual(l.healthy, [75, 25]);
    assert.deepEqual(l.panic, [true, true]);
  });

  it('with the panic threshold at 0 and nothing available, assigns P0 (which has nothing to pick)', () => {
    const l = load([level(0), level(0)], 0);
    assert.deepEqual(l, { healthy: [100, 0], degraded: [0, 0], panic: [false, false] });
  });

  it('handles an empty cluster', () => {
    assert.deepEqual(load([]), { healthy: [], degraded: [], panic: [] });
  });
});

describe('PrioritySet', () => {
  it('groups hosts by priority, health and locality', () => {
    const hosts = testHosts([
      { priority: 0 },
      { priority: 0, health: 'DEGRADED' },
      { priority: 2, health: 'UNHEALTHY' },
      { priority: 2, health: 'DRAINING' },
      { priority: 2 },
    ]);
    const set = new PrioritySet(hosts, 140, 50, (p) => (p === 2 ? 7 : undefined));
    assert.equal(set.hostSets.length, 3);
    assert.deepEqual(set.hostSets[0].healthyHosts, [hosts[0]]);
    assert.deepEqual(set.hostSets[0].degradedHosts, [hosts[1]]);
    assert.deepEqual(set.hostSets[1].hosts, []);
    assert.deepEqual(set.hostSets[2].healthyHosts, [hosts[4]]);
    assert.equal(set.hostSets[2].localities.length, 1);
    assert.equal(set.hostSets[2].localities[0].weight, 7);
    assert.deepEqual(set.hostSets[2].localities[0].hosts, hosts.slice(2));
    // Healthy availability P0 70, P2 46 (1 of 3) covers 100 before degraded hosts are considered.
    assert.deepEqual(set.load.healthy, [70, 0, 30]);
    assert.deepEqual(set.load.degraded, [0, 0, 0]);
  });
});
