import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../core/logger.ts';
import { PushQueue } from './push-queue.ts';
import type { MergedPush } from './push-queue.ts';
import { parseProxyNode } from './node.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const a = parseProxyNode({ id: 'sidecar~10.0.0.1~a-1.default~default.svc.cluster.local' });
const b = parseProxyNode({ id: 'sidecar~10.0.0.2~b-1.default~default.svc.cluster.local' });
const c = parseProxyNode({ id: 'sidecar~10.0.0.3~c-1.default~default.svc.cluster.local' });

function queue(debounceMs: number, debounceMaxMs: number, onRound?: (p: MergedPush) => Promise<void>) {
  const rounds: MergedPush[] = [];
  const q = new PushQueue({
    debounceMs,
    debounceMaxMs,
    logger: createLogger('test'),
    onRound: async (p) => {
      rounds.push(p);
      await onRound?.(p);
    },
  });
  return { q, rounds };
}

describe('PushQueue', { timeout: 10_000 }, () => {
  it('merges: full wins, affected proxies are the union, reasons are kept once', async () => {
    const { q, rounds } = queue(20, 1000);
    q.push({ full: false, reason: 'endpoint', affects: (p) => p === a });
    q.push({ full: true, reason: 'config', affects: (p) => p === b });
    q.push({ full: false, reason: 'endpoint', affects: (p) => p === a });
    await sleep(80);
    assert.equal(rounds.length, 1);
    const [r] = rounds;
    assert.equal(r.full, true);
    assert.equal(r.merged, 3);
    assert.deepEqual(r.reasons, ['endpoint', 'config']);
    assert.deepEqual([r.affects!(a), r.affects!(b), r.affects!(c)], [true, true, false]);
    // A push without a predicate affects everyone.
    q.push({ full: false, reason: 'x', affects: () => false });
    q.push({ full: false, reason: 'y' });
    await sleep(80);
    assert.equal(rounds.length, 2);
    assert.equal(rounds[1].full, false);
    assert.equal(rounds[1].affects, null);
    q.close();
  });

  it('merges the clusters endpoint pushes name; one that names none, or a full push, means all', async () => {
    const { q, rounds } = queue(10, 1000);
    q.push({ full: false, reason: 'e1', endpointClusters: new Set(['x']) });
    q.push({ full: false, reason: 'e2', endpointClusters: new Set(['y', 'x']) });
    await sleep(60);
    assert.deepEqual([...rounds[0].endpointClusters!].sort(), ['x', 'y']);
    q.push({ full: false, reason: 'e3', endpointClusters: new Set(['x']) });
    q.push({ full: false, reason: 'e4' });
    await sleep(60);
    assert.equal(rounds[1].endpointClusters, null);
    q.push({ full: false, reason: 'e5', endpointClusters: new Set(['x']) });
    q.push({ full: true, reason: 'config' });
    await sleep(60);
    assert.equal(rounds[2].endpointClusters, null);
    q.push({ full: false, reason: 'e6', endpointClusters: new Set(['z']) });
    await sleep(60);
    assert.deepEqual([...rounds[3].endpointClusters!], ['z'], 'a new round starts empty');
    q.close();
  });

  it('waits for a quiet period, but never longer than debounceMaxMs', async () => {
    const { q, rounds } = queue(40, 120);
    const t0 = Date.now();
    const firedAt: number[] = [];
    const timer = setInterval(() => q.push({ full: false, reason: 'churn' }), 10);
    while (firedAt.length < 2 && Date.now() - t0 < 2000) {
      await sleep(5);
      if (rounds.length > firedAt.length) firedAt.push(Date.now() - t0);
    }
    clearInterval(timer);
    q.close();
    assert.equal(firedAt.length, 2);
    // Without the cap a push every 10 ms would hold every round back for the whole 2 s; the margin is for a busy machine.
    assert.ok(firedAt[0] < 500, `first round at ${firedAt[0]} ms`);
    assert.ok(firedAt[1] - firedAt[0] < 500, `second round ${firedAt[1] - firedAt[0]} ms later`);
  });

  it('holds the next round until the current one is sent, then sends what accumulated as one', async () => {
    let release: () => void = () => {};
    const { q, rounds } = queue(5, 50, (p) =>
      p.reasons[0] === 'first' ? new Promise<void>((resolve) => (release = resolve)) : Promise.resolve(),
    );
    q.push({ full: false, reason: 'first' });
    await sleep(30);
    q.push({ full: false, reason: 'second' });
    q.push({ full: true, reason: 'third' });
    await sleep(100);
    assert.equal(rounds.length, 1);
    release();
    await sleep(50);
    assert.equal(rounds.length, 2);
    assert.deepEqual(rounds[1].reasons, ['second', 'third']);
    assert.equal(rounds[1].full, true);
    q.close();
  });
});
