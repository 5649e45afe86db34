import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BucketCache, TokenBucket } from './token-bucket.ts';

const SPEC = { maxTokens: 3, tokensPerFill: 2, fillIntervalMs: 1000 };

describe('TokenBucket', () => {
  it('starts full, refuses when empty, refills whole fills only, capped at max_tokens', () => {
    const b = new TokenBucket(SPEC, 0);
    assert.equal(b.consume(0), true);
    assert.equal(b.consume(0), true);
    assert.equal(b.consume(0), true);
    assert.equal(b.consume(999), false);
    assert.equal(b.msUntilFill(999), 1);
    assert.equal(b.remaining(1000), 2);
    assert.equal(b.consume(1000), true);
    assert.equal(b.consume(1000), true);
    assert.equal(b.consume(1500), false);
    // Five intervals add 10 tokens, capped at 3; the fill phase stays aligned to the start.
    assert.equal(b.remaining(6400), 3);
    assert.equal(b.msUntilFill(6400), 600);
  });
});

describe('BucketCache', () => {
  it('keeps at most `cap` buckets and evicts the least recently used', () => {
    const c = new BucketCache(SPEC, 2);
    c.get('a', 0).consume(0);
    c.get('b', 0);
    c.get('a', 0); // a is now the most recently used
    c.get('c', 0);
    assert.equal(c.size, 2);
    assert.equal(c.has('a'), true);
    assert.equal(c.has('b'), false);
    assert.equal(c.has('c'), true);
    // a kept its state (one token used); an evicted client comes back with a full bucket.
    assert.equal(c.get('a', 0).remaining(0), 2);
    assert.equal(c.get('b', 0).remaining(0), 3);
    assert.equal(c.size, 2);
  });

  it('stays bounded with many distinct clients', () => {
    const c = new BucketCache(SPEC, 100);
    for (let i = 0; i < 10_000; i++) c.get(`client-${i}`, 0).consume(0);
    assert.equal(c.size, 100);
    assert.equal(c.has('client-9999'), true);
    assert.equal(c.has('client-0'), false);
  });
});
