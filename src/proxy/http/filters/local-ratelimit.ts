/**
 * The local rate limit filter (`envoy.filters.http.local_ratelimit`): token buckets in this proxy, no rate
 * limit service. The per-route config (typed_per_filter_config under the filter's name) replaces the
 * filter-level one whole, with buckets of its own.
 *
 * Order, as Envoy: when the filter is enabled, the route's rate_limits (of the filter's stage) produce
 * descriptors; each that matches a configured descriptor (exact values first, then ones with wildcard
 * entries) draws from that descriptor's bucket, most restrictive first; the default bucket is drawn when
 * no descriptor matched, or always under always_consume_default_token_bucket (the default). A request
 * without a token is rate limited: answered with `status` (429), body "local_rate_limited" and flag RL
 * when enforced, else passed on with request_headers_to_add_when_not_enforced.
 */
import type { OutgoingHeaders } from '../../upstream/codec.ts';
import type { Descriptor } from '../../router/rate-limit-actions.ts';
import type { HeaderMap } from '../../router/types.ts';
import type { Counter, StatsStore } from '../../stats/store.ts';
import type { FilterStatus, HttpFilter } from '../filter.ts';
import type { HttpStream } from '../stream.ts';
import type { LocalDescriptorConfig, LocalRateLimitConfig } from './local-ratelimit-config.ts';
import { BucketCache, realClock, TokenBucket } from './token-bucket.ts';
import type { Clock, TokenBucketSpec } from './token-bucket.ts';

export const RATE_LIMITED_BODY = 'local_rate_limited';

/** Rooted at `<stat_prefix>.http_local_rate_limit.`, as Envoy names them (stat_prefix is the filter's own). */
export class LocalRateLimitStats {
  readonly enabled: Counter;
  readonly enforced: Counter;
  readonly rateLimited: Counter;
  readonly ok: Counter;

  constructor(store: StatsStore, statPrefix: string) {
    const p = `${statPrefix}.http_local_rate_limit.`;
    this.enabled = store.counter(p + 'enabled');
    this.enforced = store.counter(p + 'enforced');
    this.rateLimited = store.counter(p + 'rate_limited');
    this.ok = store.counter(p + 'ok');
  }
}

function fillRate(spec: TokenBucketSpec): number {
  return spec.tokensPerFill / spec.fillIntervalMs;
}

/** One descriptor's buckets: one fixed bucket, or one per distinct wildcard value. */
class DescriptorBuckets {
  readonly config: LocalDescriptorConfig;
  private readonly fixed: TokenBucket | undefined;
  private readonly dynamic: BucketCache | undefined;

  constructor(config: LocalDescriptorConfig, nowMs: number, cap: number) {
    this.config = config;
    if (config.wildcard) this.dynamic = new BucketCache(config.tokenBucket, cap);
    else this.fixed = new TokenBucket(config.tokenBucket, nowMs);
  }

  /** The bucket for a request descriptor, or undefined when it does not match this one. */
  match(d: Descriptor, nowMs: number): TokenBucket | undefined {
    const entries = this.config.entries;
    if (d.length !== entries.length) return undefined;
    let dynamicKey = '';
    for (let i = 0; i < entries.length; i++) {
      const want = entries[i];
      const got = d[i];
      if (got.key !== want.key) return undefined;
      if (want.value === '') dynamicKey += `${got.value}\u0000`;
      else if (got.value !== want.value) return undefined;
    }
    return this.fixed ?? this.dynamic!.get(dynamicKey, nowMs);
  }

  get dynamicSize(): number {
    return this.dynamic?.size ?? 0;
  }
}

/** The buckets of one config (per filter or per route; per connection when so configured). */
export class Limiter {
  readonly config: LocalRateLimitConfig;
  private readonly defaultBucket: TokenBucket | undefined;
  /** Exact descriptors before wildcard ones, so a specific client's override wins over the per-client rule. */
  readonly descriptors: readonly DescriptorBuckets[];

  constructor(config: LocalRateLimitConfig, nowMs: number, cap: number) {
    this.config = config;
    this.defaultBucket = config.tokenBucket && new TokenBucket(config.tokenBucket, nowMs);
    const all = config.descriptors.map((d) => new DescriptorBuckets(d, nowMs, cap));
    this.descriptors = [...all.filter((d) => !d.config.wildcard), ...all.filter((d) => d.config.wildcard)];
  }

  /**
   * Draws tokens for the request's descriptors; returns whether it may pass and the bucket that decided
   * (the one that refused, else the one with the fewest tokens left), for the x-ratelimit headers.
   */
  check(
    descriptors: readonly Descriptor[],
    nowMs: number,
  ): { allowed: boolean; bucket: TokenBucket | undefined } {
    let matched: TokenBucket[] | undefined;
    for (const d of descriptors) {
      for (const db of this.descriptors) {
        const b = db.match(d, nowMs);
        if (b !== undefined) {
          (matched ??= []).push(b);
          break;
        }
      }
    }
    const buckets = matched ?? [];
    if (buckets.length > 1) buckets.sort((a, b) => fillRate(a.spec) - fillRate(b.spec));
    if (this.defaultBucket !== undefined && (buckets.length === 0 || this.config.alwaysConsumeDefault))
      buckets.push(this.defaultBucket);
    let lowest: TokenBucket | undefined;
    for (const b of buckets) {
      if (!b.consume(nowMs)) return { allowed: false, bucket: b };
      if (lowest === undefined || b.remaining(nowMs) < lowest.remaining(nowMs)) lowest = b;
    }
    return { allowed: true, bucket: lowest };
  }
}

export interface LocalRateLimitOptions {
  clock?: Clock;
  /** Buckets kept per wildcard descriptor (LRU beyond it). */
  maxDynamicBuckets?: number;
}

export class LocalRateLimitFilter implements HttpFilter {
  readonly name: string;
  private readonly config: LocalRateLimitConfig;
  private readonly stats: LocalRateLimitStats;
  private readonly statsByPrefix = new Map<string, LocalRateLimitStats>();
  private readonly store: StatsStore;
  private readonly clock: Clock;
  private readonly cap: number;
  /** Limiters of configs (filter-level and per-route), built on first use; configs are immutable. */
  private readonly limiters = new WeakMap<LocalRateLimitConfig, Limiter>();
  private readonly connectionLimiters = new WeakMap<object, WeakMap<LocalRateLimitConfig, Limiter>>();
  /** x-ratelimit header values decided on the request, for its response. */
  private readonly pendingHeaders = new WeakMap<HttpStream, OutgoingHeaders>();

  constructor(
    name: string,
    config: LocalRateLimitConfig,
    store: StatsStore,
    options: LocalRateLimitOptions = {},
  ) {
    this.name = name;
    this.config = config;
    this.store = store;
    this.stats = new LocalRateLimitStats(store, config.statPrefix);
    this.statsByPrefix.set(config.statPrefix, this.stats);
    this.clock = options.clock ?? realClock;
    this.cap = options.maxDynamicBuckets ?? 10_000;
  }

  private statsFor(cfg: LocalRateLimitConfig): LocalRateLimitStats {
    let s = this.statsByPrefix.get(cfg.statPrefix);
    if (s === undefined) {
      s = new LocalRateLimitStats(this.store, cfg.statPrefix);
      this.statsByPrefix.set(cfg.statPrefix, s);
    }
    return s;
  }

  /** The limiter for a config (and connection, under local_rate_limit_per_downstream_connection). */
  limiterFor(cfg: LocalRateLimitConfig, connection: object | undefined, nowMs: number): Limiter {
    let map = this.limiters;
    if (cfg.perConnection && connection !== undefined) {
      let m = this.connectionLimiters.get(connection);
      if (m === undefined) this.connectionLimiters.set(connection, (m = new WeakMap()));
      map = m;
    }
    let l = map.get(cfg);
    if (l === undefined) map.set(cfg, (l = new Limiter(cfg, nowMs, this.cap)));
    return l;
  }

  onRequest(stream: HttpStream): FilterStatus {
    const route = stream.route();
    const cfg = (route?.perFilterConfig?.get(this.name) as LocalRateLimitConfig | undefined) ?? this.config;
    if (!cfg.enabled) return 'continue';
    const stats = cfg === this.config ? this.stats : this.statsFor(cfg);
    stats.enabled.inc();
    const descriptors: Descriptor[] = [];
    const action = route?.route.action;
    const rateLimits = action?.kind === 'route' ? action.rateLimits : undefined;
    if (rateLimits !== undefined)
      for (const rl of rateLimits) {
        if (rl.stage !== cfg.stage) continue;
        const d = rl.descriptor(stream);
        if (d !== undefined) descriptors.push(d);
      }
    const now = this.clock();
    const limiter = this.limiterFor(cfg, stream.req.socket ?? undefined, now);
    const { allowed, bucket } = limiter.check(descriptors, now);
    const xrl: OutgoingHeaders | undefined =
      cfg.xRateLimitHeaders && bucket !== undefined
        ? {
            'x-ratelimit-limit': String(bucket.spec.maxTokens),
            'x-ratelimit-remaining': String(Math.floor(bucket.remaining(now))),
            // Whole milliseconds first: (t + interval) - t is not always exactly interval in floating point.
            'x-ratelimit-reset': String(Math.max(0, Math.ceil(Math.round(bucket.msUntilFill(now)) / 1000))),
          }
        : undefined;
    if (allowed) {
      stats.ok.inc();
      if (xrl !== undefined) this.pendingHeaders.set(stream, xrl);
      return 'continue';
    }
    stats.rateLimited.inc();
    if (!cfg.enforced) {
      cfg.requestHeadersWhenNotEnforced?.apply(stream.headers, stream);
      if (xrl !== undefined) this.pendingHeaders.set(stream, xrl);
      return 'continue';
    }
    stats.enforced.inc();
    const headers: HeaderMap = { 'x-envoy-ratelimited': 'true', ...xrl };
    cfg.responseHeaders?.apply(headers, stream);
    stream.sendLocalReply(cfg.status, 'RL', RATE_LIMITED_BODY, headers);
    return 'stop';
  }

  onResponseHeaders(stream: HttpStream, _status: number, headers: OutgoingHeaders): void {
    const xrl = this.pendingHeaders.get(stream);
    if (xrl === undefined) return;
    this.pendingHeaders.delete(stream);
    Object.assign(headers, xrl);
  }
}
