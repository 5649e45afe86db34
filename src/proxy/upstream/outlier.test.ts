import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StatsStore } from '../stats/store.ts';
import { createCluster } from './cluster.ts';
import type { Cluster } from './cluster.ts';
import { OutlierDetector } from './outlier.ts';
import type { OutlierDetectionConfig } from './outlier-config.ts';
import { testClusterConfig, testHosts } from './testing.ts';
import type { Host, LbPolicy } from './types.ts';

const BASE: OutlierDetectionConfig = {
  consecutive5xx: 3,
  enforcingConsecutive5xx: 100,
  consecutiveGatewayFailure: 5,
  enforcingConsecutiveGatewayFailure: 0,
  splitExternalLocalOriginErrors: false,
  consecutiveLocalOriginFailure: 2,
  enforcingConsecutiveLocalOriginFailure: 100,
  intervalMs: 1000,
  baseEjectionTimeMs: 10_000,
  maxEjectionTimeMs: 30_000,
  maxEjectionTimeJitterMs: 0,
  maxEjectionPercent: 100,
  alwaysEjectOneHost: false,
};

interface Fixture {
  readonly cluster: Cluster;
  readonly hosts: readonly Host[];
  readonly detector: OutlierDetector;
  readonly store: StatsStore;
  /** The fake clock, in milliseconds. */
  time: number;
  stat(name: string): number;
}

function fixture(
  overrides: Partial<OutlierDetectionConfig> = {},
  hostCount = 3,
  lbPolicy: LbPolicy = 'ROUND_ROBIN',
  random: () => number = () => 0.5,
): Fixture {
  const cluster = createCluster(
    testClusterConfig({
      name: 'svc',
      lbPolicy,
      localityEndpoints: [
        {
          locality: { region: '', zone: '', subZone: '' },
          priority: 0,
          weight: undefined,
          endpoints: Array.from({ length: hostCount }, (_, i) => ({
            address: '127.0.0.1',
            port: 9000 + i,
            weight: 1,
            health: 'HEALTHY' as const,
          })),
        },
      ],
    }),
  );
  const store = new StatsStore();
  const f: Fixture = {
    cluster,
    hosts: cluster.hosts(),
    store,
    time: 0,
    detector: undefined as unknown as OutlierDetector,
    stat: (name) => {
      const full = `cluster.svc.outlier_detection.${name}`;
      return name === 'ejections_active' ? store.gauge(full).value : store.counter(full).value;
    },
  };
  (f as { detector: OutlierDetector }).detector = new OutlierDetector(
    cluster,
    { ...BASE, ...overrides },
    store,
    { now: () => f.time, random, timer: false, logger: silentLogger },
  );
  return f;
}

const silentLogger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};

function fail(f: Fixture, host: Host, n: number, status = 500): void {
  for (let i = 0; i < n; i++) f.detector.response(host, status);
}

/** Which hosts the cluster's load balancer picks over many requests. */
function picked(cluster: Cluster, n = 60): Set<Host> {
  const out = new Set<Host>();
  for (let i = 0; i < n; i++) {
    const h = cluster.loadBalancer.chooseHost({ hash: i * 2654435761 });
    if (h !== null) out.add(h);
  }
  return out;
}

describe('OutlierDetector', () => {
  it('ejects after consecutive_5xx errors in a row and counts the ejection', () => {
    const f = fixture();
    const [a] = f.hosts;
    fail(f, a, 2);
    assert.equal(a.outlierEjected, false);
    fail(f, a, 1);
    assert.equal(a.outlierEjected, true);
    assert.equal(f.stat('ejections_active'), 1);
    assert.equal(f.stat('ejections_enforced_total'), 1);
    assert.equal(f.stat('ejections_enforced_consecutive_5xx'), 1);
    assert.equal(f.stat('ejections_detected_consecutive_5xx'), 1);
    assert.equal(f.detector.ejectionsActive(), 1);
  });

  it('resets the consecutive counters on a success', () => {
    const f = fixture();
    const [a] = f.hosts;
    fail(f, a, 2);
    f.detector.response(a, 200);
    fail(f, a, 2);
    assert.equal(a.outlierEjected, false);
    fail(f, a, 1);
    assert.equal(a.outlierEjected, true);
  });

  it('counts gateway errors only with enforcing_consecutive_gateway_failure', () => {
    const f = fixture({ consecutive5xx: 100, consecutiveGatewayFailure: 2 });
    const [a, b] = f.hosts;
    fail(f, a, 2, 502);
    // Detected, but enforcing defaults to 0.
    assert.equal(a.outlierEjected, false);
    assert.equal(f.stat('ejections_detected_consecutive_gateway_failure'), 1);
    assert.equal(f.stat('ejections_enforced_consecutive_gateway_failure'), 0);

    const g = fixture({
      consecutive5xx: 100,
      consecutiveGatewayFailure: 2,
      enforcingConsecutiveGatewayFailure: 100,
    });
    const [c, d] = g.hosts;
    fail(g, c, 2, 500);
    assert.equal(c.outlierEjected, false, '500 is not a gateway error');
    fail(g, d, 2, 504);
    assert.equal(d.outlierEjected, true);
    assert.equal(g.stat('ejections_enforced_consecutive_gateway_failure'), 1);
    assert.equal(b.outlierEjected, false);
  });

  it('treats connect failures and resets as 5xx unless local-origin errors are split', () => {
    const f = fixture();
    const [a] = f.hosts;
    f.detector.upstreamFailure(a, 'connect');
    f.detector.upstreamFailure(a, 'reset');
    f.detector.upstreamFailure(a, 'local');
    assert.equal(a.outlierEjected, false, "our own aborts don't count");
    f.detector.localOriginFailure(a, 'timeout');
    assert.equal(a.outlierEjected, true);

    const s = fixture({ splitExternalLocalOriginErrors: true });
    const [b, c] = s.hosts;
    // With the split, 5xx and local-origin failures do not add up.
    fail(s, b, 2);
    s.detector.upstreamFailure(b, 'connect');
    assert.equal(b.outlierEjected, false);
    s.detector.upstreamFailure(b, 'termination');
    assert.equal(b.outlierEjected, true);
    assert.equal(s.stat('ejections_enforced_consecutive_local_origin_failure'), 1);
    assert.equal(s.stat('ejections_detected_consecutive_local_origin_failure'), 1);
    // A response resets the local-origin counter.
    s.detector.upstreamFailure(c, 'connect');
    s.detector.response(c, 200);
    s.detector.upstreamFailure(c, 'connect');
    assert.equal(c.outlierEjected, false);
  });

  it('draws the enforcing percentage', () => {
    let draw = 0.6;
    const f = fixture({ enforcingConsecutive5xx: 50 }, 3, 'ROUND_ROBIN', () => draw);
    const [a] = f.hosts;
    fail(f, a, 3);
    assert.equal(a.outlierEjected, false, '0.6 × 100 is not below 50');
    assert.equal(f.stat('ejections_detected_consecutive_5xx'), 1);
    draw = 0.4;
    fail(f, a, 3);
    assert.equal(a.outlierEjected, true);
  });

  it('stops at max_ejection_percent and counts the overflow', () => {
    const f = fixture({ maxEjectionPercent: 34 });
    const [a, b] = f.hosts;
    fail(f, a, 3);
    assert.equal(a.outlierEjected, true);
    fail(f, b, 3);
    assert.equal(b.outlierEjected, false, 'a second ejection would be 67% of hosts');
    assert.equal(f.stat('ejections_overflow'), 1);
    assert.equal(f.stat('ejections_detected_consecutive_5xx'), 2);
    assert.equal(f.stat('ejections_active'), 1);
  });

  it('ejects no host over max_ejection_percent unless always_eject_one_host is set', () => {
    const f = fixture({ maxEjectionPercent: 10 });
    fail(f, f.hosts[0], 3);
    assert.equal(f.hosts[0].outlierEjected, false);
    assert.equal(f.stat('ejections_overflow'), 1);

    const g = fixture({ maxEjectionPercent: 10, alwaysEjectOneHost: true });
    fail(g, g.hosts[0], 3);
    fail(g, g.hosts[1], 3);
    assert.deepEqual(
      g.hosts.map((h) => h.outlierEjected),
      [true, false, false],
    );
  });

  it('keeps ejected hosts out of every load balancer', () => {
    for (const policy of ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'] as const) {
      const f = fixture({}, 3, policy);
      const [a, b, c] = f.hosts;
      assert.equal(picked(f.cluster).has(a), true, `${policy} picks a before the ejection`);
      fail(f, a, 3);
      const after = picked(f.cluster);
      assert.equal(after.has(a), false, `${policy} must not pick the ejected host`);
      assert.ok(after.has(b) || after.has(c), policy);
    }
  });

  it('balances over all hosts when the healthy share drops below the panic threshold', () => {
    const f = fixture({ maxEjectionPercent: 100 });
    const [a, b] = f.hosts;
    fail(f, a, 3);
    fail(f, b, 3);
    assert.equal(a.outlierEjected && b.outlierEjected, true);
    // One healthy host in three (33%) is below the default 50% panic threshold.
    const p = picked(f.cluster);
    assert.equal(p.size, 3);
  });

  it('returns a host after base_ejection_time × its multiplier, capped at max_ejection_time', () => {
    const f = fixture({ baseEjectionTimeMs: 10_000, maxEjectionTimeMs: 25_000, intervalMs: 1000 });
    const [a] = f.hosts;
    const ejectAndWait = (): number => {
      fail(f, a, 3);
      assert.equal(a.outlierEjected, true);
      const start = f.time;
      while (a.outlierEjected === true) {
        f.time += 1000;
        f.detector.sweep();
        assert.ok(f.time - start <= 60_000, 'the host never came back');
      }
      return f.time - start;
    };
    assert.equal(ejectAndWait(), 10_000);
    assert.equal(f.stat('ejections_active'), 0);
    assert.equal(picked(f.cluster).has(a), true, 'a returned host is picked again');
    // Ejected again straight away: twice the base time, then the cap.
    assert.equal(ejectAndWait(), 20_000);
    assert.equal(ejectAndWait(), 25_000);
    assert.equal(ejectAndWait(), 25_000);
  });

  it('shrinks the multiplier by one per healthy interval after the return', () => {
    const f = fixture({ baseEjectionTimeMs: 10_000, maxEjectionTimeMs: 100_000, intervalMs: 1000 });
    const [a] = f.hosts;
    const ejectionTime = (): number => {
      fail(f, a, 3);
      const start = f.time;
      while (a.outlierEjected === true) {
        f.time += 1000;
        f.detector.sweep();
      }
      return f.time - start;
    };
    assert.equal(ejectionTime(), 10_000);
    assert.equal(ejectionTime(), 20_000);
    assert.equal(ejectionTime(), 30_000);
    // Multiplier 3; two healthy sweeps at least an interval after the return take it to 1.
    f.time += 1000;
    f.detector.sweep();
    f.detector.sweep();
    assert.equal(ejectionTime(), 20_000);
  });

  it('adds the jitter drawn at ejection', () => {
    const f = fixture(
      { baseEjectionTimeMs: 10_000, maxEjectionTimeJitterMs: 4000 },
      3,
      'ROUND_ROBIN',
      () => 0.5,
    );
    const [a] = f.hosts;
    fail(f, a, 3);
    f.time = 11_999;
    f.detector.sweep();
    assert.equal(a.outlierEjected, true, 'jitter floor(0.5 × 4001) = 2000 ms');
    f.time = 12_000;
    f.detector.sweep();
    assert.equal(a.outlierEjected, false);
  });

  it('keeps ejections across a replacement with the same hosts', () => {
    const f = fixture();
    const [a] = f.hosts;
    fail(f, a, 3);
    const next = fixture();
    // Same addresses, new Host objects, as a CDS update builds them.
    next.time = f.time;
    next.detector.adopt(f.detector);
    f.detector.stop();
    assert.equal(next.hosts[0].outlierEjected, true);
    assert.equal(next.detector.ejectionsActive(), 1);
    assert.equal(picked(next.cluster).has(next.hosts[0]), false);
    next.time = 10_000;
    next.detector.sweep();
    assert.equal(next.hosts[0].outlierEjected, false);
  });

  it('forgets hosts that left the cluster', () => {
    const hosts = testHosts([{}, {}, {}]);
    let current: readonly Host[] = hosts;
    const store = new StatsStore();
    const d = new OutlierDetector(
      { name: 'svc', hosts: () => current, healthChanged: () => {} },
      BASE,
      store,
      { now: () => 0, timer: false, logger: silentLogger },
    );
    for (let i = 0; i < 3; i++) d.response(hosts[0], 503);
    assert.equal(d.ejectionsActive(), 1);
    current = hosts.slice(1);
    d.sweep();
    assert.equal(d.ejectionsActive(), 0);
    assert.equal(store.gauge('cluster.svc.outlier_detection.ejections_active').value, 0);
  });

  it('runs its sweep on an unref’d timer and stops it', () => {
    const cluster = createCluster(testClusterConfig({ name: 'svc' }));
    const d = new OutlierDetector(cluster, { ...BASE, intervalMs: 5 }, new StatsStore(), {
      logger: silentLogger,
    });
    const timer = (d as unknown as { timer: NodeJS.Timeout | null }).timer;
    assert.ok(timer !== null);
    assert.equal(timer.hasRef(), false);
    d.stop();
    assert.equal((d as unknown as { timer: NodeJS.Timeout | null }).timer, null);
  });
});
