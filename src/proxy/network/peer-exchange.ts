/**
 * In-band peer metadata exchange on TCP connections between mesh proxies (the network filter
 * `istio.metadata_exchange`): when a connection's TLS negotiated the configured ALPN (istio-peer-exchange),
 * each side writes one frame before any application byte and strips the other side's frame from what it
 * reads, so both proxies learn who is at the other end for Istio's TCP metrics.
 *
 *   frame   = magic (uint32 BE 0x3D230467) | length (uint32 BE) | payload (length bytes)
 *   payload = google.protobuf.Any { type_url = "type.googleapis.com/google.protobuf.Struct",
 *                                   value = Struct of the node metadata (as x-envoy-peer-metadata) }
 *
 * The frame reader takes untrusted bytes: a wrong magic, a length above MAX_FRAME_PAYLOAD, an end of
 * stream or READ_TIMEOUT_MS without a whole frame means "no peer learnt", and every byte read so far is
 * handed back to be forwarded unchanged. A well-framed payload that does not decode is dropped (it was a
 * frame, not application data) and no peer is learnt either.
 */
import type { Socket } from 'node:net';
import type { NodeInfo } from '../bootstrap/types.ts';
import type { FilterChainConfig } from '../listener/types.ts';
import { decodePeerHeader, ownPeerHeaders } from '../telemetry/peer-headers.ts';
import type { PeerMetadata } from '../telemetry/peer-metadata.ts';
import type { PeerExchangeConfig } from './peer-exchange-config.ts';

export const EXCHANGE_MAGIC = 0x3d230467;
const HEADER_LENGTH = 8;
/** Istio's frames are a few hundred bytes; anything larger is not waited for. */
export const MAX_FRAME_PAYLOAD = 64 * 1024;
/**
 * How long a side waits for the other's frame. Both sides write theirs as soon as the connection is up, so
 * this only bounds a peer that negotiated the ALPN without speaking the protocol; meanwhile the other
 * direction flows and only the first metrics report (and bytes from that peer) wait.
 */
export const READ_TIMEOUT_MS = 1000;
const STRUCT_TYPE_URL = 'type.googleapis.com/google.protobuf.Struct';

// ---- codec ----

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** A length-delimited protobuf field. */
function field(number: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([(number << 3) | 2, ...varint(body.length)]), body]);
}

/** The frame carrying a serialized Struct. */
export function encodeExchangeFrame(struct: Buffer): Buffer {
  const payload = Buffer.concat([field(1, Buffer.from(STRUCT_TYPE_URL)), field(2, struct)]);
  const header = Buffer.alloc(HEADER_LENGTH);
  header.writeUInt32BE(EXCHANGE_MAGIC, 0);
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

const ownFrames = new WeakMap<NodeInfo, Buffer>();
let anonymousFrame: Buffer | undefined;

/** This proxy's frame (the same Struct as its x-envoy-peer-metadata header), built once per node. */
export function ownExchangeFrame(node: NodeInfo | undefined): Buffer {
  if (node === undefined)
    return (anonymousFrame ??= encodeExchangeFrame(
      Buffer.from(ownPeerHeaders(undefined).metadata, 'base64'),
    ));
  let frame = ownFrames.get(node);
  if (frame === undefined) {
    frame = encodeExchangeFrame(Buffer.from(ownPeerHeaders(node).metadata, 'base64'));
    ownFrames.set(node, frame);
  }
  return frame;
}

/** Reads one varint at `pos` below `end`; undefined when malformed. */
function readVarint(buf: Buffer, pos: number, end: number): { value: number; next: number } | undefined {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 5 && pos < end; i++) {
    const b = buf[pos++];
    value += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return { value, next: pos };
    mul *= 128;
  }
  return undefined;
}

/**
 * The peer an exchange payload (an Any holding a Struct) describes; undefined when it is anything else.
 * Decoding goes through the peer header cache, so a peer seen before is the same object (metrics cache
 * their series per peer object).
 */
export function decodeExchangePayload(payload: Buffer): PeerMetadata | undefined {
  let typeUrl: string | undefined;
  let value: Buffer | undefined;
  let pos = 0;
  const end = payload.length;
  while (pos < end) {
    const tag = readVarint(payload, pos, end);
    if (tag === undefined || (tag.value & 7) !== 2) return undefined;
    const len = readVarint(payload, tag.next, end);
    if (len === undefined || len.value > end - len.next) return undefined;
    const body = payload.subarray(len.next, len.next + len.value);
    pos = len.next + len.value;
    if (tag.value >>> 3 === 1) typeUrl = body.toString('latin1');
    else if (tag.value >>> 3 === 2) value = body;
  }
  if (typeUrl !== STRUCT_TYPE_URL || value === undefined || value.length === 0) return undefined;
  return decodePeerHeader(value.toString('base64'));
}

/** What the frame reader concluded. */
export type FrameResult =
  | { readonly done: false }
  /** A whole frame: the peer (when its payload decoded) and the bytes after it. */
  | {
      readonly done: true;
      readonly framed: true;
      readonly peer: PeerMetadata | undefined;
      readonly rest: Buffer;
    }
  /** Not a frame: every byte fed so far, to forward unchanged. */
  | { readonly done: true; readonly framed: false; readonly rest: Buffer };

const MORE: FrameResult = { done: false };
const MAGIC_BYTES = Buffer.alloc(4);
MAGIC_BYTES.writeUInt32BE(EXCHANGE_MAGIC, 0);

/** Incremental frame parser: feed chunks until it is done; it never holds more than one bounded frame. */
export class FrameReader {
  private readonly chunks: Buffer[] = [];
  private length = 0;

  feed(chunk: Buffer): FrameResult {
    this.chunks.push(chunk);
    this.length += chunk.length;
    const buf = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks, this.length);
    if (this.chunks.length > 1) {
      this.chunks.length = 0;
      this.chunks.push(buf);
    }
    // The magic is checked as soon as its first byte arrives, so non-frame data is not held back.
    const magicSeen = Math.min(4, buf.length);
    if (buf.compare(MAGIC_BYTES, 0, magicSeen, 0, magicSeen) !== 0) return this.notAFrame(buf);
    if (buf.length < HEADER_LENGTH) return MORE;
    const payloadLength = buf.readUInt32BE(4);
    if (payloadLength > MAX_FRAME_PAYLOAD) return this.notAFrame(buf);
    const end = HEADER_LENGTH + payloadLength;
    if (buf.length < end) return MORE;
    return {
      done: true,
      framed: true,
      peer: decodeExchangePayload(buf.subarray(HEADER_LENGTH, end)),
      rest: buf.subarray(end),
    };
  }

  /** Bytes fed so far. */
  get fedLength(): number {
    return this.length;
  }

  /** Gives up (timeout, end of stream): the bytes fed so far are not a frame. */
  abandon(): FrameResult {
    return this.notAFrame(this.length === 0 ? Buffer.alloc(0) : Buffer.concat(this.chunks, this.length));
  }

  private notAFrame(buf: Buffer): FrameResult {
    return { done: true, framed: false, rest: buf };
  }
}

// ---- on a connection ----

/** How reading the other side's frame ended. */
export interface FrameOutcome {
  readonly peer: PeerMetadata | undefined;
  /** Bytes read that belong to the application, to forward before piping. */
  readonly rest: Buffer;
  /** Frame bytes stripped from the stream (0 when there was no frame). */
  readonly frameBytes: number;
  /** The socket's readable side ended while reading: forward `rest`, then end the other side. */
  readonly ended: boolean;
}

/**
 * Reads the other side's frame from `socket` (paused or not), then leaves it paused with every byte after
 * the frame returned in the outcome, for the caller to forward and pipe. Calls `done` once, unless the
 * socket closes first.
 */
export function readPeerFrame(
  socket: Socket,
  timeoutMs: number,
  done: (outcome: FrameOutcome) => void,
): void {
  const reader = new FrameReader();
  let settled = false;
  const finish = (result: FrameResult, ended: boolean): void => {
    if (settled || !result.done) return;
    settled = true;
    clearTimeout(timer);
    socket.pause();
    socket.removeListener('data', onData);
    socket.removeListener('end', onEnd);
    socket.removeListener('close', onClose);
    const rest = result.rest;
    const frameBytes = result.framed ? reader.fedLength - rest.length : 0;
    done({ peer: result.framed ? result.peer : undefined, rest, frameBytes, ended });
  };
  const onData = (chunk: Buffer): void => finish(reader.feed(chunk), false);
  const onEnd = (): void => finish(reader.abandon(), true);
  const onClose = (): void => {
    settled = true;
    clearTimeout(timer);
  };
  const timer = setTimeout(() => finish(reader.abandon(), false), timeoutMs);
  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.once('close', onClose);
  socket.resume();
}

/** A filter chain's `istio.metadata_exchange`, ready for connections. */
export class PeerExchange {
  readonly protocol: string;
  /** Our frame, written first on every exchanging connection. */
  readonly frame: Buffer;
  readonly timeoutMs: number;

  constructor(config: PeerExchangeConfig, node: NodeInfo | undefined, timeoutMs = READ_TIMEOUT_MS) {
    this.protocol = config.protocol;
    this.frame = ownExchangeFrame(node);
    this.timeoutMs = timeoutMs;
  }
}

/** The runtime of a filter chain's istio.metadata_exchange network filter; null when it has none. */
export function peerExchangeOf(chain: FilterChainConfig, node: NodeInfo | undefined): PeerExchange | null {
  for (const f of chain.filters) if (f.kind === 'peer_exchange') return new PeerExchange(f.exchange, node);
  return null;
}
