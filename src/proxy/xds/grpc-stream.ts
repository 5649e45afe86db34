/**
 * One gRPC bidirectional-streaming call over node:http2, enough for ADS: its own HTTP/2 connection, the
 * request headers gRPC requires, length-prefixed messages both ways, and the call's status from the
 * trailers (or a trailers-only response). @grpc/grpc-js would do this too, but a sidecar pays for every
 * module it loads (ARCHITECTURE.md, "Memory"): this is ~200 lines over what Node already has.
 */
import http2 from 'node:http2';
import net from 'node:net';
import { VERSION } from '../../core/version.ts';
import { encodeGrpcFrame, GrpcFrameDecoder } from './grpc-framing.ts';

/** gRPC status codes used here. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  RESOURCE_EXHAUSTED: 8,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

export interface GrpcCallStatus {
  readonly code: number;
  readonly message: string;
}

export interface GrpcStreamHandlers {
  /** The server accepted the call (response headers arrived). */
  onOpen(): void;
  onMessage(message: Buffer): void;
  /** Called exactly once, when the call is over for whatever reason. */
  onClose(status: GrpcCallStatus): void;
}

export interface GrpcStreamOptions {
  readonly host: string;
  readonly port: number;
  readonly authority: string;
  /** `/package.Service/Method`. */
  readonly path: string;
  readonly connectTimeoutMs: number;
  readonly maxMessageBytes: number;
}

export interface GrpcStream {
  send(message: Uint8Array): void;
  /** Ends the call from this side (the status reported is CANCELLED with `reason`). */
  cancel(reason: string): void;
}

const { NGHTTP2_CANCEL } = http2.constants;
const STREAM_WINDOW = 1024 * 1024;
const CONNECTION_WINDOW = 4 * 1024 * 1024;

/** grpc-message is percent-encoded (PROTOCOL-HTTP2.md). */
export function decodeGrpcMessage(value: unknown): string {
  if (typeof value !== 'string') return '';
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** The call's status from response headers or trailers; null when they carry none. */
export function statusFrom(headers: http2.IncomingHttpHeaders): GrpcCallStatus | null {
  const raw = headers['grpc-status'];
  if (raw === undefined) return null;
  const code = Number(raw);
  return {
    code: Number.isInteger(code) ? code : GrpcStatus.UNKNOWN,
    message: decodeGrpcMessage(headers['grpc-message']),
  };
}

export function openGrpcStream(opts: GrpcStreamOptions, handlers: GrpcStreamHandlers): GrpcStream {
  let closed = false;
  let status: GrpcCallStatus | null = null;
  const hostPart = net.isIPv6(opts.host) ? `[${opts.host}]` : opts.host;
  const session = http2.connect(`http://${hostPart}:${opts.port}`, {
    // TCP keepalive notices a control plane that vanished without closing the connection.
    createConnection: () =>
      net.connect({
        host: opts.host,
        port: opts.port,
        noDelay: true,
        keepAlive: true,
        keepAliveInitialDelay: 30_000,
      }),
    // Larger flow-control windows than HTTP/2's 64 KiB: a mesh-wide response is megabytes, and the
    // stream's data is consumed as it arrives.
    settings: { enablePush: false, initialWindowSize: STREAM_WINDOW },
  });
  session.once('connect', () => {
    try {
      session.setLocalWindowSize(CONNECTION_WINDOW);
    } catch {
      /* the default window still works */
    }
  });
  const connectTimer = setTimeout(
    () => finish({ code: GrpcStatus.UNAVAILABLE, message: 'connect timeout' }),
    opts.connectTimeoutMs,
  );
  connectTimer.unref();

  const finish = (final: GrpcCallStatus): void => {
    if (closed) return;
    closed = true;
    clearTimeout(connectTimer);
    if (!req.closed) req.close(NGHTTP2_CANCEL);
    session.close();
    // A session that will not close politely (a stuck peer) must not linger.
    setTimeout(() => session.destroy(), 1000).unref();
    handlers.onClose(final);
  };

  session.on('error', (err: Error) =>
    finish({ code: GrpcStatus.UNAVAILABLE, message: `connection error: ${err.message}` }),
  );
  session.on('close', () => finish(status ?? { code: GrpcStatus.UNAVAILABLE, message: 'connection closed' }));
  session.on('goaway', () => {
    // The call in progress may finish; a new connection will be needed for the next one.
  });

  const req = session.request(
    {
      ':method': 'POST',
      ':path': opts.path,
      ':authority': opts.authority,
      ':scheme': 'http',
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': `weft/${VERSION}`,
    },
    { endStream: false },
  );
  const decoder = new GrpcFrameDecoder(opts.maxMessageBytes);

  req.on('response', (headers) => {
    clearTimeout(connectTimer);
    const httpStatus = Number(headers[':status']);
    const trailersOnly = statusFrom(headers);
    if (trailersOnly !== null) {
      status = trailersOnly;
      return;
    }
    if (httpStatus !== 200) {
      finish({ code: GrpcStatus.UNKNOWN, message: `HTTP status ${httpStatus} from the server` });
      return;
    }
    const type = String(headers['content-type'] ?? '');
    if (!type.startsWith('application/grpc')) {
      finish({ code: GrpcStatus.UNKNOWN, message: `unexpected content-type ${JSON.stringify(type)}` });
      return;
    }
    handlers.onOpen();
  });
  req.on('data', (chunk: Buffer) => {
    if (closed) return;
    let messages: Buffer[];
    try {
      messages = decoder.push(chunk);
    } catch (err) {
      finish({ code: GrpcStatus.INTERNAL, message: (err as Error).message });
      return;
    }
    for (const m of messages) {
      if (closed) return;
      handlers.onMessage(m);
    }
  });
  req.on('trailers', (trailers: http2.IncomingHttpHeaders) => {
    status = statusFrom(trailers) ?? { code: GrpcStatus.UNKNOWN, message: 'trailers without grpc-status' };
  });
  req.on('error', (err: Error) => {
    status ??= { code: GrpcStatus.UNAVAILABLE, message: `stream error: ${err.message}` };
  });
  // The server's END_STREAM (after trailers, or a trailers-only response) ends the call; this side never
  // half-closes, so the stream as a whole would stay open if waited for.
  req.on('aborted', () => {
    status ??= { code: GrpcStatus.UNAVAILABLE, message: 'the connection was lost' };
  });
  req.on('end', () => {
    if (status === null && req.aborted)
      status = { code: GrpcStatus.UNAVAILABLE, message: 'the connection was lost' };
    if (status === null && decoder.pendingBytes > 0)
      status = { code: GrpcStatus.INTERNAL, message: 'the stream ended inside a message' };
    finish(status ?? { code: GrpcStatus.UNKNOWN, message: 'the stream ended without a status' });
  });
  req.on('close', () => {
    if (status === null && decoder.pendingBytes > 0)
      status = { code: GrpcStatus.INTERNAL, message: 'the stream ended inside a message' };
    finish(
      status ?? {
        code: req.rstCode ? GrpcStatus.UNAVAILABLE : GrpcStatus.UNKNOWN,
        message: req.rstCode ? `stream reset (code ${req.rstCode})` : 'the stream ended without a status',
      },
    );
  });

  return {
    send: (message) => {
      if (closed || req.destroyed || req.writableEnded) return;
      req.write(encodeGrpcFrame(message));
    },
    cancel: (reason) => finish({ code: GrpcStatus.CANCELLED, message: reason }),
  };
}
