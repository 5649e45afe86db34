/** Per-request tracing state kept on the stream by the connection manager's tracer. */
export interface StreamTrace {
  /** Whether this request's trace is sampled (decided once at the edge, then respected). */
  readonly sampled: boolean;
  /** 32 lowercase hex digits (a 64-bit Zipkin id has its upper half zero); %TRACE_ID% in access logs. */
  readonly traceId: string;
  /** This proxy's span for the request, 16 hex digits: the parent the upstream sees. */
  readonly spanId: string;
  /** The downstream caller's span, when the request came with a trace context. */
  readonly parentSpanId: string | undefined;
  /** B3 debug: sampling was forced by the caller. */
  readonly debug: boolean;
  /** W3C tracestate carried through unchanged. */
  readonly traceState: string | undefined;
}

/** Span kinds a proxy span can have: CLIENT on outbound listeners (sidecar outbound, gateways), SERVER otherwise. */
export type ProxySpanKind = 'CLIENT' | 'SERVER';

/** A finished proxy span, as plain data: the exporter turns it into an OpenTelemetry SDK span. */
export interface FinishedSpan {
  readonly name: string;
  readonly kind: ProxySpanKind;
  readonly trace: StreamTrace;
  /** Epoch milliseconds (fractional). */
  readonly startTime: number;
  readonly endTime: number;
  readonly attributes: Record<string, string | number | boolean>;
  readonly error: boolean;
}
