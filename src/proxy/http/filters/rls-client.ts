/**
 * A client of Envoy's rate limit service (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`):
 * unary gRPC over node:http2 with the proxy's own gRPC framing and Envoy codec. One connection per service
 * address, shared by every filter of the process; a call fails fast when the service is down and is
 * bounded by a deadline (also sent as grpc-timeout).
 */
import { decodeMessage, encodeMessage } from '../../../api/envoy/wire.ts';
import type { WireJson } from '../../../api/envoy/wire.ts';
import type { Descriptor } from '../../router/rate-limit-actions.ts';
import { UnaryChannel } from '../../xds/grpc-unary.ts';

const METHOD = '/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit';
const REQUEST = 'envoy.service.ratelimit.v3.RateLimitRequest';
const RESPONSE = 'envoy.service.ratelimit.v3.RateLimitResponse';

const UNIT_SECONDS: Readonly<Record<string, number>> = {
  SECOND: 1,
  MINUTE: 60,
  HOUR: 3600,
  DAY: 86_400,
  WEEK: 604_800,
  MONTH: 2_592_000,
  YEAR: 31_536_000,
};

export interface RlsStatus {
  readonly overLimit: boolean;
  /** The limit the service applied, when it reports one. */
  readonly limit:
    { readonly requestsPerUnit: number; readonly windowSeconds: number; readonly name: string } | undefined;
  readonly remaining: number;
  /** Milliseconds until the limit resets, when reported. */
  readonly resetMs: number | undefined;
}

export interface RlsResult {
  readonly overLimit: boolean;
  readonly statuses: readonly RlsStatus[];
  readonly requestHeaders: readonly (readonly [string, string])[];
  readonly responseHeaders: readonly (readonly [string, string])[];
}

export interface RlsCall {
  cancel(): void;
}

export type RlsCallback = (error: Error | null, result: RlsResult | undefined) => void;

/** What the filter needs from a client: one check per request. Tests may give the filter another. */
export interface RlsTransport {
  shouldRateLimit(
    address: string,
    domain: string,
    descriptors: readonly Descriptor[],
    timeoutMs: number,
    done: RlsCallback,
  ): RlsCall;
}

type JsonObj = { [key: string]: WireJson };

function asArray(v: WireJson | undefined): JsonObj[] {
  return Array.isArray(v) ? (v as JsonObj[]) : [];
}

function durationMs(v: WireJson | undefined): number | undefined {
  if (typeof v !== 'string' || !v.endsWith('s')) return undefined;
  const n = Number(v.slice(0, -1));
  return Number.isFinite(n) ? n * 1000 : undefined;
}

function headers(v: WireJson | undefined): [string, string][] {
  return asArray(v)
    .filter((h) => typeof h.key === 'string' && h.key !== '')
    .map((h) => [(h.key as string).toLowerCase(), typeof h.value === 'string' ? h.value : '']);
}

/** The service's response, as the filter uses it. */
export function readResponse(json: JsonObj): RlsResult {
  const statuses = asArray(json.statuses).map((s): RlsStatus => {
    const current = s.current_limit as JsonObj | undefined;
    const perUnit = typeof current?.requests_per_unit === 'number' ? current.requests_per_unit : undefined;
    const window = typeof current?.unit === 'string' ? UNIT_SECONDS[current.unit] : undefined;
    return {
      overLimit: s.code === 'OVER_LIMIT',
      limit:
        perUnit !== undefined && window !== undefined
          ? {
              requestsPerUnit: perUnit,
              windowSeconds: window,
              name: typeof current?.name === 'string' ? current.name : '',
            }
          : undefined,
      remaining: typeof s.limit_remaining === 'number' ? s.limit_remaining : 0,
      resetMs: durationMs(s.duration_until_reset),
    };
  });
  return {
    overLimit: json.overall_code === 'OVER_LIMIT',
    statuses,
    requestHeaders: headers(json.request_headers_to_add),
    responseHeaders: headers(json.response_headers_to_add),
  };
}

export class Http2RlsTransport implements RlsTransport {
  readonly #channels = new Map<string, UnaryChannel>();

  shouldRateLimit(
    address: string,
    domain: string,
    descriptors: readonly Descriptor[],
    timeoutMs: number,
    done: RlsCallback,
  ): RlsCall {
    let channel = this.#channels.get(address);
    if (channel === undefined) this.#channels.set(address, (channel = new UnaryChannel(address)));
    const request = {
      domain,
      descriptors: descriptors.map((entries) => ({
        entries: entries.map((e) => ({ key: e.key, value: e.value })),
      })),
    };
    return channel.call(METHOD, encodeMessage(REQUEST, request), { timeoutMs }, (error, message) => {
      if (error !== null || message === undefined) {
        done(error ?? new Error('empty response'), undefined);
        return;
      }
      let decoded: JsonObj;
      try {
        decoded = decodeMessage(RESPONSE, message);
      } catch (err) {
        done(err as Error, undefined);
        return;
      }
      done(null, readResponse(decoded));
    });
  }

  close(): void {
    for (const c of this.#channels.values()) c.close();
    this.#channels.clear();
  }
}

/** The process' transport: channels are per address, so every filter instance shares them. */
export const sharedRlsTransport = new Http2RlsTransport();
