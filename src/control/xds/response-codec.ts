/**
 * DiscoveryResponse and DeltaDiscoveryResponse written straight to protobuf bytes. A response to a proxy with
 * thousands of clusters is mostly pre-encoded resources; going through the generic codec (wire.ts: JSON →
 * protobufjs objects → bytes) would rebuild an object per resource for every proxy. Here each resource's Any is
 * encoded once and copied into every response that carries it. Tests check the bytes against wire.ts's decoder.
 */
import protobuf from 'protobufjs';
import type { EncodedAny } from '../../api/envoy/wire.ts';
import type { EncodedSet } from './resources.ts';
import type { DeltaDiscoveryResponseMessage, DiscoveryResponseMessage } from './service.ts';

const { Writer } = protobuf;

/**
 * A response as the byte blocks it is made of, the large one shared between proxies. grpc-js frames every
 * message into a buffer of its own (5-byte prefix, then `copy` of the serialized message); handing it the blocks
 * makes that copy the only one. Concatenating first allocated each proxy's response twice: during a connect
 * storm (1,000 proxies, first responses of ~6 MB) those copies were most of the control plane's array buffers.
 */
export class ResponseBytes {
  readonly byteLength: number;
  readonly #pieces: readonly Uint8Array[];

  constructor(pieces: readonly Uint8Array[]) {
    this.#pieces = pieces;
    let n = 0;
    for (const p of pieces) n += p.length;
    this.byteLength = n;
  }

  /** Buffer.prototype.copy's contract (the whole source), which is all grpc-js does with a serialized message. */
  copy(target: Uint8Array, targetStart = 0): number {
    let at = targetStart;
    for (const p of this.#pieces) {
      target.set(p, at);
      at += p.length;
    }
    return at - targetStart;
  }

  /** One buffer with all the bytes (tests, tools). */
  concat(): Buffer {
    return Buffer.concat(this.#pieces, this.byteLength);
  }
}

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

/** The resources field (2) of a response carrying all of `set`, encoded once per set and kept on it. */
function encodedResources(set: EncodedSet): Uint8Array {
  if (!set.wire) {
    const w = Writer.create();
    for (const r of set.resources.values()) w.uint32(tag(2)).bytes(encodedAny(r.any));
    set.wire = w.finish();
  }
  return set.wire;
}

export function encodeDiscoveryResponse(m: DiscoveryResponseMessage): Uint8Array {
  return discoveryResponseBytes(m).concat();
}

export function discoveryResponseBytes(m: DiscoveryResponseMessage): ResponseBytes {
  if (m.encodedSet) {
    // A response with a whole shared set (every proxy's first clusters and endpoints, say): the resources are
    // copied as one block instead of being written one by one for each proxy.
    const head = Writer.create();
    stringField(head, 1, m.version_info);
    const tail = Writer.create();
    stringField(tail, 4, m.type_url);
    stringField(tail, 5, m.nonce);
    controlPlane(tail, 6, m.control_plane?.identifier);
    return new ResponseBytes([head.finish(), encodedResources(m.encodedSet), tail.finish()]);
  }
  const w = Writer.create();
  stringField(w, 1, m.version_info);
  for (const r of m.resources) w.uint32(tag(2)).bytes(encodedAny(r));
  stringField(w, 4, m.type_url);
  stringField(w, 5, m.nonce);
  controlPlane(w, 6, m.control_plane?.identifier);
  return new ResponseBytes([w.finish()]);
}

function deltaResource(w: protobuf.Writer, name: string, version: string, any: EncodedAny): void {
  // Resource: version = 1, resource = 2, name = 3.
  w.uint32(tag(2)).fork();
  stringField(w, 1, version);
  w.uint32(tag(2)).bytes(encodedAny(any));
  stringField(w, 3, name);
  w.ldelim();
}

/** The resources field (2) of a delta response carrying all of `set`, encoded once per set and kept on it. */
function encodedDeltaResources(set: EncodedSet): Uint8Array {
  if (!set.deltaWire) {
    const w = Writer.create();
    for (const r of set.resources.values()) deltaResource(w, r.name, r.version, r.any);
    set.deltaWire = w.finish();
  }
  return set.deltaWire;
}

export function encodeDeltaDiscoveryResponse(m: DeltaDiscoveryResponseMessage): Uint8Array {
  return deltaDiscoveryResponseBytes(m).concat();
}

export function deltaDiscoveryResponseBytes(m: DeltaDiscoveryResponseMessage): ResponseBytes {
  const head = Writer.create();
  stringField(head, 1, m.system_version_info);
  let resources: Uint8Array;
  if (m.encodedSet) {
    resources = encodedDeltaResources(m.encodedSet);
  } else {
    const w = Writer.create();
    for (const r of m.resources) deltaResource(w, r.name, r.version, r.resource);
    resources = w.finish();
  }
  const tail = Writer.create();
  stringField(tail, 4, m.type_url);
  stringField(tail, 5, m.nonce);
  for (const name of m.removed_resources) tail.uint32(tag(6)).string(name);
  controlPlane(tail, 7, m.control_plane?.identifier);
  return new ResponseBytes([head.finish(), resources, tail.finish()]);
}
