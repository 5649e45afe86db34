/**
 * HTTP/1.1 upstream pool on undici's Pool.dispatch: the cheapest keep-alive client measured here
 * (see bench/), with streaming bodies and backpressure in both directions.
 *
 * Circuit breakers are coarser than in the native pool (this is a fallback): max_requests counts every
 * request handed to undici, queued or not, and max_connections caps each endpoint's undici Pool on its own.
 */
import { Pool, errors as undiciErrors } from 'undici';
import type { Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { CONNECT_ERROR_CODES, UpstreamError } from './codec.ts';
import type { UpstreamFailure, UpstreamHandler, UpstreamPool, UpstreamRequest } from './codec.ts';
import type { ClusterConfig, Host } from './types.ts';
import { BreakerSlot, CircuitBreakers, OVERFLOW_MESSAGE } from './circuit-breakers.ts';
import { isTransportConnectFailure, UpstreamTransport } from '../tls/upstream.ts';
import { createLogger } from '../../core/logger.ts';

const log = createLogger('upstream');
let warnedMaxDuration = false;

export function classifyUndiciError(err: unknown): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const e = err as { code?: string; message?: string };
  const code = e.code ?? '';
  let failure: UpstreamFailure;
  if (CONNECT_ERROR_CODES.has(code) || code === 'UND_ERR_CONNECT_TIMEOUT' || isTransportConnectFailure(err))
    failure = 'connect';
  else if (code === 'ECONNRESET' || code === 'EPIPE') failure = 'reset';
  else if (code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED') failure = 'termination';
  else if (code.startsWith('HPE_') || err instanceof undiciErrors.HTTPParserError) failure = 'protocol';
  else if (code === 'UND_ERR_ABORTED' || code === 'UND_ERR_DESTROYED') failure = 'local';
  else failure = 'reset';
  return new UpstreamError(failure, e.message ?? String(err), failure === 'connect', err);
}

/** Adapts undici's DispatchHandler callbacks to an UpstreamHandler. */
class DispatchAdapter implements Dispatcher.DispatchHandler {
  private readonly h: UpstreamHandler;
  private readonly slot: BreakerSlot;
  private controller: Dispatcher.DispatchController | null = null;
  constructor(h: UpstreamHandler, slot: BreakerSlot) {
    this.h = h;
    this.slot = slot;
  }
  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    this.h.onStart(
      (reason) => controller.abort(reason),
      () => controller.pause(),
      () => controller.resume(),
    );
  }
  onRequestUpgrade(
    _c: Dispatcher.DispatchController,
    status: number,
    headers: IncomingHttpHeaders,
    socket: Duplex,
  ): void {
    this.slot.release();
    this.h.onUpgrade(status, headers, socket);
  }
  onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    this.h.onHeaders(status, headers, false);
  }
  onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.h.onData(chunk)) c.pause();
  }
  onResponseEnd(_c: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.slot.release();
    this.h.onEnd(trailers && Object.keys(trailers).length > 0 ? trailers : null);
  }
  onResponseError(_c: Dispatcher.DispatchController, error: Error): void {
    this.slot.release();
    this.h.onError(classifyUndiciError(error));
  }
}

export class Http1Pool implements UpstreamPool {
  readonly protocol = 'http1' as const;
  private readonly pool: Pool;
  private readonly origin: string;
  private readonly breakers: CircuitBreakers;

  constructor(
    host: Host,
    cluster: ClusterConfig,
    breakers?: CircuitBreakers,
    transport: UpstreamTransport = UpstreamTransport.plaintext,
  ) {
    this.breakers = breakers ?? new CircuitBreakers(cluster.circuitBreakers);
    const hostPart = host.address.includes(':') ? `[${host.address}]` : host.address;
    this.origin = `http://${hostPart}:${host.port}`;
    this.pool = new Pool(this.origin, {
      // Every connection goes through the cluster's transport (plain TCP or its TLS context).
      connect: (_opts, callback) => {
        const { socket, readyEvent } = transport.connect(host, { noDelay: true, alpn: ['http/1.1'] });
        const timer = setTimeout(
          () => socket.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })),
          cluster.connectTimeoutMs,
        );
        const onError = (err: Error): void => {
          clearTimeout(timer);
          callback(err, null);
        };
        socket.once('error', onError);
        socket.once(readyEvent, () => {
          clearTimeout(timer);
          socket.removeListener('error', onError);
          callback(null, socket);
        });
      },
      connections: Math.max(1, cluster.circuitBreakers.maxConnections),
      pipelining: 1,
      // Timeouts are the router's job (route timeout, stream idle timeout), not the client's.
      headersTimeout: 0,
      bodyTimeout: 0,
      keepAliveTimeout: cluster.upstreamIdleTimeoutMs > 0 ? cluster.upstreamIdleTimeoutMs : 3_600_000,
      keepAliveMaxTimeout: 3_600_000,
      maxRequestsPerClient: cluster.maxRequestsPerConnection,
      strictContentLength: true,
    });
    // undici's pool has no lifetime bound for a connection: this fallback client keeps connections as long as
    // they are used (the native pool, the default, honours max_connection_duration).
    if (cluster.maxConnectionDurationMs > 0 && !warnedMaxDuration) {
      warnedMaxDuration = true;
      log.warn('max_connection_duration is not enforced with WEFT_H1_CLIENT=undici', {
        cluster: cluster.name,
      });
    }
  }

  send(req: UpstreamRequest, handler: UpstreamHandler): void {
    const slot = new BreakerSlot(this.breakers);
    if (!slot.activate()) {
      handler.onError(new UpstreamError('overflow', OVERFLOW_MESSAGE, true));
      return;
    }
    const opts: Dispatcher.DispatchOptions = {
      path: req.path,
      method: req.method,
      headers: req.headers as Record<string, string | string[]>,
      body: req.body,
      upgrade: req.upgrade ?? null,
      // The router decides about retries; a pipelined replay by the client would hide failures.
      idempotent: false,
      blocking: false,
    };
    try {
      this.pool.dispatch(opts, new DispatchAdapter(handler, slot));
    } catch (err) {
      slot.release();
      handler.onError(classifyUndiciError(err));
    }
  }

  connectionCount(): number {
    return this.pool.stats.connected;
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  destroy(): void {
    this.pool.destroy().catch(() => undefined);
  }
}
