/**
 * Compiles envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit (the same message is the
 * filter-level config and the per-route config in typed_per_filter_config, which replaces it whole).
 *
 * filter_enabled and filter_enforced are RuntimeFractionalPercent: Weft has no runtime layer, so only a
 * default_value of 0% or 100% is accepted and runtime_key is refused. Unset, both mean 0% (Envoy's
 * default: the filter neither checks nor enforces).
 *
 * Descriptor entries with an empty value are wildcards: each distinct value the request brings gets a
 * bucket of its own (per-client limits), kept in an LRU-capped cache (DEFAULT_MAX_DYNAMIC_BUCKETS).
 */
import { ConfigError } from '../../../core/errors.ts';
import type { Json, JsonObject } from '../../../core/json.ts';
import {
  asObject,
  durationMs,
  intInRange,
  objectItems,
  optBool,
  optObject,
  optString,
} from '../../config-proto/fields.ts';
import { fieldPath } from '../../config-proto/path.ts';
import { checkFields } from '../../router/check-fields.ts';
import { compileHeaderMutation } from '../../router/header-mutation.ts';
import type { DescriptorEntry } from '../../router/rate-limit-actions.ts';
import type { HeaderMutation } from '../../router/types.ts';
import type { TokenBucketSpec } from './token-bucket.ts';

export const LOCAL_RATELIMIT_FILTER_NAME = 'envoy.filters.http.local_ratelimit';
export const LOCAL_RATELIMIT_TYPE_NAME = 'envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';

const UINT32_MAX = 2 ** 32 - 1;

export interface LocalDescriptorConfig {
  readonly entries: readonly DescriptorEntry[];
  readonly tokenBucket: TokenBucketSpec;
  /** Some entry has an empty value: one bucket per distinct request value. */
  readonly wildcard: boolean;
}

export interface LocalRateLimitConfig {
  readonly statPrefix: string;
  readonly status: number;
  /** undefined: no default bucket (every request without a matching descriptor passes). */
  readonly tokenBucket: TokenBucketSpec | undefined;
  readonly enabled: boolean;
  readonly enforced: boolean;
  readonly responseHeaders: HeaderMutation | undefined;
  readonly requestHeadersWhenNotEnforced: HeaderMutation | undefined;
  readonly descriptors: readonly LocalDescriptorConfig[];
  readonly stage: number;
  readonly perConnection: boolean;
  readonly xRateLimitHeaders: boolean;
  readonly alwaysConsumeDefault: boolean;
}

const FIELDS = {
  supported: [
    '@type',
    'stat_prefix',
    'status',
    'token_bucket',
    'filter_enabled',
    'filter_enforced',
    'request_headers_to_add_when_not_enforced',
    'response_headers_to_add',
    'descriptors',
    'stage',
    'local_rate_limit_per_downstream_connection',
    'enable_x_ratelimit_headers',
    'always_consume_default_token_bucket',
    'vh_rate_limits',
  ],
  refused: {
    local_cluster_rate_limit: null,
    rate_limited_as_resource_exhausted: null,
  },
};

export function compileTokenBucket(json: Json | undefined, path: string): TokenBucketSpec {
  const obj = asObject(json, path);
  checkFields(obj, path, { supported: ['max_tokens', 'tokens_per_fill', 'fill_interval'], refused: {} });
  const maxTokens = intInRange(obj, 'max_tokens', path, 1, UINT32_MAX, undefined);
  if (maxTokens === undefined) throw new ConfigError(fieldPath(path, 'max_tokens'), 'required');
  const tokensPerFill = intInRange(obj, 'tokens_per_fill', path, 1, UINT32_MAX, 1);
  if (obj.fill_interval === undefined || obj.fill_interval === null)
    throw new ConfigError(fieldPath(path, 'fill_interval'), 'required');
  const fillIntervalMs = durationMs(obj, 'fill_interval', path, 0);
  if (!(fillIntervalMs > 0))
    throw new ConfigError(fieldPath(path, 'fill_interval'), 'must be greater than 0');
  return Object.freeze({ maxTokens, tokensPerFill, fillIntervalMs });
}

/** RuntimeFractionalPercent limited to 0% or 100%; absent = 0%. */
function compileAllOrNothing(obj: JsonObject, key: string, path: string): boolean {
  const p = fieldPath(path, key);
  const rfp = optObject(obj, key, path);
  if (rfp === undefined) return false;
  if (rfp.runtime_key !== undefined && rfp.runtime_key !== null && rfp.runtime_key !== '')
    throw new ConfigError(
      fieldPath(p, 'runtime_key'),
      'runtime keys are not supported by Weft (there is no runtime layer)',
    );
  checkFields(rfp, p, { supported: ['default_value', 'runtime_key'], refused: {} });
  const dvPath = fieldPath(p, 'default_value');
  const dv = optObject(rfp, 'default_value', p);
  if (dv === undefined) throw new ConfigError(dvPath, 'required');
  checkFields(dv, dvPath, { supported: ['numerator', 'denominator'], refused: {} });
  const numerator = intInRange(dv, 'numerator', dvPath, 0, UINT32_MAX, 0);
  const name = optString(dv, 'denominator', dvPath) ?? 'HUNDRED';
  const denominator = ({ HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 } as Record<string, number>)[
    name
  ];
  if (denominator === undefined)
    throw new ConfigError(fieldPath(dvPath, 'denominator'), `unknown value ${JSON.stringify(name)}`);
  if (numerator === 0) return false;
  if (numerator >= denominator) return true;
  throw new ConfigError(dvPath, 'only 0% or 100% is supported by Weft (no partial enablement)');
}

function compileDescriptor(json: JsonObject, path: string): LocalDescriptorConfig {
  checkFields(json, path, { supported: ['entries', 'token_bucket'], refused: {} });
  const entries = objectItems(json, 'entries', path).map(({ item, path: p }) => {
    checkFields(item, p, { supported: ['key', 'value'], refused: {} });
    const key = optString(item, 'key', p);
    if (!key) throw new ConfigError(fieldPath(p, 'key'), 'required');
    return Object.freeze({ key, value: optString(item, 'value', p) ?? '' });
  });
  if (entries.length === 0)
    throw new ConfigError(fieldPath(path, 'entries'), 'at least one entry is required');
  if (json.token_bucket === undefined || json.token_bucket === null)
    throw new ConfigError(fieldPath(path, 'token_bucket'), 'required');
  return Object.freeze({
    entries: Object.freeze(entries),
    tokenBucket: compileTokenBucket(json.token_bucket, fieldPath(path, 'token_bucket')),
    wildcard: entries.some((e) => e.value === ''),
  });
}

function descriptorKey(entries: readonly DescriptorEntry[]): string {
  return entries.map((e) => `${e.key}\u0000${e.value}`).join('\u0001');
}

/** Compiles a normalized LocalRateLimit; `path` names it in errors. */
export function compileLocalRateLimit(json: Json | undefined, path: string): LocalRateLimitConfig {
  const obj = asObject(json ?? {}, path);
  checkFields(obj, path, FIELDS);
  const statPrefix = optString(obj, 'stat_prefix', path);
  if (!statPrefix) throw new ConfigError(fieldPath(path, 'stat_prefix'), 'required');
  const status = compileHttpStatus(obj, 'status', path, 429);
  const tokenBucket =
    obj.token_bucket === undefined || obj.token_bucket === null
      ? undefined
      : compileTokenBucket(obj.token_bucket, fieldPath(path, 'token_bucket'));
  const descriptors = objectItems(obj, 'descriptors', path).map(({ item, path: p }) =>
    compileDescriptor(item, p),
  );
  const seen = new Map<string, number>();
  descriptors.forEach((d, i) => {
    const k = descriptorKey(d.entries);
    if (seen.has(k))
      throw new ConfigError(
        `${fieldPath(path, 'descriptors')}[${i}]`,
        `duplicate of descriptors[${seen.get(k)}] (same entries)`,
      );
    seen.set(k, i);
  });
  const xrl = optString(obj, 'enable_x_ratelimit_headers', path) ?? 'OFF';
  if (xrl !== 'OFF' && xrl !== 'DRAFT_VERSION_03')
    throw new ConfigError(
      fieldPath(path, 'enable_x_ratelimit_headers'),
      `unknown value ${JSON.stringify(xrl)} (OFF or DRAFT_VERSION_03)`,
    );
  const vh = optString(obj, 'vh_rate_limits', path) ?? 'OVERRIDE';
  if (vh !== 'OVERRIDE')
    throw new ConfigError(
      fieldPath(path, 'vh_rate_limits'),
      'virtual host rate_limits are not supported by Weft: only OVERRIDE (route rate_limits) is',
    );
  const notEnforced = objectItems(obj, 'request_headers_to_add_when_not_enforced', path);
  return Object.freeze({
    statPrefix,
    status,
    tokenBucket,
    enabled: compileAllOrNothing(obj, 'filter_enabled', path),
    enforced: compileAllOrNothing(obj, 'filter_enforced', path),
    responseHeaders: compileHeaderMutation(obj, path, 'response'),
    // The same HeaderValueOption list under another name: compiled through a view of the object so that
    // the one header compiler serves both (its errors name request_headers_to_add[i]).
    requestHeadersWhenNotEnforced:
      notEnforced.length === 0
        ? undefined
        : compileHeaderMutation(
            { request_headers_to_add: obj.request_headers_to_add_when_not_enforced! },
            path,
            'request',
          ),
    descriptors: Object.freeze(descriptors),
    stage: intInRange(obj, 'stage', path, 0, 10, 0),
    perConnection: optBool(obj, 'local_rate_limit_per_downstream_connection', path) ?? false,
    xRateLimitHeaders: xrl === 'DRAFT_VERSION_03',
    alwaysConsumeDefault: optBool(obj, 'always_consume_default_token_bucket', path) ?? true,
  });
}

/** type.v3.StatusCode names Weft accepts in an HttpStatus (the 4xx/5xx ones a limiter would use). */
const HTTP_STATUS_NAMES: Readonly<Record<string, number>> = {
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  TooManyRequests: 429,
  InternalServerError: 500,
  ServiceUnavailable: 503,
  GatewayTimeout: 504,
};

/** An optional type.v3.HttpStatus field (a 4xx or 5xx code, by number or enum name); `fallback` when unset. */
export function compileHttpStatus(obj: JsonObject, key: string, path: string, fallback: number): number {
  const statusObj = optObject(obj, key, path);
  if (statusObj === undefined) return fallback;
  const sp = fieldPath(path, key);
  checkFields(statusObj, sp, { supported: ['code'], refused: {} });
  // HttpStatus.code is an enum: normalized JSON gives its name ("TooManyRequests") or a number.
  const code = statusObj.code;
  const n = typeof code === 'number' ? code : typeof code === 'string' ? HTTP_STATUS_NAMES[code] : undefined;
  if (n === undefined || !Number.isInteger(n) || n < 400 || n > 599)
    throw new ConfigError(
      fieldPath(sp, 'code'),
      `must be an HTTP status from 400 to 599, got ${JSON.stringify(code)}`,
    );
  return n;
}
