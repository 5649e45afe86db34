/**
 * Istio's peer metadata headers: `x-envoy-peer-metadata` (base64 of a protobuf google.protobuf.Struct
 * holding the sender's node metadata, Istio's keys) and `x-envoy-peer-metadata-id` (the sender's node id).
 * Our own value is encoded once per node; a received value is decoded once per distinct header string
 * (LRU-bounded), so a repeated peer costs a Map lookup. A header that does not decode is treated as
 * absent: it comes from the network and must never fail a request.
 */
import type { Json } from '../../core/json.ts';
import type { NodeInfo } from '../bootstrap/types.ts';
import { LruCache, makePeer } from './peer-metadata.ts';
import type { PeerMetadata } from './peer-metadata.ts';
import { decodeStruct, encodeStruct } from './proto-struct.ts';
import type { StructValue } from './proto-struct.ts';

export const PEER_METADATA_HEADER = 'x-envoy-peer-metadata';
export const PEER_METADATA_ID_HEADER = 'x-envoy-peer-metadata-id';

/** The node metadata keys Istio puts in the exchanged Struct. */
export const EXCHANGED_KEYS: readonly string[] = [
  'NAME',
  'NAMESPACE',
  'LABELS',
  'CLUSTER_ID',
  'WORKLOAD_NAME',
  'OWNER',
  'PLATFORM_METADATA',
  'APP_CONTAINERS',
  'INSTANCE_IPS',
  'MESH_ID',
  'SERVICE_ACCOUNT',
];

/** Larger values are refused undecoded (Istio's are a few hundred bytes). */
const MAX_HEADER_LENGTH = 16 * 1024;

export interface OwnPeerHeaders {
  readonly metadata: string;
  readonly id: string;
}

const ownHeaders = new WeakMap<NodeInfo, OwnPeerHeaders>();

/** This proxy's header values, encoded once per node. */
export function ownPeerHeaders(node: NodeInfo | undefined): OwnPeerHeaders {
  if (node === undefined) return { metadata: encodeStruct({}).toString('base64'), id: '' };
  let h = ownHeaders.get(node);
  if (h === undefined) {
    h = { metadata: encodeStruct(exchangedFields(node.metadata)).toString('base64'), id: node.id };
    ownHeaders.set(node, h);
  }
  return h;
}

function exchangedFields(metadata: Json): Record<string, StructValue> {
  const out: Record<string, StructValue> = {};
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) return out;
  for (const key of EXCHANGED_KEYS) {
    const v = metadata[key];
    if (v !== undefined) out[key] = v;
  }
  return out;
}

/** What Istio's peer metadata Struct (or a node's metadata) says about a workload. */
export function peerFromNodeMetadata(metadata: Json | Readonly<Record<string, StructValue>>): PeerMetadata {
  const m = (metadata ?? {}) as Readonly<Record<string, unknown>>;
  const str = (k: string): string | undefined => (typeof m[k] === 'string' ? m[k] : undefined);
  let labels: Record<string, string> | undefined;
  const rawLabels = m.LABELS;
  if (rawLabels !== null && typeof rawLabels === 'object' && !Array.isArray(rawLabels)) {
    labels = {};
    for (const [k, v] of Object.entries(rawLabels)) if (typeof v === 'string') labels[k] = v;
  }
  return makePeer({
    workload: str('WORKLOAD_NAME'),
    namespace: str('NAMESPACE'),
    labels,
    cluster: str('CLUSTER_ID'),
    serviceAccount: str('SERVICE_ACCOUNT'),
    meshId: str('MESH_ID'),
  });
}

const decoded = new LruCache<string, PeerMetadata | null>(1024);

/** The peer an `x-envoy-peer-metadata` value describes; undefined when it is malformed. */
export function decodePeerHeader(value: string): PeerMetadata | undefined {
  let peer = decoded.get(value);
  if (peer === undefined) {
    peer = decodeUncached(value);
    decoded.set(value, peer);
  }
  return peer ?? undefined;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeUncached(value: string): PeerMetadata | null {
  if (value.length === 0 || value.length > MAX_HEADER_LENGTH || !BASE64.test(value)) return null;
  try {
    return peerFromNodeMetadata(decodeStruct(Buffer.from(value, 'base64')));
  } catch {
    return null;
  }
}
