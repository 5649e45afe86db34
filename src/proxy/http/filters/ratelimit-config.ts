/**
 * Compiles envoy.extensions.filters.http.ratelimit.v3.RateLimit, the global rate limit filter: the proxy
 * asks a rate limit service (Envoy's RLS gRPC API) about the descriptors its route's rate_limits produce.
 * The service is reached through a cluster (`grpc_service.envoy_grpc.cluster_name`), looked up per request.
 */
import { ConfigError } from '../../../core/errors.ts';
import type { Json, JsonObject } from '../../../core/json.ts';
import {
  asObject,
  durationMs,
  intInRange,
  optBool,
  optObject,
  optString,
} from '../../config-proto/fields.ts';
import { fieldPath } from '../../config-proto/path.ts';
import { checkFields } from '../../router/check-fields.ts';
import { compileHeaderMutation } from '../../router/header-mutation.ts';
import type { HeaderMutation } from '../../router/types.ts';
import { compileHttpStatus } from './local-ratelimit-config.ts';

export const RATELIMIT_FILTER_NAME = 'envoy.filters.http.ratelimit';
export const RATELIMIT_TYPE_NAME = 'envoy.extensions.filters.http.ratelimit.v3.RateLimit';

/** Envoy's default wait for the rate limit service. */
const DEFAULT_TIMEOUT_MS = 20;

export interface RateLimitConfig {
  readonly domain: string;
  readonly stage: number;
  readonly timeoutMs: number;
  /** Refuse requests (statusOnError) when the service fails; otherwise let them through (fail open). */
  readonly failureModeDeny: boolean;
  readonly rateLimitedAsResourceExhausted: boolean;
  /** The cluster of the rate limit service. */
  readonly serviceCluster: string;
  readonly xRateLimitHeaders: boolean;
  readonly xEnvoyRateLimitedHeader: boolean;
  readonly rateLimitedStatus: number;
  readonly statusOnError: number;
  readonly responseHeaders: HeaderMutation | undefined;
}

const FIELDS = {
  supported: [
    '@type',
    'domain',
    'stage',
    'request_type',
    'timeout',
    'failure_mode_deny',
    'rate_limited_as_resource_exhausted',
    'rate_limit_service',
    'enable_x_ratelimit_headers',
    'disable_x_envoy_ratelimited_header',
    'rate_limited_status',
    'response_headers_to_add',
    'status_on_error',
    'stat_prefix',
  ],
  refused: {},
};

function serviceCluster(obj: JsonObject, path: string): string {
  const rlsPath = fieldPath(path, 'rate_limit_service');
  const rls = optObject(obj, 'rate_limit_service', path);
  if (rls === undefined) throw new ConfigError(rlsPath, 'required');
  checkFields(rls, rlsPath, { supported: ['grpc_service', 'transport_api_version'], refused: {} });
  const version = optString(rls, 'transport_api_version', rlsPath) ?? 'AUTO';
  if (version !== 'V3' && version !== 'AUTO')
    throw new ConfigError(
      fieldPath(rlsPath, 'transport_api_version'),
      `only V3 is supported, got ${version}`,
    );
  const gsPath = fieldPath(rlsPath, 'grpc_service');
  const gs = optObject(rls, 'grpc_service', rlsPath);
  if (gs === undefined) throw new ConfigError(gsPath, 'required');
  checkFields(gs, gsPath, {
    supported: ['envoy_grpc', 'timeout'],
    refused: { google_grpc: null, initial_metadata: null, retry_policy: null },
  });
  const egPath = fieldPath(gsPath, 'envoy_grpc');
  const eg = optObject(gs, 'envoy_grpc', gsPath);
  if (eg === undefined)
    throw new ConfigError(egPath, 'required (Weft reaches the service through a cluster)');
  checkFields(eg, egPath, { supported: ['cluster_name', 'authority'], refused: { retry_policy: null } });
  const cluster = optString(eg, 'cluster_name', egPath);
  if (!cluster) throw new ConfigError(fieldPath(egPath, 'cluster_name'), 'required');
  return cluster;
}

/** Compiles a normalized RateLimit filter config; `path` names it in errors. */
export function compileRateLimit(json: Json | undefined, path: string): RateLimitConfig {
  const obj = asObject(json ?? {}, path);
  checkFields(obj, path, FIELDS);
  const domain = optString(obj, 'domain', path);
  if (!domain) throw new ConfigError(fieldPath(path, 'domain'), 'required');
  const requestType = optString(obj, 'request_type', path) ?? 'both';
  // Weft does not tell internal from external requests: every request is checked.
  if (requestType !== 'both' && requestType !== '')
    throw new ConfigError(
      fieldPath(path, 'request_type'),
      `only "both" is supported by Weft (it does not classify requests as internal or external), got ${JSON.stringify(requestType)}`,
    );
  const xrl = optString(obj, 'enable_x_ratelimit_headers', path) ?? 'OFF';
  if (xrl !== 'OFF' && xrl !== 'DRAFT_VERSION_03')
    throw new ConfigError(
      fieldPath(path, 'enable_x_ratelimit_headers'),
      `unknown value ${JSON.stringify(xrl)} (OFF or DRAFT_VERSION_03)`,
    );
  const timeoutMs = durationMs(obj, 'timeout', path, DEFAULT_TIMEOUT_MS);
  if (!(timeoutMs > 0)) throw new ConfigError(fieldPath(path, 'timeout'), 'must be greater than 0');
  return Object.freeze({
    domain,
    stage: intInRange(obj, 'stage', path, 0, 10, 0),
    timeoutMs,
    failureModeDeny: optBool(obj, 'failure_mode_deny', path) ?? false,
    rateLimitedAsResourceExhausted: optBool(obj, 'rate_limited_as_resource_exhausted', path) ?? false,
    serviceCluster: serviceCluster(obj, path),
    xRateLimitHeaders: xrl === 'DRAFT_VERSION_03',
    xEnvoyRateLimitedHeader: !(optBool(obj, 'disable_x_envoy_ratelimited_header', path) ?? false),
    rateLimitedStatus: compileHttpStatus(obj, 'rate_limited_status', path, 429),
    statusOnError: compileHttpStatus(obj, 'status_on_error', path, 500),
    responseHeaders: compileHeaderMutation(obj, path, 'response'),
  });
}
