/**
 * How a cluster opens connections to its hosts: plain TCP, or the client side of
 * `envoy.transport_sockets.tls` (UpstreamTlsContext). Every upstream connection maker (HTTP/1.1 and HTTP/2
 * pools, tcp_proxy) connects through here, so TLS, SAN verification, session resumption and the
 * cluster's ssl.* stats apply to all of them alike.
 *
 * A TLS handshake failure is a connect failure (UF, upstream_cx_connect_fail, retry_on connect-failure):
 * errors before the handshake completes are marked so the pools can classify them.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { SecureContext } from 'node:tls';
import type { Socket } from 'node:net';
import type { StatsStore } from '../stats/store.ts';
import { TlsMaterialSource, secureContextOptions } from './material.ts';
import type { TlsMaterial } from './material.ts';
import { parseSubjectAltName, sansMatch } from './san.ts';
import type { SecretManager } from './secrets.ts';
import type { UpstreamTlsConfig } from './tls-context-config.ts';
import { TlsStats } from './tls-stats.ts';

export interface UpstreamHostAddress {
  readonly address: string;
  readonly port: number;
}

export interface UpstreamConnectOptions {
  readonly noDelay?: boolean;
  readonly keepAlive?: boolean;
  readonly keepAliveInitialDelay?: number;
  readonly allowHalfOpen?: boolean;
  /** The ALPN the connection's protocol offers when the TLS context configures none (e.g. ['h2']). */
  readonly alpn?: readonly string[];
}

export interface UpstreamConnection {
  readonly socket: Socket;
  /** The event after which the connection is usable: 'connect' (TCP) or 'secureConnect' (TLS). */
  readonly readyEvent: 'connect' | 'secureConnect';
  readonly secure: boolean;
}

const CONNECT_FAILURE = Symbol('weft.transportConnectFailure');

/** True for an error that happened before the transport was established (a TLS handshake failure). */
export function isTransportConnectFailure(err: unknown): boolean {
  return (
    typeof err === 'object' &&
    err !== null &&
    (err as { [CONNECT_FAILURE]?: boolean })[CONNECT_FAILURE] === true
  );
}

function markConnectFailure(err: Error): Error {
  (err as unknown as { [CONNECT_FAILURE]: boolean })[CONNECT_FAILURE] = true;
  return err;
}

/** Certificate verification errors from OpenSSL/Node, as opposed to transport errors. */
const VERIFY_ERROR = /CERT|UNABLE_TO_|SELF_SIGNED|ERR_TLS_CERT_ALTNAME/;

export class UpstreamTransport {
  /** Plain TCP (no transport_socket, or raw_buffer). */
  static readonly plaintext = new UpstreamTransport(undefined, undefined, undefined);

  readonly tls: UpstreamTlsConfig | undefined;
  private readonly stats: TlsStats | undefined;
  private readonly material: TlsMaterialSource | undefined;
  private context: { material: TlsMaterial; secureContext: SecureContext } | undefined;
  /** The last session per host (`address:port`), offered on the next connection to it. */
  private readonly sessions = new Map<string, Buffer>();

  constructor(
    config: UpstreamTlsConfig | undefined,
    secrets: SecretManager | undefined,
    stats: { readonly store: StatsStore; readonly clusterName: string } | undefined,
  ) {
    this.tls = config;
    if (config === undefined || secrets === undefined) return;
    this.stats = stats === undefined ? undefined : new TlsStats(stats.store, `cluster.${stats.clusterName}.`);
    this.material = new TlsMaterialSource(config, secrets);
  }

  /** Opens a connection to `host`; listen for `readyEvent` before using it. */
  connect(host: UpstreamHostAddress, opts: UpstreamConnectOptions = {}): UpstreamConnection {
    const tcp = {
      host: host.address,
      port: host.port,
      noDelay: opts.noDelay ?? true,
      keepAlive: opts.keepAlive ?? false,
      keepAliveInitialDelay: opts.keepAliveInitialDelay,
      allowHalfOpen: opts.allowHalfOpen ?? false,
    };
    const config = this.tls;
    if (config === undefined) return { socket: net.connect(tcp), readyEvent: 'connect', secure: false };
    const secureContext = this.secureContext();
    if (secureContext === undefined) {
      // A secret has not arrived: the connection fails as a connect failure would.
      this.stats?.secretNotReady.inc();
      this.stats?.connectionError.inc();
      const s = new net.Socket();
      process.nextTick(() =>
        s.destroy(markConnectFailure(new Error('upstream TLS secret not available yet'))),
      );
      return { socket: s, readyEvent: 'secureConnect', secure: true };
    }
    const key = `${host.address}:${host.port}`;
    const alpn = config.alpnProtocols.length > 0 ? config.alpnProtocols : (opts.alpn ?? []);
    const matchers = config.validation?.sanMatchers ?? [];
    const session = config.maxSessionKeys > 0 ? this.sessions.get(key) : undefined;
    const socket = tls.connect({
      ...tcp,
      secureContext,
      // Without a validation context the peer is not verified (as in Envoy); with one, its chain must verify.
      rejectUnauthorized: config.validation !== undefined,
      // An IP address is never sent as SNI.
      ...(config.sni !== '' && net.isIP(config.sni) === 0 ? { servername: config.sni } : {}),
      ...(alpn.length > 0 ? { ALPNProtocols: [...alpn] } : {}),
      ...(session !== undefined ? { session } : {}),
      // Envoy verifies upstream identity by SAN matchers, never by the host name.
      checkServerIdentity: (_name, cert) => {
        if (sansMatch(parseSubjectAltName(cert.subjectaltname), matchers)) return undefined;
        this.stats?.failVerifySan.inc();
        return Object.assign(new Error('upstream certificate SAN does not match'), {
          code: 'ERR_TLS_CERT_ALTNAME_INVALID',
        });
      },
    });
    let established = false;
    // Registered first, so the mark is on the error before any pool sees it.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (established) return;
      markConnectFailure(err);
      if (VERIFY_ERROR.test(err.code ?? '') && err.code !== 'ERR_TLS_CERT_ALTNAME_INVALID')
        this.stats?.failVerifyError.inc();
      this.stats?.connectionError.inc();
    });
    socket.once('secureConnect', () => {
      established = true;
      this.stats?.handshake.inc();
      if (socket.isSessionReused()) this.stats?.sessionReused.inc();
    });
    if (config.maxSessionKeys > 0) {
      socket.on('session', (s: Buffer) => {
        this.sessions.delete(key);
        this.sessions.set(key, s);
      });
    }
    return { socket, readyEvent: 'secureConnect', secure: true };
  }

  /** The context for the current secrets, built once per version; undefined while a secret is missing. */
  private secureContext(): SecureContext | undefined {
    const m = this.material?.current();
    if (m === undefined || this.tls === undefined) return undefined;
    if (this.context?.material.version !== m.version) {
      // Sessions of the previous certificates are not offered with the new ones.
      if (this.context !== undefined) this.sessions.clear();
      try {
        this.context = {
          material: m,
          secureContext: tls.createSecureContext(secureContextOptions(this.tls, m)),
        };
      } catch {
        return undefined;
      }
    }
    return this.context.secureContext;
  }

  /** The cluster went away: stop watching its secrets. */
  release(): void {
    this.material?.release();
    this.sessions.clear();
  }
}
