import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PrioritySet } from '../host-set.ts';
import { seededRandom, testClusterConfig, testHosts } from '../testing.ts';
import type { Host } from '../types.ts';
import { PeakEwmaEstimator } from './peak-ewma-estimator.ts';
import { createPeakEwmaPicker, DEFAULT_PEAK_EWMA, recordResponseLatency } from './peak-ewma.ts';
import { createLoadBalancer } from './priority-lb.ts';

const TAU = 10_000;

function close(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual} ≠ ${expected}`);
}

describe('PeakEwmaEstimator', () => {
  it('starts at the default RTT and stays there, undecayed, until the first sample', () => {
    const e = new PeakEwmaEstimator(TAU, 30, 0);
    assert.equal(e.estimate(0), 30);
    assert.equal(e.estimate(60_000), 30);
    assert.equal(e.hasSamples, false);
  });

  it('takes the first sample as the estimate, whatever the default', () => {
    const e = new PeakEwmaEstimator(TAU, 30, 0);
    e.observe(5, 1000);
    assert.equal(e.estimate(1000), 5);
    assert.equal(e.hasSamples, true);
  });

  it('jumps to a new peak at once', () => {
    const e = new PeakEwmaEstimator(TAU, 30, 0);
    e.observe(10, 0);
    e.observe(200, 1); // 1 ms later: an average would barely move
    assert.equal(e.estimate(1), 200);
  });

  it('blends a lower sample with weight 1 - e^(-Δt/τ)', () => {
    const e = new PeakEwmaEstimator(TAU, 30, 0);
    e.observe(100, 0);
    e.observe(20, TAU); // one time constant later
    const keep = Math.exp(-1);
    close(e.estimate(TAU), 100 * keep + 20 * (1 - keep), 'after one τ');
  });

  it('decays towards 0 while nothing is observed (reads count as samples of 0)', () => {
    const e = new PeakEwmaEstimator(TAU, 30, 0);
    e.observe(100, 0);
    close(e.estimate(TAU), 100 * Math.exp(-1), 'one τ');
    // Reading in between does not change the decay: e^(-a)·e^(-b) = e^(-(a+b)).
    close(e.estimate(3 * TAU), 100 * Math.exp(-3), 'three τ');
  });

  it('does not move the estimate when time stands still', () => {
    const e = new PeakEwmaEstimator(TAU, 30, 0);
    e.observe(50, 100);
    e.observe(10, 100);
    assert.equal(e.estimate(100), 50);
  });
});

/** A picker over fresh hosts with a controllable clock. */
function setup(n: number, seed = 1) {
  let now = 0;
  const hosts = testHosts(Array.from({ length: n }, () => ({})));
  const config = testClusterConfig({ lbPolicy: 'PEAK_EWMA', peakEwma: DEFAULT_PEAK_EWMA });
  const picker = createPeakEwmaPicker(hosts, config, seededRandom(seed), () => now);
  return {
    hosts,
    picker,
    advance(ms: number) {
      now += ms;
    },
    record(host: Host, ms: number) {
      recordResponseLatency(host, ms, now);
    },
  };
}

function counts(pick: () => Host, hosts: readonly Host[], n: number): number[] {
  const out = hosts.map(() => 0);
  for (let i = 0; i < n; i++) out[hosts.indexOf(pick())]++;
  return out;
}

describe('PEAK_EWMA picker', () => {
  it('with two hosts, always picks the lower latency one', () => {
    const s = setup(2);
    s.record(s.hosts[0], 5);
    s.record(s.hosts[1], 50);
    const c = counts(() => s.picker.pick({ hash: undefined }), s.hosts, 1000);
    assert.deepEqual(c, [1000, 0]);
  });

  it('weighs latency by active requests + 1', () => {
    const s = setup(2);
    s.record(s.hosts[0], 10);
    s.record(s.hosts[1], 25);
    s.hosts[0].activeRequests = 2; // cost 10 × 3 = 30 > 25 × 1
    assert.equal(s.picker.pick({ hash: undefined }), s.hosts[1]);
    s.hosts[0].activeRequests = 1; // cost 10 × 2 = 20 < 25
    assert.equal(s.picker.pick({ hash: undefined }), s.hosts[0]);
  });

  it('compares two random hosts: the costliest of three is never chosen, the cheapest takes 2/3', () => {
    const s = setup(3, 5);
    s.record(s.hosts[0], 1);
    s.record(s.hosts[1], 10);
    s.record(s.hosts[2], 100);
    const n = 30_000;
    const c = counts(() => s.picker.pick({ hash: undefined }), s.hosts, n);
    assert.equal(c[2], 0);
    // Two distinct hosts out of three: the cheapest is in the pair with probability 2/3.
    const sigma = Math.sqrt(n * (2 / 3) * (1 / 3));
    assert.ok(Math.abs(c[0] - (2 * n) / 3) < 5 * sigma, `cheapest got ${c[0]}`);
  });

  it('tries hosts without samples at the default RTT', () => {
    const s = setup(2);
    s.record(s.hosts[0], DEFAULT_PEAK_EWMA.defaultRttMs * 2);
    // hosts[1] never answered: its 30 ms default beats the 60 ms measured on hosts[0].
    assert.equal(s.picker.pick({ hash: undefined }), s.hosts[1]);
  });

  it('sends traffic back to a host once its peak has decayed below the others', () => {
    const s = setup(2);
    s.record(s.hosts[0], 500); // a slow spike
    s.record(s.hosts[1], 20);
    assert.equal(s.picker.pick({ hash: undefined }), s.hosts[1]);
    // hosts[1] keeps answering in 20 ms; hosts[0] is left alone and its estimate decays.
    for (let i = 0; i < 100; i++) {
      s.advance(1000);
      s.record(s.hosts[1], 20);
    }
    assert.equal(s.picker.pick({ hash: undefined }), s.hosts[0]);
  });

  it('avoids attempted hosts, and falls back to the cheapest remaining one', () => {
    const s = setup(4);
    s.hosts.forEach((h, i) => s.record(h, 10 * (i + 1)));
    const attempted = new Set([s.hosts[0], s.hosts[1]]);
    for (let i = 0; i < 200; i++) {
      const h = s.picker.pick({ hash: undefined, attempted });
      assert.ok(h === s.hosts[2] || h === s.hosts[3]);
    }
    const allButLast = new Set(s.hosts.slice(0, 3));
    for (let i = 0; i < 50; i++)
      assert.equal(s.picker.pick({ hash: undefined, attempted: allButLast }), s.hosts[3]);
  });

  it('keeps the latency history when the load balancer is rebuilt', () => {
    const s = setup(2);
    s.record(s.hosts[0], 5);
    s.record(s.hosts[1], 80);
    const again = createPeakEwmaPicker(
      s.hosts,
      testClusterConfig({ lbPolicy: 'PEAK_EWMA', peakEwma: DEFAULT_PEAK_EWMA }),
      seededRandom(3),
      () => 0,
    );
    assert.equal(again.pick({ hash: undefined }), s.hosts[0]);
  });

  it('ignores latency reports for hosts of other policies', () => {
    const [h] = testHosts([{}]);
    assert.doesNotThrow(() => recordResponseLatency(h, 10));
  });

  it('excludes unhealthy and ejected hosts through the priority load balancer, even when fastest', () => {
    const hosts = testHosts([{}, {}, {}, {}]);
    const config = testClusterConfig({ lbPolicy: 'PEAK_EWMA', peakEwma: DEFAULT_PEAK_EWMA });
    // Build once so the hosts have estimators, then make the unavailable ones look fastest.
    createLoadBalancer(new PrioritySet(hosts, 140, 50), config, seededRandom(1));
    hosts[0].health = 'UNHEALTHY';
    hosts[1].outlierEjected = true;
    recordResponseLatency(hosts[0], 1);
    recordResponseLatency(hosts[1], 1);
    recordResponseLatency(hosts[2], 100);
    recordResponseLatency(hosts[3], 100);
    const lb = createLoadBalancer(new PrioritySet(hosts, 140, 50), config, seededRandom(2));
    for (let i = 0; i < 500; i++) {
      const h = lb.chooseHost({ hash: undefined });
      assert.ok(h === hosts[2] || h === hosts[3], `picked ${h?.key}`);
    }
  });
});
