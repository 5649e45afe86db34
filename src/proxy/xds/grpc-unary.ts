/** Unary gRPC calls over node:http2 with the proxy's own framing (no @grpc/grpc-js in sidecars). */
import http2 from 'node:http2';
import { encodeGrpcFrame, GrpcFrameDecoder } from './grpc-framing.ts';
import { GrpcStatus, statusFrom } from './grpc-stream.ts';
import type { GrpcCallStatus } from './grpc-stream.ts';

/** A gRPC response message is small here; anything near this is not one. */
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/** A gRPC unary call's outcome: the response message, or why there is none. */
export type UnaryDone = (error: GrpcCallError | Error | null, message: Buffer | undefined) => void;

/** A call that ended with a gRPC status other than OK. */
export class GrpcCallError extends Error {
  readonly code: number;
  constructor(status: GrpcCallStatus) {
    super(`gRPC status ${status.code}${status.message ? `: ${status.message}` : ''}`);
    this.code = status.code;
  }
}

export interface UnaryCallOptions {
  readonly timeoutMs: number;
  /** Request metadata (e.g. `authorization`). */
  readonly metadata?: Readonly<Record<string, string>>;
}

/**
 * Unary gRPC calls to one address over one lasting HTTP/2 connection (redialled when it closes), with
 * gRPC's framing and status trailers: what the rate limit check and the certificate agent need, without loading @grpc/grpc-js
 * into every sidecar (ARCHITECTURE.md, "Memory").
 */
export class UnaryChannel {
  readonly #url: string;
  #session: http2.ClientHttp2Session | undefined;

  constructor(address: string) {
    this.#url = `http://${address}`;
  }

  #connect(): http2.ClientHttp2Session {
    const current = this.#session;
    if (current !== undefined && !current.closed && !current.destroyed) return current;
    const session = http2.connect(this.#url, { settings: { enablePush: false } });
    // Errors reach the calls through their streams; the session itself must not throw.
    session.on('error', () => undefined);
    session.on('close', () => {
      if (this.#session === session) this.#session = undefined;
    });
    // An idle connection to the service never keeps the proxy alive.
    session.unref();
    this.#session = session;
    return session;
  }

  call(path: string, body: Uint8Array, opts: UnaryCallOptions, done: UnaryDone): { cancel(): void } {
    const timeoutMs = opts.timeoutMs;
    let finished = false;
    const finish = (error: Error | null, message: Buffer | undefined): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (!req.closed) req.close(http2.constants.NGHTTP2_CANCEL);
      done(error, message);
    };
    const req = this.#connect().request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': `${Math.max(1, Math.ceil(timeoutMs))}m`,
      ...opts.metadata,
    });
    const timer = setTimeout(
      () => finish(new Error(`no answer within ${timeoutMs} ms`), undefined),
      timeoutMs,
    );
    const decoder = new GrpcFrameDecoder(MAX_MESSAGE_BYTES);
    let message: Buffer | undefined;
    let status: GrpcCallStatus | null = null;
    const readStatus = (headers: http2.IncomingHttpHeaders): void => {
      status = statusFrom(headers) ?? status;
    };
    req.on('response', (headers) => {
      if (headers[':status'] !== 200) finish(new Error(`HTTP status ${headers[':status']}`), undefined);
      else readStatus(headers);
    });
    req.on('trailers', readStatus);
    req.on('data', (chunk: Buffer) => {
      try {
        for (const m of decoder.push(chunk)) message ??= m;
      } catch (err) {
        finish(err as Error, undefined);
      }
    });
    req.on('error', (err: Error) => finish(err, undefined));
    req.on('close', () => {
      const final = status;
      if (final?.code === GrpcStatus.OK && message !== undefined) finish(null, message);
      else
        finish(
          final === null ? new Error('the call ended without a status') : new GrpcCallError(final),
          undefined,
        );
    });
    req.end(encodeGrpcFrame(body));
    return { cancel: () => finish(new Error('cancelled'), undefined) };
  }

  close(): void {
    this.#session?.close();
    this.#session = undefined;
  }
}
