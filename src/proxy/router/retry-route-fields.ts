/**
 * The retry-related fields that live on VirtualHost and Route rather than on RouteAction, compiled into the
 * optional MatchedRoute fields the router reads: include_request_attempt_count and
 * include_attempt_count_in_response (virtual host), per_request_buffer_limit_bytes (route, else virtual host).
 * compile.ts spreads these into each MatchedRoute.
 */
import { ConfigError } from '../../core/errors.ts';
import type { JsonObject } from '../../core/json.ts';
import { optBool, optNumber } from '../config-proto/fields.ts';
import { fieldPath } from '../config-proto/path.ts';
import type { MatchedRoute } from './types.ts';

export type RetryRouteFields = Pick<
  MatchedRoute,
  'includeRequestAttemptCount' | 'includeAttemptCountInResponse' | 'perRequestBufferLimitBytes'
>;

/** The virtual host fields compile.ts should list as supported. */
export const VIRTUAL_HOST_RETRY_FIELDS = [
  'include_request_attempt_count',
  'include_attempt_count_in_response',
  'per_request_buffer_limit_bytes',
] as const;

/** The route fields compile.ts should list as supported. */
export const ROUTE_RETRY_FIELDS = ['per_request_buffer_limit_bytes'] as const;

const UINT32_MAX = 2 ** 32 - 1;

function bufferLimit(obj: JsonObject, path: string): number | undefined {
  const v = optNumber(obj, 'per_request_buffer_limit_bytes', path);
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < 0 || v > UINT32_MAX)
    throw new ConfigError(
      fieldPath(path, 'per_request_buffer_limit_bytes'),
      `must be an integer from 0 to ${UINT32_MAX}`,
    );
  return v;
}

/** Reads the virtual host's fields; only the ones set appear in the result. */
export function compileVirtualHostRetryFields(vhost: JsonObject, path: string): RetryRouteFields {
  const out: { -readonly [K in keyof RetryRouteFields]: RetryRouteFields[K] } = {};
  if (optBool(vhost, 'include_request_attempt_count', path) === true) out.includeRequestAttemptCount = true;
  if (optBool(vhost, 'include_attempt_count_in_response', path) === true)
    out.includeAttemptCountInResponse = true;
  const limit = bufferLimit(vhost, path);
  if (limit !== undefined) out.perRequestBufferLimitBytes = limit;
  return out;
}

/** A route's own fields over its virtual host's (a route's buffer limit overrides the virtual host's). */
export function compileRouteRetryFields(
  route: JsonObject,
  path: string,
  vhost: RetryRouteFields,
): RetryRouteFields {
  const limit = bufferLimit(route, path);
  return limit === undefined ? vhost : { ...vhost, perRequestBufferLimitBytes: limit };
}
