import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PrioritySet } from '../host-set.ts';
import type { LocalityWeightLookup } from '../host-set.ts';
import { binomialTolerance, seededRandom, testClusterConfig, testHosts } from '../testing.ts';
import type { TestHostSpec } from '../testing.ts';
import type { Host, LbPolicy, LoadBalancer } from '../types.ts';
import { createLoadBalancer } from './priority-lb.ts';

function balancer(
  specs: readonly TestHostSpec[],
  weights: Record<string, number>,
  policy: LbPolicy = 'ROUND_ROBIN',
  localityWeighted = true,
): { hosts: Host[]; lb: LoadBalancer } {
  const hosts = testHosts(specs);
  const config = testClusterConfig({ lbPolicy: policy, localityWeighted });
  const weightOf: LocalityWeightLookup = (_p, locality) => weights[locality.zone];
  const set = new PrioritySet(hosts, 140, config.healthyPanicThreshold, weightOf);
  return { hosts, lb: createLoadBalancer(set, config, seededRandom(3)) };
}

function zoneCounts(lb: LoadBalancer, n: number, hash = false): Map<string, number> {
  const counts = new Map<string, number>();
  const hashes = seededRandom(5);
  for (let i = 0; i < n; i++) {
    const host = lb.chooseHost({ hash: hash ? Math.floor(hashes() * 2 ** 32) : undefined });
    assert.ok(host, 'expected a host');
    counts.set(host.locality.zone, (counts.get(host.locality.zone) ?? 0) + 1);
  }
  return counts;
}

describe('locality-weighted load balancing', () => {
  it('chooses localities in proportion to their weights, then hosts within them', () => {
    const { lb } = balancer([{ zone: 'a' }, { zone: 'a' }, { zone: 'b' }], { a: 1, b: 3 });
    const counts = zoneCounts(lb, 4000);
    // EDF over the localities is exact up to one pick, whatever the host counts.
    assert.ok(Math.abs(counts.get('a')! - 1000) <= 1, `zone a got ${counts.get('a')}`);
    assert.ok(Math.abs(counts.get('b')! - 3000) <= 1, `zone b got ${counts.get('b')}`);
  });

  it('scales a weight by the locality availability (overprovisioning factor 1.4)', () => {
    const specs: TestHostSpec[] = [
      { zone: 'a' },
      { zone: 'a', health: 'UNHEALTHY' },
      { zone: 'a', health: 'UNHEALTHY' },
      { zone: 'a' },
      { zone: 'b' },
    ];
    const { lb } = balancer(specs, { a: 1, b: 1 });
    // Zone a: min(1, 1.4 × 2/4) = 0.7 of its weight; zone b: 1.
    const n = 17_000;
    const counts = zoneCounts(lb, n);
    assert.ok(Math.abs(counts.get('a')! - 7000) <= 1, `zone a got ${counts.get('a')}`);
  });

  it('sends nothing to a locality without a weight, and nothing at all when none has one', () => {
    const { lb } = balancer([{ zone: 'a' }, { zone: 'b' }], { a: 5 });
    assert.deepEqual([...zoneCounts(lb, 100)], [['a', 100]]);
    const none = balancer([{ zone: 'a' }, { zone: 'b' }], {});
    assert.equal(none.lb.chooseHost({ hash: undefined }), null);
  });

  it('is off without locality_weighted_lb_config: weights are ignored', () => {
    const { lb } = balancer([{ zone: 'a' }, { zone: 'b' }], { a: 9, b: 1 }, 'ROUND_ROBIN', false);
    assert.deepEqual([...zoneCounts(lb, 100)].sort(), [
      ['a', 50],
      ['b', 50],
    ]);
  });

  it('keeps hash policies sticky over the whole level', () => {
    const { lb } = balancer([{ zone: 'a' }, { zone: 'b' }], { a: 9, b: 1 }, 'MAGLEV');
    const n = 20_000;
    const counts = zoneCounts(lb, n, true);
    assert.ok(Math.abs(counts.get('a')! - n / 2) <= binomialTolerance(n, 0.5) + n * 0.01);
  });

  it('lets a retry leave a locality whose hosts were all tried', () => {
    const { hosts, lb } = balancer([{ zone: 'a' }, { zone: 'b' }], { a: 1000, b: 1 });
    for (let i = 0; i < 10; i++) {
      const host = lb.chooseHost({ hash: undefined, attempted: new Set([hosts[0]]) });
      assert.equal(host, hosts[1]);
    }
  });

  it('applies within each priority, and priorities still spill by health', () => {
    const specs: TestHostSpec[] = [
      { zone: 'a', priority: 0, health: 'UNHEALTHY' },
      { zone: 'b', priority: 1 },
      { zone: 'c', priority: 1 },
    ];
    const { lb } = balancer(specs, { a: 1, b: 1, c: 3 });
    const counts = zoneCounts(lb, 400);
    assert.equal(counts.get('a'), undefined);
    assert.ok(Math.abs(counts.get('c')! - 300) <= 1, `zone c got ${counts.get('c')}`);
  });
});
