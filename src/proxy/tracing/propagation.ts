/**
 * Trace context in and out of a request: W3C Trace Context (`traceparent` + `tracestate`) and Zipkin's
 * B3, single (`b3`) and multi-header (`x-b3-*`). Extraction prefers W3C, then single B3, then multi
 * B3; a malformed value is treated as absent, never as an error. Injection writes both W3C and multi
 * B3 so either kind of next hop continues the trace, and drops a single `b3` header that would
 * otherwise contradict them.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { StreamTrace } from './types.ts';

/** What the downstream said about the trace; every field may be missing. */
export interface IncomingContext {
  /** 32 lowercase hex digits (a 64-bit B3 id is left-padded with zeros), or undefined when absent. */
  readonly traceId: string | undefined;
  /** The caller's span: the parent of this proxy's span. Set exactly when traceId is. */
  readonly spanId: string | undefined;
  /** The caller's sampling decision; undefined when it left the decision to this proxy. */
  readonly sampled: boolean | undefined;
  /** B3 debug (`x-b3-flags: 1`, `b3: ...-d`): forces sampling. */
  readonly debug: boolean;
  /** W3C tracestate, passed on unchanged (only with a valid traceparent). */
  readonly traceState: string | undefined;
}

const ZERO_64 = '0000000000000000';
const ZERO_128 = ZERO_64 + ZERO_64;

function single(value: string | string[] | undefined): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.length === 1) return value[0];
  return undefined;
}

function isLowerHex(s: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/** A B3 id (16 or 32 hex digits, lowercase as B3 requires, not all zero) as 32 digits; undefined if malformed. */
function b3TraceId(s: string): string | undefined {
  if (s.length === 32) return isLowerHex(s, 0, 32) && s !== ZERO_128 ? s : undefined;
  if (s.length === 16) return isLowerHex(s, 0, 16) && s !== ZERO_64 ? ZERO_64 + s : undefined;
  return undefined;
}

function spanIdOf(s: string): string | undefined {
  return s.length === 16 && isLowerHex(s, 0, 16) && s !== ZERO_64 ? s : undefined;
}

/**
 * `traceparent`: version "-" trace-id "-" parent-id "-" flags. Version 00 is exactly 55 characters; a later
 * version may append fields after a further "-", and ff is invalid.
 */
export function parseTraceparent(value: string): IncomingContext | undefined {
  if (value.length < 55 || value.charCodeAt(2) !== 0x2d || value.charCodeAt(35) !== 0x2d) return undefined;
  if (value.charCodeAt(52) !== 0x2d || !isLowerHex(value, 0, 2)) return undefined;
  const version = value.slice(0, 2);
  if (version === 'ff') return undefined;
  if (version === '00' ? value.length !== 55 : value.length > 55 && value.charCodeAt(55) !== 0x2d)
    return undefined;
  if (!isLowerHex(value, 3, 35) || !isLowerHex(value, 36, 52) || !isLowerHex(value, 53, 55)) return undefined;
  const traceId = value.slice(3, 35);
  const spanId = value.slice(36, 52);
  if (traceId === ZERO_128 || spanId === ZERO_64) return undefined;
  const flags = parseInt(value.slice(53, 55), 16);
  return { traceId, spanId, sampled: (flags & 1) === 1, debug: false, traceState: undefined };
}

/** Single-header B3: `{TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]]`, or only `{SamplingState}`. */
export function parseB3Single(value: string): IncomingContext | undefined {
  const parts = value.split('-');
  if (parts.length === 1) {
    const decision = b3SamplingState(parts[0]);
    if (decision === undefined) return undefined;
    return { traceId: undefined, spanId: undefined, ...decision, traceState: undefined };
  }
  if (parts.length > 4) return undefined;
  const traceId = b3TraceId(parts[0]);
  const spanId = spanIdOf(parts[1]);
  if (traceId === undefined || spanId === undefined) return undefined;
  let decision: { sampled: boolean | undefined; debug: boolean } = { sampled: undefined, debug: false };
  if (parts.length >= 3) {
    const d = b3SamplingState(parts[2]);
    if (d === undefined) return undefined;
    decision = d;
  }
  if (parts.length === 4 && spanIdOf(parts[3]) === undefined) return undefined;
  return { traceId, spanId, ...decision, traceState: undefined };
}

function b3SamplingState(s: string): { sampled: boolean; debug: boolean } | undefined {
  if (s === '1') return { sampled: true, debug: false };
  if (s === '0') return { sampled: false, debug: false };
  if (s === 'd') return { sampled: true, debug: true };
  return undefined;
}

/** Multi-header B3; ids are used only when both trace and span id are valid, the decision on its own otherwise. */
export function parseB3Multi(headers: IncomingHttpHeaders): IncomingContext | undefined {
  const rawTrace = single(headers['x-b3-traceid']);
  const rawSpan = single(headers['x-b3-spanid']);
  const rawSampled = single(headers['x-b3-sampled']);
  const debug = single(headers['x-b3-flags']) === '1';
  let sampled: boolean | undefined;
  // "true"/"false" are what early B3 implementations sent; the spec asks receivers to accept them.
  if (rawSampled === '1' || rawSampled === 'true') sampled = true;
  else if (rawSampled === '0' || rawSampled === 'false') sampled = false;
  if (debug) sampled = true;
  let traceId: string | undefined;
  let spanId: string | undefined;
  if (rawTrace !== undefined && rawSpan !== undefined) {
    traceId = b3TraceId(rawTrace);
    spanId = spanIdOf(rawSpan);
    if (traceId === undefined || spanId === undefined) traceId = spanId = undefined;
  }
  if (traceId === undefined && sampled === undefined) return undefined;
  return { traceId, spanId, sampled, debug, traceState: undefined };
}

/** The incoming trace context, or undefined when the request carries none (this proxy is the edge). */
export function extractContext(headers: IncomingHttpHeaders): IncomingContext | undefined {
  const tp = single(headers.traceparent);
  if (tp !== undefined) {
    const ctx = parseTraceparent(tp);
    if (ctx !== undefined) {
      const ts = single(headers.tracestate);
      return ts === undefined || ts === '' ? ctx : { ...ctx, traceState: ts };
    }
  }
  const b3 = single(headers.b3);
  if (b3 !== undefined) {
    const ctx = parseB3Single(b3);
    if (ctx !== undefined) return ctx;
  }
  if (
    headers['x-b3-traceid'] === undefined &&
    headers['x-b3-sampled'] === undefined &&
    headers['x-b3-flags'] === undefined
  ) {
    return undefined;
  }
  return parseB3Multi(headers);
}

/** B3 writes a 64-bit trace id as 16 digits. */
function b3TraceIdOut(traceId: string): string {
  return traceId.startsWith(ZERO_64) ? traceId.slice(16) : traceId;
}

/** Makes this proxy's span the parent the upstream sees, in W3C and multi-header B3 alike. */
export function injectContext(headers: IncomingHttpHeaders, trace: StreamTrace): void {
  const h = headers as Record<string, string | string[] | undefined>;
  h.traceparent = `00-${trace.traceId}-${trace.spanId}-${trace.sampled ? '01' : '00'}`;
  if (trace.traceState !== undefined) h.tracestate = trace.traceState;
  else if (h.tracestate !== undefined) delete h.tracestate;
  h['x-b3-traceid'] = b3TraceIdOut(trace.traceId);
  h['x-b3-spanid'] = trace.spanId;
  if (trace.parentSpanId !== undefined) h['x-b3-parentspanid'] = trace.parentSpanId;
  else if (h['x-b3-parentspanid'] !== undefined) delete h['x-b3-parentspanid'];
  h['x-b3-sampled'] = trace.sampled ? '1' : '0';
  if (trace.debug) h['x-b3-flags'] = '1';
  else if (h['x-b3-flags'] !== undefined) delete h['x-b3-flags'];
  // Deleting only what is there: a delete turns the header object into a slow dictionary.
  if (h.b3 !== undefined) delete h.b3;
}
