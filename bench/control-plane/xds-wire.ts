// Just enough protobuf for a simulated proxy that has a thousand siblings in the same process: the envelope
// of (Delta)DiscoveryResponse and each resource's name, read straight from the bytes; requests written by
// hand, with the long, unchanging list of resource names encoded once per subscription. Listeners are the
// only resources decoded in full (the route names are deep inside, and a sidecar has very few of them).
// Field numbers are those of envoy/service/discovery/v3/discovery.proto and the resource protos.
import { decodeAny, encodeMessage } from '../../src/api/envoy/wire.ts';

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

export class ProtoReader {
  readonly buf: Buffer;
  pos: number;
  readonly end: number;

  constructor(buf: Buffer, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      // Values here are tags, lengths and small enums: beyond 2^53 precision does not matter.
      result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return result;
      shift += 7;
    }
  }

  /** Reads a tag: [field number, wire type]. */
  tag(): [number, number] {
    const t = this.varint();
    return [Math.floor(t / 8), t & 7];
  }

  /** A length-delimited field's [start, end) in buf. */
  span(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    this.pos += len;
    if (this.pos > this.end) throw new Error('truncated field');
    return [start, this.pos];
  }

  string(): string {
    const [s, e] = this.span();
    return this.buf.toString('utf8', s, e);
  }

  bytes(): Buffer {
    const [s, e] = this.span();
    return this.buf.subarray(s, e);
  }

  skip(wireType: number): void {
    switch (wireType) {
      case VARINT:
        this.varint();
        return;
      case I64:
        this.pos += 8;
        return;
      case LEN:
        this.span();
        return;
      case I32:
        this.pos += 4;
        return;
      default:
        throw new Error(`unsupported wire type ${wireType}`);
    }
  }
}

export interface SotwResponse {
  versionInfo: string;
  typeUrl: string;
  nonce: string;
  /** The Any payloads (the resource messages), in order. */
  resources: Buffer[];
}

/** google.protobuf.Any: type_url = 1, value = 2. Returns the value. */
function anyValue(buf: Buffer, start: number, end: number): Buffer {
  const r = new ProtoReader(buf, start, end);
  let value = buf.subarray(0, 0);
  while (!r.done) {
    const [field, wt] = r.tag();
    if (field === 2 && wt === LEN) value = r.bytes();
    else r.skip(wt);
  }
  return value;
}

export function parseSotwResponse(buf: Buffer): SotwResponse {
  const out: SotwResponse = { versionInfo: '', typeUrl: '', nonce: '', resources: [] };
  const r = new ProtoReader(buf);
  while (!r.done) {
    const [field, wt] = r.tag();
    if (wt !== LEN) {
      r.skip(wt);
      continue;
    }
    switch (field) {
      case 1:
        out.versionInfo = r.string();
        break;
      case 2: {
        const [s, e] = r.span();
        out.resources.push(anyValue(buf, s, e));
        break;
      }
      case 4:
        out.typeUrl = r.string();
        break;
      case 5:
        out.nonce = r.string();
        break;
      default:
        r.skip(wt);
    }
  }
  return out;
}

export interface DeltaResource {
  name: string;
  version: string;
  value: Buffer;
}

export interface DeltaResponse {
  systemVersionInfo: string;
  typeUrl: string;
  nonce: string;
  resources: DeltaResource[];
  removed: string[];
}

export function parseDeltaResponse(buf: Buffer): DeltaResponse {
  const out: DeltaResponse = { systemVersionInfo: '', typeUrl: '', nonce: '', resources: [], removed: [] };
  const r = new ProtoReader(buf);
  while (!r.done) {
    const [field, wt] = r.tag();
    if (wt !== LEN) {
      r.skip(wt);
      continue;
    }
    switch (field) {
      case 1:
        out.systemVersionInfo = r.string();
        break;
      case 2: {
        // Resource: version = 1, resource (Any) = 2, name = 3.
        const [s, e] = r.span();
        const rr = new ProtoReader(buf, s, e);
        const res: DeltaResource = { name: '', version: '', value: buf.subarray(0, 0) };
        while (!rr.done) {
          const [f, w] = rr.tag();
          if (f === 1 && w === LEN) res.version = rr.string();
          else if (f === 2 && w === LEN) {
            const [as, ae] = rr.span();
            res.value = anyValue(buf, as, ae);
          } else if (f === 3 && w === LEN) res.name = rr.string();
          else rr.skip(w);
        }
        out.resources.push(res);
        break;
      }
      case 4:
        out.typeUrl = r.string();
        break;
      case 5:
        out.nonce = r.string();
        break;
      case 6:
        out.removed.push(r.string());
        break;
      default:
        r.skip(wt);
    }
  }
  return out;
}

/** Field 1 as a string: the name of a Listener, Cluster or RouteConfiguration, a ClusterLoadAssignment's cluster_name. */
export function resourceName(value: Buffer): string {
  const r = new ProtoReader(value);
  while (!r.done) {
    const [field, wt] = r.tag();
    if (field === 1 && wt === LEN) return r.string();
    r.skip(wt);
  }
  return '';
}

/** A Cluster's name and, for an EDS cluster, the name its endpoints are requested by (service_name, else name). */
export function clusterInfo(value: Buffer): { name: string; edsName: string | null } {
  const r = new ProtoReader(value);
  let name = '';
  let eds = false;
  let serviceName = '';
  while (!r.done) {
    const [field, wt] = r.tag();
    if (field === 1 && wt === LEN) name = r.string();
    else if (field === 3 && wt === LEN) {
      // EdsClusterConfig: eds_config = 1, service_name = 2.
      eds = true;
      const [s, e] = r.span();
      const er = new ProtoReader(value, s, e);
      while (!er.done) {
        const [f, w] = er.tag();
        if (f === 2 && w === LEN) serviceName = er.string();
        else er.skip(w);
      }
    } else r.skip(wt);
  }
  return { name, edsName: eds ? serviceName || name : null };
}

/** The RDS route configuration names a Listener refers to (HTTP connection managers, also API listeners). */
export function listenerRouteNames(value: Buffer): string[] {
  const json = decodeAny('type.googleapis.com/envoy.config.listener.v3.Listener', value);
  const names: string[] = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) {
      for (const x of v) visit(x);
      return;
    }
    if (typeof v !== 'object' || v === null) return;
    const o = v as Record<string, unknown>;
    const rds = o.rds as Record<string, unknown> | undefined;
    if (rds && typeof rds.route_config_name === 'string') names.push(rds.route_config_name);
    for (const x of Object.values(o)) visit(x);
  };
  visit(json);
  return [...new Set(names)];
}

// ---- writing requests ----

function varintBytes(n: number): number[] {
  const out: number[] = [];
  while (n > 127) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

function lenField(field: number, payload: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from([...varintBytes(field * 8 + LEN), ...varintBytes(payload.length)]),
    payload,
  ]);
}

function stringField(field: number, value: string): Buffer {
  return value === '' ? Buffer.alloc(0) : lenField(field, Buffer.from(value, 'utf8'));
}

/** A repeated string field, encoded once and reused in every request of the same subscription. */
export function encodeNames(field: number, names: readonly string[]): Buffer {
  return Buffer.concat(names.map((n) => lenField(field, Buffer.from(n, 'utf8'))));
}

/** envoy.config.core.v3.Node, encoded once per proxy. */
export function encodeNode(node: Record<string, unknown>): Buffer {
  const bytes = encodeMessage('envoy.config.core.v3.Node', node);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * DiscoveryRequest (version_info = 1, node = 2, resource_names = 3, type_url = 4, response_nonce = 5) as a
 * gRPC frame in pieces: the names are a shared buffer, written as is (an ACK of a big EDS subscription is
 * then no copy of it).
 */
export function sotwRequestParts(r: {
  versionInfo: string;
  node: Buffer | null;
  names: Buffer;
  typeUrl: string;
  nonce: string;
}): Buffer[] {
  const head = Buffer.concat([stringField(1, r.versionInfo), r.node ? lenField(2, r.node) : Buffer.alloc(0)]);
  const tail = Buffer.concat([stringField(4, r.typeUrl), stringField(5, r.nonce)]);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(head.length + r.names.length + tail.length, 1);
  return [Buffer.concat([prefix, head]), r.names, tail];
}

/** DeltaDiscoveryRequest: node = 1, type_url = 2, subscribe = 3, unsubscribe = 4, response_nonce = 6. */
export function encodeDeltaRequest(r: {
  node: Buffer | null;
  typeUrl: string;
  subscribe: readonly string[];
  unsubscribe: readonly string[];
  nonce: string;
}): Buffer {
  return Buffer.concat([
    r.node ? lenField(1, r.node) : Buffer.alloc(0),
    stringField(2, r.typeUrl),
    encodeNames(3, r.subscribe),
    encodeNames(4, r.unsubscribe),
    stringField(6, r.nonce),
  ]);
}

/** gRPC's length-prefixed message: compressed flag 0, 4-byte big-endian length. */
export function grpcFrame(message: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/** Reassembles gRPC messages from HTTP/2 DATA chunks. */
export class GrpcDeframer {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #need = -1;
  readonly #onMessage: (message: Buffer) => void;

  constructor(onMessage: (message: Buffer) => void) {
    this.#onMessage = onMessage;
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    for (;;) {
      if (this.#need < 0) {
        if (this.#buffered < 5) return;
        const head = this.#take(5);
        if (head[0] !== 0) throw new Error('compressed gRPC messages are not supported');
        this.#need = head.readUInt32BE(1);
      }
      if (this.#buffered < this.#need) return;
      const message = this.#take(this.#need);
      this.#need = -1;
      this.#onMessage(message);
    }
  }

  #take(n: number): Buffer {
    const all = this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#buffered = rest.length;
    return out;
  }
}
