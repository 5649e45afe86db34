/**
 * Token buckets for local rate limiting, refilled lazily from a clock: a bucket reads the clock when it
 * is asked for a token and adds the whole fills that elapsed since the last one, so there is no timer per
 * bucket and an idle bucket costs nothing. Fills are discrete (tokens_per_fill every fill_interval, capped
 * at max_tokens), as Envoy's local rate limiter describes them.
 */

/** Milliseconds on a monotonic scale; injectable so tests can step time exactly. */
export type Clock = () => number;

export const realClock: Clock = () => performance.now();

export interface TokenBucketSpec {
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
}

export class TokenBucket {
  readonly spec: TokenBucketSpec;
  private tokens: number;
  /** When the last whole fill happened; the next one is due fillIntervalMs later. */
  private lastFillMs: number;

  constructor(spec: TokenBucketSpec, nowMs: number) {
    this.spec = spec;
    this.tokens = spec.maxTokens;
    this.lastFillMs = nowMs;
  }

  private refill(nowMs: number): void {
    const interval = this.spec.fillIntervalMs;
    const elapsed = nowMs - this.lastFillMs;
    if (elapsed < interval) return;
    const fills = Math.floor(elapsed / interval);
    this.lastFillMs += fills * interval;
    const max = this.spec.maxTokens;
    if (this.tokens < max) this.tokens = Math.min(max, this.tokens + fills * this.spec.tokensPerFill);
  }

  /** Takes one token when there is one. */
  consume(nowMs: number): boolean {
    this.refill(nowMs);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  remaining(nowMs: number): number {
    this.refill(nowMs);
    return this.tokens;
  }

  /** Milliseconds until the next fill. */
  msUntilFill(nowMs: number): number {
    this.refill(nowMs);
    return this.lastFillMs + this.spec.fillIntervalMs - nowMs;
  }
}

/** The cap on buckets kept for wildcard descriptor values (one per distinct client value). */
export const DEFAULT_MAX_DYNAMIC_BUCKETS = 10_000;

/**
 * Buckets by key, created on first use and evicted least-recently-used beyond `cap`, so that many distinct
 * clients cannot grow memory without bound. An evicted client starts again from a full bucket, which
 * errs on the side of letting traffic through. A Map keeps insertion order: re-inserting on use makes
 * its first key the least recently used.
 */
export class BucketCache {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly spec: TokenBucketSpec;
  readonly cap: number;

  constructor(spec: TokenBucketSpec, cap: number = DEFAULT_MAX_DYNAMIC_BUCKETS) {
    this.spec = spec;
    this.cap = cap;
  }

  get size(): number {
    return this.buckets.size;
  }

  has(key: string): boolean {
    return this.buckets.has(key);
  }

  get(key: string, nowMs: number): TokenBucket {
    const buckets = this.buckets;
    let bucket = buckets.get(key);
    if (bucket !== undefined) {
      buckets.delete(key);
      buckets.set(key, bucket);
      return bucket;
    }
    bucket = new TokenBucket(this.spec, nowMs);
    buckets.set(key, bucket);
    if (buckets.size > this.cap) {
      const oldest = buckets.keys().next().value as string;
      buckets.delete(oldest);
    }
    return bucket;
  }
}
