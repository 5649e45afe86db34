/**
 * The HTTP filter contract (Envoy's decoder/encoder filters, simplified): filters are built once per
 * connection manager config and keep per-request state on the stream. The router is the last filter.
 */
import type { HttpStream } from './stream.ts';
import type { OutgoingHeaders } from '../upstream/codec.ts';

/**
 * 'continue' passes the request to the next filter; 'stop' means the filter has answered, taken over,
 * or paused the chain — a paused filter later calls `stream.continueDecoding()` to run the rest, or
 * answers itself. Staying synchronous keeps requests that no filter pauses free of promises.
 */
export type FilterStatus = 'continue' | 'stop';

export interface HttpFilter {
  readonly name: string;
  onRequest(stream: HttpStream): FilterStatus;
  /** Called with the response headers before they are sent, in reverse filter order. */
  onResponseHeaders?(stream: HttpStream, status: number, headers: OutgoingHeaders): void;
  /** Each request body chunk as it goes upstream (telemetry: gRPC message counts). */
  onRequestData?(stream: HttpStream, chunk: Buffer): void;
  /** Each response body chunk as it goes downstream. */
  onResponseData?(stream: HttpStream, chunk: Buffer): void;
  /** Once, when the stream is complete (response finished, reset or aborted): telemetry reads it here. */
  onComplete?(stream: HttpStream): void;
}
