/**
 * DiscoveryResponse and DeltaDiscoveryResponse written straight to protobuf bytes. A response to a proxy with
 * thousands of clusters is mostly pre-encoded resources; going through the generic codec (wire.ts: JSON →
 * protobufjs objects → bytes) would rebuild an object per resource for every proxy. Here each resource's Any is
 * encoded once and copied into every response that carries it. Tests check the bytes against wire.ts's decoder.
 */
import protobuf from 'protobufjs';
import type { EncodedAny } from '../../api/envoy/wire.ts';
import type { DeltaDiscoveryResponseMessage, DiscoveryResponseMessage } from './service.ts';

const { Writer } = protobuf;

// Tags: field number << 3 | wire type 2 (length-delimited). Field numbers from envoy/service/discovery/v3/discovery.proto.
const tag = (field: number): number => (field << 3) | 2;

const anyBytes = new WeakMap<EncodedAny, Uint8Array>();

/** The encoded google.protobuf.Any message (type_url = 1, value = 2), cached per EncodedAny. */
function encodedAny(any: EncodedAny): Uint8Array {
  let bytes = anyBytes.get(any);
  if (!bytes) {
    bytes = Writer.create().uint32(tag(1)).string(any.typeUrl).uint32(tag(2)).bytes(any.value).finish();
    anyBytes.set(any, bytes);
  }
  return bytes;
}

function controlPlane(w: protobuf.Writer, field: number, identifier: string | undefined): void {
  if (identifier === undefined) return;
  w.uint32(tag(field)).fork().uint32(tag(1)).string(identifier).ldelim();
}

function stringField(w: protobuf.Writer, field: number, value: string): void {
  if (value !== '') w.uint32(tag(field)).string(value);
}

export function encodeDiscoveryResponse(m: DiscoveryResponseMessage): Uint8Array {
  const w = Writer.create();
  stringField(w, 1, m.version_info);
  for (const r of m.resources) w.uint32(tag(2)).bytes(encodedAny(r));
  stringField(w, 4, m.type_url);
  stringField(w, 5, m.nonce);
  controlPlane(w, 6, m.control_plane?.identifier);
  return w.finish();
}

export function encodeDeltaDiscoveryResponse(m: DeltaDiscoveryResponseMessage): Uint8Array {
  const w = Writer.create();
  stringField(w, 1, m.system_version_info);
  for (const r of m.resources) {
    // Resource: version = 1, resource = 2, name = 3.
    w.uint32(tag(2)).fork();
    stringField(w, 1, r.version);
    w.uint32(tag(2)).bytes(encodedAny(r.resource));
    stringField(w, 3, r.name);
    w.ldelim();
  }
  stringField(w, 4, m.type_url);
  stringField(w, 5, m.nonce);
  for (const name of m.removed_resources) w.uint32(tag(6)).string(name);
  controlPlane(w, 7, m.control_plane?.identifier);
  return w.finish();
}
