import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PrioritySet } from '../host-set.ts';
import { seededRandom, testClusterConfig, testHosts } from '../testing.ts';
import type { TestHostSpec } from '../testing.ts';
import type { Host } from '../types.ts';
import { createLoadBalancer } from './priority-lb.ts';

function balancer(specs: readonly TestHostSpec[]) {
  const hosts = testHosts(specs);
  const config = testClusterConfig({ healthyPanicThreshold: 0 });
  const set = new PrioritySet(hosts, 140, 0);
  return { hosts, lb: createLoadBalancer(set, config, seededRandom(9)) };
}

function priorities(picks: (Host | null)[]): Set<number | undefined> {
  return new Set(picks.map((h) => h?.priority));
}

describe('excluded priorities (a retry under previous_priorities)', () => {
  const specs: TestHostSpec[] = [{ priority: 0 }, { priority: 0 }, { priority: 1 }, { priority: 2 }];

  it('leaves the excluded priorities out and spills to the next', () => {
    const { lb } = balancer(specs);
    const normal = Array.from({ length: 50 }, () => lb.chooseHost({ hash: undefined }));
    assert.deepEqual(priorities(normal), new Set([0]));
    const skip0 = Array.from({ length: 50 }, () =>
      lb.chooseHost({ hash: undefined, excludedPriorities: new Set([0]) }),
    );
    assert.deepEqual(priorities(skip0), new Set([1]));
    const skip01 = Array.from({ length: 50 }, () =>
      lb.chooseHost({ hash: undefined, excludedPriorities: new Set([0, 1]) }),
    );
    assert.deepEqual(priorities(skip01), new Set([2]));
  });

  it('falls back to the full load when every priority with hosts is excluded', () => {
    const { lb } = balancer(specs);
    const all = Array.from({ length: 50 }, () =>
      lb.chooseHost({ hash: undefined, excludedPriorities: new Set([0, 1, 2]) }),
    );
    assert.deepEqual(priorities(all), new Set([0]));
  });

  it('takes unhealthy hosts into account in the recomputed load', () => {
    const { lb } = balancer([{ priority: 0 }, { priority: 1, health: 'UNHEALTHY' }, { priority: 2 }]);
    const skip0 = Array.from({ length: 50 }, () =>
      lb.chooseHost({ hash: undefined, excludedPriorities: new Set([0]) }),
    );
    assert.deepEqual(priorities(skip0), new Set([2]));
  });
});
