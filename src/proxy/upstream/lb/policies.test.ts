/** Behaviour specific to one policy: rotation order, least-request preference, EDF smoothness. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { binomialTolerance, seededRandom, testClusterConfig, testHosts } from '../testing.ts';
import type { Host } from '../types.ts';
import { EdfScheduler } from './edf.ts';
import { createLeastRequestPicker } from './least-request.ts';
import { createRoundRobinPicker } from './round-robin.ts';

describe('EDF scheduler', () => {
  it('picks entries in proportion to their weights, interleaved', () => {
    const weights = [5, 1, 1];
    const edf = new EdfScheduler(weights);
    const sequence: number[] = [];
    for (let i = 0; i < 700; i++) {
      const e = edf.peek();
      edf.pick(weights[e]);
      sequence.push(e);
    }
    const counts = [0, 0, 0];
    for (const e of sequence) counts[e]++;
    assert.deepEqual(counts, [500, 100, 100]);
    // Smooth: the light entries never wait much more than their period (7 picks) to come up again.
    for (const light of [1, 2]) {
      const at = sequence.flatMap((e, i) => (e === light ? [i] : []));
      for (let i = 1; i < at.length; i++) assert.ok(at[i] - at[i - 1] <= 8, `gap ${at[i] - at[i - 1]}`);
    }
  });

  it('alternates between equal weights', () => {
    const edf = new EdfScheduler([2, 2]);
    const sequence = Array.from({ length: 6 }, () => edf.pick(2));
    assert.deepEqual(sequence, [0, 1, 0, 1, 0, 1]);
  });
});

describe('ROUND_ROBIN', () => {
  it('rotates through equally weighted hosts in order', () => {
    const hosts = testHosts([{}, {}, {}]);
    const picker = createRoundRobinPicker(hosts, testClusterConfig(), seededRandom(1));
    const first = hosts.indexOf(picker.pick({ hash: undefined }));
    for (let i = 1; i < 9; i++) assert.equal(picker.pick({ hash: undefined }), hosts[(first + i) % 3]);
  });

  it('never sends a weight-3 host more than 3 requests in a row against a weight-1 host', () => {
    const hosts = testHosts([{ weight: 3 }, { weight: 1 }]);
    const picker = createRoundRobinPicker(hosts, testClusterConfig(), seededRandom(1));
    const sequence = Array.from({ length: 400 }, () => picker.pick({ hash: undefined }));
    let run = 0;
    for (const h of sequence) {
      run = h === hosts[0] ? run + 1 : 0;
      assert.ok(run <= 3);
    }
    assert.equal(sequence.filter((h) => h === hosts[1]).length, 100);
  });
});

describe('LEAST_REQUEST', () => {
  function shareOfIdle(choiceCount: number, hosts: Host[], n: number): number {
    const picker = createLeastRequestPicker(
      hosts,
      testClusterConfig({ leastRequest: { choiceCount } }),
      seededRandom(5),
    );
    let idle = 0;
    for (let i = 0; i < n; i++) if (picker.pick({ hash: undefined }) === hosts[0]) idle++;
    return idle;
  }

  for (const choiceCount of [2, 5]) {
    it(`with ${choiceCount} choices, picks the idle host whenever it is sampled`, () => {
      const hosts = testHosts([{}, {}, {}, {}]);
      hosts.slice(1).forEach((h) => (h.activeRequests = 10));
      // The idle host wins iff it is among the samples: probability 1 - (3/4)^choices.
      const n = 40_000;
      const p = 1 - (3 / 4) ** choiceCount;
      const idle = shareOfIdle(choiceCount, hosts, n);
      assert.ok(
        Math.abs(idle - n * p) <= binomialTolerance(n, p),
        `idle host got ${idle}, expected ${n * p}`,
      );
    });
  }

  it('with unequal weights, divides each weight by active requests + 1', () => {
    const hosts = testHosts([{ weight: 1 }, { weight: 1 }, { weight: 2 }]);
    hosts[2].activeRequests = 3; // effective weight 2 / 4 = 0.5 against 1 and 1
    const picker = createLeastRequestPicker(hosts, testClusterConfig(), seededRandom(1));
    const counts = new Map<Host, number>(hosts.map((h) => [h, 0]));
    const n = 10_000;
    for (let i = 0; i < n; i++) {
      const h = picker.pick({ hash: undefined });
      counts.set(h, counts.get(h)! + 1);
    }
    // Deterministic schedule: shares 0.4 / 0.4 / 0.2, up to the first rounds at static weights.
    assert.ok(Math.abs(counts.get(hosts[2])! - 0.2 * n) <= 5, `weighted host got ${counts.get(hosts[2])}`);
  });

  it('prefers a non-attempted host even when it is busier', () => {
    const hosts = testHosts([{}, {}]);
    hosts[1].activeRequests = 100;
    const picker = createLeastRequestPicker(hosts, testClusterConfig(), seededRandom(2));
    for (let i = 0; i < 100; i++)
      assert.equal(picker.pick({ hash: undefined, attempted: new Set([hosts[0]]) }), hosts[1]);
  });
});
