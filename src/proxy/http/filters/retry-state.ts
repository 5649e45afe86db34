/**
 * Per-request retry bookkeeping for the router, allocated only for routes with a retry_policy: tries used,
 * hosts already tried, the replayable body, the per-try and back-off timers, and the cluster's retry slot
 * (circuit_breakers max_retries or retry_budget). Also the per-try handler that keeps a stale try's late callbacks away
 * from the exchange once it has been abandoned for a retry.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RetryPolicy } from '../../router/retry-policy.ts';
import type { ClusterEntry } from '../../upstream/cluster-manager.ts';
import type { UpstreamError, UpstreamHandler } from '../../upstream/codec.ts';
import type { Host } from '../../upstream/types.ts';
import type { ReplayableBody } from './retry-body.ts';

/** What the retry state says about one retriable outcome. */
export type RetryVerdict = 'retry' | 'limit-exceeded' | 'overflow' | 'not-replayable';

export class RetryState {
  readonly policy: RetryPolicy;
  readonly attempted: Set<Host> | undefined;
  /** The body to replay, or null when the request has none. */
  readonly body: ReplayableBody | null;
  /** Set when the request has a body that cannot be replayed (declared larger than the buffer limit). */
  private readonly bodyTooLarge: boolean;
  private readonly entry: ClusterEntry;
  private retries = 0;
  /** previous_priorities: the priority of each try so far, and the priorities the next tries leave out. */
  private readonly triedPriorities: number[] = [];
  excludedPriorities: ReadonlySet<number> | undefined;
  private holdsSlot = false;
  perTryTimer: NodeJS.Timeout | null = null;
  backOffTimer: NodeJS.Timeout | null = null;

  constructor(policy: RetryPolicy, entry: ClusterEntry, body: ReplayableBody | null, bodyTooLarge: boolean) {
    this.policy = policy;
    this.entry = entry;
    this.body = body;
    this.bodyTooLarge = bodyTooLarge;
    this.attempted = policy.avoidPreviousHosts ? new Set() : undefined;
  }

  /**
   * Records a try's priority. Every `update_frequency` tries, the priorities tried so far are excluded
   * from then on (Envoy's previous_priorities; the load balancer falls back to the full load when that
   * would leave nothing).
   */
  triedPriority(priority: number): void {
    const frequency = this.policy.previousPrioritiesFrequency;
    if (frequency === undefined) return;
    this.triedPriorities.push(priority);
    if (this.triedPriorities.length % frequency === 0)
      this.excludedPriorities = new Set(this.triedPriorities);
  }

  /** Retries done so far (the next back-off grows with it). */
  get retriesDone(): number {
    return this.retries;
  }

  /** Decides, and on 'retry' takes the retry (counting it and holding a cluster retry slot). */
  decide(): RetryVerdict {
    this.releaseSlot();
    if (this.bodyTooLarge || (this.body !== null && !this.body.replayable)) return 'not-replayable';
    const stats = this.entry.stats;
    if (this.retries >= this.policy.numRetries) {
      stats.upstreamRqRetryLimitExceeded.inc();
      return 'limit-exceeded';
    }
    this.retries++;
    // max_retries, or the retry budget when the cluster has one; the breakers count the overflow.
    if (!this.entry.breakers.tryRetry()) return 'overflow';
    this.holdsSlot = true;
    stats.upstreamRqRetry.inc();
    return 'retry';
  }

  clearPerTry(): void {
    if (this.perTryTimer !== null) {
      clearTimeout(this.perTryTimer);
      this.perTryTimer = null;
    }
  }

  /** The request is over (answered, failed or abandoned): no timer, slot or body copy outlives it. */
  dispose(): void {
    this.clearPerTry();
    if (this.backOffTimer !== null) {
      clearTimeout(this.backOffTimer);
      this.backOffTimer = null;
    }
    this.releaseSlot();
    this.body?.release();
  }

  private releaseSlot(): void {
    if (this.holdsSlot) {
      this.holdsSlot = false;
      this.entry.breakers.retries.dec();
    }
  }
}

/** The part of the router's exchange a try reports to. */
export interface AttemptOwner extends UpstreamHandler {
  currentAttempt: AttemptHandler | null;
}

/** One try's upstream handler: forwards to the exchange only while this try is the current one. */
export class AttemptHandler implements UpstreamHandler {
  private readonly owner: AttemptOwner;

  constructor(owner: AttemptOwner) {
    this.owner = owner;
  }

  onStart(abort: (reason: Error) => void, pause: () => void, resume: () => void): void {
    if (this.owner.currentAttempt === this) this.owner.onStart(abort, pause, resume);
  }

  onHeaders(status: number, headers: IncomingHttpHeaders, endOfStream: boolean): void {
    if (this.owner.currentAttempt === this) this.owner.onHeaders(status, headers, endOfStream);
  }

  onData(chunk: Buffer): boolean {
    return this.owner.currentAttempt === this ? this.owner.onData(chunk) : true;
  }

  onEnd(trailers: IncomingHttpHeaders | null): void {
    if (this.owner.currentAttempt === this) this.owner.onEnd(trailers);
  }

  onError(err: UpstreamError): void {
    if (this.owner.currentAttempt === this) this.owner.onError(err);
  }

  onUpgrade(status: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    if (this.owner.currentAttempt === this) this.owner.onUpgrade(status, headers, socket);
    else socket.destroy();
  }
}
