/**
 * Request mirroring (RouteAction.request_mirror_policies): fire-and-forget shadow copies of a request.
 *
 * A shadow is a real upstream request on the mirror cluster (it counts in that cluster's upstream_rq_* stats)
 * whose response is read and thrown away. Nothing about it reaches the main request: not its failure, not its
 * slowness, not its absence (unknown cluster, no healthy endpoint). The request body is teed: the main request
 * sets the pace, each shadow gets a copy as it passes, and a shadow whose copy would exceed the buffer limit
 * (it fell behind, or the body is simply larger) is aborted rather than buffered further or waited for.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { ClusterEntry, ClusterManager } from '../upstream/cluster-manager.ts';
import { UpstreamError } from '../upstream/codec.ts';
import type { UpstreamHandler, UpstreamRequest } from '../upstream/codec.ts';
import type { Host } from '../upstream/types.ts';
import { mirrorHits, shadowAuthority } from '../router/mirror-policy.ts';
import type { MirrorPolicy } from '../router/mirror-policy.ts';

/**
 * Copies a request body to shadow branches while it streams to the main request. Only the main consumer
 * applies back-pressure to the source; a branch holds at most `limitBytes` in total and is destroyed past it.
 */
export class BodyTee {
  /** The body stream for the main request, in place of the source. */
  readonly main: Readable;
  private readonly source: Readable;
  private readonly limit: number;
  private branches: Readable[] = [];
  private size = 0;
  private ended = false;

  constructor(source: Readable, limitBytes: number) {
    this.source = source;
    this.limit = limitBytes;
    this.main = new Readable({ read: () => source.resume() });
    source.on('data', (chunk: Buffer | string) => this.onData(chunk));
    source.once('end', () => this.onEnd());
    source.once('error', (err: Error) => this.onError(err));
    source.once('close', () => {
      if (!this.ended) this.onError(new Error('request body closed before its end'));
    });
    // Flows only while the main consumer reads (see `main`'s read()).
    source.pause();
  }

  /** A new shadow copy of the body; null once the body is already past the limit. */
  branch(): Readable | null {
    if (this.size > this.limit) return null;
    // Shadows start together with the main request, before any body has been read.
    const b = new Readable({ read() {} });
    this.branches.push(b);
    if (this.ended) b.push(null);
    return b;
  }

  private onData(chunk: Buffer | string): void {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.size += data.length;
    if (this.branches.length > 0) {
      if (this.size > this.limit) this.dropBranches(new Error('request body above the mirror buffer limit'));
      else for (const b of this.branches) if (!b.destroyed) b.push(data);
    }
    if (!this.main.push(data)) this.source.pause();
  }

  private onEnd(): void {
    this.ended = true;
    this.main.push(null);
    for (const b of this.branches) if (!b.destroyed) b.push(null);
    this.branches = [];
  }

  private onError(err: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.main.destroy(err);
    this.dropBranches(err);
  }

  private dropBranches(err: Error): void {
    const list = this.branches;
    this.branches = [];
    for (const b of list) b.destroy(err);
  }
}

/**
 * One shadow request: sent, its response drained, its outcome counted on the mirror cluster and otherwise
 * ignored. Bounded by the route timeout, as Envoy bounds shadows (0 leaves it unbounded, as for the main request).
 */
export class ShadowRequest implements UpstreamHandler {
  private readonly entry: ClusterEntry;
  private host: Host | null;
  private abort: ((reason: Error) => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private done = false;

  constructor(entry: ClusterEntry, host: Host, timeoutMs: number) {
    this.entry = entry;
    this.host = host;
    host.activeRequests++;
    entry.stats.upstreamRqTotal.inc();
    entry.stats.upstreamRqActive.inc();
    if (timeoutMs > 0) {
      this.timer = setTimeout(() => this.onTimeout(), timeoutMs);
      // A shadow never keeps the process alive.
      this.timer.unref();
    }
  }

  onStart(abort: (reason: Error) => void): void {
    this.abort = abort;
  }

  onHeaders(status: number, _headers: IncomingHttpHeaders, endOfStream: boolean): void {
    if (this.done) return;
    this.entry.stats.response(status);
    if (endOfStream) this.finish();
  }

  onData(): boolean {
    return true;
  }

  onEnd(): void {
    this.finish();
  }

  onError(err: UpstreamError): void {
    if (this.done) return;
    const stats = this.entry.stats;
    if (err.failure === 'connect') stats.upstreamCxConnectFail.inc();
    else if (err.failure === 'reset' || err.failure === 'termination') stats.upstreamRqResetRemote.inc();
    else if (err.failure === 'protocol') stats.upstreamRqProtocolError.inc();
    this.finish();
  }

  onUpgrade(): void {
    this.abort?.(new UpstreamError('protocol', 'unexpected upgrade'));
  }

  private onTimeout(): void {
    this.timer = null;
    if (this.done) return;
    this.entry.stats.upstreamRqTimeout.inc();
    const abort = this.abort;
    this.finish();
    abort?.(new UpstreamError('local', 'shadow request timeout'));
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const host = this.host;
    if (host !== null) {
      host.activeRequests--;
      this.entry.stats.upstreamRqActive.dec();
      this.host = null;
    }
  }
}

/**
 * Sends the shadows of one downstream request: one per policy whose independent draw hits. `req` is the
 * request as it goes to the primary (headers after the route's mutations); `body` is the downstream body or
 * null. Returns the body stream the main request must use instead (the tee's main side when a shadow took a
 * copy), else `body` itself.
 */
export function sendShadows(
  policies: readonly MirrorPolicy[],
  clusters: ClusterManager,
  req: UpstreamRequest,
  body: Readable | null,
  bodyLimitBytes: number,
  timeoutMs: number,
  downstreamHttp2 = false,
  random: () => number = Math.random,
): Readable | null {
  let tee: BodyTee | null = null;
  // A body declared larger than the limit would only be aborted part-way: such a request gets no shadow.
  if (body !== null && Number(req.headers['content-length']) > bodyLimitBytes) return body;
  for (const policy of policies) {
    if (!mirrorHits(policy, random())) continue;
    const entry = clusters.get(policy.cluster);
    if (entry === undefined) continue;
    const host = entry.cluster.loadBalancer.chooseHost({ hash: undefined });
    if (host === null) {
      entry.stats.noHealthyUpstream.inc();
      continue;
    }
    let shadowBody: Readable | null = null;
    if (body !== null) {
      tee ??= new BodyTee(body, bodyLimitBytes);
      shadowBody = tee.branch();
      if (shadowBody === null) continue;
    }
    const authority = req.headers.host;
    const headers =
      policy.keepHost || typeof authority !== 'string'
        ? { ...req.headers }
        : { ...req.headers, host: shadowAuthority(authority) };
    const shadow = new ShadowRequest(entry, host, timeoutMs);
    entry
      .pool(host, downstreamHttp2)
      .send({ method: req.method, path: req.path, headers, body: shadowBody }, shadow);
  }
  return tee === null ? body : tee.main;
}
