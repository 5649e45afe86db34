/**
 * The global rate limit filter (`envoy.filters.http.ratelimit`): the route's rate_limits of the filter's
 * stage produce descriptors, and the rate limit service decides for all replicas together. The request
 * waits for the answer (bounded by the timeout): OVER_LIMIT is answered with 429 (flag RL,
 * x-envoy-ratelimited), an error or timeout lets the request through (fail open, the default) or answers
 * status_on_error with flag RLSE (failure_mode_deny). A request without descriptors is not checked.
 *
 * Stats, as Envoy names them: cluster.<route's cluster>.ratelimit.{ok,over_limit,error,failure_mode_allowed}.
 */
import type { Descriptor } from '../../router/rate-limit-actions.ts';
import type { HeaderMap } from '../../router/types.ts';
import type { Counter, StatsStore } from '../../stats/store.ts';
import type { ClusterManager } from '../../upstream/cluster-manager.ts';
import type { OutgoingHeaders } from '../../upstream/codec.ts';
import type { FilterStatus, HttpFilter } from '../filter.ts';
import type { HttpStream } from '../stream.ts';
import type { RateLimitConfig } from './ratelimit-config.ts';
import { sharedRlsTransport } from './rls-client.ts';
import type { RlsResult, RlsStatus, RlsTransport } from './rls-client.ts';

const GRPC_RESOURCE_EXHAUSTED = 8;

export class RateLimitStats {
  readonly ok: Counter;
  readonly overLimit: Counter;
  readonly error: Counter;
  readonly failureModeAllowed: Counter;

  constructor(store: StatsStore, cluster: string) {
    const p = `cluster.${cluster}.ratelimit.`;
    this.ok = store.counter(p + 'ok');
    this.overLimit = store.counter(p + 'over_limit');
    this.error = store.counter(p + 'error');
    this.failureModeAllowed = store.counter(p + 'failure_mode_allowed');
  }
}

/** The x-ratelimit-* headers (draft 03) of the status closest to its limit. */
function xRateLimitHeaders(statuses: readonly RlsStatus[]): OutgoingHeaders | undefined {
  let closest: RlsStatus | undefined;
  for (const s of statuses)
    if (s.limit !== undefined && (closest === undefined || s.remaining < closest.remaining)) closest = s;
  if (closest?.limit === undefined) return undefined;
  const { requestsPerUnit, windowSeconds, name } = closest.limit;
  const quota = `${requestsPerUnit};w=${windowSeconds}${name ? `;name="${name}"` : ''}`;
  const headers: OutgoingHeaders = {
    'x-ratelimit-limit': `${requestsPerUnit}, ${quota}`,
    'x-ratelimit-remaining': String(closest.remaining),
  };
  if (closest.resetMs !== undefined) headers['x-ratelimit-reset'] = String(Math.ceil(closest.resetMs / 1000));
  return headers;
}

export class RateLimitFilter implements HttpFilter {
  readonly name: string;
  private readonly config: RateLimitConfig;
  private readonly clusters: ClusterManager;
  private readonly store: StatsStore;
  private readonly transport: RlsTransport;
  private readonly statsByCluster = new Map<string, RateLimitStats>();
  /** Headers the service's answer adds to the response. */
  private readonly pendingHeaders = new WeakMap<HttpStream, OutgoingHeaders>();

  constructor(
    name: string,
    config: RateLimitConfig,
    clusters: ClusterManager,
    store: StatsStore,
    transport: RlsTransport = sharedRlsTransport,
  ) {
    this.name = name;
    this.config = config;
    this.clusters = clusters;
    this.store = store;
    this.transport = transport;
  }

  private statsFor(cluster: string): RateLimitStats {
    let s = this.statsByCluster.get(cluster);
    if (s === undefined) this.statsByCluster.set(cluster, (s = new RateLimitStats(this.store, cluster)));
    return s;
  }

  onRequest(stream: HttpStream): FilterStatus {
    const action = stream.route()?.route.action;
    if (action?.kind !== 'route' || action.rateLimits === undefined) return 'continue';
    const cfg = this.config;
    let descriptors: Descriptor[] | undefined;
    for (const rl of action.rateLimits) {
      if (rl.stage !== cfg.stage) continue;
      const d = rl.descriptor(stream);
      if (d !== undefined) (descriptors ??= []).push(d);
    }
    if (descriptors === undefined) return 'continue';
    // A weighted route counts under its first cluster.
    const stats = this.statsFor(action.pickCluster(0).cluster);
    const host = this.clusters.get(cfg.serviceCluster)?.cluster.loadBalancer.chooseHost({ hash: undefined });
    if (host === undefined || host === null) return this.failed(stream, stats) ? 'stop' : 'continue';
    const call = this.transport.shouldRateLimit(
      `${host.address}:${host.port}`,
      cfg.domain,
      descriptors,
      cfg.timeoutMs,
      (error, result) => {
        if (stream.done) return;
        stream.onAbort = null;
        if (error !== null || result === undefined) {
          if (!this.failed(stream, stats)) stream.continueDecoding();
        } else if (this.decide(stream, stats, result)) {
          stream.continueDecoding();
        }
      },
    );
    // The client leaving cancels the check; the request never reaches the router.
    stream.onAbort = () => call.cancel();
    return 'stop';
  }

  /** The service could not answer: true when the request was refused (failure_mode_deny). */
  private failed(stream: HttpStream, stats: RateLimitStats): boolean {
    stats.error.inc();
    if (!this.config.failureModeDeny) {
      stats.failureModeAllowed.inc();
      return false;
    }
    stream.sendLocalReply(this.config.statusOnError, 'RLSE');
    return true;
  }

  /** Applies the service's answer; true when the request may go on. */
  private decide(stream: HttpStream, stats: RateLimitStats, result: RlsResult): boolean {
    const cfg = this.config;
    const headers: OutgoingHeaders = {
      ...(cfg.xRateLimitHeaders ? xRateLimitHeaders(result.statuses) : undefined),
    };
    for (const [name, value] of result.responseHeaders) headers[name] = value;
    if (!result.overLimit) {
      stats.ok.inc();
      for (const [name, value] of result.requestHeaders) stream.headers[name] = value;
      if (Object.keys(headers).length > 0) this.pendingHeaders.set(stream, headers);
      return true;
    }
    stats.overLimit.inc();
    const reply: HeaderMap = { ...headers };
    if (cfg.xEnvoyRateLimitedHeader) reply['x-envoy-ratelimited'] = 'true';
    cfg.responseHeaders?.apply(reply, stream);
    stream.sendLocalReply(
      cfg.rateLimitedStatus,
      'RL',
      undefined,
      reply,
      cfg.rateLimitedAsResourceExhausted ? GRPC_RESOURCE_EXHAUSTED : undefined,
    );
    return false;
  }

  onResponseHeaders(stream: HttpStream, _status: number, headers: OutgoingHeaders): void {
    const extra = this.pendingHeaders.get(stream);
    if (extra === undefined) return;
    this.pendingHeaders.delete(stream);
    Object.assign(headers, extra);
  }
}
