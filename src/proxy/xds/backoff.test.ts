import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Backoff } from './backoff.ts';

describe('reconnect backoff', () => {
  it('doubles from the base to the cap, each delay in [ceiling/2, ceiling)', () => {
    const low = new Backoff({ baseMs: 250, maxMs: 30_000, random: () => 0 });
    assert.deepEqual(
      Array.from({ length: 10 }, () => low.next()),
      [125, 250, 500, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000],
    );
    const high = new Backoff({ baseMs: 250, maxMs: 30_000, random: () => 0.5 });
    assert.deepEqual(
      Array.from({ length: 3 }, () => high.next()),
      [187.5, 375, 750],
    );
  });

  it('is jittered: proxies restarted together spread out', () => {
    const delays = Array.from({ length: 200 }, () => new Backoff().next());
    assert.ok(delays.every((d) => d >= 125 && d < 250));
    // 200 draws of a continuous uniform variable: duplicates would mean no jitter.
    assert.ok(new Set(delays).size > 190);
  });

  it('starts over after reset, and never overflows', () => {
    const b = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0 });
    for (let i = 0; i < 100; i++) b.next();
    assert.equal(b.next(), 500);
    b.reset();
    assert.equal(b.next(), 50);
  });
});
