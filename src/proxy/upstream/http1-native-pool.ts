/**
 * HTTP/1.1 upstream pool on plain net.Socket connections and Node's native llhttp binding (the parser
 * node:http itself uses), without undici: one request per connection at a time, keep-alive reuse from a
 * LIFO idle list, the cluster's circuit breakers (connections, pending and active requests) with a FIFO
 * queue of pending requests, and backpressure both ways.
 *
 * Per connection, the socket listeners, parser callbacks and request-body listeners are bound once;
 * per request there is one Exchange and the three control functions handed to onStart (they must stay
 * tied to their own request, since a caller may hold them after the connection has moved on).
 */
import type { Socket } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { CONNECT_ERROR_CODES, UpstreamError } from './codec.ts';
import type { UpstreamFailure, UpstreamHandler, UpstreamPool, UpstreamRequest } from './codec.ts';
import type { ClusterConfig, Host } from './types.ts';
import { BreakerSlot, CircuitBreakers, OVERFLOW_MESSAGE } from './circuit-breakers.ts';
import {
  HTTPParser,
  InvalidRequestError,
  PARSE_BODY,
  SKIP_BODY,
  SKIP_BODY_UPGRADE,
  headerObject,
  requestHead,
} from './http1-native-wire.ts';
import type { NativeParser, RequestFraming } from './http1-native-wire.ts';
import { isTransportConnectFailure, UpstreamTransport } from '../tls/upstream.ts';

/** Maps a socket or parser error the way classifyUndiciError maps undici's. */
function classifySocketError(err: unknown, connected: boolean): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : String(err);
  let failure: UpstreamFailure;
  if (!connected && (CONNECT_ERROR_CODES.has(code) || isTransportConnectFailure(err))) failure = 'connect';
  else if (code === 'ECONNRESET' || code === 'EPIPE') failure = 'reset';
  else if (code.startsWith('HPE_')) failure = 'protocol';
  else failure = 'reset';
  return new UpstreamError(failure, code ? `${code}: ${message}` : message, failure === 'connect', err);
}

const HTTP1_ALPN: readonly string[] = ['http/1.1'];

function overflow(): UpstreamError {
  return new UpstreamError('overflow', OVERFLOW_MESSAGE, true);
}

/** One request's life in the pool: queued, then bound to a connection until it completes or fails. */
class Exchange implements RequestFraming {
  readonly pool: NativeHttp1Pool;
  readonly req: UpstreamRequest;
  readonly handler: UpstreamHandler;
  readonly head: string;
  contentLength = -1;
  chunked = false;
  conn: Conn | null = null;
  /** Set once the handler has had its final callback (onEnd, onError or onUpgrade). */
  done = false;
  /** The handler asked for a pause (onData returned false, or pause()). */
  paused = false;
  /** Released on every final callback, so a finished request never holds a breaker. */
  readonly slot: BreakerSlot;

  constructor(pool: NativeHttp1Pool, req: UpstreamRequest, handler: UpstreamHandler) {
    this.pool = pool;
    this.req = req;
    this.handler = handler;
    this.head = requestHead(req, pool.defaultHost, this);
    this.slot = new BreakerSlot(pool.breakers);
  }

  abort(reason: Error): void {
    if (this.done) return;
    this.done = true;
    this.slot.release();
    const conn = this.conn;
    if (conn === null) {
      this.pool.dequeue(this);
    } else {
      this.conn = null;
      conn.ex = null;
      conn.destroy();
    }
    const err =
      reason instanceof UpstreamError ? reason : new UpstreamError('local', reason.message, false, reason);
    this.handler.onError(err);
  }

  pause(): void {
    if (this.done || this.paused) return;
    this.paused = true;
    this.conn?.pauseReading();
  }

  resume(): void {
    if (this.done || !this.paused) return;
    this.paused = false;
    this.conn?.resumeReading();
  }

  /** Delivers the final failure, once. */
  fail(err: UpstreamError): void {
    if (this.done) return;
    this.done = true;
    this.slot.release();
    this.conn = null;
    this.handler.onError(err);
  }
}

/* Parser callbacks: `this` is the parser, whose `owner` is the connection. */
type OwnedParser = NativeParser & { owner: Conn };

function onParserHeaders(this: OwnedParser, raw: string[]): void {
  const c = this.owner;
  const buf = c.headersDone ? c.trailerBuf : c.headerBuf;
  for (let i = 0; i < raw.length; i++) buf.push(raw[i]);
}

function onParserHeadersComplete(
  this: OwnedParser,
  _major: number,
  _minor: number,
  raw: string[] | undefined,
  _method: unknown,
  _url: unknown,
  status: number,
  _statusText: string,
  _upgrade: boolean,
  shouldKeepAlive: boolean,
): number {
  return this.owner.onHeadersComplete(raw, status, shouldKeepAlive);
}

function onParserBody(this: OwnedParser, chunk: Buffer): void {
  const c = this.owner;
  const ex = c.ex;
  if (ex === null || ex.done) return;
  if (!ex.handler.onData(chunk) && !ex.paused) {
    ex.paused = true;
    c.pauseReading();
  }
}

function onParserMessageComplete(this: OwnedParser): void {
  this.owner.onMessageComplete();
}

function onParserExecute(this: OwnedParser, ret: number | Error): void {
  this.owner.afterExecute(ret, null);
}

/** The libuv stream handle behind a net.Socket, as node:http's server drives it. */
interface StreamHandle {
  reading: boolean;
  readStart(): number;
  readStop(): number;
  isStreamBase?: boolean;
  _consumed?: boolean;
}

/** One upstream connection and its parser, reused for request after request. */
class Conn {
  readonly pool: NativeHttp1Pool;
  readonly socket: Socket;
  readonly parser: OwnedParser;
  ex: Exchange | null = null;
  connected = false;
  closed = false;
  idleSince = 0;
  requests = 0;
  /** max_connection_duration passed: the connection takes no new request. */
  expired = false;
  private connectTimer: NodeJS.Timeout | null = null;
  private lifetimeTimer: NodeJS.Timeout | null = null;
  private readonly readyEvent: 'connect' | 'secureConnect';
  /** TLS: the parser reads the TLS socket's decrypted data ('data' events), never the raw handle. */
  private readonly secure: boolean;
  private readingPaused = false;
  /** The parser reads the socket's handle itself (see onSocketConnect). */
  private handle: StreamHandle | null = null;

  // Per-response parse state, reset for each request.
  headerBuf: string[] = [];
  trailerBuf: string[] = [];
  headersDone = false;
  private informational = false;
  private keepAlive = true;
  private skipBody = false;
  private responseComplete = false;
  private upgraded = false;
  private upgradeStatus = 0;
  private upgradeHeaders: IncomingHttpHeaders | null = null;
  /** Why the response was refused from a parser callback (llhttp ignores a callback's error after a 101). */
  private invalidResponse: string | null = null;

  // Request body state.
  private body: Readable | null = null;
  private bodySent = 0;
  private requestSent = false;
  private waitingDrain = false;

  constructor(pool: NativeHttp1Pool, host: Host, connectTimeoutMs: number) {
    this.pool = pool;
    const parser = new HTTPParser() as OwnedParser;
    parser.initialize(HTTPParser.RESPONSE, {}, 0, HTTPParser.kLenientNone);
    parser.owner = this;
    parser[HTTPParser.kOnHeaders] = onParserHeaders;
    parser[HTTPParser.kOnHeadersComplete] = onParserHeadersComplete;
    parser[HTTPParser.kOnBody] = onParserBody;
    parser[HTTPParser.kOnMessageComplete] = onParserMessageComplete;
    parser[HTTPParser.kOnExecute] = onParserExecute;
    this.parser = parser;
    const conn = pool.transport.connect(host, {
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: 60_000,
      alpn: HTTP1_ALPN,
    });
    const socket = conn.socket;
    this.socket = socket;
    this.readyEvent = conn.readyEvent;
    this.secure = conn.secure;
    socket.on(conn.readyEvent, this.onSocketConnect);
    socket.on('data', this.onSocketData);
    socket.on('end', this.onSocketEnd);
    socket.on('error', this.onSocketError);
    socket.on('close', this.onSocketClose);
    socket.on('drain', this.onSocketDrain);
    const lifetime = pool.maxConnectionDurationMs;
    if (lifetime > 0) {
      this.lifetimeTimer = setTimeout(() => {
        this.lifetimeTimer = null;
        this.expired = true;
        pool.onExpired(this);
      }, lifetime);
      this.lifetimeTimer.unref();
    }
    if (connectTimeoutMs > 0) {
      this.connectTimer = setTimeout(() => {
        this.connectTimer = null;
        const err = Object.assign(new Error(`connect timeout after ${connectTimeoutMs} ms`), {
          code: 'ETIMEDOUT',
        });
        this.socket.destroy(err);
      }, connectTimeoutMs);
    }
  }

  /** Binds an exchange to this connection and sends it once the connection is up. */
  assign(ex: Exchange): void {
    ex.conn = this;
    this.ex = ex;
    this.requests++;
    this.headersDone = false;
    this.informational = false;
    this.keepAlive = true;
    this.skipBody = ex.req.method === 'HEAD';
    this.responseComplete = false;
    this.requestSent = false;
    if (ex.paused) this.pauseReading();
    if (this.connected) this.writeRequest(ex);
  }

  private writeRequest(ex: Exchange): void {
    const socket = this.socket;
    const body = ex.req.body;
    socket.write(ex.head, 'latin1');
    if (body === null || ex.contentLength === 0) {
      this.requestSent = true;
      return;
    }
    this.body = body;
    this.bodySent = 0;
    this.waitingDrain = false;
    body.on('data', this.onBodyData);
    body.on('end', this.onBodyEnd);
    body.on('error', this.onBodyError);
    // A body stream destroyed without 'end' (the downstream went away) is an error for the exchange.
    body.on('close', this.onBodyError);
  }

  private readonly onBodyData = (chunk: Buffer | string): void => {
    const ex = this.ex;
    if (ex === null) return;
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (data.length === 0) return;
    const socket = this.socket;
    let ok: boolean;
    this.bodySent += data.length;
    if (ex.chunked) {
      socket.cork();
      socket.write(`${data.length.toString(16)}\r\n`, 'latin1');
      socket.write(data);
      ok = socket.write('\r\n', 'latin1');
      socket.uncork();
    } else {
      if (this.bodySent > ex.contentLength) {
        this.failExchange(new UpstreamError('local', 'request body longer than its content-length'));
        return;
      }
      ok = socket.write(data);
      // The last declared byte completes the request, whenever the body stream gets to its 'end'.
      if (this.bodySent === ex.contentLength) {
        this.detachBody();
        this.requestSent = true;
        return;
      }
    }
    if (!ok && this.body !== null) {
      this.waitingDrain = true;
      this.body.pause();
    }
  };

  private readonly onBodyEnd = (): void => {
    const ex = this.ex;
    if (ex === null) return;
    if (!ex.chunked) {
      this.failExchange(new UpstreamError('local', 'request body shorter than its content-length'));
      return;
    }
    this.socket.write('0\r\n\r\n', 'latin1');
    this.detachBody();
    this.requestSent = true;
  };

  private readonly onBodyError = (err?: unknown): void => {
    if (this.body === null || this.requestSent) return;
    const reason = err instanceof Error ? err.message : 'request body closed before its end';
    this.failExchange(new UpstreamError('local', reason, false, err));
  };

  private readonly onSocketDrain = (): void => {
    if (this.waitingDrain && this.body !== null) {
      this.waitingDrain = false;
      this.body.resume();
    }
  };

  private detachBody(): void {
    const body = this.body;
    if (body === null) return;
    this.body = null;
    body.removeListener('data', this.onBodyData);
    body.removeListener('end', this.onBodyEnd);
    body.removeListener('error', this.onBodyError);
    body.removeListener('close', this.onBodyError);
    if (this.waitingDrain) {
      this.waitingDrain = false;
      body.resume();
    }
  }

  /** Stops reading responses (applied at connect time when asked earlier). */
  pauseReading(): void {
    if (this.readingPaused) return;
    this.readingPaused = true;
    if (this.connected) this.stopReading();
  }

  resumeReading(): void {
    if (!this.readingPaused) return;
    this.readingPaused = false;
    if (!this.connected || this.closed) return;
    const handle = this.handle;
    if (handle === null) this.socket.resume();
    else if (!handle.reading) {
      handle.reading = true;
      handle.readStart();
    }
  }

  private stopReading(): void {
    const handle = this.handle;
    if (handle === null) this.socket.pause();
    else if (handle.reading) {
      handle.reading = false;
      handle.readStop();
    }
  }

  private readonly onSocketConnect = (): void => {
    this.connected = true;
    if (this.connectTimer !== null) {
      clearTimeout(this.connectTimer);
      this.connectTimer = null;
    }
    this.pool.onConnected();
    // As node:http's server does: the parser reads straight from the handle, which saves a Buffer and a
    // 'data' event per read. EOF and errors still reach the socket, so 'end', 'error' and 'close' work.
    const handle = (this.socket as unknown as { _handle: StreamHandle | null })._handle;
    if (
      NativeHttp1Pool.readHandlesDirectly &&
      !this.secure &&
      handle !== null &&
      handle.isStreamBase === true &&
      handle._consumed !== true
    ) {
      handle._consumed = true;
      this.parser.consume(handle);
      this.handle = handle;
    }
    if (this.readingPaused) this.stopReading();
    const ex = this.ex;
    if (ex === null) {
      this.pool.release(this);
    } else if (!ex.slot.activate()) {
      // Pending no more, but max_requests is reached: the request overflows, the connection serves the next.
      this.ex = null;
      ex.fail(overflow());
      this.pool.release(this);
    } else this.writeRequest(ex);
  };

  private readonly onSocketData = (chunk: Buffer): void => {
    this.afterExecute(this.parser.execute(chunk), chunk);
  };

  /** After the parser ran over `chunk` (null when it read the handle itself). */
  afterExecute(ret: number | Error, chunk: Buffer | null): void {
    if (this.closed) return;
    if (typeof ret !== 'number') {
      this.failExchange(classifySocketError(ret, true));
      return;
    }
    if (this.invalidResponse !== null) {
      this.failExchange(new UpstreamError('protocol', this.invalidResponse));
      return;
    }
    if (this.upgraded) this.handOver((chunk ?? this.parser.getCurrentBuffer()).subarray(ret));
    else if (this.responseComplete) this.afterResponse();
  }

  onHeadersComplete(raw: string[] | undefined, status: number, shouldKeepAlive: boolean): number {
    const ex = this.ex;
    // Headers come in the callback's argument, or earlier through kOnHeaders when they were long or split.
    let headerList = this.headerBuf;
    if (headerList.length === 0) headerList = raw ?? headerList;
    else {
      if (raw !== undefined) for (let i = 0; i < raw.length; i++) headerList.push(raw[i]);
      this.headerBuf = [];
    }
    // A response nobody asked for (on an idle connection, or after the exchange ended): broken framing.
    if (ex === null || ex.done || this.responseComplete) return this.refuse('response without a request');
    if (status < 200 && status !== 101) {
      this.informational = true;
      return SKIP_BODY;
    }
    const headers = headerObject(headerList);
    if (status === 101) {
      if (ex.req.upgrade === undefined)
        return this.refuse('101 Switching Protocols without an upgrade request');
      this.upgraded = true;
      this.upgradeStatus = status;
      this.upgradeHeaders = headers;
      return SKIP_BODY_UPGRADE;
    }
    this.headersDone = true;
    // A declined upgrade leaves the connection in a state nobody should reuse.
    this.keepAlive = shouldKeepAlive && ex.req.upgrade === undefined;
    ex.handler.onHeaders(status, headers, false);
    return this.skipBody ? SKIP_BODY : PARSE_BODY;
  }

  private refuse(reason: string): number {
    this.invalidResponse = reason;
    return -1;
  }

  onMessageComplete(): void {
    if (this.informational) {
      this.informational = false;
      return;
    }
    if (this.upgraded) return;
    const ex = this.ex;
    if (ex === null || ex.done) return;
    this.responseComplete = true;
    const trailers = this.trailerBuf.length > 0 ? headerObject(this.trailerBuf) : null;
    if (trailers !== null) this.trailerBuf = [];
    ex.done = true;
    ex.slot.release();
    ex.handler.onEnd(trailers);
  }

  /** The response is complete (and delivered): reuse the connection when both directions are done. */
  private afterResponse(): void {
    const ex = this.ex;
    this.responseComplete = false;
    if (ex !== null) {
      ex.conn = null;
      this.ex = null;
    }
    // A response that beat its request body to the end leaves the body's framing unfinished.
    if (!this.requestSent) {
      this.detachBody();
      this.destroy();
      return;
    }
    const max = this.pool.maxRequestsPerConnection;
    if (!this.keepAlive || this.expired || (max !== undefined && max > 0 && this.requests >= max)) {
      this.destroy();
      return;
    }
    this.resumeReading();
    this.pool.release(this);
  }

  /** 101 Switching Protocols: the socket leaves the pool and belongs to the handler from here on. */
  private handOver(rest: Buffer): void {
    const ex = this.ex!;
    const socket = this.socket;
    this.ex = null;
    ex.conn = null;
    ex.done = true;
    ex.slot.release();
    socket.removeListener(this.readyEvent, this.onSocketConnect);
    socket.removeListener('data', this.onSocketData);
    socket.removeListener('end', this.onSocketEnd);
    socket.removeListener('error', this.onSocketError);
    socket.removeListener('close', this.onSocketClose);
    socket.removeListener('drain', this.onSocketDrain);
    const handle = this.handle;
    if (handle !== null) {
      this.parser.unconsume();
      handle._consumed = false;
      this.handle = null;
      if (!handle.reading) {
        handle.reading = true;
        handle.readStart();
      }
    }
    this.retire();
    socket.pause();
    // Back to the initial state, as node:http does, so either a 'data' listener or pipe() starts the flow.
    (socket as unknown as { readableFlowing: boolean | null }).readableFlowing = null;
    if (rest.length > 0) socket.unshift(rest);
    ex.handler.onUpgrade(this.upgradeStatus, this.upgradeHeaders ?? {}, socket);
  }

  private readonly onSocketEnd = (): void => {
    const ex = this.ex;
    if (ex !== null && !ex.done) {
      // EOF ends a close-delimited body; anything else unfinished is a premature close.
      const err = this.parser.finish();
      if (err === undefined && this.responseComplete) {
        this.afterResponse();
        return;
      }
      ex.fail(
        new UpstreamError('termination', 'upstream closed the connection before the response completed'),
      );
      this.ex = null;
    }
    this.destroy();
  };

  private readonly onSocketError = (err: Error): void => {
    const ex = this.ex;
    this.ex = null;
    if (ex !== null && !ex.done) ex.fail(classifySocketError(err, this.connected));
    this.destroy();
  };

  private readonly onSocketClose = (): void => {
    const ex = this.ex;
    if (ex !== null && !ex.done) {
      this.ex = null;
      ex.fail(
        new UpstreamError(
          this.connected ? 'termination' : 'connect',
          'upstream connection closed before the response completed',
          !this.connected,
        ),
      );
    }
    this.ex = null;
    this.detachBody();
    this.retire();
  };

  /** Fails the current exchange and drops the connection (its framing can no longer be trusted). */
  private failExchange(err: UpstreamError): void {
    const ex = this.ex;
    this.ex = null;
    if (ex !== null) ex.fail(err);
    this.detachBody();
    this.destroy();
  }

  /** Closes the connection; it leaves the pool at once, so it is never handed out while closing. */
  destroy(): void {
    this.retire();
    this.socket.destroy();
  }

  private retire(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.connectTimer !== null) {
      clearTimeout(this.connectTimer);
      this.connectTimer = null;
    }
    if (this.lifetimeTimer !== null) {
      clearTimeout(this.lifetimeTimer);
      this.lifetimeTimer = null;
    }
    this.pool.forget(this);
    const parser = this.parser;
    const consumed = this.handle !== null;
    this.handle = null;
    // The parser may be on the stack (a callback closed the connection): free it once that has unwound.
    setImmediate(() => {
      if (consumed) parser.unconsume();
      parser.close();
    });
  }
}

/** An HTTP/1.1 connection pool for one endpoint. */
export class NativeHttp1Pool implements UpstreamPool {
  /**
   * Let the parser read socket handles itself (as node:http's server does), which measured about a fifth
   * less CPU per request than 'data' events plus execute(). False selects the 'data' path, which is also
   * what a socket without a stream handle uses; tests run both.
   */
  static readHandlesDirectly = true;

  readonly protocol = 'http1' as const;
  readonly defaultHost: string;
  readonly maxRequestsPerConnection: number | undefined;
  readonly maxConnectionDurationMs: number;
  readonly breakers: CircuitBreakers;
  private readonly host: Host;
  private readonly connectTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  /** Idle connections, most recently used last (LIFO reuse keeps the set of warm connections small). */
  private readonly idle: Conn[] = [];
  private readonly queue: Exchange[] = [];
  private conns = 0;
  private connectedCount = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private closing = false;
  private destroyed = false;
  private closeWaiters: (() => void)[] = [];
  private readonly all = new Set<Conn>();

  /** How connections are opened (plain TCP or the cluster's TLS). */
  readonly transport: UpstreamTransport;

  /** `breakers` are the cluster's, shared by its pools; a pool built alone gets its own. */
  constructor(
    host: Host,
    cluster: ClusterConfig,
    breakers?: CircuitBreakers,
    transport: UpstreamTransport = UpstreamTransport.plaintext,
  ) {
    this.host = host;
    this.transport = transport;
    this.breakers = breakers ?? new CircuitBreakers(cluster.circuitBreakers);
    const hostPart = host.address.includes(':') ? `[${host.address}]` : host.address;
    this.defaultHost = `${hostPart}:${host.port}`;
    this.connectTimeoutMs = cluster.connectTimeoutMs;
    this.idleTimeoutMs = cluster.upstreamIdleTimeoutMs;
    this.maxRequestsPerConnection = cluster.maxRequestsPerConnection;
    this.maxConnectionDurationMs = cluster.maxConnectionDurationMs;
  }

  send(req: UpstreamRequest, handler: UpstreamHandler): void {
    if (this.closing || this.destroyed) {
      handler.onError(new UpstreamError('termination', 'the upstream pool is closed'));
      return;
    }
    let ex: Exchange;
    try {
      ex = new Exchange(this, req, handler);
    } catch (err) {
      if (!(err instanceof InvalidRequestError)) throw err;
      handler.onError(new UpstreamError('protocol', err.message, true, err));
      return;
    }
    handler.onStart(
      (reason) => ex.abort(reason),
      () => ex.pause(),
      () => ex.resume(),
    );
    if (ex.done) return;
    const idle = this.idle.pop();
    if (idle !== undefined) {
      if (!ex.slot.activate()) {
        this.idle.push(idle);
        ex.fail(overflow());
      } else idle.assign(ex);
    } else if (!ex.slot.enterPending()) {
      ex.fail(overflow());
    } else if (this.canOpen()) {
      // Pending until its connection is up, as Envoy counts it (max_pending_requests covers the connect).
      this.open().assign(ex);
    } else this.queue.push(ex);
  }

  /** Connections are capped per cluster, but a pool may always have one (as Envoy: no host starves). */
  private canOpen(): boolean {
    return this.breakers.canOpenConnection(this.conns === 0);
  }

  private open(): Conn {
    const conn = new Conn(this, this.host, this.connectTimeoutMs);
    this.conns++;
    this.breakers.connections.inc();
    this.all.add(conn);
    return conn;
  }

  /** The oldest queued request that may go out now; the ones max_requests refuses fail with overflow. */
  private nextQueued(): Exchange | undefined {
    for (;;) {
      const next = this.queue.shift();
      if (next === undefined || next.slot.activate()) return next;
      next.fail(overflow());
    }
  }

  dequeue(ex: Exchange): void {
    const i = this.queue.indexOf(ex);
    if (i >= 0) this.queue.splice(i, 1);
    this.maybeClosed();
  }

  onConnected(): void {
    this.connectedCount++;
  }

  /** A connection finished its exchange and may take another. */
  release(conn: Conn): void {
    const next = this.nextQueued();
    if (next !== undefined) {
      conn.assign(next);
      return;
    }
    if (this.closing || this.destroyed) {
      conn.destroy();
      return;
    }
    conn.idleSince = Date.now();
    this.idle.push(conn);
    if (this.idleTimer === null && this.idleTimeoutMs > 0) {
      this.idleTimer = setTimeout(this.sweepIdle, this.idleTimeoutMs);
      this.idleTimer.unref();
    }
  }

  /**
   * A connection reached max_connection_duration. Idle, it closes now; busy, it finishes its exchange and closes
   * then (afterResponse), as Envoy drains it.
   */
  onExpired(conn: Conn): void {
    const i = this.idle.lastIndexOf(conn);
    if (i < 0) return;
    this.idle.splice(i, 1);
    conn.destroy();
  }

  /** A connection is gone (closed, failed or upgraded away). */
  forget(conn: Conn): void {
    if (!this.all.delete(conn)) return;
    this.conns--;
    this.breakers.connections.dec();
    if (conn.connected) this.connectedCount--;
    const i = this.idle.lastIndexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    // Room for one more connection: the oldest queued request takes it (still pending until it connects).
    if (this.queue.length > 0 && !this.destroyed && this.canOpen()) {
      const next = this.queue.shift();
      if (next !== undefined) this.open().assign(next);
    }
    this.maybeClosed();
  }

  private readonly sweepIdle = (): void => {
    this.idleTimer = null;
    const now = Date.now();
    const idle = this.idle;
    // The oldest idle connections sit at the bottom of the stack.
    let n = 0;
    while (n < idle.length && now - idle[n].idleSince >= this.idleTimeoutMs) n++;
    const expired = idle.splice(0, n);
    for (const conn of expired) conn.destroy();
    if (idle.length > 0) {
      const delay = Math.max(1, idle[0].idleSince + this.idleTimeoutMs - now);
      this.idleTimer = setTimeout(this.sweepIdle, delay);
      this.idleTimer.unref();
    }
  };

  connectionCount(): number {
    return this.connectedCount;
  }

  close(): Promise<void> {
    this.closing = true;
    for (const conn of this.idle.splice(0)) conn.destroy();
    return new Promise((resolve) => {
      this.closeWaiters.push(resolve);
      this.maybeClosed();
    });
  }

  destroy(): void {
    this.destroyed = true;
    this.closing = true;
    const err = new UpstreamError('local', 'the upstream pool was destroyed');
    for (const ex of this.queue.splice(0)) ex.fail(err);
    for (const conn of [...this.all]) {
      const ex = conn.ex;
      if (ex !== null) {
        conn.ex = null;
        ex.fail(err);
      }
      conn.destroy();
    }
    this.maybeClosed();
  }

  private maybeClosed(): void {
    if (!this.closing || this.conns > 0 || this.queue.length > 0) return;
    if (this.idleTimer !== null) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
    const waiters = this.closeWaiters;
    this.closeWaiters = [];
    for (const w of waiters) w();
  }
}
