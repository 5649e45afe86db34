/** Per-cluster counters with Envoy's names, created once so the hot path only increments fields. */
import type { Counter, Gauge, StatsStore } from '../stats/store.ts';

export class ClusterStats {
  readonly upstreamRqTotal: Counter;
  readonly upstreamRqActive: Gauge;
  readonly upstreamRqTimeout: Counter;
  readonly upstreamRqRetry: Counter;
  readonly upstreamRqRetrySuccess: Counter;
  readonly upstreamRqRetryLimitExceeded: Counter;
  readonly upstreamRqPerTryTimeout: Counter;
  readonly upstreamCxConnectFail: Counter;
  readonly upstreamCxDestroyRemote: Counter;
  readonly upstreamRqResetRemote: Counter;
  readonly upstreamRqProtocolError: Counter;
  readonly noHealthyUpstream: Counter;
  readonly membershipTotal: Gauge;
  private readonly classes: Counter[];
  private readonly codes = new Map<number, Counter>();
  private readonly store: StatsStore;
  private readonly prefix: string;

  constructor(store: StatsStore, cluster: string) {
    this.store = store;
    const p = (this.prefix = `cluster.${cluster}.`);
    this.upstreamRqTotal = store.counter(p + 'upstream_rq_total');
    this.upstreamRqActive = store.gauge(p + 'upstream_rq_active');
    this.upstreamRqTimeout = store.counter(p + 'upstream_rq_timeout');
    this.upstreamRqRetry = store.counter(p + 'upstream_rq_retry');
    this.upstreamRqRetrySuccess = store.counter(p + 'upstream_rq_retry_success');
    this.upstreamRqRetryLimitExceeded = store.counter(p + 'upstream_rq_retry_limit_exceeded');
    this.upstreamRqPerTryTimeout = store.counter(p + 'upstream_rq_per_try_timeout');
    this.upstreamCxConnectFail = store.counter(p + 'upstream_cx_connect_fail');
    this.upstreamCxDestroyRemote = store.counter(p + 'upstream_cx_destroy_remote');
    this.upstreamRqResetRemote = store.counter(p + 'upstream_rq_rx_reset');
    this.upstreamRqProtocolError = store.counter(p + 'upstream_rq_protocol_error');
    this.noHealthyUpstream = store.counter(p + 'upstream_cx_none_healthy');
    this.membershipTotal = store.gauge(p + 'membership_total');
    this.classes = [1, 2, 3, 4, 5].map((c) => store.counter(`${p}upstream_rq_${c}xx`));
  }

  /** Counts a response from the upstream by class and exact code. */
  response(status: number): void {
    const cls = (status / 100) | 0;
    if (cls >= 1 && cls <= 5) this.classes[cls - 1].inc();
    let c = this.codes.get(status);
    if (c === undefined) {
      c = this.store.counter(`${this.prefix}upstream_rq_${status}`);
      this.codes.set(status, c);
    }
    c.inc();
  }
}
