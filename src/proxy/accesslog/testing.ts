/**
 * Stand-ins for an HTTP stream and a TCP session with exactly the fields access logs read, so formatter
 * and filter tests can set every value. For tests only.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { HttpStream } from '../http/stream.ts';
import type { TcpSession } from '../network/tcp-session.ts';
import type { ConnectionSecurity } from '../tls/connection-security.ts';
import type { Host } from '../upstream/types.ts';

export interface FakeSocket {
  localAddress?: string;
  localPort?: number;
  remoteAddress?: string;
  remotePort?: number;
}

export interface FakeStreamInit {
  method?: string;
  path?: string;
  authority?: string;
  headers?: IncomingHttpHeaders;
  http2?: boolean;
  httpVersion?: string;
  isGrpc?: boolean;
  responseStatus?: number;
  flags?: string;
  clusterName?: string;
  upstreamHost?: Host | null;
  upstreamHeaders?: IncomingHttpHeaders | null;
  upstreamTrailers?: IncomingHttpHeaders | null;
  grpcStatus?: string;
  startTime?: number;
  startMs?: number;
  endMs?: number;
  bytesReceived?: number;
  bytesSent?: number;
  socket?: FakeSocket | null;
  security?: Partial<ConnectionSecurity>;
  routeName?: string | null;
  trace?: object;
  dynamicMetadata?: Record<string, Record<string, unknown>>;
}

export function fakeHost(address: string, port: number): Host {
  return {
    key: `${address}:${port}`,
    address,
    port,
    hostname: undefined,
    weight: 1,
    locality: { region: '', zone: '', subZone: '' },
    priority: 0,
    health: 'HEALTHY',
    activeRequests: 0,
  } as unknown as Host;
}

function security(init: Partial<ConnectionSecurity> | undefined): ConnectionSecurity | undefined {
  if (init === undefined) return undefined;
  return {
    peerPrincipal: undefined,
    peerUriSans: [],
    peerDnsSans: [],
    peerSubject: undefined,
    localPrincipal: undefined,
    sni: '',
    alpn: '',
    tlsVersion: '',
    ...init,
  };
}

export function fakeStream(init: FakeStreamInit = {}): HttpStream {
  const headers = init.headers ?? {};
  const routeName = init.routeName === undefined ? 'r1' : init.routeName;
  const s = {
    method: init.method ?? 'GET',
    path: init.path ?? '/',
    authority: init.authority ?? 'example.com',
    scheme: 'http',
    headers,
    http2: init.http2 ?? false,
    isGrpc: init.isGrpc ?? false,
    req: {
      httpVersion: init.httpVersion ?? '1.1',
      socket:
        init.socket === null
          ? null
          : (init.socket ?? {
              localAddress: '127.0.0.1',
              localPort: 8080,
              remoteAddress: '::ffff:10.0.0.9',
              remotePort: 40000,
            }),
    },
    responseStatus: init.responseStatus ?? 200,
    flags: init.flags ?? '',
    clusterName: init.clusterName ?? '',
    upstreamHost: init.upstreamHost ?? null,
    upstreamHeaders: init.upstreamHeaders ?? null,
    upstreamTrailers: init.upstreamTrailers ?? null,
    grpcStatus: init.grpcStatus,
    startTime: init.startTime ?? Date.UTC(2024, 4, 1, 12, 3, 4, 56),
    startMs: init.startMs ?? 1000,
    endMs: init.endMs ?? 1012.7,
    bytesReceived: init.bytesReceived ?? 0,
    bytesSent: init.bytesSent ?? 0,
    downstreamSecurity: security(init.security),
    trace: init.trace,
    dynamicMetadata: new Map(Object.entries(init.dynamicMetadata ?? {})),
    route: () => (routeName === null ? null : { route: { name: routeName } }),
  };
  return s as unknown as HttpStream;
}

export interface FakeSessionInit {
  flags?: string;
  clusterName?: string;
  upstreamHost?: Host | null;
  startTime?: number;
  startMs?: number;
  endMs?: number;
  bytesReceived?: number;
  bytesSent?: number;
  downstream?: FakeSocket;
  upstream?: FakeSocket | null;
}

export function fakeSession(init: FakeSessionInit = {}): TcpSession {
  const s = {
    downstream: init.downstream ?? {
      localAddress: '127.0.0.1',
      localPort: 9000,
      remoteAddress: '127.0.0.1',
      remotePort: 50000,
    },
    upstream: init.upstream ?? null,
    flags: init.flags ?? '',
    clusterName: init.clusterName ?? 'tcp',
    upstreamHost: init.upstreamHost ?? null,
    startTime: init.startTime ?? Date.UTC(2024, 4, 1, 12, 3, 4, 56),
    startMs: init.startMs ?? 0,
    endMs: init.endMs ?? 250,
    bytesReceived: init.bytesReceived ?? 0,
    bytesSent: init.bytesSent ?? 0,
    downstreamSecurity: undefined,
    observerState: new Map<object, unknown>(),
  };
  return s as unknown as TcpSession;
}
