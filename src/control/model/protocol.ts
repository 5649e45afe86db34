/**
 * Protocol selection as Istio does it: an explicit protocol, then the port name's prefix (`http-web`, `grpc`,
 * `tcp-db`, ...), else unspecified (sniffed on the inbound side).
 */
import type { Protocol } from './types.ts';

const KNOWN: ReadonlyMap<string, Protocol> = new Map([
  ['http', 'HTTP'],
  ['http2', 'HTTP2'],
  ['grpc', 'GRPC'],
  ['grpc-web', 'GRPC-WEB'],
  ['https', 'HTTPS'],
  ['tls', 'TLS'],
  ['tcp', 'TCP'],
  ['mongo', 'MONGO'],
  ['redis', 'REDIS'],
  ['mysql', 'MYSQL'],
  ['udp', 'UDP'],
  // Kubernetes appProtocol spellings Istio accepts.
  ['kubernetes.io/h2c', 'HTTP2'],
  ['kubernetes.io/ws', 'HTTP'],
  ['kubernetes.io/wss', 'HTTPS'],
]);

export function protocolOf(port: { protocol?: string; name?: string; appProtocol?: string }): Protocol {
  for (const explicit of [port.appProtocol, port.protocol]) {
    if (explicit) return KNOWN.get(explicit.toLowerCase()) ?? 'UNSPECIFIED';
  }
  const name = (port.name ?? '').toLowerCase();
  if (KNOWN.has(name)) return KNOWN.get(name)!;
  // `grpc-web-x` must win over `grpc-`.
  if (name.startsWith('grpc-web-')) return 'GRPC-WEB';
  const dash = name.indexOf('-');
  if (dash > 0) return KNOWN.get(name.slice(0, dash)) ?? 'UNSPECIFIED';
  return 'UNSPECIFIED';
}

/** Ports the HTTP connection manager serves. */
export function isHttp(protocol: Protocol): boolean {
  return protocol === 'HTTP' || protocol === 'HTTP2' || protocol === 'GRPC' || protocol === 'GRPC-WEB';
}

/** Upstream HTTP/2 (gRPC and declared HTTP/2). */
export function isHttp2(protocol: Protocol): boolean {
  return protocol === 'HTTP2' || protocol === 'GRPC';
}
