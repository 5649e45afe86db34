/**
 * The HTTP connection manager (Envoy's `envoy.filters.network.http_connection_manager`): owns the
 * HTTP/1.1 and HTTP/2 codecs for its listener's connections, turns each request into an HttpStream,
 * applies connection-level header policy (request id, x-forwarded-*), and runs the HTTP filter chain.
 */
import { nodeHttp } from '../../core/node-http.ts';
import type { IncomingMessage, Server as Http1Server, ServerResponse } from 'node:http';
import http2 from 'node:http2';
import type { Http2ServerRequest, Http2ServerResponse, Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { HcmConfig } from '../listener/types.ts';
import type { RouteConfigProviders } from '../router/rds.ts';
import type { RouteTable } from '../router/types.ts';
import type { StatsStore } from '../stats/store.ts';
import type { ClusterManager } from '../upstream/cluster-manager.ts';
import type { OutgoingHeaders } from '../upstream/codec.ts';
import type { HttpFilter } from './filter.ts';
import { HcmStats } from './hcm-stats.ts';
import { HttpStream } from './stream.ts';
import { createHttpFilter } from './filter-registry.ts';
import { plainIp } from './headers.ts';
import { handleUpgrade } from './upgrade.ts';
import { handleConnect } from './connect.ts';
import { applyXfcc } from '../tls/xfcc.ts';
import { TelemetryContext } from '../telemetry/context.ts';
import { createHttpAccessLoggers } from '../accesslog/access-loggers.ts';
import type { HttpAccessLogger } from '../accesslog/access-loggers.ts';
import { createHttpTracer } from '../tracing/tracer.ts';
import type { HttpTracer } from '../tracing/tracer.ts';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
/**
 * How long a drain leaves a just-accepted HTTP/1 connection to send its first request: until it does, node
 * counts it as idle, and closing it then resets a request the client has every right to send.
 */
const FRESH_CONNECTION_GRACE_MS = 500;
const kStream = Symbol('weft.stream');

type TaggedResponse = (ServerResponse | Http2ServerResponse) & { [kStream]?: HttpStream };

function onResponseClose(this: TaggedResponse): void {
  const s = this[kStream];
  if (s !== undefined && !s.done) s.onDownstreamClose();
}

function checkingInterval(...timeouts: number[]): number {
  const set = timeouts.filter((t) => t > 0);
  if (set.length === 0) return 30_000;
  return Math.max(50, Math.min(30_000, Math.min(...set) / 4));
}

export interface HcmDeps {
  readonly clusters: ClusterManager;
  readonly stats: StatsStore;
  /** Route configurations by name, for connection managers configured with `rds`. */
  readonly routes?: RouteConfigProviders;
  /** Shared telemetry (node, access log sinks, tracing exporters); a private one when absent (tests). */
  readonly telemetry?: TelemetryContext;
  /** The listener's traffic_direction (span kind, metrics reporter). */
  readonly trafficDirection?: 'INBOUND' | 'OUTBOUND' | 'UNSPECIFIED';
}

export class HcmRuntime {
  readonly config: HcmConfig;
  /** The inline route table, or the RDS one (whose contents are read per request). */
  readonly routeTable: RouteTable;
  readonly stats: HcmStats;
  readonly clusters: ClusterManager;
  readonly filters: readonly HttpFilter[];
  /** The filters with an onRequestData / onResponseData / onComplete hook, found once. */
  readonly requestDataFilters: readonly HttpFilter[];
  readonly responseDataFilters: readonly HttpFilter[];
  private readonly completeFilters: readonly HttpFilter[];
  readonly accessLoggers: readonly HttpAccessLogger[];
  readonly tracer: HttpTracer | null;
  /** Whether request bodies must be counted (access logs, or a filter that reads request data). */
  readonly observesRequestBody: boolean;
  readonly telemetry: TelemetryContext;
  draining = false;
  /** When the last connection was taken over (performance.now()), for the drain's grace. */
  private lastAcceptMs = -Infinity;
  private idleCloseTimer: NodeJS.Timeout | null = null;
  private readonly h1: Http1Server;
  private readonly h2: http2.Http2Server;
  private readonly h2Sessions = new Set<Http2Session>();
  /** Downstream sockets of open CONNECT tunnels (node:http no longer tracks them), closed by destroy(). */
  readonly tunnels = new Set<Socket>();

  constructor(config: HcmConfig, deps: HcmDeps) {
    this.config = config;
    if (config.rds !== undefined) {
      if (deps.routes === undefined) throw new Error('rds needs route configuration providers');
      this.routeTable = deps.routes.get(config.rds.routeConfigName);
    } else this.routeTable = config.routeTable;
    this.clusters = deps.clusters;
    this.stats = new HcmStats(deps.stats, config.statPrefix);
    this.telemetry = deps.telemetry ?? new TelemetryContext(deps.clusters, deps.stats);
    this.filters = config.httpFilters.map((f) =>
      createHttpFilter(f, {
        clusters: deps.clusters,
        stats: deps.stats,
        statPrefix: config.statPrefix,
        telemetry: this.telemetry,
        trafficDirection: deps.trafficDirection ?? 'UNSPECIFIED',
      }),
    );
    this.requestDataFilters = this.filters.filter((f) => f.onRequestData !== undefined);
    this.responseDataFilters = this.filters.filter((f) => f.onResponseData !== undefined);
    this.completeFilters = this.filters.filter((f) => f.onComplete !== undefined);
    this.accessLoggers = createHttpAccessLoggers(config.accessLog, this.telemetry.accessLogs);
    this.tracer = createHttpTracer(config.tracing, {
      runtime: this.telemetry.tracing,
      trafficDirection: deps.trafficDirection ?? 'UNSPECIFIED',
    });
    this.observesRequestBody = this.accessLoggers.length > 0 || this.requestDataFilters.length > 0;

    this.h1 = nodeHttp.createServer(
      {
        maxHeaderSize: config.maxRequestHeadersKb * 1024,
        requestTimeout: config.requestTimeoutMs,
        headersTimeout: config.requestHeadersTimeoutMs,
        // Node checks request and header deadlines on this interval (30 s by default): scale it to them.
        connectionsCheckingInterval: checkingInterval(
          config.requestTimeoutMs,
          config.requestHeadersTimeoutMs,
        ),
        keepAliveTimeout: config.idleTimeoutMs,
        insecureHTTPParser: false,
        requireHostHeader: true,
        joinDuplicateHeaders: true,
        // Upgrades other than h2c go to the upgrade path; "Upgrade: h2c" is ignored, as Envoy does.
        shouldUpgradeCallback: (req: IncomingMessage) => {
          const u = req.headers.upgrade;
          return u !== undefined && u.toLowerCase() !== 'h2c';
        },
      },
      (req, res) => this.onRequest(req, res, false),
    );
    this.h1.maxRequestsPerSocket = config.maxRequestsPerConnection ?? 0;
    // The codec servers never listen themselves (the listener hands them sockets), but node:http only
    // tracks connections — request/header deadlines, idle closing on drain — once 'listening' fired.
    this.h1.emit('listening');
    this.h1.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.stats.rqTotal.inc();
      this.stats.rqHttp1Total.inc();
      handleUpgrade(this, req, socket as Socket, head);
    });
    this.h1.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.stats.rqTotal.inc();
      this.stats.rqHttp1Total.inc();
      handleConnect(this, req, socket as Socket, head);
    });
    this.h1.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) =>
      this.onClientError(err, socket),
    );

    const h2 = config.http2;
    this.h2 = http2.createServer({
      settings: {
        ...(h2.maxConcurrentStreams !== undefined ? { maxConcurrentStreams: h2.maxConcurrentStreams } : {}),
        ...(h2.initialStreamWindowSize !== undefined
          ? { initialWindowSize: h2.initialStreamWindowSize }
          : {}),
        maxHeaderListSize: config.maxRequestHeadersKb * 1024,
      },
      maxSendHeaderBlockLength: 1024 * 1024,
    });
    this.h2.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) =>
      this.onRequest(req, res, true),
    );
    this.h2.on('session', (session: Http2Session) => {
      this.h2Sessions.add(session);
      this.stats.cxHttp2Total.inc();
      if (h2.initialConnectionWindowSize !== undefined) {
        session.once('localSettings', () => {
          try {
            session.setLocalWindowSize(h2.initialConnectionWindowSize!);
          } catch {
            /* smaller than the default: keep the default */
          }
        });
      }
      session.once('close', () => this.h2Sessions.delete(session));
      session.on('error', () => undefined);
      if (this.draining) session.goaway();
    });
    this.h2.on('sessionError', () => this.stats.cxProtocolError.inc());
    this.h2.setTimeout(config.idleTimeoutMs);
  }

  /** Takes over an accepted connection, choosing the codec (AUTO sniffs the HTTP/2 connection preface). */
  handleConnection(socket: Socket): void {
    this.lastAcceptMs = performance.now();
    this.stats.cxTotal.inc();
    this.stats.cxActive.inc();
    socket.once('close', () => this.stats.cxActive.dec());
    const codec = this.config.codecType;
    if (codec === 'HTTP1') return this.toHttp1(socket);
    if (codec === 'HTTP2') return this.toHttp2(socket);
    // Over TLS, ALPN already chose the protocol: no need to sniff.
    const alpn = (socket as Socket & { alpnProtocol?: string | false }).alpnProtocol;
    if (alpn === 'h2') return this.toHttp2(socket);
    if (alpn === 'http/1.1') return this.toHttp1(socket);
    let seen: Buffer | null = null;
    const onData = (chunk: Buffer): void => {
      seen = seen === null ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, H2_PREFACE.length);
      const isPrefix = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (isPrefix && seen.length < H2_PREFACE.length) return; // need more bytes to decide
      socket.removeListener('data', onData);
      socket.pause();
      socket.unshift(seen);
      if (isPrefix) this.toHttp2(socket);
      else this.toHttp1(socket);
    };
    socket.on('data', onData);
  }

  private toHttp2(socket: Socket): void {
    // node:http2 refuses a TLS socket whose ALPN did not select h2 (it expects an HTTP/1 fallback); the
    // codec was chosen here (configuration or the preface), so the socket is marked as h2.
    const tlsSocket = socket as Socket & { encrypted?: boolean; alpnProtocol?: string | false };
    if (tlsSocket.encrypted === true && tlsSocket.alpnProtocol !== 'h2') tlsSocket.alpnProtocol = 'h2';
    this.h2.emit('connection', socket);
  }

  private toHttp1(socket: Socket): void {
    this.stats.cxHttp1Total.inc();
    this.h1.emit('connection', socket);
    socket.resume();
  }

  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    this.stats.cxProtocolError.inc();
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    // A response already on the wire cannot be followed by an error reply.
    const inProgress = (socket as Socket & { _httpMessage?: { headersSent: boolean } })._httpMessage;
    if (inProgress?.headersSent) {
      socket.destroy();
      return;
    }
    let status = '400 Bad Request';
    if (err.code === 'HPE_HEADER_OVERFLOW') status = '431 Request Header Fields Too Large';
    else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') status = '408 Request Timeout';
    this.stats.responseClass(Number(status.slice(0, 3)));
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  private onRequest(
    req: IncomingMessage | Http2ServerRequest,
    res: ServerResponse | Http2ServerResponse,
    isH2: boolean,
  ): void {
    const stats = this.stats;
    stats.rqTotal.inc();
    stats.rqActive.inc();
    if (isH2) stats.rqHttp2Total.inc();
    else stats.rqHttp1Total.inc();
    const stream = new HttpStream(req, res, this, isH2, performance.now());
    (res as TaggedResponse)[kStream] = stream;
    res.once('close', onResponseClose);
    if (stream.invalidTarget) return stream.sendLocalReply(400, null, 'invalid request target');
    // HTTP/1.1 CONNECT arrives on the 'connect' path; HTTP/2 CONNECT (RFC 9113 §8.5) would reach the router.
    if (isH2 && stream.method === 'CONNECT')
      return stream.sendLocalReply(501, null, 'CONNECT over HTTP/2 is not supported by Weft');
    this.applyRequestHeaderPolicy(stream);
    if (this.tracer !== null) this.tracer.onRequest(stream);
    this.runFilters(stream, 0);
  }

  /** Runs the HTTP filters from index `from` until one stops the chain (see HttpStream.continueDecoding). */
  runFilters(stream: HttpStream, from: number): void {
    const filters = this.filters;
    for (let i = from; i < filters.length; i++) {
      stream.filterIndex = i;
      if (filters[i].onRequest(stream) === 'stop') return;
    }
    // The router always stops; reaching here means a misconfigured chain.
    stream.sendLocalReply(500, null, 'no terminal filter');
  }

  /** x-request-id, x-forwarded-for and x-forwarded-proto, as Envoy's connection manager sets them. */
  private applyRequestHeaderPolicy(stream: HttpStream): void {
    const headers = stream.headers;
    const cfg = this.config;
    if (cfg.useRemoteAddress) {
      const peer = plainIp(stream.req.socket?.remoteAddress);
      if (!cfg.skipXffAppend && peer) {
        const xff = headers['x-forwarded-for'];
        headers['x-forwarded-for'] = xff ? `${String(xff)}, ${peer}` : peer;
      }
      headers['x-forwarded-proto'] = stream.scheme;
      if (!cfg.preserveExternalRequestId && cfg.generateRequestId) headers['x-request-id'] = randomUUID();
    } else if (headers['x-forwarded-proto'] === undefined) {
      headers['x-forwarded-proto'] = stream.scheme;
    }
    if (cfg.generateRequestId && headers['x-request-id'] === undefined)
      headers['x-request-id'] = randomUUID();
    if (cfg.xfcc !== undefined) applyXfcc(headers, cfg.xfcc, stream.req.socket);
    else if (headers['x-forwarded-client-cert'] !== undefined) delete headers['x-forwarded-client-cert'];
  }

  /** Connection-level response headers: server, request id, and `connection: close` while draining. */
  decorateResponse(stream: HttpStream, headers: OutgoingHeaders): void {
    const cfg = this.config;
    if (cfg.serverHeaderTransformation === 'OVERWRITE') headers.server = cfg.serverName;
    else if (cfg.serverHeaderTransformation === 'APPEND_IF_ABSENT' && headers.server === undefined)
      headers.server = cfg.serverName;
    if (cfg.alwaysSetRequestIdInResponse) {
      const id = stream.headers['x-request-id'];
      if (id !== undefined) headers['x-request-id'] = id;
    }
    if (this.draining && !stream.http2) headers.connection = 'close';
  }

  onStreamDone(stream: HttpStream): void {
    const stats = this.stats;
    const now = performance.now();
    stream.endMs = now;
    stats.rqActive.dec();
    stats.responseClass(stream.responseStatus);
    stats.rqTime.record(now - stream.startMs);
    const complete = this.completeFilters;
    for (let i = 0; i < complete.length; i++) complete[i].onComplete!(stream);
    if (this.tracer !== null) this.tracer.onComplete(stream);
    const loggers = this.accessLoggers;
    for (let i = 0; i < loggers.length; i++) loggers[i].log(stream);
  }

  /**
   * Graceful drain: GOAWAY to HTTP/2 clients, `connection: close` on HTTP/1.1 responses, and idle keep-alive
   * connections closed at once unless `closeIdle` is false (a listener update leaves them until the end of
   * its drain period: closing an idle connection races with a client reusing it).
   */
  drain(closeIdle = true): void {
    if (this.draining) {
      if (closeIdle) this.closeIdleConnections();
      return;
    }
    this.draining = true;
    for (const s of this.h2Sessions) s.goaway();
    if (closeIdle) this.closeIdleConnections();
  }

  /** Closes idle HTTP/1 connections, once connections accepted moments ago have had time to send a request. */
  private closeIdleConnections(): void {
    const wait = this.lastAcceptMs + FRESH_CONNECTION_GRACE_MS - performance.now();
    if (wait <= 0) return void this.h1.closeIdleConnections();
    if (this.idleCloseTimer !== null) return;
    this.idleCloseTimer = setTimeout(() => {
      this.idleCloseTimer = null;
      this.h1.closeIdleConnections();
    }, wait);
    this.idleCloseTimer.unref();
  }

  /** Force-closes everything left. */
  destroy(): void {
    if (this.idleCloseTimer !== null) clearTimeout(this.idleCloseTimer);
    this.idleCloseTimer = null;
    this.h1.closeAllConnections();
    this.h1.close(() => undefined); // stops node's connection-checking timer
    for (const s of this.h2Sessions) s.destroy();
    for (const s of this.tunnels) s.destroy();
  }

  /** True while any request is in flight, or a drain still gives fresh connections time for theirs. */
  busy(): boolean {
    return this.stats.rqActive.value > 0 || this.idleCloseTimer !== null;
  }
}
