/**
 * The server side of `envoy.transport_sockets.tls` for one filter chain: terminates TLS on accepted
 * connections, verifies client certificates (trusted roots, then SAN matchers), records what the handshake
 * established on the TLS socket, and hands it to the chain's network filter.
 *
 * A tls.Server that never listens does the handshakes (connections are given to it as 'connection' events),
 * so Node's own client-certificate verification and error reporting apply. Its secure context is rebuilt
 * once per secret version: new connections get a rotated certificate, existing ones keep theirs.
 */
import tls from 'node:tls';
import type { TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { setConnectionSecurity } from './connection-security.ts';
import { TlsMaterialSource, secureContextOptions } from './material.ts';
import type { TlsMaterial } from './material.ts';
import { rfc2253Subject, sansMatch, sansOf } from './san.ts';
import type { SecretManager } from './secrets.ts';
import type { DownstreamTlsConfig } from './tls-context-config.ts';
import type { TlsStats } from './tls-stats.ts';
import { setPeerCertificateDetails } from './xfcc.ts';

export class DownstreamTls {
  private readonly config: DownstreamTlsConfig;
  private readonly stats: TlsStats;
  private readonly server: tls.Server;
  private readonly material: TlsMaterialSource;
  private readonly onSecure: (socket: TLSSocket) => void;
  /** The material the server's context was built from; undefined until every secret has arrived. */
  private applied: TlsMaterial | undefined;

  constructor(
    config: DownstreamTlsConfig,
    secrets: SecretManager,
    stats: TlsStats,
    onSecure: (socket: TLSSocket) => void,
  ) {
    this.config = config;
    this.stats = stats;
    this.onSecure = onSecure;
    const requestCert = config.validation !== undefined;
    this.server = tls.createServer({
      requestCert,
      // Verification results are checked after the handshake (secureConnection) so each failure is counted.
      rejectUnauthorized: false,
      ...(config.alpnProtocols.length > 0 ? { ALPNProtocols: [...config.alpnProtocols] } : {}),
      ...(config.sessionTimeoutSeconds !== undefined ? { sessionTimeout: config.sessionTimeoutSeconds } : {}),
    });
    this.server.on('secureConnection', (s: TLSSocket) => this.onHandshake(s));
    this.server.on('tlsClientError', (err: NodeJS.ErrnoException, s: TLSSocket) => {
      if (
        /NO_CERTIFICATE|DID_NOT_RETURN_A_CERTIFICATE|CERTIFICATE_REQUIRED/i.test(`${err.code} ${err.message}`)
      )
        this.stats.failVerifyNoCert.inc();
      this.stats.connectionError.inc();
      s.destroy();
    });
    this.material = new TlsMaterialSource(config, secrets, () => this.refresh());
    this.refresh();
  }

  /** Whether connections can be served (every secret has arrived). */
  get ready(): boolean {
    return this.applied !== undefined;
  }

  /** Starts the handshake on an accepted (possibly already inspected) connection. */
  accept(socket: Socket): void {
    if (this.applied === undefined) {
      this.stats.secretNotReady.inc();
      this.stats.connectionError.inc();
      socket.destroy();
      return;
    }
    this.server.emit('connection', socket);
  }

  private refresh(): void {
    const m = this.material.current();
    if (m === undefined) {
      // A removed secret: refuse new connections until it is back (existing ones go on).
      this.applied = undefined;
      return;
    }
    if (this.applied !== undefined && this.applied.version === m.version) return;
    try {
      this.server.setSecureContext(secureContextOptions(this.config, m));
      this.applied = m;
    } catch {
      // An unusable certificate or key (e.g. a mismatched pair from SDS): keep serving with the previous one.
      this.stats.connectionError.inc();
    }
  }

  private onHandshake(socket: TLSSocket): void {
    const cfg = this.config;
    const peer = socket.getPeerX509Certificate();
    if (cfg.validation !== undefined) {
      if (peer === undefined) {
        if (cfg.requireClientCertificate) return this.refuse(socket, this.stats.failVerifyNoCert);
        this.stats.noCertificate.inc();
      } else if (!socket.authorized) {
        return this.refuse(socket, this.stats.failVerifyError);
      }
    } else if (peer === undefined) this.stats.noCertificate.inc();
    const sans = sansOf(peer);
    if (peer !== undefined && cfg.validation !== undefined && !sansMatch(sans, cfg.validation.sanMatchers))
      return this.refuse(socket, this.stats.failVerifySan);
    this.stats.handshake.inc();
    const local = this.applied;
    // Only a verified certificate names the peer.
    const verified = peer !== undefined && cfg.validation !== undefined;
    setConnectionSecurity(socket, {
      peerPrincipal: verified ? sans.uri[0] : undefined,
      peerUriSans: verified ? sans.uri : [],
      peerDnsSans: verified ? sans.dns : [],
      peerSubject: verified ? rfc2253Subject(peer) : undefined,
      localPrincipal: local?.localPrincipal,
      sni: typeof socket.servername === 'string' ? socket.servername : '',
      alpn: typeof socket.alpnProtocol === 'string' ? socket.alpnProtocol : '',
      tlsVersion: socket.getProtocol() ?? '',
    });
    if (peer !== undefined) setPeerCertificateDetails(socket, peer, local?.localUriSans ?? []);
    this.onSecure(socket);
  }

  private refuse(socket: TLSSocket, counter: { inc(): void }): void {
    counter.inc();
    this.stats.connectionError.inc();
    socket.destroy();
  }

  /** The listener chain went away: stop watching its secrets. */
  release(): void {
    this.material.release();
  }
}
