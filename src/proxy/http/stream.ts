/**
 * One downstream request/response exchange (Envoy's ActiveStream + StreamInfo): what routing needs,
 * what the access log and metrics will need, and the local-reply path.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { constants as h2c } from 'node:http2';
import { performance } from 'node:perf_hooks';
import { grpcStatusForHttp } from '../../core/errors.ts';
import type { MatchedRoute, RouteRequest } from '../router/types.ts';
import type { Host } from '../upstream/types.ts';
import type { OutgoingHeaders } from '../upstream/codec.ts';
import type { HcmRuntime } from './connection-manager.ts';
import { plainIp } from './headers.ts';
import { parseAbsoluteForm } from './request-target.ts';
import { connectionSecurityOf } from '../tls/connection-security.ts';
import type { ConnectionSecurity } from '../tls/connection-security.ts';
import type { PeerMetadata } from '../telemetry/peer-metadata.ts';
import type { StreamTrace } from '../tracing/types.ts';

export type DownstreamRequest = IncomingMessage | Http2ServerRequest;
export type DownstreamResponse = ServerResponse | Http2ServerResponse;

const LOCAL_REPLY_BODY: Readonly<Record<string, string>> = {
  NR: '',
  NC: 'cluster not found',
  UH: 'no healthy upstream',
  UF: 'upstream connect error or disconnect/reset before headers. reset reason: connection failure',
  UC: 'upstream connect error or disconnect/reset before headers. reset reason: connection termination',
  UR: 'upstream connect error or disconnect/reset before headers. reset reason: remote reset',
  UPE: 'upstream connect error or disconnect/reset before headers. reset reason: protocol error',
  UO: 'upstream connect error or disconnect/reset before headers. reset reason: overflow',
  UT: 'upstream request timeout',
  SI: 'stream timeout',
};

export class HttpStream implements RouteRequest {
  readonly req: DownstreamRequest;
  readonly res: DownstreamResponse;
  readonly hcm: HcmRuntime;
  readonly http2: boolean;
  readonly startMs: number;
  readonly authority: string;
  readonly path: string;
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  readonly scheme: string;
  readonly isGrpc: boolean;
  /**
   * An HTTP/1.1 request target neither in origin form nor an absolute http(s) URI the connection manager
   * accepts (allow_absolute_url): answered 400 before any filter runs.
   */
  readonly invalidTarget: boolean = false;
  /** Envoy response flags, comma-separated as in access logs ('' = none). */
  flags = '';
  responseStatus = 0;
  clusterName = '';
  upstreamHost: Host | null = null;
  /** Set once the response has finished or the stream was reset. */
  done = false;
  /** performance.now() when the stream completed (0 until then). */
  endMs = 0;
  /** Wall-clock start in epoch ms, for access logs' %START_TIME%: derived from startMs, read only by telemetry. */
  get startTime(): number {
    return Math.floor(performance.timeOrigin + this.startMs);
  }
  /** Request body bytes received (counted only when the connection manager observes bodies). */
  bytesReceived = 0;
  /** Response body bytes sent downstream. */
  bytesSent = 0;
  /** The upstream's response headers and trailers, as received (null when there was no upstream response). */
  upstreamHeaders: IncomingHttpHeaders | null = null;
  upstreamTrailers: IncomingHttpHeaders | null = null;
  /** The grpc-status of a local reply to a gRPC request. */
  localGrpcStatus: number | undefined = undefined;
  /** The workload that sent this request and the one that served it, when telemetry learnt them. */
  downstreamPeer: PeerMetadata | undefined = undefined;
  upstreamPeer: PeerMetadata | undefined = undefined;
  /** Tracing state, set by the connection manager's tracer. */
  trace: StreamTrace | undefined = undefined;
  /** Installed by the filter that owns the upstream side, to cancel it when the downstream goes away. */
  onAbort: (() => void) | null = null;
  /** The HTTP filter now running (or that stopped the chain), so continueDecoding() resumes after it. */
  filterIndex = 0;
  /**
   * Envoy's dynamic metadata: per filter namespace (e.g. "envoy.filters.http.jwt_authn", "istio_authn"),
   * what earlier filters learnt about this request for later ones (authorization, access logs).
   */
  readonly dynamicMetadata = new Map<string, Record<string, unknown>>();
  private _sourceIp: string | undefined;
  private _security: ConnectionSecurity | null | undefined = undefined;
  /** undefined until routed; null when no route matched. */
  private _route: MatchedRoute | null | undefined = undefined;

  constructor(
    req: DownstreamRequest,
    res: DownstreamResponse,
    hcm: HcmRuntime,
    http2: boolean,
    startMs: number,
  ) {
    this.req = req;
    this.res = res;
    this.hcm = hcm;
    this.http2 = http2;
    this.startMs = startMs;
    const headers = req.headers;
    this.headers = headers;
    this.method = req.method ?? 'GET';
    if (http2) {
      this.authority = (headers[':authority'] as string | undefined) ?? headers.host ?? '';
      this.path = (headers[':path'] as string | undefined) ?? '/';
      this.scheme = (headers[':scheme'] as string | undefined) ?? 'http';
    } else {
      const url = req.url ?? '/';
      if (url.charCodeAt(0) === 47 /* / */ || url === '*') {
        this.authority = headers.host ?? '';
        this.path = url;
      } else {
        // Absolute form, sent to the proxy as a forward proxy: the URI names the authority and the path.
        const target = hcm.config.allowAbsoluteUrl ? parseAbsoluteForm(url) : null;
        if (target === null) {
          this.invalidTarget = true;
          this.authority = headers.host ?? '';
          this.path = url;
        } else {
          this.authority = target.authority;
          this.path = target.path;
          headers.host = target.authority;
          // Meant for this proxy, never for the upstream.
          delete headers['proxy-authorization'];
          delete headers['proxy-connection'];
        }
      }
      // HTTP/1.1 has no :scheme: a request over TLS is https (x-forwarded-proto, redirects).
      this.scheme = (req.socket as { encrypted?: boolean } | null)?.encrypted === true ? 'https' : 'http';
    }
    const ct = headers['content-type'];
    this.isGrpc = ct !== undefined && ct.startsWith('application/grpc');
  }

  /** The downstream client's address: the peer, or the trusted x-forwarded-for entry when use_remote_address is off. */
  get sourceIp(): string {
    if (this._sourceIp === undefined) {
      const peer = plainIp(this.req.socket?.remoteAddress);
      let ip = peer;
      if (!this.hcm.config.useRemoteAddress) {
        const xff = this.headers['x-forwarded-for'];
        if (typeof xff === 'string' && xff.length > 0) {
          const parts = xff.split(',');
          const idx = parts.length - 1 - this.hcm.config.xffNumTrustedHops;
          if (idx >= 0) ip = parts[idx].trim();
        }
      }
      this._sourceIp = ip;
    }
    return this._sourceIp;
  }

  /** What the downstream connection's TLS established; undefined on plaintext. */
  get downstreamSecurity(): ConnectionSecurity | undefined {
    if (this._security === undefined) this._security = connectionSecurityOf(this.req.socket) ?? null;
    return this._security ?? undefined;
  }

  /** The route for this request, matched once and shared by every filter (Envoy's cached route). */
  route(): MatchedRoute | null {
    let r = this._route;
    if (r === undefined) r = this._route = this.hcm.routeTable.match(this);
    return r;
  }

  /** Resumes the filter chain after a filter that returned 'stop' without answering (e.g. after a delay). */
  continueDecoding(): void {
    if (this.done) return;
    this.hcm.runFilters(this, this.filterIndex + 1);
  }

  /**
   * The response's gRPC status: from the upstream's trailers (or trailers-only headers), or the local
   * reply's; undefined for non-gRPC requests and for gRPC responses without one (a reset).
   */
  get grpcStatus(): string | undefined {
    if (!this.isGrpc) return undefined;
    const t = this.upstreamTrailers?.['grpc-status'] ?? this.upstreamHeaders?.['grpc-status'];
    if (typeof t === 'string') return t;
    return this.localGrpcStatus === undefined ? undefined : String(this.localGrpcStatus);
  }

  /**
   * Counts request body bytes (and feeds filters' onRequestData) once the body starts flowing to its consumer:
   * a 'data' listener added earlier would start the flow before the consumer is attached and lose chunks.
   */
  observeRequestBody(): void {
    const req = this.req;
    const filters = this.hcm.requestDataFilters;
    const onData = (chunk: Buffer): void => {
      this.bytesReceived += chunk.length;
      for (let i = 0; i < filters.length; i++) filters[i].onRequestData!(this, chunk);
    };
    if (req.readableFlowing === true) req.on('data', onData);
    else req.once('resume', () => req.on('data', onData));
  }

  addFlag(flag: string): void {
    this.flags = this.flags === '' ? flag : `${this.flags},${flag}`;
  }

  /**
   * Answers from the proxy itself. gRPC requests get a trailers-only response whose grpc-status maps the
   * HTTP status (e.g. 503 → 14 UNAVAILABLE), or is `grpcStatus` when given, as gRPC clients expect.
   */
  sendLocalReply(
    status: number,
    flag: string | null,
    body?: string,
    extraHeaders?: OutgoingHeaders,
    grpcStatus?: number,
  ): void {
    if (flag) this.addFlag(flag);
    const res = this.res;
    if (res.headersSent) {
      this.resetDownstream();
      return;
    }
    const text = body ?? (flag ? (LOCAL_REPLY_BODY[flag] ?? '') : '');
    const headers: OutgoingHeaders = { ...extraHeaders };
    // As Envoy: a request dropped by a circuit breaker says so, and a mesh caller will not retry it.
    if (flag === 'UO') headers['x-envoy-overloaded'] = 'true';
    if (this.isGrpc) {
      this.responseStatus = 200;
      this.localGrpcStatus = grpcStatus ?? grpcStatusForHttp(status);
      headers['content-type'] = 'application/grpc';
      headers['grpc-status'] = String(this.localGrpcStatus);
      if (text) headers['grpc-message'] = encodeURIComponent(text);
      this.encodeLocalReply(200, headers);
      this.hcm.decorateResponse(this, headers);
      if (this.http2) {
        const stream = (res as Http2ServerResponse).stream;
        if (!stream.destroyed && !stream.headersSent)
          stream.respond({ ...headers, ':status': 200 }, { endStream: true });
        this.finish(200);
        return;
      }
      headers['content-length'] = '0';
      this.writeAndEnd(200, headers, undefined);
      return;
    }
    this.responseStatus = status;
    if (text) {
      headers['content-type'] = 'text/plain';
      headers['content-length'] = String(Buffer.byteLength(text));
    } else {
      headers['content-length'] = '0';
    }
    this.encodeLocalReply(status, headers);
    this.hcm.decorateResponse(this, headers);
    if (this.method !== 'HEAD') this.bytesSent += Buffer.byteLength(text);
    this.writeAndEnd(status, headers, this.method === 'HEAD' ? undefined : text || undefined);
  }

  /**
   * As Envoy encodes a local reply: through the response-header hooks of the filters that ran before the one
   * answering, in reverse. So a reply from the rate limit or RBAC filter still carries what the earlier
   * metadata exchange filter adds (this proxy's peer metadata), and CORS headers where CORS applies.
   */
  private encodeLocalReply(status: number, headers: OutgoingHeaders): void {
    const filters = this.hcm.filters;
    for (let i = Math.min(this.filterIndex, filters.length) - 1; i >= 0; i--)
      filters[i].onResponseHeaders?.(this, status, headers);
  }

  private writeAndEnd(status: number, headers: OutgoingHeaders, body: string | undefined): void {
    const res = this.res as ServerResponse;
    try {
      res.writeHead(status, headers);
      res.end(body);
    } catch {
      this.resetDownstream();
    }
    this.finish(status);
  }

  /** Marks the exchange complete for stats. Idempotent. */
  finish(status: number): void {
    if (this.done) return;
    this.done = true;
    if (status) this.responseStatus = status;
    this.hcm.onStreamDone(this);
  }

  /** The downstream closed before the response completed (client abort): flag DC and cancel upstream work. */
  onDownstreamClose(): void {
    this.addFlag('DC');
    const abort = this.onAbort;
    this.onAbort = null;
    if (abort !== null) abort();
    this.finish(this.responseStatus);
  }

  /** Aborts the downstream exchange: RST_STREAM on HTTP/2, connection close on HTTP/1.1. */
  resetDownstream(): void {
    if (this.http2) {
      const stream = (this.res as Http2ServerResponse).stream;
      if (!stream.destroyed) stream.close(h2c.NGHTTP2_INTERNAL_ERROR);
    } else {
      (this.res as ServerResponse).destroy();
    }
    this.finish(this.responseStatus);
  }
}
