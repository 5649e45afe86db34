/**
 * Envoy's access log command operators (%NAME(arg):max%), each compiled once into a pair of readers: one for
 * an HTTP stream, one for a TCP session. A reader returns the value, or null when it is unknown (printed as
 * `-` in text, null in JSON, as Envoy does). Numeric operators return numbers so JSON logs keep them numeric.
 */
import { GRPC_STATUS_NAMES } from '../../core/grpc-status.ts';
import { hostname } from 'node:os';
import type { Socket } from 'node:net';
import { ConfigError } from '../../core/errors.ts';
import type { HttpStream } from '../http/stream.ts';
import { plainIp } from '../http/headers.ts';
import type { TcpSession } from '../network/tcp-session.ts';
import { RequestHeader } from '../router/request-header.ts';
import type { ConnectionSecurity } from '../tls/connection-security.ts';
import type { Host } from '../upstream/types.ts';
import { compileTimeFormat, isoTime } from './time-format.ts';

/** A value read by an operator: null = unknown; objects come from dynamic metadata. */
export type LogValue = string | number | boolean | object | null;

export interface Operator {
  readonly http: (s: HttpStream) => LogValue;
  readonly tcp: (s: TcpSession) => LogValue;
}

/** What HTTP streams and TCP sessions both carry, so most operators read either with one function. */
interface Common {
  readonly startTime: number;
  readonly startMs: number;
  readonly endMs: number;
  readonly bytesReceived: number;
  readonly bytesSent: number;
  readonly flags: string;
  readonly clusterName: string;
  readonly upstreamHost: Host | null;
  readonly downstreamSecurity: ConnectionSecurity | undefined;
}

type Reader = (s: Common) => LogValue;

const NONE = (): LogValue => null;

function both(read: Reader): Operator {
  return { http: read, tcp: read };
}

function httpOnly(read: (s: HttpStream) => LogValue): Operator {
  return { http: read, tcp: NONE };
}

function nonEmpty(v: string | undefined | null): string | null {
  return v === undefined || v === null || v === '' ? null : v;
}

function address(ip: string | undefined, port: number | undefined): string | null {
  const plain = plainIp(ip);
  if (plain === '') return null;
  return plain.includes(':') ? `[${plain}]:${port ?? 0}` : `${plain}:${port ?? 0}`;
}

/** A socket's addresses: a live Socket, or a copy taken while it was open (Node forgets them at close). */
export interface SocketAddresses {
  readonly localAddress?: string;
  readonly localPort?: number;
  readonly remoteAddress?: string;
  readonly remotePort?: number;
}

/** What a TCP access logger copies from a session's sockets while they are open. */
export interface TcpAddresses {
  downstream: SocketAddresses;
  upstreamLocal: string | null;
}

/** The key under which TCP access loggers keep a session's addresses in its observerState. */
export const TCP_ADDRESSES: object = {};

/** Copies the downstream socket's addresses into the session (once, whichever logger comes first). */
export function recordDownstreamAddresses(session: TcpSession): void {
  if (session.observerState.has(TCP_ADDRESSES)) return;
  const d = session.downstream;
  const addrs: TcpAddresses = {
    downstream: {
      localAddress: d.localAddress,
      localPort: d.localPort,
      remoteAddress: d.remoteAddress,
      remotePort: d.remotePort,
    },
    upstreamLocal: null,
  };
  session.observerState.set(TCP_ADDRESSES, addrs);
}

export function recordUpstreamAddress(session: TcpSession): void {
  const addrs = session.observerState.get(TCP_ADDRESSES) as TcpAddresses | undefined;
  const up = session.upstream;
  if (addrs !== undefined && up !== null && addrs.upstreamLocal === null)
    addrs.upstreamLocal = address(up.localAddress, up.localPort);
}

function tcpAddresses(s: TcpSession): TcpAddresses | undefined {
  return s.observerState.get(TCP_ADDRESSES) as TcpAddresses | undefined;
}

function httpSocket(s: HttpStream): Socket | null {
  return s.req.socket ?? null;
}

function durationOf(s: Common): LogValue {
  return s.endMs === 0 ? null : Math.floor(s.endMs - s.startMs);
}

/** Envoy's RESPONSE_CODE_DETAILS, derived from what Weft records (the flag, or an upstream response). */
const DETAILS_BY_FLAG: Readonly<Record<string, string>> = {
  NR: 'route_not_found',
  NC: 'cluster_not_found',
  UH: 'no_healthy_upstream',
  UF: 'upstream_reset_before_response_started{connection_failure}',
  UC: 'upstream_reset_before_response_started{connection_termination}',
  UR: 'upstream_reset_before_response_started{remote_reset}',
  UO: 'upstream_reset_before_response_started{overflow}',
  UPE: 'upstream_reset_before_response_started{protocol_error}',
  UT: 'upstream_response_timeout',
  SI: 'stream_idle_timeout',
  DC: 'downstream_remote_disconnect',
  RL: 'request_rate_limited',
  FI: 'fault_filter_abort',
  DT: 'max_duration_timeout',
  DPE: 'codec_error',
};

function responseCodeDetails(s: HttpStream): LogValue {
  if (s.flags !== '') {
    const first = s.flags.split(',')[0];
    const d = DETAILS_BY_FLAG[first];
    if (d !== undefined) return d;
  }
  return s.upstreamHeaders !== null ? 'via_upstream' : null;
}

const GRPC_CAMEL = [
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
];

function grpcStatusNumber(s: HttpStream): number | null {
  const g = s.grpcStatus;
  if (g === undefined) return null;
  const n = Number(g);
  return Number.isInteger(n) ? n : null;
}

function grpcStatusOperator(arg: string | undefined, path: string): Operator {
  const form = arg ?? 'CAMEL_STRING';
  if (form === 'NUMBER') return httpOnly(grpcStatusNumber);
  const names =
    form === 'CAMEL_STRING' ? GRPC_CAMEL : form === 'SNAKE_STRING' ? GRPC_STATUS_NAMES : undefined;
  if (names === undefined)
    throw new ConfigError(path, `GRPC_STATUS(${form}): expected CAMEL_STRING, SNAKE_STRING or NUMBER`);
  return httpOnly((s) => {
    const n = grpcStatusNumber(s);
    return n === null ? null : (names[n] ?? String(n));
  });
}

/** REQ/RESP/TRAILER argument `X?Y`: the header, and the one read when it is absent. */
function headerNames(arg: string | undefined, op: string, path: string): [string, string | undefined] {
  if (arg === undefined || arg === '') throw new ConfigError(path, `${op} needs a header name: ${op}(name)`);
  const q = arg.indexOf('?');
  const main = (q < 0 ? arg : arg.slice(0, q)).toLowerCase();
  const alt = q < 0 ? undefined : arg.slice(q + 1).toLowerCase();
  if (main === '' || alt === '' || (alt !== undefined && alt.includes('?')))
    throw new ConfigError(path, `${op}(${arg}): expected ${op}(name) or ${op}(name?alternative)`);
  return [main, alt];
}

function requestHeader(name: string): RequestHeader {
  // Envoy keeps an HTTP/1 Host header as :authority.
  return new RequestHeader(name === 'host' ? ':authority' : name);
}

function reqOperator(arg: string | undefined, path: string): Operator {
  const [main, alt] = headerNames(arg, 'REQ', path);
  const h = requestHeader(main);
  const a = alt === undefined ? undefined : requestHeader(alt);
  return httpOnly((s) => {
    const v = h.get(s);
    if (v !== undefined || a === undefined) return v ?? null;
    return a.get(s) ?? null;
  });
}

function headerValue(v: string | string[] | undefined): string | undefined {
  if (v === undefined || typeof v === 'string') return v;
  return v.length === 0 ? undefined : v.join(',');
}

function responseOperator(
  arg: string | undefined,
  op: string,
  path: string,
  headersOf: (s: HttpStream) => Record<string, string | string[] | undefined> | null,
): Operator {
  const [main, alt] = headerNames(arg, op, path);
  return httpOnly((s) => {
    const headers = headersOf(s);
    if (headers === null) return null;
    const v = headerValue(headers[main]);
    if (v !== undefined || alt === undefined) return v ?? null;
    return headerValue(headers[alt]) ?? null;
  });
}

function dynamicMetadataOperator(arg: string | undefined, path: string): Operator {
  if (arg === undefined || arg === '')
    throw new ConfigError(path, 'DYNAMIC_METADATA needs a namespace: DYNAMIC_METADATA(namespace:key)');
  const [ns, ...keys] = arg.split(':');
  return httpOnly((s) => {
    let v: unknown = s.dynamicMetadata.get(ns);
    for (let i = 0; i < keys.length && v !== undefined && v !== null; i++) {
      v = typeof v === 'object' ? (v as Record<string, unknown>)[keys[i]] : undefined;
    }
    return v === undefined ? null : v;
  });
}

function startTimeOperator(arg: string | undefined, path: string): Operator {
  const fmt = arg === undefined || arg === '' ? isoTime : compileTimeFormat(arg, path);
  return both((s) => fmt(s.startTime));
}

function traceId(s: HttpStream): LogValue {
  const t = s.trace as { readonly traceId?: unknown } | undefined;
  return t !== undefined && typeof t.traceId === 'string' && t.traceId !== '' ? t.traceId : null;
}

function protocol(s: HttpStream): string {
  return s.http2 ? 'HTTP/2' : `HTTP/${s.req.httpVersion}`;
}

function routeName(s: HttpStream): LogValue {
  return nonEmpty(s.route()?.route.name);
}

function downstreamRemote(sock: SocketAddresses | null | undefined, withPort: boolean): LogValue {
  if (sock === null || sock === undefined) return null;
  return withPort ? address(sock.remoteAddress, sock.remotePort) : nonEmpty(plainIp(sock.remoteAddress));
}

function downstreamLocal(sock: SocketAddresses | null | undefined, withPort: boolean): LogValue {
  if (sock === null || sock === undefined) return null;
  return withPort ? address(sock.localAddress, sock.localPort) : nonEmpty(plainIp(sock.localAddress));
}

function socketOperator(read: (sock: SocketAddresses | null | undefined) => LogValue): Operator {
  return {
    http: (s) => read(httpSocket(s)),
    tcp: (s) => read(tcpAddresses(s)?.downstream ?? s.downstream),
  };
}

const HOSTNAME = hostname();

/** Operators without an argument. */
const SIMPLE: Readonly<Record<string, Operator>> = {
  PROTOCOL: httpOnly(protocol),
  RESPONSE_CODE: { http: (s) => s.responseStatus, tcp: () => 0 },
  RESPONSE_FLAGS: both((s) => nonEmpty(s.flags)),
  RESPONSE_CODE_DETAILS: httpOnly(responseCodeDetails),
  // Weft does not record why a connection was terminated nor the upstream transport failure's reason.
  CONNECTION_TERMINATION_DETAILS: both(NONE),
  UPSTREAM_TRANSPORT_FAILURE_REASON: both(NONE),
  BYTES_RECEIVED: both((s) => s.bytesReceived),
  BYTES_SENT: both((s) => s.bytesSent),
  DURATION: both(durationOf),
  // Weft does not timestamp the last request byte nor the first response byte.
  REQUEST_DURATION: both(NONE),
  RESPONSE_DURATION: both(NONE),
  RESPONSE_TX_DURATION: both(NONE),
  UPSTREAM_HOST: both((s) => s.upstreamHost?.key ?? null),
  UPSTREAM_REMOTE_ADDRESS: both((s) => s.upstreamHost?.key ?? null),
  UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: both((s) => nonEmpty(s.upstreamHost?.address)),
  UPSTREAM_CLUSTER: both((s) => nonEmpty(s.clusterName)),
  UPSTREAM_CLUSTER_RAW: both((s) => nonEmpty(s.clusterName)),
  // The HTTP upstream connection is pooled and not recorded on the stream; TCP sessions keep theirs.
  UPSTREAM_LOCAL_ADDRESS: {
    http: NONE,
    tcp: (s) =>
      tcpAddresses(s)?.upstreamLocal ??
      (s.upstream === null ? null : address(s.upstream.localAddress, s.upstream.localPort)),
  },
  DOWNSTREAM_LOCAL_ADDRESS: socketOperator((sock) => downstreamLocal(sock, true)),
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: socketOperator((sock) => downstreamLocal(sock, false)),
  DOWNSTREAM_LOCAL_PORT: socketOperator((sock) => sock?.localPort ?? null),
  DOWNSTREAM_REMOTE_ADDRESS: socketOperator((sock) => downstreamRemote(sock, true)),
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: socketOperator((sock) => downstreamRemote(sock, false)),
  DOWNSTREAM_REMOTE_PORT: socketOperator((sock) => sock?.remotePort ?? null),
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS: socketOperator((sock) => downstreamRemote(sock, true)),
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT: socketOperator((sock) => downstreamRemote(sock, false)),
  REQUESTED_SERVER_NAME: both((s) => nonEmpty(s.downstreamSecurity?.sni)),
  DOWNSTREAM_PEER_URI_SAN: both((s) => nonEmpty(s.downstreamSecurity?.peerUriSans.join(','))),
  DOWNSTREAM_PEER_DNS_SAN: both((s) => nonEmpty(s.downstreamSecurity?.peerDnsSans.join(','))),
  DOWNSTREAM_PEER_SUBJECT: both((s) => nonEmpty(s.downstreamSecurity?.peerSubject)),
  DOWNSTREAM_LOCAL_URI_SAN: both((s) => nonEmpty(s.downstreamSecurity?.localPrincipal)),
  DOWNSTREAM_TLS_VERSION: both((s) => nonEmpty(s.downstreamSecurity?.tlsVersion)),
  ROUTE_NAME: httpOnly(routeName),
  HOSTNAME: both(() => HOSTNAME),
  TRACE_ID: httpOnly(traceId),
  GRPC_STATUS_NUMBER: httpOnly(grpcStatusNumber),
};

/** Operators with an argument in parentheses. */
const WITH_ARG: Readonly<Record<string, (arg: string | undefined, path: string) => Operator>> = {
  START_TIME: startTimeOperator,
  REQ: reqOperator,
  RESP: (arg, path) => responseOperator(arg, 'RESP', path, (s) => s.upstreamHeaders),
  TRAILER: (arg, path) => responseOperator(arg, 'TRAILER', path, (s) => s.upstreamTrailers),
  DYNAMIC_METADATA: dynamicMetadataOperator,
  GRPC_STATUS: grpcStatusOperator,
};

/** Compiles one operator; `path` names the format field for errors. */
export function compileOperator(name: string, arg: string | undefined, path: string): Operator {
  const simple = SIMPLE[name];
  if (simple !== undefined && Object.hasOwn(SIMPLE, name)) {
    if (arg !== undefined) throw new ConfigError(path, `%${name}% takes no argument, got (${arg})`);
    return simple;
  }
  if (Object.hasOwn(WITH_ARG, name)) return WITH_ARG[name](arg, path);
  throw new ConfigError(path, `command operator %${name}% is not supported by Weft`);
}
