/**
 * What a proxy knows about the workload at the other end of a request (Istio's peer metadata): learnt from
 * the control plane's endpoint metadata, the mTLS peer identity, or the metadata header Weft proxies
 * exchange. Every field is optional: what is unknown is reported as `unknown`, as in Istio.
 *
 * Peers are plain frozen objects made once per distinct source (header value, endpoint metadata string,
 * SPIFFE ID) and shared by every request from that peer, so metrics can cache their series per peer object.
 */
export interface PeerMetadata {
  /** The workload (Istio's WORKLOAD_NAME, e.g. the Deployment name). */
  readonly workload?: string;
  readonly namespace?: string;
  /** The workload's labels (app, version, service.istio.io/canonical-name, ...). */
  readonly labels?: Readonly<Record<string, string>>;
  /** Istio's CLUSTER_ID. */
  readonly cluster?: string;
  /** The SPIFFE identity, when known (from the peer certificate or the exchanged metadata). */
  readonly principal?: string;
  /** Istio's SERVICE_ACCOUNT. */
  readonly serviceAccount?: string;
  /** Istio's MESH_ID. */
  readonly meshId?: string;
}

export const CANONICAL_NAME_LABEL = 'service.istio.io/canonical-name';
export const CANONICAL_REVISION_LABEL = 'service.istio.io/canonical-revision';

/** Bounded map with least-recently-used eviction: a hit moves the entry to the end. */
export class LruCache<K, V> {
  private readonly map = new Map<K, V>();
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as K);
  }

  get size(): number {
    return this.map.size;
  }
}

/** Drops empty strings and freezes, so equal inputs give objects with the same shape. */
export function makePeer(fields: {
  workload?: string | undefined;
  namespace?: string | undefined;
  labels?: Readonly<Record<string, string>> | undefined;
  cluster?: string | undefined;
  principal?: string | undefined;
  serviceAccount?: string | undefined;
  meshId?: string | undefined;
}): PeerMetadata {
  const out: { -readonly [K in keyof PeerMetadata]: PeerMetadata[K] } = {};
  if (fields.workload) out.workload = fields.workload;
  if (fields.namespace) out.namespace = fields.namespace;
  if (fields.labels !== undefined) out.labels = Object.freeze({ ...fields.labels });
  if (fields.cluster) out.cluster = fields.cluster;
  if (fields.principal) out.principal = fields.principal;
  if (fields.serviceAccount) out.serviceAccount = fields.serviceAccount;
  if (fields.meshId) out.meshId = fields.meshId;
  return Object.freeze(out);
}

const workloadPeers = new LruCache<string, PeerMetadata | null>(4096);

/**
 * Istio's endpoint metadata `filter_metadata.istio.workload`: "name;namespace;canonical-service;
 * canonical-revision;cluster-id". Istio reports app and version as the canonical service and revision
 * for peers known this way. Undefined for a malformed value.
 */
export function peerFromWorkloadMetadata(value: string): PeerMetadata | undefined {
  let peer = workloadPeers.get(value);
  if (peer === undefined) {
    const parts = value.split(';');
    if (parts.length !== 5) peer = null;
    else {
      const [workload, namespace, service, revision, cluster] = parts;
      const labels: Record<string, string> = {};
      if (service) labels.app = labels[CANONICAL_NAME_LABEL] = service;
      if (revision) labels.version = labels[CANONICAL_REVISION_LABEL] = revision;
      peer = makePeer({ workload, namespace, labels, cluster });
    }
    workloadPeers.set(value, peer);
  }
  return peer ?? undefined;
}

const principalPeers = new LruCache<string, PeerMetadata>(4096);
const SPIFFE_PATH = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/([^/]+)$/;

/** A peer known only by its SPIFFE ID (spiffe://TD/ns/NS/sa/SA gives namespace and service account). */
export function peerFromPrincipal(principal: string): PeerMetadata {
  let peer = principalPeers.get(principal);
  if (peer === undefined) {
    const m = SPIFFE_PATH.exec(principal);
    peer = makePeer({ principal, namespace: m?.[1], serviceAccount: m?.[2] });
    principalPeers.set(principal, peer);
  }
  return peer;
}

/** The same peer with a principal learnt elsewhere (the TLS peer certificate); cached per pair. */
const withPrincipal = new WeakMap<PeerMetadata, Map<string, PeerMetadata>>();
export function peerWithPrincipal(peer: PeerMetadata, principal: string): PeerMetadata {
  if (peer.principal === principal) return peer;
  let byPrincipal = withPrincipal.get(peer);
  if (byPrincipal === undefined) withPrincipal.set(peer, (byPrincipal = new Map<string, PeerMetadata>()));
  let out = byPrincipal.get(principal);
  if (out === undefined) {
    // A peer has few identities: bound the map rather than trust the peer.
    if (byPrincipal.size >= 16) byPrincipal.clear();
    out = makePeer({ ...peer, principal });
    byPrincipal.set(principal, out);
  }
  return out;
}
