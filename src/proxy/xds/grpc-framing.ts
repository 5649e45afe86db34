/**
 * gRPC's length-prefixed message framing (PROTOCOL-HTTP2.md, "Length-Prefixed-Message"): a 1-byte
 * compressed flag, a 4-byte big-endian length, then the message. Messages may be split across DATA
 * frames or share one; the decoder reassembles them. Weft never advertises a compression algorithm, so a
 * compressed message is a protocol error, as is one longer than the configured limit (checked from the
 * prefix, before any of it is buffered).
 */

const PREFIX_BYTES = 5;

/** The default limit on one message: xDS responses for a large mesh are big, but not this big. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export class GrpcFramingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GrpcFramingError';
  }
}

/** One uncompressed message, framed. */
export function encodeGrpcFrame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(PREFIX_BYTES + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, PREFIX_BYTES);
  return out;
}

export class GrpcFrameDecoder {
  private readonly maxMessageBytes: number;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** The length of the message being assembled, once its prefix is complete. */
  private expected = -1;
  private failed = false;

  constructor(maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES) {
    this.maxMessageBytes = maxMessageBytes;
  }

  /** Bytes received but not yet part of a complete message. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** Adds received bytes; returns the messages they complete. Throws GrpcFramingError (and stays failed). */
  push(chunk: Buffer): Buffer[] {
    if (this.failed) throw new GrpcFramingError('the stream already had a framing error');
    if (chunk.length === 0) return [];
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.expected < 0) {
        if (this.buffered < PREFIX_BYTES) break;
        const prefix = this.take(PREFIX_BYTES);
        const flag = prefix[0];
        const length = prefix.readUInt32BE(1);
        if (flag !== 0) {
          this.failed = true;
          throw new GrpcFramingError(
            flag === 1
              ? 'compressed message, but no compression was negotiated'
              : `invalid compressed flag ${flag}`,
          );
        }
        if (length > this.maxMessageBytes) {
          this.failed = true;
          throw new GrpcFramingError(
            `message of ${length} bytes exceeds the limit of ${this.maxMessageBytes}`,
          );
        }
        this.expected = length;
      }
      if (this.buffered < this.expected) break;
      out.push(this.take(this.expected));
      this.expected = -1;
    }
    return out;
  }

  /** Removes and returns the first n buffered bytes (copying only when they span chunks). */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0];
      const need = n - filled;
      if (c.length <= need) {
        out.set(c, filled);
        filled += c.length;
        this.chunks.shift();
      } else {
        out.set(c.subarray(0, need), filled);
        this.chunks[0] = c.subarray(need);
        filled += need;
      }
    }
    return out;
  }
}
