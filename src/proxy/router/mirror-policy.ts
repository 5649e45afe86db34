/**
 * RouteAction.request_mirror_policies (envoy.config.route.v3.RouteAction.RequestMirrorPolicy), compiled once
 * into immutable policies, plus the pure decisions the router asks of them: does this request get a shadow
 * (an independent draw per policy), and what authority does the shadow carry.
 */
import { ConfigError } from '../../core/errors.ts';
import type { Json, JsonObject } from '../../core/json.ts';
import { asObject, objectItems, optBool, optNumber, optString } from '../config-proto/fields.ts';
import { fieldPath } from '../config-proto/path.ts';
import { checkFields } from './check-fields.ts';

export interface MirrorPolicy {
  readonly cluster: string;
  /** The share of requests to shadow, as numerator / denominator (1/1 when runtime_fraction is absent). */
  readonly numerator: number;
  readonly denominator: number;
  /** disable_shadow_host_suffix_append: keep the authority as it is instead of appending "-shadow". */
  readonly keepHost: boolean;
}

const DENOMINATORS: Readonly<Record<string, number>> = {
  HUNDRED: 100,
  TEN_THOUSAND: 10_000,
  MILLION: 1_000_000,
};

const UINT32_MAX = 2 ** 32 - 1;

const MIRROR_POLICY_FIELDS = {
  supported: [
    'cluster',
    'runtime_fraction',
    // Only chooses whether the shadow's trace is sampled; Weft's router starts no spans for shadows, so it is
    // accepted and has no effect.
    'trace_sampled',
    'disable_shadow_host_suffix_append',
  ],
  refused: { cluster_header: null },
};

function compileFraction(json: Json, path: string): { numerator: number; denominator: number } {
  const obj = asObject(json, path);
  // A runtime layer that could override the default is something Weft does not have.
  checkFields(obj, path, { supported: ['default_value'], refused: { runtime_key: null } });
  if (obj.default_value === undefined || obj.default_value === null)
    throw new ConfigError(fieldPath(path, 'default_value'), 'required');
  const dvPath = fieldPath(path, 'default_value');
  const dv = asObject(obj.default_value, dvPath);
  checkFields(dv, dvPath, { supported: ['numerator', 'denominator'], refused: {} });
  const numerator = optNumber(dv, 'numerator', dvPath) ?? 0;
  if (!Number.isInteger(numerator) || numerator < 0 || numerator > UINT32_MAX)
    throw new ConfigError(fieldPath(dvPath, 'numerator'), `must be an integer from 0 to ${UINT32_MAX}`);
  const name = optString(dv, 'denominator', dvPath) ?? 'HUNDRED';
  const denominator = DENOMINATORS[name];
  if (denominator === undefined)
    throw new ConfigError(
      fieldPath(dvPath, 'denominator'),
      `unknown value ${JSON.stringify(name)} (HUNDRED, TEN_THOUSAND or MILLION)`,
    );
  // As in Envoy, a numerator above the denominator means "always".
  return { numerator: Math.min(numerator, denominator), denominator };
}

function compileMirrorPolicy(json: Json, path: string): MirrorPolicy {
  const obj = asObject(json, path);
  checkFields(obj, path, MIRROR_POLICY_FIELDS);
  const cluster = optString(obj, 'cluster', path);
  if (!cluster) throw new ConfigError(fieldPath(path, 'cluster'), 'required');
  optBool(obj, 'trace_sampled', path);
  const fraction =
    obj.runtime_fraction === undefined || obj.runtime_fraction === null
      ? { numerator: 1, denominator: 1 }
      : compileFraction(obj.runtime_fraction, fieldPath(path, 'runtime_fraction'));
  return Object.freeze({
    cluster,
    ...fraction,
    keepHost: optBool(obj, 'disable_shadow_host_suffix_append', path) ?? false,
  });
}

/**
 * The request_mirror_policies of a RouteAction, VirtualHost or RouteConfiguration (`obj` at `path`); undefined
 * when there are none, so a more general level's policies can apply instead (Envoy uses the most specific
 * level that sets any).
 */
export function compileMirrorPolicies(obj: JsonObject, path: string): readonly MirrorPolicy[] | undefined {
  const items = objectItems(obj, 'request_mirror_policies', path);
  if (items.length === 0) return undefined;
  return Object.freeze(items.map(({ item, path: p }) => compileMirrorPolicy(item, p)));
}

/** Whether a request gets this policy's shadow; `random` is in [0, 1) and drawn per policy and request. */
export function mirrorHits(policy: MirrorPolicy, random: number): boolean {
  if (policy.numerator >= policy.denominator) return true;
  return Math.floor(random * policy.denominator) < policy.numerator;
}

/**
 * The shadow's authority: "-shadow" appended to the host part, before any port ("a.b:8080" →
 * "a.b-shadow:8080", "[::1]:80" → "[::1]-shadow:80").
 */
export function shadowAuthority(authority: string): string {
  let end = authority.length;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close >= 0 && authority.charCodeAt(close + 1) === 58 /* : */) end = close + 1;
  } else {
    const colon = authority.indexOf(':');
    // More than one colon is a bare IPv6 address, which has no port part.
    if (colon >= 0 && authority.indexOf(':', colon + 1) < 0) end = colon;
  }
  return `${authority.slice(0, end)}-shadow${authority.slice(end)}`;
}
