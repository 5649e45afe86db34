import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { createClient } from 'redis';
import { RedisStore, StoreUnavailableError } from './redis-store.ts';
import type { CheckRequest, CheckResult } from './redis-store.ts';
import { TestRedis } from './testing/redis-server.ts';

const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

function newRawClient(url: string) {
  return createClient({ url });
}
type RawClient = ReturnType<typeof newRawClient>;

/** Redis' clock in ms (the scripts' clock). */
async function redisNow(raw: RawClient): Promise<number> {
  const [seconds, micros] = await raw.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/** Returns when at least `needMs` of the current window of `windowMs` is left (waiting for the next one if not). */
async function freshWindow(raw: RawClient, windowMs: number, needMs: number): Promise<number> {
  let now = await redisNow(raw);
  const left = windowMs - (now % windowMs);
  if (left < needMs) {
    await sleep(left + 20);
    now = await redisNow(raw);
  }
  return now;
}

async function hitRepeatedly(store: RedisStore, req: CheckRequest, times: number): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (let i = 0; i < times; i++) out.push(await store.check(req));
  return out;
}

describe('RedisStore', { timeout: 30_000 }, () => {
  let redis: TestRedis;
  let raw: RawClient;
  let store: RedisStore;

  before(async () => {
    redis = await TestRedis.start();
    raw = newRawClient(redis.url);
    await raw.connect();
    store = new RedisStore({ url: redis.url, logger: quiet });
    assert.equal(await store.connect(), true);
  });

  after(async () => {
    await store?.close();
    raw?.destroy();
    await redis?.kill();
  });

  const counter = (): string[] => ['weft', `test/${randomUUID()}`];

  describe('FixedWindow', () => {
    it('admits exactly the limit in one window and counts the hits over it', { timeout: 5000 }, async () => {
      const windowMs = 10_000;
      await freshWindow(raw, windowMs, 2000);
      const req: CheckRequest = { algorithm: 'FixedWindow', counter: counter(), limit: 5, windowMs, hits: 1 };
      const results = await hitRepeatedly(store, req, 8);
      assert.deepEqual(
        results.map((r) => [r.overLimit, r.remaining]),
        [
          [false, 4],
          [false, 3],
          [false, 2],
          [false, 1],
          [false, 0],
          [true, 0],
          [true, 0],
          [true, 0],
        ],
      );
      for (const r of results) assert.ok(r.resetMs > 0 && r.resetMs <= windowMs, `resetMs ${r.resetMs}`);
      const now = await redisNow(raw);
      const start = now - (now % windowMs);
      assert.equal(await raw.get(`${store.counterKey(req)}:${start}`), '8');
      const ttl = await raw.pTTL(`${store.counterKey(req)}:${start}`);
      assert.ok(ttl > 0 && ttl <= windowMs, `ttl ${ttl}`);
    });

    it('adds hits_addend hits at once', { timeout: 5000 }, async () => {
      const windowMs = 10_000;
      await freshWindow(raw, windowMs, 2000);
      const req: CheckRequest = {
        algorithm: 'FixedWindow',
        counter: counter(),
        limit: 10,
        windowMs,
        hits: 4,
      };
      const results = await hitRepeatedly(store, req, 3);
      assert.deepEqual(
        results.map((r) => [r.overLimit, r.remaining]),
        [
          [false, 6],
          [false, 2],
          [true, 0],
        ],
      );
    });

    it('starts over in the next window', { timeout: 5000 }, async () => {
      const windowMs = 1000;
      await freshWindow(raw, windowMs, 500);
      const req: CheckRequest = { algorithm: 'FixedWindow', counter: counter(), limit: 2, windowMs, hits: 1 };
      const first = await hitRepeatedly(store, req, 3);
      assert.deepEqual(
        first.map((r) => r.overLimit),
        [false, false, true],
      );
      await sleep(first[2].resetMs + 20);
      assert.equal((await store.check(req)).overLimit, false);
    });

    it('falls back to EVAL when Redis lost its script cache', { timeout: 5000 }, async () => {
      const req: CheckRequest = {
        algorithm: 'FixedWindow',
        counter: counter(),
        limit: 100,
        windowMs: 3_600_000,
        hits: 1,
      };
      await store.check(req);
      await raw.scriptFlush();
      const r = await store.check(req);
      assert.equal(r.overLimit, false);
      assert.equal(r.remaining, 98);
    });
  });

  describe('SlidingWindow', () => {
    it('admits exactly the limit and does not count refused hits', { timeout: 5000 }, async () => {
      const windowMs = 10_000;
      const now = await freshWindow(raw, windowMs, 2000);
      const req: CheckRequest = {
        algorithm: 'SlidingWindow',
        counter: counter(),
        limit: 5,
        windowMs,
        hits: 1,
      };
      const results = await hitRepeatedly(store, req, 9);
      assert.deepEqual(
        results.map((r) => [r.overLimit, r.remaining]),
        [
          [false, 4],
          [false, 3],
          [false, 2],
          [false, 1],
          [false, 0],
          [true, 0],
          [true, 0],
          [true, 0],
          [true, 0],
        ],
      );
      const start = now - (now % windowMs);
      assert.equal(await raw.get(`${store.counterKey(req)}:${start}`), '5');
      const ttl = await raw.pTTL(`${store.counterKey(req)}:${start}`);
      assert.ok(ttl > windowMs && ttl <= 2 * windowMs, `ttl ${ttl}`);
    });

    it(
      'weights the previous window by the part of it still inside the sliding window',
      { timeout: 5000 },
      async () => {
        const windowMs = 3_600_000;
        const now = await freshWindow(raw, windowMs, 5000);
        const start = now - (now % windowMs);
        const req: CheckRequest = {
          algorithm: 'SlidingWindow',
          counter: counter(),
          limit: 100,
          windowMs,
          hits: 1,
        };
        await raw.set(`${store.counterKey(req)}:${start - windowMs}`, '100');
        const results = await hitRepeatedly(store, req, 101);
        const admitted = results.filter((r) => !r.overLimit).length;
        // previous = limit, so what is free is the elapsed share of the current window.
        const elapsedShare = ((await redisNow(raw)) - start) / windowMs;
        const expected = Math.floor(100 * elapsedShare);
        assert.ok(Math.abs(admitted - expected) <= 1, `admitted ${admitted}, expected about ${expected}`);
        assert.equal(results.at(-1)?.overLimit, true);
      },
    );

    it('lets a client that keeps hammering back in as the window slides', { timeout: 8000 }, async () => {
      const windowMs = 2000;
      await freshWindow(raw, windowMs, 1800);
      const req: CheckRequest = {
        algorithm: 'SlidingWindow',
        counter: counter(),
        limit: 4,
        windowMs,
        hits: 1,
      };
      // 4 admitted and 20 refused in the first window; had the refused ones counted, the previous window
      // would weigh 24 and keep the client out for the whole next window.
      const first = await hitRepeatedly(store, req, 24);
      assert.equal(first.filter((r) => !r.overLimit).length, 4);
      // 3/4 into the next window the previous one weighs 1 (of 4): 3 more are admitted.
      const resetMs = first.at(-1)?.resetMs ?? 0;
      await sleep(resetMs + windowMs * 0.75);
      const later = await hitRepeatedly(store, req, 10);
      const admitted = later.filter((r) => !r.overLimit).length;
      assert.ok(admitted >= 2 && admitted <= 3, `admitted ${admitted}`);
    });

    it('applies hits_addend all or nothing', { timeout: 5000 }, async () => {
      const windowMs = 10_000;
      await freshWindow(raw, windowMs, 2000);
      const req: CheckRequest = {
        algorithm: 'SlidingWindow',
        counter: counter(),
        limit: 10,
        windowMs,
        hits: 4,
      };
      const results = await hitRepeatedly(store, req, 3);
      assert.deepEqual(
        results.map((r) => [r.overLimit, r.remaining]),
        [
          [false, 6],
          [false, 2],
          [true, 2],
        ],
      );
      // The refused 4 did not count: 2 singles still fit.
      const singles = await hitRepeatedly(store, { ...req, hits: 1 }, 3);
      assert.deepEqual(
        singles.map((r) => r.overLimit),
        [false, false, true],
      );
    });
  });
});

describe('RedisStore without Redis', { timeout: 20_000 }, () => {
  it(
    'refuses checks at once when Redis dies, and recovers when it is back',
    { timeout: 15_000 },
    async () => {
      const redis = await TestRedis.start();
      const store = new RedisStore({ url: redis.url, logger: quiet });
      let restarted: TestRedis | undefined;
      try {
        assert.equal(await store.connect(), true);
        const req: CheckRequest = {
          algorithm: 'FixedWindow',
          counter: ['weft', 'dying'],
          limit: 10,
          windowMs: 60_000,
          hits: 1,
        };
        assert.equal((await store.check(req)).overLimit, false);
        await redis.kill();
        const started = performance.now();
        const results = await Promise.allSettled([store.check(req), store.check(req), store.check(req)]);
        const elapsed = performance.now() - started;
        for (const r of results) {
          assert.equal(r.status, 'rejected');
          assert.ok(r.reason instanceof StoreUnavailableError, String(r.reason));
        }
        assert.ok(elapsed < 2000, `took ${elapsed} ms`);
        // Still down a moment later (the client is reconnecting in the background): refused, not queued.
        await sleep(100);
        await assert.rejects(store.check(req), StoreUnavailableError);

        restarted = await TestRedis.start(redis.port);
        const deadline = Date.now() + 5000;
        while (!store.ready && Date.now() < deadline) await sleep(20);
        assert.equal(store.ready, true);
        assert.equal((await store.check(req)).overLimit, false);
      } finally {
        await store.close();
        await redis.kill();
        await restarted?.kill();
      }
    },
  );

  it(
    'starts while Redis is down, refuses checks quickly, and connects once Redis is up',
    { timeout: 10_000 },
    async () => {
      const down = await TestRedis.start();
      await down.kill();
      const store = new RedisStore({ url: down.url, logger: quiet });
      let redis: TestRedis | undefined;
      try {
        assert.equal(await store.connect(200), false);
        const req: CheckRequest = {
          algorithm: 'SlidingWindow',
          counter: ['x'],
          limit: 1,
          windowMs: 1000,
          hits: 1,
        };
        const started = performance.now();
        await assert.rejects(store.check(req), StoreUnavailableError);
        assert.ok(performance.now() - started < 2000);
        redis = await TestRedis.start(down.port);
        const deadline = Date.now() + 5000;
        while (!store.ready && Date.now() < deadline) await sleep(20);
        assert.equal(store.ready, true);
        assert.equal((await store.check(req)).overLimit, false);
      } finally {
        await store.close();
        await redis?.kill();
      }
    },
  );

  it('gives up on a Redis that does not answer', { timeout: 10_000 }, async () => {
    const redis = await TestRedis.start();
    const store = new RedisStore({ url: redis.url, logger: quiet, commandTimeoutMs: 200 });
    try {
      assert.equal(await store.connect(), true);
      const req: CheckRequest = {
        algorithm: 'FixedWindow',
        counter: ['frozen'],
        limit: 5,
        windowMs: 60_000,
        hits: 1,
      };
      assert.equal((await store.check(req)).overLimit, false);
      redis.pause();
      const started = performance.now();
      await assert.rejects(store.check(req), /did not answer within 200 ms/);
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 150 && elapsed < 2000, `took ${elapsed} ms`);
    } finally {
      redis.resume();
      await store.close();
      await redis.kill();
    }
  });
});
