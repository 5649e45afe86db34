/**
 * HTTP/2 upstream pool on node:http2: a few multiplexed sessions per endpoint, opened on demand,
 * each used up to the peer's SETTINGS_MAX_CONCURRENT_STREAMS (and max_concurrent_streams). Full duplex, so
 * gRPC streaming works. The cluster's circuit breakers bound sessions, waiting requests and streams.
 */
import http2 from 'node:http2';
import type { IncomingHttpHeaders } from 'node:http';
import { UpstreamError } from './codec.ts';
import type { UpstreamHandler, UpstreamPool, UpstreamRequest } from './codec.ts';
import type { ClusterConfig, Host } from './types.ts';
import { BreakerSlot, CircuitBreakers, OVERFLOW_MESSAGE, releasingOnEnd } from './circuit-breakers.ts';
import { UpstreamTransport } from '../tls/upstream.ts';

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL } = http2.constants;

interface Session {
  readonly s: http2.ClientHttp2Session;
  active: number;
  served: number;
  ready: boolean;
  usable: boolean;
}

interface Waiter {
  req: UpstreamRequest;
  /** Releases the slot on its final callback. */
  handler: UpstreamHandler;
  slot: BreakerSlot;
  /** The started stream's abort/pause/resume, once it has one (onStart ran while it waited). */
  ctl: StreamControl | null;
  /** Aborted before it got a stream. */
  aborted: boolean;
}

interface StreamControl {
  abort(reason: Error): void;
  pause(): void;
  resume(): void;
}

/** Errors a closed stream may still emit; nothing to do with them, and nothing captured. */
function ignoreError(): void {}

function overflow(): UpstreamError {
  return new UpstreamError('overflow', OVERFLOW_MESSAGE, true);
}

export class Http2Pool implements UpstreamPool {
  readonly protocol = 'http2' as const;
  private readonly authority: string;
  private readonly hostAuthority: string;
  private readonly host: Host;
  private readonly transport: UpstreamTransport;
  private readonly scheme: 'http' | 'https';
  private readonly sessions: Session[] = [];
  private readonly waiting: Waiter[] = [];
  private readonly cluster: ClusterConfig;
  private readonly breakers: CircuitBreakers;
  private closed = false;

  /** `breakers` are the cluster's, shared by its pools; a pool built alone gets its own. */
  constructor(
    host: Host,
    cluster: ClusterConfig,
    breakers?: CircuitBreakers,
    transport: UpstreamTransport = UpstreamTransport.plaintext,
  ) {
    this.breakers = breakers ?? new CircuitBreakers(cluster.circuitBreakers);
    const hostPart = host.address.includes(':') ? `[${host.address}]` : host.address;
    this.authority = `http://${hostPart}:${host.port}`;
    this.hostAuthority = `${hostPart}:${host.port}`;
    this.cluster = cluster;
    this.host = host;
    this.transport = transport;
    this.scheme = transport.tls === undefined ? 'http' : 'https';
  }

  private streamLimit(s: Session): number {
    const remote = s.s.remoteSettings?.maxConcurrentStreams ?? 100;
    const local = this.cluster.http2?.maxConcurrentStreams ?? 2147483647;
    return Math.min(remote, local);
  }

  private pick(): Session | null {
    for (const s of this.sessions) {
      if (s.ready && s.usable && s.active < this.streamLimit(s)) return s;
    }
    return null;
  }

  private open(): Session {
    const h2 = this.cluster.http2;
    const s = http2.connect(this.authority, {
      // node:http2 waits for 'secureConnect' on a TLS socket before it sends the preface.
      createConnection: () => this.transport.connect(this.host, { noDelay: true, alpn: ['h2'] }).socket,
      settings: {
        enablePush: false,
        ...(h2?.initialStreamWindowSize !== undefined
          ? { initialWindowSize: h2.initialStreamWindowSize }
          : {}),
      },
    });
    const session: Session = { s, active: 0, served: 0, ready: false, usable: true };
    this.sessions.push(session);
    this.breakers.connections.inc();
    const timer = setTimeout(() => {
      if (!session.ready) s.destroy(new UpstreamError('connect', 'upstream connect timeout', true));
    }, this.cluster.connectTimeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      session.ready = true;
      if (h2?.keepalive !== undefined) keepAlive(s, h2.keepalive);
      if (h2?.initialConnectionWindowSize !== undefined) {
        try {
          s.setLocalWindowSize(h2.initialConnectionWindowSize);
        } catch {
          /* a window smaller than the default cannot be set; keep the default */
        }
      }
      this.flush();
    });
    s.once('remoteSettings', () => this.flush());
    s.on('goaway', () => {
      session.usable = false;
    });
    // max_connection_duration: no new streams from then on; the session closes when its last stream is done.
    const lifetime = this.cluster.maxConnectionDurationMs;
    if (lifetime > 0) {
      const expire = setTimeout(() => {
        session.usable = false;
        if (session.active === 0 && !s.closed) s.close();
      }, lifetime);
      expire.unref();
      s.once('close', () => clearTimeout(expire));
    }
    const idle = this.cluster.upstreamIdleTimeoutMs;
    if (idle > 0) {
      s.setTimeout(idle, () => {
        if (session.active === 0) s.close();
      });
    }
    s.on('error', (err: Error) => {
      clearTimeout(timer);
      if (!session.ready) {
        const failure = new UpstreamError('connect', err.message, true, err);
        this.failWaiting(failure);
      }
    });
    s.on('close', () => {
      clearTimeout(timer);
      session.usable = false;
      const i = this.sessions.indexOf(session);
      if (i >= 0) {
        this.sessions.splice(i, 1);
        this.breakers.connections.dec();
      }
      if (this.waiting.length > 0 && !this.closed) this.flush();
    });
    s.unref();
    return session;
  }

  private failWaiting(err: UpstreamError): void {
    // Only fail waiters no other session can serve.
    if (this.sessions.some((x) => x.ready && x.usable)) return;
    const ws = this.waiting.splice(0);
    for (const w of ws) w.handler.onError(err);
  }

  /** One more session when none is connecting; the cluster caps them, but a pool may always have one. */
  private maybeOpen(): void {
    if (this.sessions.some((x) => !x.ready)) return;
    if (this.breakers.canOpenConnection(this.sessions.length === 0)) this.open();
  }

  private flush(): void {
    while (this.waiting.length > 0) {
      const s = this.pick();
      if (!s) {
        this.maybeOpen();
        return;
      }
      const w = this.waiting.shift()!;
      // Out of the queue, the request needs a max_requests slot like any other.
      if (!w.slot.activate()) w.handler.onError(overflow());
      else this.start(s, w);
    }
  }

  send(req: UpstreamRequest, handler: UpstreamHandler): void {
    if (this.closed) {
      handler.onError(new UpstreamError('connect', 'pool closed', true));
      return;
    }
    const slot = new BreakerSlot(this.breakers);
    const w: Waiter = { req, handler: releasingOnEnd(handler, slot), slot, ctl: null, aborted: false };
    // One onStart per request, even when it waits first: the controls follow it onto its stream.
    handler.onStart(
      (reason) => {
        if (w.ctl !== null) {
          w.ctl.abort(reason);
          return;
        }
        if (w.aborted) return;
        w.aborted = true;
        const i = this.waiting.indexOf(w);
        if (i >= 0) this.waiting.splice(i, 1);
        w.handler.onError(
          reason instanceof UpstreamError
            ? reason
            : new UpstreamError('local', reason.message, false, reason),
        );
      },
      () => w.ctl?.pause(),
      () => w.ctl?.resume(),
    );
    if (w.aborted) return;
    const s = this.pick();
    if (s) {
      if (!slot.activate()) w.handler.onError(overflow());
      else this.start(s, w);
      return;
    }
    if (!slot.enterPending()) {
      w.handler.onError(overflow());
      return;
    }
    this.waiting.push(w);
    this.maybeOpen();
  }

  private start(session: Session, w: Waiter): void {
    const { req, handler, slot } = w;
    const headers: http2.OutgoingHttpHeaders = {};
    for (const k in req.headers) {
      if (k === 'host') continue;
      const v = req.headers[k];
      if (v !== undefined) headers[k] = v;
    }
    headers[':method'] = req.method;
    headers[':path'] = req.path;
    headers[':scheme'] = this.scheme;
    headers[':authority'] = req.headers.host ?? this.hostAuthority;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.s.request(headers, { endStream: req.body === null });
    } catch (err) {
      session.usable = false;
      handler.onError(new UpstreamError('refused', (err as Error).message, true, err));
      return;
    }
    session.active++;
    session.served++;
    const max = this.cluster.maxRequestsPerConnection;
    if (max !== undefined && session.served >= max) session.usable = false;
    let gotHeaders = false;
    let finished = false;
    w.ctl = {
      abort: () => {
        if (finished) return;
        finished = true;
        // The caller asked for the end: no final callback follows, so the slot goes now.
        slot.release();
        stream.close(NGHTTP2_CANCEL);
      },
      pause: () => stream.pause(),
      resume: () => stream.resume(),
    };
    stream.on('response', (h: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader, flags: number) => {
      if (finished) return;
      const status = Number(h[':status']);
      if (status >= 100 && status < 200) return;
      gotHeaders = true;
      const out: IncomingHttpHeaders = {};
      for (const k in h) if (k.charCodeAt(0) !== 58 /* : */) out[k] = h[k];
      const endOfStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      handler.onHeaders(status, out, endOfStream);
      // The body is read only from here on: node:http2 emits 'response' on the next tick but may deliver
      // DATA of the same read at once, and a handler must never see body bytes before the headers.
      stream.on('data', (chunk: Buffer) => {
        if (!finished && !handler.onData(chunk)) stream.pause();
      });
    });
    let trailers: IncomingHttpHeaders | null = null;
    stream.on('trailers', (t: IncomingHttpHeaders) => {
      trailers = t;
    });
    stream.on('end', () => {
      if (finished) return;
      finished = true;
      if (!gotHeaders) {
        handler.onError(new UpstreamError('protocol', 'upstream stream ended without headers'));
        return;
      }
      handler.onEnd(trailers);
    });
    stream.on('error', () => undefined);
    stream.on('close', () => {
      session.active--;
      if (!finished) {
        finished = true;
        const code = stream.rstCode;
        const refused = code === NGHTTP2_REFUSED_STREAM;
        handler.onError(
          new UpstreamError(
            refused ? 'refused' : gotHeaders || code ? 'reset' : 'termination',
            `upstream stream closed (code ${code})`,
            refused,
          ),
        );
      }
      // A session retired by max_requests_per_connection closes once its last stream is done.
      if (!session.usable && session.active === 0 && !session.s.closed) session.s.close();
      if (this.waiting.length > 0) this.flush();
      // A closed node:http2 stream survives young-generation GCs until the next full one. Listeners left on
      // it would keep this request's handler (the router, the downstream request and response) alive that
      // long, and get them promoted. Measured with 20 KB held per handler at 1,000 rps: 17 mark-compacts in
      // 6 s with the listeners left on, 2 without.
      stream.removeAllListeners();
      stream.on('error', ignoreError);
    });
    if (req.body) {
      req.body.pipe(stream);
      req.body.on('error', () => stream.close(NGHTTP2_CANCEL));
    }
  }

  connectionCount(): number {
    return this.sessions.length;
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.all(
      this.sessions.map((s) => new Promise<void>((resolve) => s.s.close(() => resolve()))),
    ).then(() => undefined);
  }

  destroy(): void {
    this.closed = true;
    const err = new UpstreamError('local', 'the upstream pool was destroyed');
    for (const w of this.waiting.splice(0)) w.handler.onError(err);
    for (const s of this.sessions) s.s.destroy();
  }
}

/**
 * connection_keepalive: a PING every interval; one unanswered for `timeoutMs` closes the session, so its streams
 * fail (and may be retried elsewhere) instead of hanging on a peer that went silent.
 */
function keepAlive(s: http2.ClientHttp2Session, opts: { intervalMs: number; timeoutMs: number }): void {
  let waiting: NodeJS.Timeout | null = null;
  const tick = setInterval(() => {
    if (waiting !== null || s.destroyed) return;
    waiting = setTimeout(() => {
      s.destroy(new UpstreamError('reset', `no HTTP/2 PING answer within ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    waiting.unref();
    try {
      s.ping((err) => {
        if (err) return;
        if (waiting !== null) clearTimeout(waiting);
        waiting = null;
      });
    } catch {
      // Too many unanswered PINGs already, or the session is closing: the timer above decides.
    }
  }, opts.intervalMs);
  tick.unref();
  s.once('close', () => {
    clearInterval(tick);
    if (waiting !== null) clearTimeout(waiting);
  });
}
