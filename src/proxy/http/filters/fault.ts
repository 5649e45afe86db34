/**
 * The fault injection filter (`envoy.filters.http.fault`): delays and/or aborts a share of requests,
 * as configured at the filter level or, more specifically, per virtual host or route
 * (typed_per_filter_config under the filter's name, which replaces the filter-level config whole).
 *
 * Order, as Envoy: the request must match upstream_cluster and all `headers`; then the delay and the
 * abort are each drawn against their percentage; an active-fault limit turns a would-be fault into
 * `faults_overflow`; a delay pauses the chain and, when it ends, the abort (if drawn) or the rest of
 * the chain runs. A client that leaves during the delay cancels it: nothing goes upstream.
 *
 * Requests without a fault cost one route lookup (cached on the stream for the router) and a few
 * property reads: no closures, timers or promises.
 */
import type { Gauge, Counter, StatsStore } from '../../stats/store.ts';
import type { FilterStatus, HttpFilter } from '../filter.ts';
import type { HttpStream } from '../stream.ts';
import type { FaultConfig, Fraction } from './fault-config.ts';

const ABORT_BODY = 'fault filter abort';
const HEADER_ABORT = 'x-envoy-fault-abort-request';
const HEADER_ABORT_GRPC = 'x-envoy-fault-abort-grpc-request';
const HEADER_ABORT_PERCENTAGE = 'x-envoy-fault-abort-request-percentage';
const HEADER_DELAY = 'x-envoy-fault-delay-request';
const HEADER_DELAY_PERCENTAGE = 'x-envoy-fault-delay-request-percentage';
const UINT32_MAX = 2 ** 32 - 1;
/** Node's timers overflow above 2^31-1 ms (and fire at once): longer delays are clamped. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class FaultStats {
  readonly abortsInjected: Counter;
  readonly delaysInjected: Counter;
  readonly activeFaults: Gauge;
  readonly faultsOverflow: Counter;

  constructor(store: StatsStore, statPrefix: string) {
    const p = `http.${statPrefix}.fault.`;
    this.abortsInjected = store.counter(p + 'aborts_injected');
    this.delaysInjected = store.counter(p + 'delays_injected');
    this.activeFaults = store.gauge(p + 'active_faults');
    this.faultsOverflow = store.counter(p + 'faults_overflow');
  }
}

/** A header's first value as an unsigned 32-bit decimal integer, as Envoy parses fault headers. */
function headerUint(stream: HttpStream, name: string): number | undefined {
  let v = stream.headers[name];
  if (v === undefined) return undefined;
  if (Array.isArray(v)) v = v[0];
  if (v === undefined || v.length === 0 || v.length > 10) return undefined;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
  }
  const n = Number(v);
  return n <= UINT32_MAX ? n : undefined;
}

/** The configured fraction, or the header's numerator capped by the configured one (same denominator). */
function effectiveNumerator(stream: HttpStream, header: string, configured: Fraction): number {
  const n = headerUint(stream, header);
  return n === undefined ? configured.numerator : Math.min(n, configured.numerator);
}

/** One faulted request waiting out its delay. Only allocated when a delay is injected. */
class PendingDelay {
  readonly stream: HttpStream;
  readonly filter: FaultFilter;
  readonly config: FaultConfig;
  readonly abort: boolean;
  readonly timer: NodeJS.Timeout;

  constructor(stream: HttpStream, filter: FaultFilter, config: FaultConfig, abort: boolean, ms: number) {
    this.stream = stream;
    this.filter = filter;
    this.config = config;
    this.abort = abort;
    this.timer = setTimeout(() => this.elapsed(), Math.min(ms, MAX_TIMER_MS));
    // The client leaving cancels the delay, so the request never reaches the following filters.
    stream.onAbort = () => clearTimeout(this.timer);
  }

  private elapsed(): void {
    const stream = this.stream;
    stream.onAbort = null;
    if (stream.done) return;
    if (this.abort && this.filter.abort(stream, this.config)) return;
    stream.continueDecoding();
  }
}

export class FaultFilter implements HttpFilter {
  readonly name: string;
  private readonly config: FaultConfig;
  private readonly stats: FaultStats;
  /** In [0, 1); injectable so tests can pin decisions. */
  private readonly random: () => number;
  private readonly release: () => void;

  constructor(name: string, config: FaultConfig, stats: FaultStats, random: () => number = Math.random) {
    this.name = name;
    this.config = config;
    this.stats = stats;
    this.random = random;
    const active = stats.activeFaults;
    this.release = () => active.dec();
  }

  onRequest(stream: HttpStream): FilterStatus {
    const route = stream.route();
    const perRoute = route?.perFilterConfig?.get(this.name) as FaultConfig | undefined;
    const cfg = perRoute ?? this.config;
    const delay = cfg.delay;
    const abort = cfg.abort;
    if (delay === undefined && abort === undefined) return 'continue';
    if (!this.applies(stream, cfg, route)) return 'continue';

    let delayMs = 0;
    if (delay !== undefined) {
      const ms = delay.kind === 'fixed' ? delay.delayMs : (headerUint(stream, HEADER_DELAY) ?? 0);
      if (ms > 0 && this.drawn(stream, HEADER_DELAY_PERCENTAGE, delay.percentage, delay.kind === 'header'))
        delayMs = ms;
    }
    const doAbort =
      abort !== undefined &&
      this.drawn(stream, HEADER_ABORT_PERCENTAGE, abort.percentage, abort.kind === 'header') &&
      (abort.kind !== 'header' || this.headerAbortStatus(stream) !== undefined);
    if (delayMs === 0 && !doAbort) return 'continue';

    const stats = this.stats;
    const max = cfg.maxActiveFaults;
    if (max !== undefined && stats.activeFaults.value >= max) {
      stats.faultsOverflow.inc();
      return 'continue';
    }
    stats.activeFaults.inc();
    stream.res.once('close', this.release);
    if (delayMs > 0) {
      stats.delaysInjected.inc();
      stream.addFlag('DI');
      new PendingDelay(stream, this, cfg, doAbort, delayMs);
      return 'stop';
    }
    if (this.abort(stream, cfg)) return 'stop';
    return 'continue';
  }

  /** upstream_cluster and headers. */
  private applies(stream: HttpStream, cfg: FaultConfig, route: ReturnType<HttpStream['route']>): boolean {
    if (cfg.upstreamCluster !== '') {
      const action = route?.route.action;
      // A weighted route's cluster is drawn by the router later; this compares a draw of the same weights.
      if (action?.kind !== 'route' || action.pickCluster(this.random()).cluster !== cfg.upstreamCluster)
        return false;
    }
    const headers = cfg.headers;
    for (let i = 0; i < headers.length; i++) if (!headers[i].matches(stream)) return false;
    return true;
  }

  /** Whether this request falls in the fault's share; header-controlled faults honour the percentage header. */
  private drawn(
    stream: HttpStream,
    percentageHeader: string,
    configured: Fraction,
    headerControlled: boolean,
  ): boolean {
    const numerator = headerControlled
      ? effectiveNumerator(stream, percentageHeader, configured)
      : configured.numerator;
    if (numerator === 0) return false;
    if (numerator >= configured.denominator) return true;
    return this.random() * configured.denominator < numerator;
  }

  /** HTTP and gRPC statuses from the abort headers; undefined when neither is valid. */
  private headerAbortStatus(stream: HttpStream): { http?: number; grpc?: number } | undefined {
    const http = headerUint(stream, HEADER_ABORT);
    const grpc = headerUint(stream, HEADER_ABORT_GRPC);
    const validHttp = http !== undefined && http >= 200 && http < 600 ? http : undefined;
    if (validHttp === undefined && grpc === undefined) return undefined;
    return { http: validHttp, grpc };
  }

  /** Sends the abort reply; false when a header abort carries no usable status. */
  abort(stream: HttpStream, cfg: FaultConfig): boolean {
    const abort = cfg.abort!;
    let http: number | undefined;
    let grpc: number | undefined;
    if (abort.kind === 'http') http = abort.httpStatus;
    else if (abort.kind === 'grpc') grpc = abort.grpcStatus;
    else {
      const s = this.headerAbortStatus(stream);
      if (s === undefined) return false;
      http = s.http;
      grpc = s.grpc;
    }
    this.stats.abortsInjected.inc();
    // A gRPC-only abort of a plain HTTP request has no HTTP status of its own: 503, as for other local failures.
    stream.sendLocalReply(http ?? 503, 'FI', ABORT_BODY, undefined, grpc);
    return true;
  }
}
