/**
 * The HTTP filter `istio.metadata_exchange` (Istio's peer metadata filter): learns who is at each end of a
 * request and tells peers who this proxy is.
 * - downstream discovery (server side): the client proxy's `x-envoy-peer-metadata` request headers, which are
 *   then removed so the application never sees them; or the mTLS peer's SPIFFE ID (workload_discovery).
 * - upstream discovery (client side): the server proxy's headers on the response, removed before the
 *   response goes to the client; or the chosen endpoint's Istio workload metadata (workload_discovery).
 * - propagation: our own headers, encoded once, on the upstream request (replacing whatever the application
 *   sent) or on the response.
 * The peers end up on stream.downstreamPeer / stream.upstreamPeer for `istio.stats` and access logs.
 */
import type { NodeInfo } from '../bootstrap/types.ts';
import type { FilterStatus, HttpFilter } from '../http/filter.ts';
import type { HttpStream } from '../http/stream.ts';
import type { OutgoingHeaders } from '../upstream/codec.ts';
import type { MetadataExchangeConfig } from './metadata-exchange-config.ts';
import {
  decodePeerHeader,
  ownPeerHeaders,
  PEER_METADATA_HEADER,
  PEER_METADATA_ID_HEADER,
} from './peer-headers.ts';
import type { OwnPeerHeaders } from './peer-headers.ts';
import { peerFromPrincipal, peerFromWorkloadMetadata, peerWithPrincipal } from './peer-metadata.ts';
import type { PeerMetadata } from './peer-metadata.ts';

export class MetadataExchangeFilter implements HttpFilter {
  readonly name: string;
  private readonly config: MetadataExchangeConfig;
  private readonly own: OwnPeerHeaders;
  private readonly upstreamHeaders: boolean;
  private readonly upstreamWorkload: boolean;
  private readonly downstreamHeaders: boolean;

  constructor(name: string, config: MetadataExchangeConfig, node: NodeInfo | undefined) {
    this.name = name;
    this.config = config;
    this.own = ownPeerHeaders(node);
    this.upstreamHeaders = config.upstreamDiscovery.includes('istio_headers');
    this.upstreamWorkload = config.upstreamDiscovery.includes('workload_discovery');
    this.downstreamHeaders = config.downstreamDiscovery.includes('istio_headers');
  }

  onRequest(stream: HttpStream): FilterStatus {
    const headers = stream.headers;
    const discovery = this.config.downstreamDiscovery;
    if (discovery.length > 0) {
      let peer: PeerMetadata | undefined;
      for (let i = 0; i < discovery.length && peer === undefined; i++) {
        if (discovery[i] === 'istio_headers') {
          const v = headers[PEER_METADATA_HEADER];
          if (typeof v === 'string') peer = decodePeerHeader(v);
        } else {
          const principal = stream.downstreamSecurity?.peerPrincipal;
          if (principal !== undefined) peer = peerFromPrincipal(principal);
        }
      }
      // Deleting only what is there keeps a non-mesh client's header object in its fast shape.
      if (this.downstreamHeaders) {
        if (headers[PEER_METADATA_HEADER] !== undefined) delete headers[PEER_METADATA_HEADER];
        if (headers[PEER_METADATA_ID_HEADER] !== undefined) delete headers[PEER_METADATA_ID_HEADER];
      }
      // The verified certificate is a better source for the principal than what the peer says.
      const principal = peer === undefined ? undefined : stream.downstreamSecurity?.peerPrincipal;
      if (peer !== undefined && principal !== undefined) peer = peerWithPrincipal(peer, principal);
      stream.downstreamPeer = peer;
    }
    if (this.config.upstreamPropagation) {
      headers[PEER_METADATA_HEADER] = this.own.metadata;
      headers[PEER_METADATA_ID_HEADER] = this.own.id;
    }
    return 'continue';
  }

  onResponseHeaders(stream: HttpStream, _status: number, headers: OutgoingHeaders): void {
    if (this.upstreamHeaders) {
      const v = headers[PEER_METADATA_HEADER];
      if (v !== undefined) delete headers[PEER_METADATA_HEADER];
      if (headers[PEER_METADATA_ID_HEADER] !== undefined) delete headers[PEER_METADATA_ID_HEADER];
      this.discoverUpstream(stream, typeof v === 'string' ? v : undefined);
    } else if (this.upstreamWorkload) this.discoverUpstream(stream, undefined);
    if (this.config.downstreamPropagation) {
      headers[PEER_METADATA_HEADER] = this.own.metadata;
      headers[PEER_METADATA_ID_HEADER] = this.own.id;
    }
  }

  /** Responses that never reached onResponseHeaders (local replies, resets) may still know the endpoint. */
  onComplete(stream: HttpStream): void {
    if (stream.upstreamPeer === undefined && this.upstreamWorkload) this.discoverUpstream(stream, undefined);
  }

  private discoverUpstream(stream: HttpStream, header: string | undefined): void {
    const discovery = this.config.upstreamDiscovery;
    let peer: PeerMetadata | undefined;
    for (let i = 0; i < discovery.length && peer === undefined; i++) {
      if (discovery[i] === 'istio_headers') {
        if (header !== undefined) peer = decodePeerHeader(header);
      } else {
        const workload = stream.upstreamHost?.istioWorkload;
        if (workload !== undefined) peer = peerFromWorkloadMetadata(workload);
      }
    }
    stream.upstreamPeer = peer;
  }
}
