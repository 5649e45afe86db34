/**
 * DiscoveryRequest (state of the world) read by hand, for the one field that makes it expensive:
 * resource_names. Envoy repeats its whole EDS subscription — thousands of cluster names — in every ACK, so a
 * thousand proxies ACKing an endpoint push would mean millions of strings decoded and compared per push. Here
 * the names stay bytes (ResourceNames): a stream compares them with what the proxy sent last time (one memcmp)
 * and decodes them only when they differ. The other fields are decoded as the generic codec does (node and
 * error_detail through it).
 */
import { decodeMessage } from '../../api/envoy/wire.ts';
import type { WireJson } from '../../api/envoy/wire.ts';

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

/** The resource_names of a request: their encoding (field 3 entries, in order) and, on demand, the strings. */
export class ResourceNames {
  /** The encoded entries (tag, length, bytes for each name). */
  readonly bytes: Uint8Array;
  #list: string[] | null = null;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  get empty(): boolean {
    return this.bytes.length === 0;
  }

  list(): string[] {
    if (this.#list) return this.#list;
    const out: string[] = [];
    const r = new Reader(this.bytes);
    while (r.pos < r.end) {
      r.varint(); // the tag: every entry is field 3, length-delimited
      const [s, e] = r.span();
      out.push(Buffer.from(this.bytes.buffer, this.bytes.byteOffset + s, e - s).toString('utf8'));
    }
    this.#list = out;
    return out;
  }
}

class Reader {
  readonly buf: Uint8Array;
  pos = 0;
  readonly end: number;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  varint(): number {
    let result = 0;
    for (let shift = 0; ; shift += 7) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      if (shift > 63) throw new Error('varint too long');
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return result;
    }
  }

  /** The next field's number and wire type; fields 1..`lastLenField` must be length-delimited. */
  tag(lastLenField: number): [number, number] {
    const tag = this.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (field === 0) throw new Error('field number 0');
    if (field <= lastLenField && wireType !== LEN)
      throw new Error(`field ${field}: wire type ${wireType}, expected length-delimited`);
    return [field, wireType];
  }

  span(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    if (start + len > this.end) throw new Error('truncated length-delimited field');
    this.pos = start + len;
    return [start, this.pos];
  }

  skip(wireType: number): void {
    switch (wireType) {
      case VARINT:
        this.varint();
        return;
      case I64:
        this.pos += 8;
        break;
      case LEN:
        this.span();
        return;
      case I32:
        this.pos += 4;
        break;
      default:
        throw new Error(`invalid wire type ${wireType}`);
    }
    if (this.pos > this.end) throw new Error('truncated fixed-width field');
  }
}

function utf8(buf: Uint8Array, [s, e]: [number, number]): string {
  return Buffer.from(buf.buffer, buf.byteOffset + s, e - s).toString('utf8');
}

/** The embedded messages DiscoveryRequest and DeltaDiscoveryRequest both carry, decoded generically. */
function decodeNode(bytes: Uint8Array, [s, e]: [number, number]): WireJson {
  return decodeMessage('envoy.config.core.v3.Node', bytes.subarray(s, e), { unknownAny: 'keep' });
}

function decodeStatus(bytes: Uint8Array, [s, e]: [number, number]): WireJson {
  // A NACK's status may carry details of types we do not know; they must not end the stream.
  return decodeMessage('google.rpc.Status', bytes.subarray(s, e), { unknownAny: 'keep' });
}

/** The encoded name entries at `spans`, one block (a subarray when they are contiguous, as encoders write them). */
function joinSpans(bytes: Uint8Array, spans: readonly [number, number][]): Uint8Array {
  if (spans.length === 0) return bytes.subarray(0, 0);
  if (spans.every((span, i) => i === 0 || span[0] === spans[i - 1][1]))
    return bytes.subarray(spans[0][0], spans[spans.length - 1][1]);
  return Buffer.concat(spans.map(([s, e]) => bytes.subarray(s, e)));
}

/** Whether `bytes` holds `expected` at `at`, followed by the end or by a field other than resource_names. */
function namesAt(bytes: Uint8Array, at: number, expected: Uint8Array): boolean {
  const end = at + expected.length;
  if (expected.length === 0 || end > bytes.length) return false;
  if (bytes[end] === 0x1a) return false; // one more resource_names entry follows: not the same list
  return Buffer.compare(expected, Buffer.from(bytes.buffer, bytes.byteOffset + at, expected.length)) === 0;
}

/**
 * DiscoveryRequest bytes → its fields as canonical JSON without resource_names (version_info, node, type_url,
 * response_nonce, error_detail; absent when not set), plus the names. Throws on malformed input.
 * `known`: name lists this stream sent before (encoded); where one of them is found whole, it is stepped over
 * with one comparison instead of being read entry by entry (an ACK repeats its subscription).
 */
export function decodeDiscoveryRequest(
  bytes: Uint8Array,
  known: readonly Uint8Array[] = [],
): {
  json: { [key: string]: WireJson };
  names: ResourceNames;
} {
  const json: { [key: string]: WireJson } = {};
  const r = new Reader(bytes);
  const nameSpans: [number, number][] = [];
  while (r.pos < r.end) {
    const tagStart = r.pos;
    const [field, wireType] = r.tag(6);
    switch (field) {
      case 1:
        json.version_info = utf8(bytes, r.span());
        break;
      case 2:
        json.node = decodeNode(bytes, r.span());
        break;
      case 3: {
        const whole = nameSpans.length === 0 ? known.find((k) => namesAt(bytes, tagStart, k)) : undefined;
        if (whole) r.pos = tagStart + whole.length;
        else r.span();
        nameSpans.push([tagStart, r.pos]);
        break;
      }
      case 4:
        json.type_url = utf8(bytes, r.span());
        break;
      case 5:
        json.response_nonce = utf8(bytes, r.span());
        break;
      case 6:
        json.error_detail = decodeStatus(bytes, r.span());
        break;
      default:
        r.skip(wireType);
    }
  }
  return { json, names: new ResourceNames(joinSpans(bytes, nameSpans)) };
}

/**
 * DeltaDiscoveryRequest bytes → its fields as canonical JSON, except resource_names_subscribe, which is returned
 * as its encoding (ResourceNames: the same field number and format as a DiscoveryRequest's resource_names). A
 * proxy's first EDS subscription names thousands of clusters, and a thousand proxies in one namespace send the
 * same list: kept as bytes it is interned once (Subscriptions) instead of being decoded for every proxy, and
 * strings that are decoded here are flat (the generic decoder builds short strings as ropes of 8-byte pieces,
 * ~5× their size, which hundreds of queued first requests turned into hundreds of megabytes).
 * Throws on malformed input.
 */
export function decodeDeltaDiscoveryRequest(bytes: Uint8Array): {
  json: { [key: string]: WireJson };
  subscribe: ResourceNames;
} {
  const json: { [key: string]: WireJson } = {};
  const r = new Reader(bytes);
  const subscribeSpans: [number, number][] = [];
  const unsubscribe: string[] = [];
  let initial: { [name: string]: WireJson } | undefined;
  while (r.pos < r.end) {
    const tagStart = r.pos;
    const [field, wireType] = r.tag(9);
    switch (field) {
      case 1:
        json.node = decodeNode(bytes, r.span());
        break;
      case 2:
        json.type_url = utf8(bytes, r.span());
        break;
      case 3:
        r.span();
        subscribeSpans.push([tagStart, r.pos]);
        break;
      case 4:
        unsubscribe.push(utf8(bytes, r.span()));
        break;
      case 5: {
        // map<string, string> entry: key = 1, value = 2.
        const [s, e] = r.span();
        const entry = new Reader(bytes, s, e);
        let key = '';
        let value = '';
        while (entry.pos < entry.end) {
          const t = entry.varint();
          if ((t & 7) !== LEN) {
            entry.skip(t & 7);
            continue;
          }
          if (t >>> 3 === 1) key = utf8(bytes, entry.span());
          else if (t >>> 3 === 2) value = utf8(bytes, entry.span());
          else entry.skip(LEN);
        }
        (initial ??= {})[key] = value;
        break;
      }
      case 6:
        json.response_nonce = utf8(bytes, r.span());
        break;
      case 7:
        json.error_detail = decodeStatus(bytes, r.span());
        break;
      default:
        // resource_locators_(un)subscribe (8, 9: xdstp dynamic parameters) are not used by Weft.
        r.skip(wireType);
    }
  }
  if (unsubscribe.length > 0) json.resource_names_unsubscribe = unsubscribe;
  if (initial) json.initial_resource_versions = initial;
  // Field 3 in both messages: the entries are byte-for-byte what ResourceNames expects.
  return { json, subscribe: new ResourceNames(joinSpans(bytes, subscribeSpans)) };
}
