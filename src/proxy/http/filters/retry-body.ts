/**
 * A request body that can be sent again on a retry. The downstream body streams to the current try as it
 * arrives (so client-streaming requests are not held back) while a copy is kept up to a byte limit; a
 * retry replays the copy and then follows the live stream. Past the limit the copy is dropped and the
 * request can no longer be retried, as with Envoy's per-request buffer limit.
 */
import { Readable } from 'node:stream';

/** Envoy's default per-connection (and so per-request) buffer limit. */
export const DEFAULT_BUFFER_LIMIT_BYTES = 1024 * 1024;

export class ReplayableBody {
  private readonly source: Readable;
  private readonly limit: number;
  private chunks: Buffer[] = [];
  private size = 0;
  private overflowed = false;
  private ended = false;
  private failed: Error | null = null;
  /** The body stream of the try in flight, or null between tries. */
  private current: Readable | null = null;

  constructor(source: Readable, limitBytes: number) {
    this.source = source;
    this.limit = limitBytes;
    source.on('data', (chunk: Buffer | string) => this.onData(chunk));
    source.once('end', () => this.onEnd());
    source.once('error', (err: Error) => this.onError(err));
    source.once('close', () => {
      if (!this.ended) this.onError(new Error('request body closed before its end'));
    });
    source.pause();
  }

  /** Whether the whole body seen so far is still held, so another try can send it from the start. */
  get replayable(): boolean {
    return !this.overflowed && this.failed === null;
  }

  /** A fresh body stream for the next try; the previous one stops receiving data. */
  open(): Readable {
    this.detach();
    const body = new Readable({
      read: () => {
        if (this.current === body) this.source.resume();
      },
    });
    // The try's pool may have let go of this stream already (a failed connect ends the last try without
    // reading it); a downstream that then closes early destroys it with an error nobody else listens for,
    // which would otherwise be an uncaught exception that kills the proxy.
    body.on('error', () => undefined);
    this.current = body;
    for (const c of this.chunks) body.push(c);
    if (this.ended) body.push(null);
    else if (this.failed !== null) body.destroy(this.failed);
    return body;
  }

  /** Stops feeding the current try (it was abandoned); the downstream waits until the next open(). */
  detach(): void {
    const old = this.current;
    if (old === null) return;
    this.current = null;
    this.source.pause();
    // The abandoned try's pool has already let go of it; destroying frees its buffered chunks.
    old.destroy();
  }

  /** Drops the retained copy once no retry can happen any more. */
  release(): void {
    this.chunks = [];
    this.overflowed = true;
  }

  private onData(chunk: Buffer | string): void {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (!this.overflowed) {
      this.size += data.length;
      if (this.size > this.limit) {
        this.chunks = [];
        this.overflowed = true;
      } else this.chunks.push(data);
    }
    const cur = this.current;
    if (cur !== null) {
      if (!cur.push(data)) this.source.pause();
    } else this.source.pause();
  }

  private onEnd(): void {
    this.ended = true;
    this.current?.push(null);
  }

  private onError(err: Error): void {
    if (this.ended || this.failed !== null) return;
    this.failed = err;
    this.current?.destroy(err);
  }
}
