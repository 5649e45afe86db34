/**
 * The upstream transport contract: a connection pool per endpoint that sends one request and reports
 * the response through an UpstreamHandler. HTTP/1.1 (undici) and HTTP/2 (node:http2) pools implement it,
 * so the router is protocol-agnostic.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex, Readable } from 'node:stream';

export type OutgoingHeaders = Record<string, string | string[] | undefined>;

export interface UpstreamRequest {
  readonly method: string;
  readonly path: string;
  /** Headers without hop-by-hop and pseudo-headers; `host` carries the authority. */
  readonly headers: OutgoingHeaders;
  /** null when the request has no body. */
  readonly body: Readable | null;
  /** The upgrade token (e.g. "websocket") for an HTTP/1.1 Upgrade request. */
  readonly upgrade?: string;
}

/** Why an upstream exchange failed; maps onto Envoy's response flags. */
export type UpstreamFailure =
  | 'connect' // UF: could not connect
  | 'termination' // UC: the upstream closed the connection before a complete response
  | 'reset' // UR: the upstream reset the connection or stream
  | 'protocol' // UPE: malformed upstream response
  | 'refused' // the stream was refused before any processing (HTTP/2 REFUSED_STREAM / GOAWAY): safe to retry
  | 'local' // we aborted it
  | 'overflow'; // UO: a circuit breaker refused the request; never sent, never retried

/** Socket errno codes that mean the connection was never established (→ UF). */
export const CONNECT_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
]);

export class UpstreamError extends Error {
  readonly failure: UpstreamFailure;
  /** True when the upstream cannot have seen the request (safe to retry on another connection). */
  readonly beforeRequestSent: boolean;
  constructor(failure: UpstreamFailure, message: string, beforeRequestSent = false, cause?: unknown) {
    super(message, { cause });
    this.name = 'UpstreamError';
    this.failure = failure;
    this.beforeRequestSent = beforeRequestSent;
  }
}

export interface UpstreamHandler {
  /** Called once per request, before any other callback (possibly while queued); `abort` cancels the exchange. */
  onStart(abort: (reason: Error) => void, pause: () => void, resume: () => void): void;
  onHeaders(status: number, headers: IncomingHttpHeaders, endOfStream: boolean): void;
  /** Returns false when the downstream is congested; the pool then waits for resume(). */
  onData(chunk: Buffer): boolean;
  onEnd(trailers: IncomingHttpHeaders | null): void;
  onError(err: UpstreamError): void;
  onUpgrade(status: number, headers: IncomingHttpHeaders, socket: Duplex): void;
}

export interface UpstreamPool {
  readonly protocol: 'http1' | 'http2';
  send(req: UpstreamRequest, handler: UpstreamHandler): void;
  /** Connections currently open (for /clusters and stats). */
  connectionCount(): number;
  /** Stop using the pool; in-flight exchanges finish. */
  close(): Promise<void>;
  destroy(): void;
}
