/**
 * Compiles envoy.extensions.filters.http.rbac.v3.RBAC: the enforced `rules` and the `shadow_rules`
 * (evaluated for stats and metadata only), each an envoy.config.rbac.v3.RBAC of an action and named
 * policies. A policy matches when one of its permissions and one of its principals match. Policies are
 * kept sorted by name, as Envoy's engine holds them, so the effective policy reported is deterministic.
 *
 * Refused: the matcher-API forms (`matcher`, `shadow_matcher`), `track_per_rule_stats`, audit logging
 * options and CEL conditions on policies.
 */
import { ConfigError } from '../../../core/errors.ts';
import type { Json } from '../../../core/json.ts';
import { asObject, objectItems, optObject, optString } from '../../config-proto/fields.ts';
import { fieldPath } from '../../config-proto/path.ts';
import { checkFields } from '../../router/check-fields.ts';
import { anyOf, compilePermission, compilePrincipal } from './rbac-matchers.ts';
import type { RbacMatcher } from './rbac-matchers.ts';

export const RBAC_FILTER_NAME = 'envoy.filters.http.rbac';
export const RBAC_TYPE_NAME = 'envoy.extensions.filters.http.rbac.v3.RBAC';

export type RbacAction = 'ALLOW' | 'DENY' | 'LOG';

export interface RbacPolicy {
  readonly name: string;
  readonly permission: RbacMatcher;
  readonly principal: RbacMatcher;
}

export interface RbacEngine {
  readonly action: RbacAction;
  /** Sorted by name. */
  readonly policies: readonly RbacPolicy[];
}

export interface RbacConfig {
  /** undefined: nothing is enforced (every request passes, no allowed/denied stats). */
  readonly rules: RbacEngine | undefined;
  readonly shadowRules: RbacEngine | undefined;
  readonly rulesStatPrefix: string;
  readonly shadowRulesStatPrefix: string;
}

function compilePolicy(name: string, json: Json | undefined, path: string): RbacPolicy {
  const obj = asObject(json, path);
  checkFields(obj, path, {
    supported: ['permissions', 'principals'],
    refused: { condition: null, checked_condition: null },
  });
  const permissions = objectItems(obj, 'permissions', path).map(({ item, path: p }) =>
    compilePermission(item, p),
  );
  const principals = objectItems(obj, 'principals', path).map(({ item, path: p }) =>
    compilePrincipal(item, p),
  );
  if (permissions.length === 0)
    throw new ConfigError(fieldPath(path, 'permissions'), 'at least one permission is required');
  if (principals.length === 0)
    throw new ConfigError(fieldPath(path, 'principals'), 'at least one principal is required');
  return Object.freeze({ name, permission: anyOf(permissions), principal: anyOf(principals) });
}

export function compileRbacEngine(json: Json | undefined, path: string): RbacEngine {
  const obj = asObject(json, path);
  checkFields(obj, path, {
    supported: ['action', 'policies'],
    refused: { audit_logging_options: null },
  });
  const action = optString(obj, 'action', path) ?? 'ALLOW';
  if (action !== 'ALLOW' && action !== 'DENY' && action !== 'LOG')
    throw new ConfigError(
      fieldPath(path, 'action'),
      `unknown value ${JSON.stringify(action)} (ALLOW, DENY or LOG)`,
    );
  const policiesJson = optObject(obj, 'policies', path) ?? {};
  const policiesPath = fieldPath(path, 'policies');
  const names = Object.keys(policiesJson).sort();
  const policies = names.map((name) =>
    compilePolicy(name, policiesJson[name], fieldPath(policiesPath, name)),
  );
  return Object.freeze({ action, policies: Object.freeze(policies) });
}

/** Compiles a normalized RBAC filter config; `path` names it in errors. */
export function compileRbac(json: Json | undefined, path: string): RbacConfig {
  const obj = asObject(json ?? {}, path);
  checkFields(obj, path, {
    supported: ['@type', 'rules', 'shadow_rules', 'rules_stat_prefix', 'shadow_rules_stat_prefix'],
    refused: { matcher: null, shadow_matcher: null, track_per_rule_stats: null },
  });
  const engine = (key: string): RbacEngine | undefined =>
    obj[key] === undefined || obj[key] === null
      ? undefined
      : compileRbacEngine(obj[key], fieldPath(path, key));
  return Object.freeze({
    rules: engine('rules'),
    shadowRules: engine('shadow_rules'),
    rulesStatPrefix: optString(obj, 'rules_stat_prefix', path) ?? '',
    shadowRulesStatPrefix: optString(obj, 'shadow_rules_stat_prefix', path) ?? '',
  });
}
