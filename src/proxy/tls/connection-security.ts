/**
 * What a downstream connection's TLS established, for filters (authorization, metrics' source_principal
 * and connection_security_policy, access logs). Attached to the socket the connection manager serves,
 * under a symbol, because HTTP/2 requests only reach their socket through Node's session proxy, which
 * forwards property reads to the real socket.
 */
import type { Socket } from 'node:net';

export interface ConnectionSecurity {
  /** The peer's first URI SAN when it presented a verified certificate (a SPIFFE ID in the mesh). */
  readonly peerPrincipal: string | undefined;
  readonly peerUriSans: readonly string[];
  readonly peerDnsSans: readonly string[];
  /** Subject of the verified peer certificate, if any. */
  readonly peerSubject: string | undefined;
  /** Our own certificate's first URI SAN. */
  readonly localPrincipal: string | undefined;
  /** The SNI the client asked for ('' when none). */
  readonly sni: string;
  /** Negotiated ALPN protocol, or '' when none. */
  readonly alpn: string;
  /** e.g. 'TLSv1.3'. */
  readonly tlsVersion: string;
}

const SECURITY = Symbol.for('weft.connectionSecurity');

type WithSecurity = { [SECURITY]?: ConnectionSecurity };

export function setConnectionSecurity(socket: Socket, security: ConnectionSecurity): void {
  (socket as unknown as WithSecurity)[SECURITY] = security;
}

/** undefined on a plaintext connection. */
export function connectionSecurityOf(socket: object | null | undefined): ConnectionSecurity | undefined {
  if (socket === null || socket === undefined) return undefined;
  return (socket as WithSecurity)[SECURITY];
}
