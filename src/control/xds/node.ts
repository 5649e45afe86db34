/**
 * How an xDS client identifies itself, read the way Istio reads it: `node.id` is
 * `TYPE~IP~NAME.NAMESPACE~DNS-DOMAIN` (TYPE `sidecar` or `router`), and `node.metadata` carries Istio's keys.
 * A client whose id does not follow that form (a proxyless gRPC client picks any id it likes) is a `grpc` node.
 */
import net from 'node:net';
import { isObject } from '../../core/json.ts';
import type { JsonObject } from '../../core/json.ts';
import type { ProxyNode } from './types.ts';

/** A node the server cannot accept; the stream ends with INVALID_ARGUMENT and this message. */
export class NodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NodeError';
  }
}

interface IstioId {
  type: 'sidecar' | 'router';
  ip: string;
  name: string;
  namespace: string;
  dnsDomain: string;
}

/** The parts of an Istio-form id, or null when the id is not in that form. */
export function parseIstioNodeId(id: string): IstioId | null {
  const parts = id.split('~');
  if (parts.length !== 4) return null;
  const [type, ip, nameDotNamespace, dnsDomain] = parts;
  if (type !== 'sidecar' && type !== 'router') return null;
  if (ip !== '' && net.isIP(ip) === 0) return null;
  if (nameDotNamespace === '') return null;
  const dot = nameDotNamespace.indexOf('.');
  return {
    type,
    ip,
    name: dot < 0 ? nameDotNamespace : nameDotNamespace.slice(0, dot),
    namespace: dot < 0 ? '' : nameDotNamespace.slice(dot + 1),
    dnsDomain,
  };
}

function metadataString(metadata: JsonObject, key: string): string | undefined {
  const v = metadata[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new NodeError(`node.metadata.${key}: expected a string`);
  return v;
}

function metadataLabels(metadata: JsonObject): Record<string, string> {
  const v = metadata.LABELS;
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw new NodeError('node.metadata.LABELS: expected an object of strings');
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(v)) {
    if (typeof value !== 'string') throw new NodeError(`node.metadata.LABELS.${key}: expected a string`);
    labels[key] = value;
  }
  return labels;
}

function stringField(node: JsonObject, path: string, key: string): string {
  const v = node[key];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new NodeError(`${path}.${key}: expected a string`);
  return v;
}

/** Reads the decoded `node` of a DiscoveryRequest (canonical JSON, metadata already plain JSON) into a ProxyNode. */
export function parseProxyNode(node: unknown): ProxyNode {
  if (!isObject(node)) throw new NodeError('the first request on a stream must carry node');
  const id = stringField(node, 'node', 'id');
  if (id === '') throw new NodeError('node.id is empty');
  const metadataJson = node.metadata ?? {};
  if (!isObject(metadataJson)) throw new NodeError('node.metadata: expected an object');
  const metadata = metadataJson;
  const localityJson = node.locality ?? {};
  if (!isObject(localityJson)) throw new NodeError('node.locality: expected an object');

  const istio = parseIstioNodeId(id);
  const generator = metadataString(metadata, 'GENERATOR');
  const type = istio === null || generator === 'grpc' ? 'grpc' : istio.type;
  const name = metadataString(metadata, 'NAME') ?? istio?.name ?? id;
  const namespace = metadataString(metadata, 'NAMESPACE') || istio?.namespace || 'default';
  const instanceIps = metadataString(metadata, 'INSTANCE_IPS');
  const ipAddresses =
    instanceIps !== undefined
      ? instanceIps
          .split(',')
          .map((ip) => ip.trim())
          .filter((ip) => ip !== '')
      : istio && istio.ip !== ''
        ? [istio.ip]
        : [];
  for (const ip of ipAddresses) {
    if (net.isIP(ip) === 0)
      throw new NodeError(`node.metadata.INSTANCE_IPS: ${JSON.stringify(ip)} is not an IP address`);
  }
  return {
    id,
    type,
    name,
    namespace,
    dnsDomain: istio?.dnsDomain || `${namespace}.svc.cluster.local`,
    ipAddresses,
    labels: metadataLabels(metadata),
    serviceAccount: metadataString(metadata, 'SERVICE_ACCOUNT') ?? '',
    // Istio falls back to the pod's name when the workload (deployment) is not named.
    workloadName: metadataString(metadata, 'WORKLOAD_NAME') ?? name,
    locality: {
      region: stringField(localityJson, 'node.locality', 'region'),
      zone: stringField(localityJson, 'node.locality', 'zone'),
      subZone: stringField(localityJson, 'node.locality', 'sub_zone'),
    },
    cluster: stringField(node, 'node', 'cluster'),
    metadata,
  };
}
