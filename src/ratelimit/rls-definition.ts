/**
 * Envoy's rate limit service (envoy.service.ratelimit.v3.RateLimitService), defined by hand for grpc-js:
 * messages go through the wire codec (src/api/envoy/wire.ts) as canonical proto3 JSON. No proto-loader.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import { decodeMessage, encodeMessage } from '../api/envoy/wire.ts';
import type { WireJson } from '../api/envoy/wire.ts';

export const RLS_SERVICE_NAME = 'envoy.service.ratelimit.v3.RateLimitService';
export const SHOULD_RATE_LIMIT_PATH = `/${RLS_SERVICE_NAME}/ShouldRateLimit`;
export const RATE_LIMIT_REQUEST = 'envoy.service.ratelimit.v3.RateLimitRequest';
export const RATE_LIMIT_RESPONSE = 'envoy.service.ratelimit.v3.RateLimitResponse';

export type WireObject = { [key: string]: WireJson };

/**
 * A request as the handler sees it. Decoding never throws inside grpc-js (which would answer INTERNAL with
 * a generic message): a malformed message arrives as `error`, and the handler answers INVALID_ARGUMENT.
 */
export type DecodedRateLimitRequest =
  { json: WireObject; error?: undefined } | { error: string; json?: undefined };

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function decodeRequest(bytes: Buffer): DecodedRateLimitRequest {
  try {
    return { json: decodeMessage(RATE_LIMIT_REQUEST, bytes) };
  } catch (err) {
    return { error: `malformed ${RATE_LIMIT_REQUEST}: ${(err as Error).message}` };
  }
}

export const rlsServiceDefinition: ServiceDefinition = {
  ShouldRateLimit: {
    path: SHOULD_RATE_LIMIT_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: (m: object) => toBuffer(encodeMessage(RATE_LIMIT_REQUEST, m)),
    requestDeserialize: decodeRequest,
    responseSerialize: (m: object) => toBuffer(encodeMessage(RATE_LIMIT_RESPONSE, m)),
    responseDeserialize: (bytes: Buffer) => decodeMessage(RATE_LIMIT_RESPONSE, bytes),
  },
};
