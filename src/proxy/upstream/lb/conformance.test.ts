/**
 * The load balancer conformance suite: every lb_policy, through the priority-aware load balancer,
 * must pass the same behavioural checks. Statistical checks use seeded randomness, fixed sample
 * sizes and 5-sigma intervals around the exact expected counts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PrioritySet } from '../host-set.ts';
import { binomialTolerance, seededRandom, testClusterConfig, testHosts } from '../testing.ts';
import type { TestHostSpec } from '../testing.ts';
import type { ClusterConfig, Host, LbContext, LbPolicy, LoadBalancer } from '../types.ts';
import { createLoadBalancer } from './priority-lb.ts';

const POLICIES: readonly LbPolicy[] = [
  'ROUND_ROBIN',
  'LEAST_REQUEST',
  'RANDOM',
  'RING_HASH',
  'MAGLEV',
  'PEAK_EWMA',
];
const SAMPLES = 60_000;

interface Fixture {
  readonly hosts: Host[];
  readonly lb: LoadBalancer;
  readonly config: ClusterConfig;
  /** A fresh request context: a random hash for the hash policies (as a route hash policy gives). */
  ctx(attempted?: ReadonlySet<Host>): LbContext;
}

function fixture(
  policy: LbPolicy,
  specs: readonly TestHostSpec[],
  overrides: Partial<ClusterConfig> = {},
): Fixture {
  const hosts = testHosts(specs);
  const config = testClusterConfig({
    lbPolicy: policy,
    // A large ring keeps the ring's own imbalance small next to the sampling error.
    ringHash: { minimumRingSize: 65536, maximumRingSize: 8 * 1024 * 1024 },
    ...overrides,
  });
  const set = new PrioritySet(hosts, config.overprovisioningFactor, config.healthyPanicThreshold);
  const lb = createLoadBalancer(set, config, seededRandom(7));
  const hashes = seededRandom(11);
  const hashed = policy === 'RING_HASH' || policy === 'MAGLEV';
  return {
    hosts,
    lb,
    config,
    ctx: (attempted) => ({ hash: hashed ? Math.floor(hashes() * 2 ** 32) : undefined, attempted }),
  };
}

function countPicks(f: Fixture, n: number): Map<Host, number> {
  const counts = new Map<Host, number>();
  for (const h of f.hosts) counts.set(h, 0);
  for (let i = 0; i < n; i++) {
    const host = f.lb.chooseHost(f.ctx());
    assert.ok(host, 'expected a host');
    counts.set(host, (counts.get(host) ?? 0) + 1);
  }
  return counts;
}

/**
 * Asserts each host's count is within 5 sigma of n × its expected share. For RING_HASH the ring's
 * arcs are themselves random: a host with share p of K points owns p ± sqrt(p(1-p)/K) of the ring,
 * which widens the interval accordingly.
 */
function assertShares(
  policy: LbPolicy,
  counts: Map<Host, number>,
  expected: Map<Host, number>,
  n: number,
): void {
  const ringPoints = 81920; // weights summing to 10 → 8192 points per unit (see ring-hash.ts)
  for (const [host, p] of expected) {
    const count = counts.get(host) ?? 0;
    let variance = n * p * (1 - p);
    if (policy === 'RING_HASH') variance += (n * n * p * (1 - p)) / ringPoints;
    const tolerance =
      policy === 'ROUND_ROBIN'
        ? 2
        : 5 * Math.sqrt(variance) + (policy === 'MAGLEV' ? 2 * n * (1 / 65537) : 0);
    assert.ok(
      Math.abs(count - n * p) <= tolerance,
      `${policy}: host ${host.key} got ${count}, expected ${(n * p).toFixed(0)} ± ${tolerance.toFixed(0)}`,
    );
  }
}

for (const policy of POLICIES) {
  describe(`load balancer conformance: ${policy}`, () => {
    it('returns null when the cluster has no hosts', () => {
      const f = fixture(policy, []);
      assert.equal(f.lb.chooseHost(f.ctx()), null);
      assert.equal(f.lb.chooseHost({ hash: 42 }), null);
    });

    it('returns the only host of a one-host cluster', () => {
      const f = fixture(policy, [{}]);
      for (let i = 0; i < 10; i++) assert.equal(f.lb.chooseHost(f.ctx()), f.hosts[0]);
    });

    it('never returns an unavailable host while enough hosts are healthy', () => {
      // 6 of 10 healthy: above the 50% panic threshold, so only healthy hosts may be chosen.
      const f = fixture(policy, [
        ...Array.from({ length: 6 }, () => ({})),
        { health: 'UNHEALTHY' as const },
        { health: 'UNHEALTHY' as const },
        { health: 'DRAINING' as const },
        { health: 'UNHEALTHY' as const },
      ]);
      const counts = countPicks(f, 6000);
      f.hosts.forEach((h, i) => {
        if (i < 6) assert.ok(counts.get(h)! > 0, `healthy host ${i} never chosen`);
        else assert.equal(counts.get(h), 0, `unavailable host ${i} chosen`);
      });
    });

    it('spreads load evenly over equally weighted hosts', () => {
      const f = fixture(policy, [{}, {}, {}, {}, {}]);
      const counts = countPicks(f, SAMPLES);
      assertShares(policy, counts, new Map(f.hosts.map((h) => [h, 1 / 5])), SAMPLES);
    });

    it('spreads load in proportion to endpoint weights', () => {
      const f = fixture(policy, [{ weight: 1 }, { weight: 2 }, { weight: 3 }, { weight: 4 }]);
      const counts = countPicks(f, SAMPLES);
      // A policy ignoring weights would give each host 15,000: far outside every interval here.
      assertShares(policy, counts, new Map(f.hosts.map((h) => [h, h.weight / 10])), SAMPLES);
    });

    if (policy === 'RING_HASH' || policy === 'MAGLEV') {
      it('without a request hash, still spreads load by weight', () => {
        const f = fixture(policy, [{ weight: 1 }, { weight: 2 }, { weight: 3 }, { weight: 4 }]);
        const counts = countPicks({ ...f, ctx: () => ({ hash: undefined }) }, SAMPLES);
        assertShares(policy, counts, new Map(f.hosts.map((h) => [h, h.weight / 10])), SAMPLES);
      });
    }

    it('sends the healthy share to healthy hosts and the rest to degraded ones', () => {
      // 4 healthy of 10 → availability 56; 6 degraded → 84: loads 56% healthy, 44% degraded.
      const f = fixture(policy, [
        ...Array.from({ length: 4 }, () => ({})),
        ...Array.from({ length: 6 }, () => ({ health: 'DEGRADED' as const })),
      ]);
      const counts = countPicks(f, SAMPLES);
      const healthy = f.hosts.slice(0, 4).reduce((n, h) => n + counts.get(h)!, 0);
      assert.ok(
        Math.abs(healthy - 0.56 * SAMPLES) <= binomialTolerance(SAMPLES, 0.56),
        `healthy share ${healthy}`,
      );
    });

    it('in panic, uses every host of the level, healthy or not', () => {
      // 2 of 10 healthy (20% < 50%): the level is in panic and all 10 hosts share the load.
      const f = fixture(policy, [
        { health: 'HEALTHY' },
        { health: 'HEALTHY' },
        ...Array.from({ length: 8 }, () => ({ health: 'UNHEALTHY' as const })),
      ]);
      const counts = countPicks(f, SAMPLES);
      assertShares(policy, counts, new Map(f.hosts.map((h) => [h, 1 / 10])), SAMPLES);
    });

    it('with the panic threshold at 0, returns null when no host is available', () => {
      const f = fixture(policy, [{ health: 'UNHEALTHY' }, { health: 'UNHEALTHY' }], {
        healthyPanicThreshold: 0,
      });
      for (let i = 0; i < 20; i++) assert.equal(f.lb.chooseHost(f.ctx()), null);
    });

    it('spills load to the next priority as the first loses health', () => {
      // P0: 2 of 4 healthy → availability 70; P1 healthy: loads 70% / 30%.
      const f = fixture(policy, [
        { priority: 0 },
        { priority: 0 },
        { priority: 0, health: 'UNHEALTHY' },
        { priority: 0, health: 'UNHEALTHY' },
        { priority: 1 },
        { priority: 1 },
      ]);
      const counts = countPicks(f, SAMPLES);
      assert.equal(counts.get(f.hosts[2]), 0);
      assert.equal(counts.get(f.hosts[3]), 0);
      const p0 = counts.get(f.hosts[0])! + counts.get(f.hosts[1])!;
      assert.ok(Math.abs(p0 - 0.7 * SAMPLES) <= binomialTolerance(SAMPLES, 0.7), `P0 got ${p0}`);
    });

    it('sends nothing to a lower priority while the first is healthy enough', () => {
      const f = fixture(policy, [{ priority: 0 }, { priority: 0 }, { priority: 1 }]);
      const counts = countPicks(f, 2000);
      assert.equal(counts.get(f.hosts[2]), 0);
    });

    it('avoids attempted hosts when another host is available', () => {
      const f = fixture(policy, [{}, {}, {}, {}]);
      const attempted = new Set(f.hosts.slice(0, 3));
      for (let i = 0; i < 500; i++) assert.equal(f.lb.chooseHost(f.ctx(attempted)), f.hosts[3]);
    });

    it('avoids attempted hosts across priorities', () => {
      // P0 has 1 of 2 hosts healthy (availability 70), so P1 takes 30% of the load; once the healthy
      // P0 host was tried, every retry must go to P1, whichever level the retry lands on.
      const f = fixture(policy, [{ priority: 0 }, { priority: 0, health: 'UNHEALTHY' }, { priority: 1 }]);
      const attempted = new Set([f.hosts[0]]);
      for (let i = 0; i < 200; i++) assert.equal(f.lb.chooseHost(f.ctx(attempted)), f.hosts[2]);
    });

    it('still returns a host when every host was attempted', () => {
      const f = fixture(policy, [{}, {}, {}]);
      const attempted = new Set(f.hosts);
      for (let i = 0; i < 50; i++) assert.ok(f.hosts.includes(f.lb.chooseHost(f.ctx(attempted))!));
    });
  });
}
