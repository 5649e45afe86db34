/**
 * Counts gRPC messages in a body as it streams by: each message is a 5-byte prefix (compressed flag,
 * big-endian uint32 length) and its payload. A chunk may end anywhere, even inside the prefix, so the
 * counter keeps where it is between chunks. It only reads lengths: payloads are skipped, never copied.
 */
export class GrpcFrameCounter {
  messages = 0;
  /** Prefix bytes of the current message seen so far (0-4). */
  private prefixSeen = 0;
  private length = 0;
  /** Payload bytes of the current message still to skip. */
  private remaining = 0;

  feed(chunk: Uint8Array): void {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.remaining > 0) {
        const skip = Math.min(this.remaining, n - i);
        this.remaining -= skip;
        i += skip;
        continue;
      }
      const b = chunk[i++];
      // Byte 0 is the compressed flag; bytes 1-4 the length.
      if (this.prefixSeen > 0) this.length = this.length * 256 + b;
      if (++this.prefixSeen === 5) {
        this.messages++;
        this.remaining = this.length;
        this.length = 0;
        this.prefixSeen = 0;
      }
    }
  }
}
