/**
 * One proxied TCP connection as telemetry sees it (Envoy's StreamInfo for a tcp_proxy connection): what
 * access logs and the TCP metrics read when it opens, while it runs, and when it closes.
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Host } from '../upstream/types.ts';
import type { PeerMetadata } from '../telemetry/peer-metadata.ts';
import { connectionSecurityOf } from '../tls/connection-security.ts';
import type { ConnectionSecurity } from '../tls/connection-security.ts';

export class TcpSession {
  readonly downstream: Socket;
  readonly startMs = performance.now();
  /** Wall-clock start in epoch ms (%START_TIME%), derived from startMs. */
  get startTime(): number {
    return Math.floor(performance.timeOrigin + this.startMs);
  }
  /** Set when the session ends. */
  endMs = 0;
  /** The cluster picked for this connection ('' when none could be). */
  clusterName = '';
  upstreamHost: Host | null = null;
  upstream: Socket | null = null;
  /** Envoy response flags, comma-separated ('' = none): UF, UH, UO, ... */
  flags = '';
  /** Who is on the other side, when telemetry learnt it. */
  downstreamPeer: PeerMetadata | undefined = undefined;
  upstreamPeer: PeerMetadata | undefined = undefined;
  /**
   * True while istio.metadata_exchange is still reading the other side's frame: the peer is not known yet,
   * so nothing that labels the connection by its peers should report it.
   */
  peerPending = false;
  /** Exchange frame bytes read from / written to the downstream: protocol overhead, not application bytes. */
  frameBytesReceived = 0;
  frameBytesSent = 0;
  /** Per-observer state, keyed by the observer (e.g. the bytes already reported by a periodic flush). */
  readonly observerState = new Map<object, unknown>();

  constructor(downstream: Socket) {
    this.downstream = downstream;
  }

  /** Application bytes read from the downstream so far (Envoy's %BYTES_RECEIVED%). */
  get bytesReceived(): number {
    return this.downstream.bytesRead - this.frameBytesReceived;
  }

  /** Application bytes written to the downstream so far (%BYTES_SENT%). */
  get bytesSent(): number {
    return this.downstream.bytesWritten - this.frameBytesSent;
  }

  get downstreamSecurity(): ConnectionSecurity | undefined {
    return connectionSecurityOf(this.downstream);
  }

  addFlag(flag: string): void {
    this.flags = this.flags === '' ? flag : `${this.flags},${flag}`;
  }
}

/** Something that follows a tcp_proxy's connections: TCP access logs, Istio's TCP metrics. */
export interface TcpSessionObserver {
  onOpen?(session: TcpSession): void;
  /**
   * The upstream connection is established (after the TLS handshake, with mTLS) and, on a connection with
   * istio.metadata_exchange, the peer's frame has been read (or given up on).
   */
  onUpstreamConnected?(session: TcpSession): void;
  /**
   * istio.metadata_exchange has read the other side's frame, or given up on it (only on connections that
   * negotiated the exchange, while peerPending was true); the peers are final.
   */
  onPeersKnown?(session: TcpSession): void;
  /** Both sides are closed; called once. */
  onClose(session: TcpSession): void;
}
