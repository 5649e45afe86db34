/**
 * Compiles the CORS filter's configuration: envoy.extensions.filters.http.cors.v3.Cors (the filter-level
 * config in http_filters, an empty message) and envoy.extensions.filters.http.cors.v3.CorsPolicy (the
 * per-virtual-host / per-route policy in typed_per_filter_config; the most specific level wins whole).
 *
 * Weft has no runtime layer, so filter_enabled and shadow_enabled are accepted only when they enable the
 * filter for every request (or are absent, which Envoy also reads as "enabled"): any other share would be
 * a behaviour Weft cannot give.
 */
import { ConfigError } from '../../../core/errors.ts';
import type { Json, JsonObject } from '../../../core/json.ts';
import { asObject, objectItems, optBool, optObject, optString } from '../../config-proto/fields.ts';
import { fieldPath } from '../../config-proto/path.ts';
import { checkFields } from '../../router/check-fields.ts';
import { compileStringMatcher } from '../../router/string-matcher.ts';
import type { StringMatcher } from '../../router/string-matcher.ts';
import { compileFractionalPercent } from './fault-config.ts';

export const CORS_FILTER_NAME = 'envoy.filters.http.cors';
export const CORS_TYPE_NAME = 'envoy.extensions.filters.http.cors.v3.Cors';
export const CORS_POLICY_TYPE_NAME = 'envoy.extensions.filters.http.cors.v3.CorsPolicy';

export interface CorsPolicyConfig {
  readonly allowOrigins: readonly StringMatcher[];
  /** Some matcher accepts the literal "*": every origin is allowed (as Envoy reads it). */
  readonly anyOrigin: boolean;
  /** Header values sent as configured; '' = header not sent. */
  readonly allowMethods: string;
  readonly allowHeaders: string;
  readonly exposeHeaders: string;
  readonly maxAge: string;
  readonly allowCredentials: boolean;
  /** A preflight whose origin does not match goes upstream (true) or is answered 200 without CORS headers. */
  readonly forwardNotMatchingPreflights: boolean;
}

const POLICY_FIELDS = {
  supported: [
    '@type',
    'allow_origin_string_match',
    'allow_methods',
    'allow_headers',
    'expose_headers',
    'max_age',
    'allow_credentials',
    'filter_enabled',
    'shadow_enabled',
    'forward_not_matching_preflights',
  ],
  // Private Network Access preflights (access-control-request-private-network) are not implemented.
  refused: { allow_private_network_access: null },
};

/** Compiles the filter-level Cors message, which has no fields. */
export function compileCors(json: Json | undefined, path: string): void {
  checkFields(asObject(json ?? {}, path), path, { supported: ['@type'], refused: {} });
}

/** A value that goes into a response header as is: no control characters (CR/LF would split the header). */
function headerValue(obj: JsonObject, key: string, path: string): string {
  const v = optString(obj, key, path) ?? '';
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f)
      throw new ConfigError(fieldPath(path, key), 'must not contain control characters');
  }
  return v;
}

/** RuntimeFractionalPercent: only "always" (absent, or a default_value of 100%) without a runtime key. */
function checkAlwaysEnabled(obj: JsonObject, key: string, path: string): void {
  const rfp = optObject(obj, key, path);
  if (rfp === undefined) return;
  const p = fieldPath(path, key);
  checkFields(rfp, p, { supported: ['default_value'], refused: { runtime_key: null } });
  if (rfp.default_value === undefined || rfp.default_value === null)
    throw new ConfigError(fieldPath(p, 'default_value'), 'required');
  const dp = fieldPath(p, 'default_value');
  const f = compileFractionalPercent(rfp.default_value, dp);
  if (f.numerator < f.denominator)
    throw new ConfigError(
      dp,
      `only 100% is supported by Weft (it has no runtime to draw the share from), got ${f.numerator}/${f.denominator}`,
    );
}

/** Compiles a normalized CorsPolicy; `path` names it in errors. */
export function compileCorsPolicy(json: Json | undefined, path: string): CorsPolicyConfig {
  const obj = asObject(json ?? {}, path);
  checkFields(obj, path, POLICY_FIELDS);
  checkAlwaysEnabled(obj, 'filter_enabled', path);
  checkAlwaysEnabled(obj, 'shadow_enabled', path);
  const allowOrigins = objectItems(obj, 'allow_origin_string_match', path).map(({ item, path: p }) =>
    compileStringMatcher(item, p),
  );
  const maxAge = headerValue(obj, 'max_age', path);
  if (maxAge !== '' && !/^[0-9]+$/.test(maxAge))
    throw new ConfigError(
      fieldPath(path, 'max_age'),
      `must be a number of seconds, got ${JSON.stringify(maxAge)}`,
    );
  return Object.freeze({
    allowOrigins: Object.freeze(allowOrigins),
    anyOrigin: allowOrigins.some((m) => m.matches('*')),
    allowMethods: headerValue(obj, 'allow_methods', path),
    allowHeaders: headerValue(obj, 'allow_headers', path),
    exposeHeaders: headerValue(obj, 'expose_headers', path),
    maxAge,
    allowCredentials: optBool(obj, 'allow_credentials', path) ?? false,
    forwardNotMatchingPreflights: optBool(obj, 'forward_not_matching_preflights', path) ?? true,
  });
}

/** Whether `origin` is allowed by the policy. */
export function originAllowed(policy: CorsPolicyConfig, origin: string): boolean {
  if (policy.anyOrigin) return true;
  const matchers = policy.allowOrigins;
  for (let i = 0; i < matchers.length; i++) if (matchers[i].matches(origin)) return true;
  return false;
}
