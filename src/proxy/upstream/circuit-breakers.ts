/**
 * A cluster's circuit breakers (Envoy's resource manager for the DEFAULT priority): connections, pending
 * requests, active requests and retries, counted across all the cluster's hosts. Pools ask before they
 * open a connection, queue a request or attach one to a connection; an overflow fails the request at once
 * (503 UO) instead of queueing it.
 */
import type { Counter, Gauge, StatsStore } from '../stats/store.ts';
import type { UpstreamHandler } from './codec.ts';
import type { CircuitBreakerThresholds } from './types.ts';

/** Envoy's defaults for circuit_breakers.thresholds (priority DEFAULT). */
export const DEFAULT_THRESHOLDS: CircuitBreakerThresholds = {
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
  retryBudget: undefined,
  trackRemaining: false,
};

/** The cluster-wide usage stats a resource also drives (Envoy's upstream_cx_* and upstream_rq_pending_*). */
interface UsageStats {
  readonly active: Gauge | undefined;
  readonly total: Counter | undefined;
}

const NO_USAGE: UsageStats = { active: undefined, total: undefined };

/** One limited resource: its count, its limit, and the gauges that show it. */
class Resource {
  count = 0;
  private readonly max: () => number;
  private readonly open: Gauge | undefined;
  private readonly remaining: Gauge | undefined;
  private readonly usage: UsageStats;

  constructor(
    max: () => number,
    open: Gauge | undefined,
    remaining: Gauge | undefined,
    usage: UsageStats = NO_USAGE,
  ) {
    this.max = max;
    this.open = open;
    this.remaining = remaining;
    this.usage = usage;
    this.publish();
  }

  canCreate(): boolean {
    return this.count < this.max();
  }

  inc(): void {
    this.count++;
    this.usage.total?.inc();
    this.publish();
  }

  dec(): void {
    this.count--;
    this.publish();
  }

  /** Gauges follow the count: "open" while at the limit, as Envoy's circuit_breakers.*.*_open. */
  publish(): void {
    const max = this.max();
    this.open?.set(this.count >= max ? 1 : 0);
    this.remaining?.set(Math.max(0, max - this.count));
    this.usage.active?.set(this.count);
  }
}

interface BreakerCounters {
  readonly cxOverflow: Counter | undefined;
  readonly pendingOverflow: Counter | undefined;
  readonly retryOverflow: Counter | undefined;
}

export class CircuitBreakers {
  readonly thresholds: CircuitBreakerThresholds;
  readonly connections: Resource;
  readonly pending: Resource;
  readonly requests: Resource;
  readonly retries: Resource;
  private readonly counters: BreakerCounters;

  /** Without `stats` (pools built directly in tests) the breakers count but publish nothing. */
  constructor(thresholds: CircuitBreakerThresholds, stats?: StatsStore, cluster?: string) {
    this.thresholds = thresholds;
    const p = `cluster.${cluster ?? ''}.`;
    const g = (name: string): Gauge | undefined => stats?.gauge(`${p}circuit_breakers.default.${name}`);
    const r = (name: string): Gauge | undefined =>
      thresholds.trackRemaining ? g(`remaining_${name}`) : undefined;
    const c = (name: string): Counter | undefined => stats?.counter(p + name);
    this.counters = {
      cxOverflow: c('upstream_cx_overflow'),
      pendingOverflow: c('upstream_rq_pending_overflow'),
      retryOverflow: c('upstream_rq_retry_overflow'),
    };
    // The pools count connections and queued requests here for the limits; the same counts are the cluster's
    // upstream_cx_active and upstream_rq_pending_active (connections of the pools that share the breakers).
    const usage = (name: string): UsageStats => ({
      active: stats?.gauge(`${p}${name}_active`),
      total: c(`${name}_total`),
    });
    this.connections = new Resource(
      () => thresholds.maxConnections,
      g('cx_open'),
      r('cx'),
      usage('upstream_cx'),
    );
    this.pending = new Resource(
      () => thresholds.maxPendingRequests,
      g('rq_pending_open'),
      r('pending'),
      usage('upstream_rq_pending'),
    );
    this.requests = new Resource(() => thresholds.maxRequests, g('rq_open'), r('rq'));
    this.retries = new Resource(() => this.maxRetries(), g('rq_retry_open'), r('retries'));
  }

  /**
   * Concurrent retries allowed now. With a retry budget it scales with the load (Envoy: budget_percent of
   * active plus pending requests, never below min_retry_concurrency) and replaces max_retries.
   */
  maxRetries(): number {
    const b = this.thresholds.retryBudget;
    if (b === undefined) return this.thresholds.maxRetries;
    const load = this.requests.count + this.pending.count;
    return Math.max(b.minRetryConcurrency, Math.floor((b.budgetPercent / 100) * load));
  }

  /**
   * May a pool open one more connection? `poolIsEmpty`: Envoy still lets a host chosen by the load
   * balancer have one connection when the cluster is at its limit, so no host starves.
   */
  canOpenConnection(poolIsEmpty: boolean): boolean {
    if (this.connections.canCreate() || poolIsEmpty) return true;
    this.counters.cxOverflow?.inc();
    return false;
  }

  /** May a request wait for a connection? On false, the overflow is counted. */
  tryPending(): boolean {
    if (this.pending.canCreate()) return true;
    this.counters.pendingOverflow?.inc();
    return false;
  }

  /** May a request go out on a connection? Envoy counts this overflow as pending overflow too. */
  tryRequest(): boolean {
    if (this.requests.canCreate()) return true;
    this.counters.pendingOverflow?.inc();
    return false;
  }

  /** Takes a retry slot, or counts upstream_rq_retry_overflow and refuses. */
  tryRetry(): boolean {
    if (this.retries.canCreate()) {
      this.retries.inc();
      return true;
    }
    this.counters.retryOverflow?.inc();
    return false;
  }
}

/**
 * One request's claim on the breakers inside a pool: pending while it waits for a connection, active once
 * it is on one. release() is idempotent and must run on every end of the request (its final callback).
 */
export class BreakerSlot {
  private readonly breakers: CircuitBreakers;
  private state: 'none' | 'pending' | 'active' | 'released' = 'none';

  constructor(breakers: CircuitBreakers) {
    this.breakers = breakers;
  }

  /** Queues the request: false (overflow) when the pending limit is reached. */
  enterPending(): boolean {
    if (this.state !== 'none') return true;
    if (!this.breakers.tryPending()) return false;
    this.state = 'pending';
    this.breakers.pending.inc();
    return true;
  }

  /** Attaches the request to a connection: false (overflow) when the request limit is reached. */
  activate(): boolean {
    if (this.state === 'active') return true;
    if (this.state === 'released') return false;
    this.leavePending();
    if (!this.breakers.tryRequest()) {
      this.state = 'released';
      return false;
    }
    this.state = 'active';
    this.breakers.requests.inc();
    return true;
  }

  release(): void {
    this.leavePending();
    if (this.state === 'active') this.breakers.requests.dec();
    this.state = 'released';
  }

  private leavePending(): void {
    if (this.state === 'pending') {
      this.breakers.pending.dec();
      this.state = 'none';
    }
  }
}

export const OVERFLOW_MESSAGE = 'circuit breaker overflow';

/** Wraps a handler so that its final callback (onEnd, onError or onUpgrade) releases `slot` first. */
export function releasingOnEnd(h: UpstreamHandler, slot: BreakerSlot): UpstreamHandler {
  return {
    onStart: (abort, pause, resume) => h.onStart(abort, pause, resume),
    onHeaders: (status, headers, endOfStream) => h.onHeaders(status, headers, endOfStream),
    onData: (chunk) => h.onData(chunk),
    onEnd: (trailers) => {
      slot.release();
      h.onEnd(trailers);
    },
    onError: (err) => {
      slot.release();
      h.onError(err);
    },
    onUpgrade: (status, headers, socket) => {
      slot.release();
      h.onUpgrade(status, headers, socket);
    },
  };
}
