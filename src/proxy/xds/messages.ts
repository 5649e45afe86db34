/**
 * ADS messages at the proxy's boundary. Requests are built as canonical JSON and encoded by the shared
 * wire codec. Responses are decoded in two steps: the envelope (version, nonce, type URL, resources left as
 * raw Any bytes), then each resource on its own, so one undecodable resource becomes a NACK that names it
 * instead of a response that cannot even be acknowledged.
 */
import type protobuf from 'protobufjs';
import { findMessageType, typeNameOfUrl } from '../../api/envoy/descriptor.ts';
import { decodeAny, encodeMessage, WireError } from '../../api/envoy/wire.ts';
import type { JsonObject } from '../../core/json.ts';
import { TYPE_URL } from './type-urls.ts';

const RESOURCE_WRAPPER = 'envoy.service.discovery.v3.Resource';

/** An Any as it came off the wire. */
export interface RawResource {
  readonly typeUrl: string;
  readonly value: Uint8Array;
}

export interface SotwResponse {
  readonly versionInfo: string;
  readonly nonce: string;
  readonly typeUrl: string;
  readonly resources: readonly RawResource[];
}

export interface DeltaResource {
  readonly name: string;
  readonly version: string;
  /** null when the server sent only the name (which Weft does not ask for). */
  readonly resource: RawResource | null;
  /** Resource TTLs (heartbeats) are not implemented; a resource with one is refused. */
  readonly hasTtl: boolean;
}

export interface DeltaResponse {
  readonly systemVersionInfo: string;
  readonly nonce: string;
  readonly typeUrl: string;
  readonly resources: readonly DeltaResource[];
  readonly removed: readonly string[];
}

export interface ErrorDetail {
  readonly code: number;
  readonly message: string;
}

export interface SotwRequest {
  readonly node?: JsonObject;
  readonly versionInfo: string;
  readonly resourceNames: readonly string[];
  readonly typeUrl: string;
  readonly responseNonce: string;
  readonly errorDetail?: ErrorDetail;
}

export interface DeltaRequest {
  readonly node?: JsonObject;
  readonly typeUrl: string;
  readonly subscribe: readonly string[];
  readonly unsubscribe: readonly string[];
  readonly initialResourceVersions?: Readonly<Record<string, string>>;
  readonly responseNonce: string;
  readonly errorDetail?: ErrorDetail;
}

function envelopeType(name: string): protobuf.Type {
  const type = findMessageType(name);
  if (!type) throw new Error(`the Envoy descriptor lacks ${name}`);
  return type;
}

function decodeEnvelope<T>(name: string, bytes: Uint8Array): T {
  try {
    return envelopeType(name).decode(bytes) as unknown as T;
  } catch (err) {
    throw new WireError('', `malformed ${name}: ${(err as Error).message}`);
  }
}

interface AnyMessage {
  type_url?: string;
  value?: Uint8Array;
}

function raw(any: AnyMessage | null | undefined): RawResource | null {
  if (!any) return null;
  return { typeUrl: any.type_url ?? '', value: any.value ?? new Uint8Array(0) };
}

export function decodeSotwResponse(bytes: Uint8Array): SotwResponse {
  const m = decodeEnvelope<{
    version_info?: string;
    resources?: AnyMessage[];
    type_url?: string;
    nonce?: string;
  }>('envoy.service.discovery.v3.DiscoveryResponse', bytes);
  return {
    versionInfo: m.version_info ?? '',
    nonce: m.nonce ?? '',
    typeUrl: m.type_url ?? '',
    resources: (m.resources ?? []).map((a) => raw(a) ?? { typeUrl: '', value: new Uint8Array(0) }),
  };
}

export function decodeDeltaResponse(bytes: Uint8Array): DeltaResponse {
  const m = decodeEnvelope<{
    system_version_info?: string;
    resources?: { name?: string; version?: string; resource?: AnyMessage | null; ttl?: unknown }[];
    type_url?: string;
    removed_resources?: string[];
    nonce?: string;
  }>('envoy.service.discovery.v3.DeltaDiscoveryResponse', bytes);
  return {
    systemVersionInfo: m.system_version_info ?? '',
    nonce: m.nonce ?? '',
    typeUrl: m.type_url ?? '',
    resources: (m.resources ?? []).map((r) => ({
      name: r.name ?? '',
      version: r.version ?? '',
      resource: raw(r.resource),
      hasTtl: r.ttl !== undefined && r.ttl !== null,
    })),
    removed: m.removed_resources ?? [],
  };
}

/**
 * A resource's canonical JSON (with "@type"), checked to be of `typeUrl`. A state-of-the-world response may
 * wrap resources in envoy.service.discovery.v3.Resource; the wrapper is removed.
 */
export function decodeResource(resource: RawResource, typeUrl: string): JsonObject {
  let any = resource;
  if (typeNameOfUrl(any.typeUrl) === RESOURCE_WRAPPER) {
    const wrapper = decodeEnvelope<{ resource?: AnyMessage | null; ttl?: unknown }>(
      RESOURCE_WRAPPER,
      any.value,
    );
    if (wrapper.ttl !== undefined && wrapper.ttl !== null)
      throw new WireError('', 'resource TTLs are not supported by Weft');
    const inner = raw(wrapper.resource);
    if (inner === null) throw new WireError('', 'a Resource wrapper without a resource');
    any = inner;
  }
  if (typeNameOfUrl(any.typeUrl) !== typeNameOfUrl(typeUrl))
    throw new WireError('', `a ${any.typeUrl} resource in a ${typeUrl} response`);
  return decodeAny(any.typeUrl, any.value);
}

/** The name a state-of-the-world resource goes by (ClusterLoadAssignment's is its cluster_name). */
export function resourceName(typeUrl: string, json: JsonObject): string {
  const key = typeUrl === TYPE_URL.endpoint ? 'cluster_name' : 'name';
  const name = json[key];
  return typeof name === 'string' ? name : '';
}

const withNode = (node: JsonObject | undefined): JsonObject => (node ? { node } : {});

export function encodeSotwRequest(r: SotwRequest): Uint8Array {
  return encodeMessage('envoy.service.discovery.v3.DiscoveryRequest', {
    ...withNode(r.node),
    version_info: r.versionInfo,
    resource_names: [...r.resourceNames],
    type_url: r.typeUrl,
    response_nonce: r.responseNonce,
    ...(r.errorDetail ? { error_detail: { code: r.errorDetail.code, message: r.errorDetail.message } } : {}),
  });
}

export function encodeDeltaRequest(r: DeltaRequest): Uint8Array {
  return encodeMessage('envoy.service.discovery.v3.DeltaDiscoveryRequest', {
    ...withNode(r.node),
    type_url: r.typeUrl,
    resource_names_subscribe: [...r.subscribe],
    resource_names_unsubscribe: [...r.unsubscribe],
    ...(r.initialResourceVersions ? { initial_resource_versions: { ...r.initialResourceVersions } } : {}),
    response_nonce: r.responseNonce,
    ...(r.errorDetail ? { error_detail: { code: r.errorDetail.code, message: r.errorDetail.message } } : {}),
  });
}
