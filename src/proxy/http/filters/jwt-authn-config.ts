/**
 * Compiles envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication.
 *
 * Keys come only from local_jwks: a Weft proxy makes no outbound calls of its own for keys, the control
 * plane fetches jwksUri and inlines the JWKS (as istiod does), so remote_jwks is refused. Requirements are
 * compiled into a tree whose provider references are resolved here, so an unknown provider name is a
 * config error, not a request-time surprise.
 */
import { ConfigError } from '../../../core/errors.ts';
import type { Json, JsonObject } from '../../../core/json.ts';
import {
  asObject,
  intInRange,
  objectItems,
  optBool,
  optObject,
  optString,
  stringItems,
} from '../../config-proto/fields.ts';
import { fieldPath, indexPath } from '../../config-proto/path.ts';
import { checkFields } from '../../router/check-fields.ts';
import { readDataSource } from '../../router/route-action.ts';
import { compileRouteMatch } from '../../router/route-matcher.ts';
import type { RouteMatcher } from '../../router/route-matcher.ts';

export const JWT_AUTHN_FILTER_NAME = 'envoy.filters.http.jwt_authn';
export const JWT_AUTHN_TYPE_NAME = 'envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';

/** Envoy's defaults: clock skew, and how many verified tokens a provider remembers. */
const DEFAULT_CLOCK_SKEW_SECONDS = 60;
export const DEFAULT_JWT_CACHE_SIZE = 1000;

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/** Where a provider looks for its token. */
export type TokenLocation =
  | { readonly kind: 'header'; readonly name: string; readonly prefix: string }
  | { readonly kind: 'param'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string };

/** A JSON Web Key Set as parsed from local_jwks. */
export interface Jwks {
  readonly keys: readonly Record<string, unknown>[];
}

export interface JwtProviderConfig {
  readonly name: string;
  /** '' accepts any issuer. */
  readonly issuer: string;
  /** Empty: the audience is not checked. */
  readonly audiences: readonly string[];
  readonly jwks: Jwks;
  readonly locations: readonly TokenLocation[];
  readonly forward: boolean;
  readonly forwardPayloadHeader: string | undefined;
  readonly padForwardPayloadHeader: boolean;
  readonly payloadInMetadata: string | undefined;
  /** Claims whose string value is split on spaces in the metadata copy of the payload. */
  readonly spaceDelimitedClaims: readonly string[];
  readonly claimToHeaders: readonly { readonly header: string; readonly claim: string }[];
  readonly clockSkewSeconds: number;
  readonly requireExpiration: boolean;
  readonly cacheSize: number;
}

export type JwtRequirement =
  | {
      readonly kind: 'provider';
      readonly provider: JwtProviderConfig;
      /** Replaces the provider's audiences (provider_and_audiences). */
      readonly audiences?: readonly string[];
    }
  | { readonly kind: 'any'; readonly requirements: readonly JwtRequirement[] }
  | { readonly kind: 'all'; readonly requirements: readonly JwtRequirement[] }
  | { readonly kind: 'allow_missing' }
  | { readonly kind: 'allow_missing_or_failed' };

export interface JwtRule {
  readonly match: RouteMatcher;
  /** undefined: requests this rule matches are not verified. */
  readonly requires: JwtRequirement | undefined;
}

export interface JwtAuthnConfig {
  readonly providers: ReadonlyMap<string, JwtProviderConfig>;
  readonly rules: readonly JwtRule[];
  readonly bypassCorsPreflight: boolean;
  /** No body and no WWW-Authenticate on a 401. */
  readonly stripFailureResponse: boolean;
}

/** Envoy's extraction when a provider names no location. */
const DEFAULT_LOCATIONS: readonly TokenLocation[] = Object.freeze([
  Object.freeze({ kind: 'header', name: 'authorization', prefix: 'Bearer ' }),
  Object.freeze({ kind: 'param', name: 'access_token' }),
]);

const PROVIDER_FIELDS = {
  supported: [
    'issuer',
    'audiences',
    'local_jwks',
    'remote_jwks',
    'forward',
    'from_headers',
    'from_params',
    'from_cookies',
    'forward_payload_header',
    'pad_forward_payload_header',
    'payload_in_metadata',
    'normalize_payload_in_metadata',
    'clock_skew_seconds',
    'claim_to_headers',
    'require_expiration',
    'jwt_cache_config',
  ],
  refused: {
    subjects: null,
    max_lifetime: null,
    header_in_metadata: null,
    failed_status_in_metadata: null,
    clear_route_cache: null,
  },
};

function headerName(obj: JsonObject, key: string, path: string): string {
  const name = (optString(obj, key, path) ?? '').toLowerCase();
  if (!HEADER_NAME.test(name))
    throw new ConfigError(
      fieldPath(path, key),
      `must be a valid HTTP header name, got ${JSON.stringify(name)}`,
    );
  return name;
}

function compileJwks(obj: JsonObject, path: string): Jwks {
  if (obj.remote_jwks !== undefined && obj.remote_jwks !== null)
    throw new ConfigError(
      fieldPath(path, 'remote_jwks'),
      'remote_jwks is not supported by Weft; the control plane inlines the JWKS',
    );
  if (obj.local_jwks === undefined || obj.local_jwks === null)
    throw new ConfigError(fieldPath(path, 'local_jwks'), 'required (the provider needs keys)');
  const p = fieldPath(path, 'local_jwks');
  const text = readDataSource(obj.local_jwks, p).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(p, `is not a JSON Web Key Set: ${(err as Error).message}`);
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'object' && k !== null && !Array.isArray(k)))
    throw new ConfigError(p, 'is not a JSON Web Key Set: expected an object with a "keys" array of objects');
  return Object.freeze({ keys: Object.freeze(keys as Record<string, unknown>[]) });
}

function compileLocations(obj: JsonObject, path: string): readonly TokenLocation[] {
  const out: TokenLocation[] = [];
  for (const { item, path: p } of objectItems(obj, 'from_headers', path)) {
    checkFields(item, p, { supported: ['name', 'value_prefix'], refused: {} });
    out.push(
      Object.freeze({
        kind: 'header',
        name: headerName(item, 'name', p),
        prefix: optString(item, 'value_prefix', p) ?? '',
      }),
    );
  }
  stringItems(obj, 'from_params', path).forEach((name, i) => {
    if (!name) throw new ConfigError(indexPath(fieldPath(path, 'from_params'), i), 'must not be empty');
    out.push(Object.freeze({ kind: 'param', name }));
  });
  stringItems(obj, 'from_cookies', path).forEach((name, i) => {
    if (!name) throw new ConfigError(indexPath(fieldPath(path, 'from_cookies'), i), 'must not be empty');
    out.push(Object.freeze({ kind: 'cookie', name }));
  });
  return out.length === 0 ? DEFAULT_LOCATIONS : Object.freeze(out);
}

function compileProvider(name: string, json: Json, path: string): JwtProviderConfig {
  const obj = asObject(json, path);
  checkFields(obj, path, PROVIDER_FIELDS);
  const jwks = compileJwks(obj, path);
  const forwardPayloadHeader =
    optString(obj, 'forward_payload_header', path) || undefined
      ? headerName(obj, 'forward_payload_header', path)
      : undefined;
  const claimToHeaders = objectItems(obj, 'claim_to_headers', path).map(({ item, path: p }) => {
    checkFields(item, p, { supported: ['header_name', 'claim_name'], refused: {} });
    const claim = optString(item, 'claim_name', p);
    if (!claim) throw new ConfigError(fieldPath(p, 'claim_name'), 'required');
    return Object.freeze({ header: headerName(item, 'header_name', p), claim });
  });
  const normalize = optObject(obj, 'normalize_payload_in_metadata', path);
  const normalizePath = fieldPath(path, 'normalize_payload_in_metadata');
  if (normalize !== undefined)
    checkFields(normalize, normalizePath, { supported: ['space_delimited_claims'], refused: {} });
  const cache = optObject(obj, 'jwt_cache_config', path);
  const cachePath = fieldPath(path, 'jwt_cache_config');
  if (cache !== undefined) checkFields(cache, cachePath, { supported: ['jwt_cache_size'], refused: {} });
  const cacheSize =
    cache === undefined ? 0 : intInRange(cache, 'jwt_cache_size', cachePath, 0, 2 ** 32 - 1, 0);
  return Object.freeze({
    name,
    issuer: optString(obj, 'issuer', path) ?? '',
    audiences: Object.freeze(stringItems(obj, 'audiences', path)),
    jwks,
    locations: compileLocations(obj, path),
    forward: optBool(obj, 'forward', path) ?? false,
    forwardPayloadHeader,
    padForwardPayloadHeader: optBool(obj, 'pad_forward_payload_header', path) ?? false,
    payloadInMetadata: optString(obj, 'payload_in_metadata', path) || undefined,
    spaceDelimitedClaims: Object.freeze(
      normalize === undefined ? [] : stringItems(normalize, 'space_delimited_claims', normalizePath),
    ),
    claimToHeaders: Object.freeze(claimToHeaders),
    clockSkewSeconds:
      intInRange(
        obj,
        'clock_skew_seconds',
        path,
        0,
        2 ** 32 - 1,
        // proto3 cannot tell 0 from unset; Envoy takes 0 as "the default".
        DEFAULT_CLOCK_SKEW_SECONDS,
      ) || DEFAULT_CLOCK_SKEW_SECONDS,
    requireExpiration: optBool(obj, 'require_expiration', path) ?? false,
    // 0 (unset) means Envoy's default size.
    cacheSize: cacheSize || DEFAULT_JWT_CACHE_SIZE,
  });
}

const REQUIREMENT_KINDS = [
  'provider_name',
  'provider_and_audiences',
  'requires_any',
  'requires_all',
  'allow_missing',
  'allow_missing_or_failed',
] as const;

function compileRequirement(
  json: Json | undefined,
  path: string,
  providers: ReadonlyMap<string, JwtProviderConfig>,
): JwtRequirement {
  const obj = asObject(json, path);
  checkFields(obj, path, { supported: [...REQUIREMENT_KINDS], refused: {} });
  const set = REQUIREMENT_KINDS.filter((k) => obj[k] !== undefined && obj[k] !== null);
  if (set.length === 0) throw new ConfigError(path, `one of ${REQUIREMENT_KINDS.join(', ')} is required`);
  if (set.length > 1)
    throw new ConfigError(fieldPath(path, set[1]), `conflicts with "${set[0]}": only one may be set`);
  const kind = set[0];
  const provider = (name: string | undefined, p: string): JwtProviderConfig => {
    const found = name === undefined ? undefined : providers.get(name);
    if (found === undefined)
      throw new ConfigError(p, `names no provider of this filter: ${JSON.stringify(name ?? '')}`);
    return found;
  };
  switch (kind) {
    case 'provider_name':
      return Object.freeze({
        kind: 'provider',
        provider: provider(optString(obj, kind, path), fieldPath(path, kind)),
      });
    case 'provider_and_audiences': {
      const p = fieldPath(path, kind);
      const pa = asObject(obj[kind], p);
      checkFields(pa, p, { supported: ['provider_name', 'audiences'], refused: {} });
      return Object.freeze({
        kind: 'provider',
        provider: provider(optString(pa, 'provider_name', p), fieldPath(p, 'provider_name')),
        audiences: Object.freeze(stringItems(pa, 'audiences', p)),
      });
    }
    case 'requires_any':
    case 'requires_all': {
      const p = fieldPath(path, kind);
      const list = asObject(obj[kind], p);
      checkFields(list, p, { supported: ['requirements'], refused: {} });
      const items = objectItems(list, 'requirements', p);
      if (items.length < 2)
        throw new ConfigError(fieldPath(p, 'requirements'), 'needs at least 2 requirements');
      return Object.freeze({
        kind: kind === 'requires_any' ? 'any' : 'all',
        requirements: Object.freeze(items.map((i) => compileRequirement(i.item, i.path, providers))),
      });
    }
    case 'allow_missing':
    case 'allow_missing_or_failed':
      checkFields(asObject(obj[kind], fieldPath(path, kind)), fieldPath(path, kind), {
        supported: [],
        refused: {},
      });
      return Object.freeze({ kind });
  }
}

const FIELDS = {
  supported: [
    '@type',
    'providers',
    'rules',
    'bypass_cors_preflight',
    'requirement_map',
    'strip_failure_response',
  ],
  refused: { filter_state_rules: null },
};

/** Compiles a normalized JwtAuthentication; `path` names it in errors. */
export function compileJwtAuthn(json: Json | undefined, path: string): JwtAuthnConfig {
  const obj = asObject(json ?? {}, path);
  checkFields(obj, path, FIELDS);
  const providers = new Map<string, JwtProviderConfig>();
  const providersPath = fieldPath(path, 'providers');
  for (const [name, value] of Object.entries(optObject(obj, 'providers', path) ?? {}))
    providers.set(name, compileProvider(name, value, fieldPath(providersPath, name)));
  const mapPath = fieldPath(path, 'requirement_map');
  const requirementMap = new Map<string, JwtRequirement>();
  for (const [name, value] of Object.entries(optObject(obj, 'requirement_map', path) ?? {}))
    requirementMap.set(name, compileRequirement(value, fieldPath(mapPath, name), providers));
  const rules = objectItems(obj, 'rules', path).map(({ item, path: p }): JwtRule => {
    checkFields(item, p, { supported: ['match', 'requires', 'requirement_name'], refused: {} });
    const match = compileRouteMatch(item.match, fieldPath(p, 'match'));
    const requirementName = optString(item, 'requirement_name', p);
    if (requirementName !== undefined && item.requires !== undefined && item.requires !== null)
      throw new ConfigError(
        fieldPath(p, 'requirement_name'),
        'conflicts with "requires": only one may be set',
      );
    if (requirementName !== undefined) {
      const requires = requirementMap.get(requirementName);
      if (requires === undefined)
        throw new ConfigError(
          fieldPath(p, 'requirement_name'),
          `names no entry of requirement_map: ${JSON.stringify(requirementName)}`,
        );
      return Object.freeze({ match, requires });
    }
    const requires =
      item.requires === undefined || item.requires === null
        ? undefined
        : compileRequirement(item.requires, fieldPath(p, 'requires'), providers);
    return Object.freeze({ match, requires });
  });
  return Object.freeze({
    providers,
    rules: Object.freeze(rules),
    bypassCorsPreflight: optBool(obj, 'bypass_cors_preflight', path) ?? false,
    stripFailureResponse: optBool(obj, 'strip_failure_response', path) ?? false,
  });
}
