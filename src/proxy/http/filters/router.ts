/**
 * The router filter (`envoy.filters.http.router`): the last HTTP filter. Matches the route, picks the
 * concrete cluster and an endpoint, forwards the request and streams the response back.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Http2ServerResponse } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { FilterStatus, HttpFilter } from '../filter.ts';
import type { HttpStream } from '../stream.ts';
import type { ClusterEntry, ClusterManager } from '../../upstream/cluster-manager.ts';
import { UpstreamError } from '../../upstream/codec.ts';
import type { OutgoingHeaders, UpstreamHandler, UpstreamRequest } from '../../upstream/codec.ts';
import type { Host } from '../../upstream/types.ts';
import { recordResponseLatency } from '../../upstream/lb/peak-ewma.ts';
import type { ForwardAction, MatchedRoute, WeightedPick } from '../../router/types.ts';
import { attemptBudgetMs, effectiveTimeoutMs, formatGrpcTimeout } from '../../router/deadline.ts';
import { backOffMs, retriableFailure, retriableResponse } from '../../router/retry-policy.ts';
import type { AttemptFailure, RetryPolicy } from '../../router/retry-policy.ts';
import { downstreamResponseHeaders, upstreamRequestHeaders } from '../headers.ts';
import { sendShadows } from '../mirror.ts';
import { DEFAULT_BUFFER_LIMIT_BYTES, ReplayableBody } from './retry-body.ts';
import { AttemptHandler, RetryState } from './retry-state.ts';
import { DEFAULT_ROUTER_CONFIG } from './router-config.ts';
import { httpStatusForGrpc } from '../../../core/grpc-status.ts';
import type { RouterConfig } from './router-config.ts';
import type { AttemptOwner } from './retry-state.ts';

/** Methods a repeated request does no more harm with than a single one (RFC 9110 9.2.2). */
const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

const FLAG_FOR_FAILURE: Readonly<Record<string, string>> = {
  connect: 'UF',
  termination: 'UC',
  reset: 'UR',
  refused: 'UR',
  protocol: 'UPE',
  local: 'LR',
  overflow: 'UO',
};

export class RouterFilter implements HttpFilter {
  readonly name = 'envoy.filters.http.router';
  private readonly clusters: ClusterManager;
  private readonly config: RouterConfig;

  constructor(clusters: ClusterManager, config: RouterConfig = DEFAULT_ROUTER_CONFIG) {
    this.clusters = clusters;
    this.config = config;
  }

  onRequest(stream: HttpStream): FilterStatus {
    const hcm = stream.hcm;
    // Shared with earlier filters (e.g. fault), so a request is matched once.
    const matched = stream.route();
    if (matched === null) {
      hcm.stats.rqNoRoute.inc();
      stream.sendLocalReply(404, 'NR');
      return 'stop';
    }
    const action = matched.route.action;
    if (action.kind === 'direct_response') {
      hcm.stats.rqDirectResponse.inc();
      const headers: OutgoingHeaders = {};
      if (action.body !== undefined) {
        headers['content-type'] = 'text/plain';
        headers['content-length'] = String(action.body.length);
      } else headers['content-length'] = '0';
      respondLocally(stream, matched, action.status, headers, action.body);
      return 'stop';
    }
    if (action.kind === 'redirect') {
      hcm.stats.rqRedirect.inc();
      const r = action.redirect(stream);
      respondLocally(stream, matched, r.status, { location: r.location, 'content-length': '0' }, undefined);
      return 'stop';
    }
    const pick = action.pickCluster(Math.random());
    const entry = this.clusters.get(pick.cluster);
    stream.clusterName = pick.cluster;
    if (entry === undefined) {
      stream.sendLocalReply(503, 'NC');
      return 'stop';
    }
    new UpstreamExchange(stream, matched, action, pick, entry, this.config).start(this.clusters);
    return 'stop';
  }
}

function respondLocally(
  stream: HttpStream,
  matched: MatchedRoute,
  status: number,
  headers: OutgoingHeaders,
  body: Buffer | undefined,
): void {
  for (const m of matched.responseHeaders) m.apply(headers, stream);
  stream.hcm.decorateResponse(stream, headers);
  stream.responseStatus = status;
  const res = stream.res as ServerResponse;
  if (body !== undefined && stream.method !== 'HEAD') stream.bytesSent += body.length;
  try {
    res.writeHead(status, headers);
    res.end(stream.method === 'HEAD' ? undefined : body);
  } catch {
    stream.resetDownstream();
  }
  stream.finish(status);
}

function requestHasBody(stream: HttpStream): boolean {
  if (stream.http2) return !(stream.res as Http2ServerResponse).stream.endAfterHeaders;
  const h = stream.headers;
  if (h['transfer-encoding'] !== undefined) return true;
  const cl = h['content-length'];
  return cl !== undefined && cl !== '0';
}

const ATTEMPT_COUNT = 'x-envoy-attempt-count';
const EXPECTED_RQ_TIMEOUT = 'x-envoy-expected-rq-timeout-ms';
const GRPC_DEADLINE_EXCEEDED = 4;
/** setTimeout's largest delay; a later deadline is re-armed when the timer fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * One request's journey upstream: endpoint choice, timeouts, retries, response streaming, failure mapping.
 * Without a retry policy it is its own upstream handler; with one, each try gets an AttemptHandler so that a
 * try abandoned for a retry cannot reach the exchange any more.
 */
class UpstreamExchange implements UpstreamHandler, AttemptOwner {
  private readonly stream: HttpStream;
  private readonly matched: MatchedRoute;
  private readonly action: ForwardAction;
  private readonly pick: WeightedPick;
  private readonly entry: ClusterEntry;
  private readonly config: RouterConfig;
  /** The route timeout capped by the caller's deadline (see effectiveTimeoutMs); Infinity for none. */
  private timeoutMs = Infinity;
  private host: Host | null = null;
  /** When the current try was sent: its time to response headers feeds latency-aware balancing. */
  private attemptStartMs = 0;
  private abortUpstream: ((reason: Error) => void) | null = null;
  private resumeUpstream: (() => void) | null = null;
  private responseStarted = false;
  private finished = false;
  private attempts = 0;
  private hasBody = false;
  private hash: number | undefined;
  private setCookie: string | undefined;
  private timer: NodeJS.Timeout | null = null;
  private routeDeadline = Infinity;
  private lastActivity = 0;
  private idleMs = 0;
  private upstreamReq: UpstreamRequest | null = null;
  private bodyPending = false;
  /** While the body arrives: the downstream connection's bytes read when the idle clock last looked. */
  private lastBytesRead = 0;
  /** Only for routes with a retry_policy. */
  private retry: RetryState | null = null;
  currentAttempt: AttemptHandler | null = null;

  constructor(
    stream: HttpStream,
    matched: MatchedRoute,
    action: ForwardAction,
    pick: WeightedPick,
    entry: ClusterEntry,
    config: RouterConfig,
  ) {
    this.stream = stream;
    this.matched = matched;
    this.action = action;
    this.pick = pick;
    this.entry = entry;
    this.config = config;
  }

  start(clusters: ClusterManager): void {
    const stream = this.stream;
    const h = this.action.computeHash(stream);
    if (h !== undefined) {
      this.hash = h.hash;
      this.setCookie = h.setCookie;
    }
    this.hasBody = requestHasBody(stream);
    this.timeoutMs = effectiveTimeoutMs({
      routeTimeoutMs: this.action.timeoutMs,
      grpcPolicy: this.action.grpcTimeout,
      isGrpc: stream.isGrpc,
      respectExpectedRqTimeout: this.config.respectExpectedRqTimeout,
      headers: stream.headers,
    });
    const bufferLimit = this.matched.perRequestBufferLimitBytes ?? DEFAULT_BUFFER_LIMIT_BYTES;
    const base = this.buildRequest();
    let body: Readable | null = this.hasBody ? stream.req : null;
    // Shadows go out once per downstream request, here rather than per try, so retries never repeat them.
    const mirrors = this.action.mirrorPolicies;
    if (mirrors !== undefined)
      // A shadow carries the main request's headers as its first try does, and the same effective timeout.
      body = sendShadows(
        mirrors,
        clusters,
        this.withDeadlineHeaders(base, null),
        body,
        bufferLimit,
        this.timeoutMs,
        stream.http2,
      );
    const policy = this.action.retryPolicy;
    if (policy !== undefined) this.retry = this.retryState(policy, body, bufferLimit);
    // With a replayable body, each try gets its own body stream (see attempt()).
    this.upstreamReq =
      body !== null && (this.retry === null || this.retry.body === null) ? { ...base, body } : base;
    stream.onAbort = () => this.onDownstreamAbort();
    this.idleMs = this.action.idleTimeoutMs ?? stream.hcm.config.streamIdleTimeoutMs;
    this.lastActivity = performance.now();
    if (!this.hasBody) {
      this.routeDeadline = this.lastActivity + this.timeoutMs;
    } else {
      // The client library consumes the request body, so its chunks are not observed here: while the body is
      // still arriving, bytes read on the downstream connection are the activity the idle clock sees (a
      // stalled upload gets 408), and the route timeout starts when the body ends, as Envoy's does.
      this.bodyPending = true;
      this.lastBytesRead = this.downstreamBytesRead();
      if (stream.hcm.observesRequestBody) stream.observeRequestBody();
      stream.req.once('end', () => {
        this.bodyPending = false;
        this.lastActivity = performance.now();
        this.routeDeadline = this.lastActivity + this.timeoutMs;
        this.schedule();
        const retry = this.retry;
        if (retry !== null && this.currentAttempt !== null) this.startPerTryTimer(retry);
      });
    }
    this.schedule();
    this.attempt();
  }

  /** `source` is the downstream body (or the main side of the mirror tee), null without a body. */
  private retryState(policy: RetryPolicy, source: Readable | null, limit: number): RetryState {
    let body: ReplayableBody | null = null;
    let tooLarge = false;
    if (source !== null) {
      const declared = Number(this.stream.headers['content-length']);
      // A body declared larger than the limit could never be replayed: stream it as if there were no policy.
      if (declared > limit) tooLarge = true;
      else body = new ReplayableBody(source, limit);
    }
    return new RetryState(policy, this.entry, body, tooLarge);
  }

  private buildRequest(): UpstreamRequest {
    const stream = this.stream;
    const headers = upstreamRequestHeaders(stream.headers);
    const action = this.action;
    let authority = stream.authority;
    if (action.hostRewriteLiteral !== undefined) authority = action.hostRewriteLiteral;
    headers.host = authority;
    if (this.pick.requestHeaders !== undefined) this.pick.requestHeaders.apply(headers, stream);
    const muts = this.matched.requestHeaders;
    for (let i = 0; i < muts.length; i++) muts[i].apply(headers, stream);
    return {
      method: stream.method,
      path: action.rewritePath(stream.path),
      headers,
      body: null,
    };
  }

  private attempt(): void {
    const stream = this.stream;
    const lb = this.entry.cluster.loadBalancer;
    const retry = this.retry;
    const host = lb.chooseHost(
      retry === null || (retry.attempted === undefined && retry.excludedPriorities === undefined)
        ? { hash: this.hash }
        : { hash: this.hash, attempted: retry.attempted, excludedPriorities: retry.excludedPriorities },
    );
    const cstats = this.entry.stats;
    if (host === null) {
      cstats.noHealthyUpstream.inc();
      this.finished = true;
      this.clearTimer();
      stream.onAbort = null;
      stream.sendLocalReply(503, 'UH');
      return;
    }
    this.attempts++;
    this.host = host;
    this.attemptStartMs = performance.now();
    stream.upstreamHost = host;
    let req = this.upstreamReq!;
    if (this.action.autoHostRewrite && host.hostname !== undefined) {
      req = { ...req, headers: { ...req.headers, host: host.hostname } };
    }
    if (this.matched.includeRequestAttemptCount === true) {
      req = { ...req, headers: { ...req.headers, [ATTEMPT_COUNT]: String(this.attempts) } };
    }
    req = this.withDeadlineHeaders(req, retry);
    host.activeRequests++;
    cstats.upstreamRqTotal.inc();
    cstats.upstreamRqActive.inc();
    if (retry === null) {
      this.entry.pool(host, this.stream.http2).send(req, this);
      return;
    }
    retry.attempted?.add(host);
    retry.triedPriority(host.priority);
    if (retry.body !== null) req = { ...req, body: retry.body.open() };
    const handler = new AttemptHandler(this);
    this.currentAttempt = handler;
    if (!this.bodyPending) this.startPerTryTimer(retry);
    this.entry.pool(host, this.stream.http2).send(req, handler);
  }

  /**
   * Tells the upstream how long this try may take: x-envoy-expected-rq-timeout-ms (unless the router suppresses
   * its headers) and, for gRPC on a max_grpc_timeout route, grpc-timeout. While the body is still arriving the
   * route deadline has not started, so the whole effective timeout is announced.
   */
  private withDeadlineHeaders(req: UpstreamRequest, retry: RetryState | null): UpstreamRequest {
    const remaining =
      this.routeDeadline !== Infinity ? this.routeDeadline - performance.now() : this.timeoutMs;
    const budget = attemptBudgetMs(remaining, retry?.policy.perTryTimeoutMs ?? 0);
    if (budget === undefined) return req;
    const rewriteGrpc = this.stream.isGrpc && this.action.grpcTimeout?.rewriteHeader === true;
    if (this.config.suppressEnvoyHeaders && !rewriteGrpc) return req;
    const headers = { ...req.headers };
    if (!this.config.suppressEnvoyHeaders) headers[EXPECTED_RQ_TIMEOUT] = String(budget);
    if (rewriteGrpc) headers['grpc-timeout'] = formatGrpcTimeout(budget);
    return { ...req, headers };
  }

  /** Per-try timeouts run from the end of the request body, like the route timeout. */
  private startPerTryTimer(retry: RetryState): void {
    const ms = retry.policy.perTryTimeoutMs;
    if (ms <= 0 || retry.perTryTimer !== null) return;
    const attempt = this.currentAttempt;
    retry.perTryTimer = setTimeout(() => {
      retry.perTryTimer = null;
      if (!this.finished && this.currentAttempt === attempt) this.onPerTryTimeout(retry);
    }, ms);
  }

  /** Only before response headers: the timer is cleared once the response starts. */
  /**
   * A try's result, for the cluster's outlier detector and (only in a peak-EWMA cluster: a lookup per response
   * otherwise spent for nothing) the host's latency estimate.
   */
  private reportTry(host: Host, outcome: number | 'timeout'): void {
    if (outcome === 'timeout') this.entry.outlier?.localOriginFailure(host, 'timeout');
    else this.entry.outlier?.response(host, outcome);
    if (this.entry.config.peakEwma !== undefined)
      recordResponseLatency(host, performance.now() - this.attemptStartMs);
  }

  private onPerTryTimeout(retry: RetryState): void {
    this.entry.stats.upstreamRqPerTryTimeout.inc();
    if (this.host !== null) this.reportTry(this.host, 'timeout');
    if (this.retryOnFailure(retry, 'per-try-timeout', false)) return;
    this.timeOut('UT', 504);
  }

  /** For a failure before response headers: retries (true) or records why not (false). */
  private retryOnFailure(retry: RetryState, failure: AttemptFailure, beforeRequestSent: boolean): boolean {
    if (!retriableFailure(retry.policy, failure, beforeRequestSent)) return false;
    return this.retryIfAllowed(retry);
  }

  private retryIfAllowed(retry: RetryState): boolean {
    const verdict = retry.decide();
    if (verdict === 'retry') {
      this.abandonAttemptAndRetry(retry);
      return true;
    }
    if (verdict === 'limit-exceeded') this.stream.addFlag('URX');
    else if (verdict === 'overflow') this.stream.addFlag('UO');
    return false;
  }

  /** Drops the current try (its late callbacks are ignored) and starts the next one after the back-off. */
  private abandonAttemptAndRetry(retry: RetryState): void {
    const abort = this.abortUpstream;
    this.currentAttempt = null;
    this.abortUpstream = null;
    this.resumeUpstream = null;
    retry.clearPerTry();
    this.release();
    abort?.(new UpstreamError('local', 'abandoned for a retry'));
    retry.body?.detach();
    const delay = backOffMs(retry.policy, retry.retriesDone, Math.random());
    retry.backOffTimer = setTimeout(() => {
      retry.backOffTimer = null;
      if (!this.finished) this.attempt();
    }, delay);
  }

  onStart(abort: (reason: Error) => void, _pause: () => void, resume: () => void): void {
    this.abortUpstream = abort;
    this.resumeUpstream = resume;
  }

  onHeaders(status: number, upstreamHeaders: IncomingHttpHeaders, endOfStream: boolean): void {
    if (this.finished) return;
    const stream = this.stream;
    this.entry.stats.response(status);
    if (this.host !== null) this.reportTry(this.host, outlierStatus(stream.isGrpc, status, upstreamHeaders));
    const retry = this.retry;
    if (retry !== null) {
      if (retriableResponse(retry.policy, status, upstreamHeaders)) {
        if (this.retryIfAllowed(retry)) return;
      } else if (this.attempts > 1) this.entry.stats.upstreamRqRetrySuccess.inc();
      // No further try can happen once the response goes downstream, and, as in Envoy, the per-try timeout
      // no longer applies: the route timeout bounds the rest of the response.
      retry.clearPerTry();
      retry.body?.release();
    }
    this.responseStarted = true;
    this.lastActivity = performance.now();
    stream.upstreamHeaders = upstreamHeaders;
    const headers = downstreamResponseHeaders(upstreamHeaders);
    const filters = stream.hcm.filters;
    for (let i = filters.length - 1; i >= 0; i--) filters[i].onResponseHeaders?.(stream, status, headers);
    if (this.pick.responseHeaders !== undefined) this.pick.responseHeaders.apply(headers, stream);
    const muts = this.matched.responseHeaders;
    for (let i = 0; i < muts.length; i++) muts[i].apply(headers, stream);
    if (this.setCookie !== undefined) {
      const prev = headers['set-cookie'];
      headers['set-cookie'] =
        prev === undefined ? [this.setCookie] : ([] as string[]).concat(prev, this.setCookie);
    }
    if (this.matched.includeAttemptCountInResponse === true) headers[ATTEMPT_COUNT] = String(this.attempts);
    stream.hcm.decorateResponse(stream, headers);
    stream.responseStatus = status;
    try {
      if (endOfStream && stream.http2) {
        // Trailers-only (e.g. a gRPC error): one HEADERS frame with END_STREAM, as the upstream sent it.
        const s = (stream.res as Http2ServerResponse).stream;
        s.respond({ ...headers, ':status': status }, { endStream: true });
        this.complete();
        return;
      }
      (stream.res as ServerResponse).writeHead(status, headers);
      if (endOfStream) {
        stream.res.end();
        this.complete();
      }
    } catch {
      // Headers the downstream codec refuses: the exchange ends here, and so does the upstream stream.
      const abort = this.abortUpstream;
      this.abortUpstream = null;
      this.release();
      abort?.(new UpstreamError('local', 'the response headers could not be sent downstream'));
      this.fail('UPE', true);
    }
  }

  onData(chunk: Buffer): boolean {
    if (this.finished) return true;
    this.lastActivity = performance.now();
    const stream = this.stream;
    stream.bytesSent += chunk.length;
    const taps = stream.hcm.responseDataFilters;
    for (let i = 0; i < taps.length; i++) taps[i].onResponseData!(stream, chunk);
    const res = stream.res as ServerResponse;
    if (res.write(chunk)) return true;
    res.once('drain', () => this.resumeUpstream?.());
    return false;
  }

  onEnd(trailers: IncomingHttpHeaders | null): void {
    if (this.finished) return;
    const res = this.stream.res as ServerResponse;
    if (trailers !== null) {
      this.stream.upstreamTrailers = trailers;
      try {
        res.addTrailers(trailers);
      } catch {
        /* trailers the downstream codec cannot carry are dropped */
      }
    }
    res.end();
    this.complete();
  }

  onError(err: UpstreamError): void {
    if (this.finished) return;
    if (this.host !== null) this.entry.outlier?.upstreamFailure(this.host, err.failure);
    this.release();
    const cstats = this.entry.stats;
    if (err.failure === 'connect') cstats.upstreamCxConnectFail.inc();
    else if (err.failure === 'reset' || err.failure === 'termination') cstats.upstreamRqResetRemote.inc();
    else if (err.failure === 'protocol') cstats.upstreamRqProtocolError.inc();
    const retry = this.retry;
    if (
      retry !== null &&
      !this.responseStarted &&
      err.failure !== 'local' &&
      err.failure !== 'overflow' &&
      this.retryOnFailure(retry, err.failure, err.beforeRequestSent)
    )
      return;
    // The classic keep-alive race: the upstream closed a pooled connection as we reused it. The request
    // had no body and no response arrived, so it can be sent once more on a fresh connection — when the
    // upstream cannot have seen it, or when seeing it twice is harmless (an idempotent method, RFC 9110 9.2.2).
    if (
      !this.responseStarted &&
      !this.hasBody &&
      this.attempts === 1 &&
      (err.failure === 'termination' || err.failure === 'reset' || err.failure === 'refused') &&
      (err.beforeRequestSent || IDEMPOTENT_METHODS.has(this.stream.method))
    ) {
      cstats.upstreamRqRetry.inc();
      // Let the client finish tearing down the dead connection first, so the retry gets a fresh one.
      setImmediate(() => {
        if (!this.finished) this.attempt();
      });
      return;
    }
    this.fail(FLAG_FOR_FAILURE[err.failure] ?? 'UR', this.responseStarted);
  }

  onUpgrade(): void {
    // Upgrades go through the upgrade path, never through the router's exchange.
    this.abortUpstream?.(new UpstreamError('protocol', 'unexpected upgrade'));
  }

  private fail(flag: string, afterHeaders: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.clearTimer();
    this.stream.onAbort = null;
    if (afterHeaders) {
      this.stream.addFlag(flag);
      this.stream.resetDownstream();
    } else {
      const status = flag === 'UT' ? 504 : 503;
      this.stream.sendLocalReply(status, flag);
    }
  }

  private release(): void {
    const host = this.host;
    if (host !== null) {
      host.activeRequests--;
      this.entry.stats.upstreamRqActive.dec();
      this.host = null;
    }
  }

  private complete(): void {
    this.finished = true;
    this.clearTimer();
    this.release();
    this.stream.onAbort = null;
    this.stream.finish(this.stream.responseStatus);
  }

  private onDownstreamAbort(): void {
    if (this.finished) return;
    this.finished = true;
    this.clearTimer();
    this.release();
    this.abortUpstream?.(new UpstreamError('local', 'downstream disconnected'));
  }

  /**
   * Bytes read so far on the downstream connection (for HTTP/2 the whole session's, so other streams' traffic
   * counts as this one's activity: lenient, never a false timeout).
   */
  private downstreamBytesRead(): number {
    return (this.stream.req.socket as { bytesRead?: number } | null)?.bytesRead ?? 0;
  }

  /** One timer per exchange covers both the route timeout and the stream idle timeout. */
  private schedule(): void {
    if (this.finished) return;
    const idleAt = this.idleMs > 0 ? this.lastActivity + this.idleMs : Infinity;
    const at = Math.min(this.routeDeadline, idleAt);
    if (at === Infinity) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(1, at - performance.now()));
    if (this.timer === null) this.timer = setTimeout(() => this.onTimer(), delay);
    else {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.onTimer(), delay);
    }
  }

  private onTimer(): void {
    this.timer = null;
    if (this.finished) return;
    const now = performance.now();
    if (now >= this.routeDeadline) {
      this.entry.stats.upstreamRqTimeout.inc();
      if (this.host !== null && !this.responseStarted)
        this.entry.outlier?.localOriginFailure(this.host, 'timeout');
      this.timeOut('UT', 504);
      return;
    }
    if (this.idleMs > 0 && now - this.lastActivity >= this.idleMs) {
      if (this.bodyPending) {
        const read = this.downstreamBytesRead();
        if (read !== this.lastBytesRead) {
          this.lastBytesRead = read;
          this.lastActivity = now;
          this.schedule();
          return;
        }
      }
      this.stream.hcm.stats.rqIdleTimeout.inc();
      // As Envoy: 408 while the request is still arriving, 504 once it was received in full.
      this.timeOut('SI', this.bodyPending ? 408 : 504);
      return;
    }
    this.schedule();
  }

  /** Answers (or resets, once the response has started) with the timeout's flag, then cancels the upstream request. */
  private timeOut(flag: string, status: number): void {
    const abort = this.abortUpstream;
    this.release();
    if (this.responseStarted) this.fail(flag, true);
    else {
      this.finished = true;
      this.clearTimer();
      this.stream.onAbort = null;
      // As Envoy since its grpc_timeout_returns_deadline_exceeded change: a router timeout (global or per-try)
      // is DEADLINE_EXCEEDED for a gRPC caller, not the UNAVAILABLE that 504 maps to, which invites a retry.
      this.stream.sendLocalReply(
        status,
        flag,
        undefined,
        // An HTTP/1.1 request cut off mid-body leaves the connection unusable: it closes after the answer.
        status === 408 && !this.stream.http2 ? { connection: 'close' } : undefined,
        flag === 'UT' ? GRPC_DEADLINE_EXCEEDED : undefined,
      );
    }
    abort?.(new UpstreamError('local', `${flag} timeout`));
  }

  /** Clears the exchange's timers (and, with retries, the per-try and back-off timers and retry state). */
  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.retry !== null && this.finished) this.retry.dispose();
  }
}

/**
 * The status a try reports to outlier detection. As in Envoy, a gRPC answer carrying grpc-status in its
 * headers (trailers-only, how servers fail a call) counts as the HTTP status that grpc-status maps to:
 * otherwise a server failing every call with UNAVAILABLE looks healthy (HTTP 200) and is never ejected.
 */
function outlierStatus(isGrpc: boolean, status: number, headers: IncomingHttpHeaders): number {
  if (!isGrpc) return status;
  const grpcStatus = headers['grpc-status'];
  return typeof grpcStatus === 'string' ? httpStatusForGrpc(grpcStatus) : status;
}
