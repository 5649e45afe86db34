/** Per-request tracing state kept on the stream by the connection manager's tracer. */
export interface StreamTrace {
  /** Whether this request's trace is sampled (decided once at the edge, then respected). */
  readonly sampled: boolean;
}
