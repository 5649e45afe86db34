/**
 * AuthorizationPolicy → envoy.filters.http.rbac filters for a workload's inbound side (or a gateway), in
 * Istio's order and with Istio's translation: a DENY filter, then ALLOW, then AUDIT (action LOG).
 *
 * Applicability, as Istio: a policy in the root namespace applies to every workload (its selector, if
 * any, matched against workloads of all namespaces); a policy elsewhere applies to its namespace's
 * workloads that its selector matches (no selector: all of them). targetRef(s) and CUSTOM are not
 * supported yet: such policies are skipped.
 *
 * Each rule becomes one Envoy policy `ns[<ns>]-policy[<name>]-rule[<i>]`: every `to` operation is one
 * permission (their list is ORed), every `from` source one principal; inside one source or operation the
 * fields AND and a field's values OR; `when` conditions AND into every permission (connection-side keys)
 * or principal (request-side keys). An ALLOW policy without rules yields one policy that matches nothing.
 *
 * A condition Weft cannot translate follows Istio's rule for fields a filter cannot evaluate: in an ALLOW
 * policy the whole rule is dropped (fewer requests allowed); in DENY and AUDIT policies only that condition
 * is left out (more requests denied or audited). Policies annotated `istio.io/dry-run: "true"` go to the
 * filter's shadow_rules, counted under Istio's dry-run stat prefixes and never enforced.
 */
import type { AuthorizationPolicy, AuthorizationRule } from '../../api/istio/security.ts';
import type { IstioResource } from '../../api/istio/resource.ts';
import { hashString } from '../../core/hash.ts';
import type { JsonObject } from '../../core/json.ts';
import { labelsMatch } from '../model/discovery.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import type { ProxyNode } from '../xds/types.ts';

export const RBAC_FILTER = 'envoy.filters.http.rbac';
const RBAC_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
/** The dynamic-metadata namespace the JWT filter fills with the request's authenticated claims. */
export const AUTHN_METADATA = 'istio_authn';
const DRY_RUN_ANNOTATION = 'istio.io/dry-run';
const SHADOW_ALLOW_PREFIX = 'istio_dry_run_allow_';
const SHADOW_DENY_PREFIX = 'istio_dry_run_deny_';
const SPIFFE = 'spiffe://';

type Action = 'ALLOW' | 'DENY' | 'AUDIT';
type Policy = IstioResource<AuthorizationPolicy>;

/** A condition this translation cannot express; handled per action (see the module comment). */
class Unsupported extends Error {}

// ---- applicability ----

function hasTargetRef(spec: AuthorizationPolicy): boolean {
  return spec.targetRef !== undefined || (spec.targetRefs !== undefined && spec.targetRefs.length > 0);
}

function appliesTo(policy: Policy, proxy: ProxyNode, rootNamespace: string): boolean {
  const spec = policy.spec;
  if (hasTargetRef(spec) || spec.action === 'CUSTOM') return false;
  const ns = policy.metadata.namespace;
  if (ns !== rootNamespace && ns !== proxy.namespace) return false;
  const labels = spec.selector?.matchLabels;
  return labels === undefined || Object.keys(labels).length === 0 || labelsMatch(labels, proxy.labels);
}

function applicable(proxy: ProxyNode, snap: MeshSnapshot): Policy[] {
  const root = snap.options.rootNamespace;
  return (snap.authorizationPolicies ?? []).filter((p) => appliesTo(p, proxy, root));
}

function isDryRun(policy: Policy): boolean {
  return policy.metadata.annotations?.[DRY_RUN_ANNOTATION]?.toLowerCase() === 'true';
}

// ---- value matchers ----

function quoteRe2(s: string): string {
  return s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

const PRESENT_REGEX = { safe_regex: { regex: '.+' } };

/** Istio's string matching of a policy value: `*` any non-empty, `*x` suffix, `x*` prefix, else exact; `prefix` is prepended. */
function stringMatch(v: string, prefix = ''): JsonObject {
  if (v === '*') return PRESENT_REGEX;
  if (v.startsWith('*'))
    return prefix === ''
      ? { suffix: v.slice(1) }
      : { safe_regex: { regex: `${quoteRe2(prefix)}.*${quoteRe2(v.slice(1))}` } };
  if (v.endsWith('*')) return { prefix: prefix + v.slice(0, -1) };
  return { exact: prefix + v };
}

function headerMatch(name: string, v: string): JsonObject {
  if (v === '*') return { name, present_match: true };
  return { name, string_match: stringMatch(v) };
}

/** :authority case-insensitively, with or without a port (the policy value itself names no port). */
function hostMatches(v: string): JsonObject[] {
  const name = ':authority';
  if (v === '*') return [{ name, present_match: true }];
  if (v.endsWith('*')) return [{ name, string_match: { prefix: v.slice(0, -1), ignore_case: true } }];
  const withPort = (re: string): JsonObject => ({
    name,
    safe_regex_match: { regex: `(?i)${re}:[0-9]+` },
  });
  if (v.startsWith('*'))
    return [
      { name, string_match: { suffix: v.slice(1), ignore_case: true } },
      withPort(`.*${quoteRe2(v.slice(1))}`),
    ];
  return [{ name, string_match: { exact: v, ignore_case: true } }, withPort(quoteRe2(v))];
}

/** A request header condition: the value matches any one of the header's comma-joined values, as Istio. */
function requestHeaderMatch(name: string, v: string): JsonObject {
  if (v === '*') return { name, present_match: true };
  const one = v.startsWith('*')
    ? `.*${quoteRe2(v.slice(1))}`
    : v.endsWith('*')
      ? `${quoteRe2(v.slice(0, -1))}.*`
      : quoteRe2(v);
  return { name, safe_regex_match: { regex: `^${one}$|^${one},.*|.*,${one},.*|.*,${one}$` } };
}

function cidr(v: string): JsonObject {
  const slash = v.indexOf('/');
  const address = slash < 0 ? v : v.slice(0, slash);
  const full = address.includes(':') ? 128 : 32;
  const len = slash < 0 ? full : Number(v.slice(slash + 1));
  const valid = address.includes(':') || /^\d{1,3}(\.\d{1,3}){3}$/.test(address);
  if (!valid || !Number.isInteger(len) || len < 0 || len > full)
    throw new Unsupported(`not an IP address or CIDR range: ${v}`);
  return { address_prefix: address, prefix_len: len };
}

function port(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new Unsupported(`not a port: ${v}`);
  return n;
}

function authenticated(m: JsonObject): JsonObject {
  return { authenticated: { principal_name: m } };
}

function metadata(filter: string, keys: readonly string[], value: JsonObject): JsonObject {
  return { metadata: { filter, path: keys.map((key) => ({ key })), value } };
}

function authnString(key: string, v: string): JsonObject {
  return metadata(AUTHN_METADATA, [key], { string_match: stringMatch(v) });
}

// ---- field generators: value → one permission or principal ----

type Gen = (v: string) => JsonObject;

const principalOf: Gen = (v) => authenticated(stringMatch(v, SPIFFE));
const namespaceOf: Gen = (v) =>
  authenticated({ safe_regex: { regex: `.*/ns/${v.replaceAll('*', '.*')}/.*` } });
const directIpOf: Gen = (v) => ({ direct_remote_ip: cidr(v) });
const remoteIpOf: Gen = (v) => ({ remote_ip: cidr(v) });
const requestPrincipalOf: Gen = (v) => authnString('request.auth.principal', v);

const SOURCE_FIELDS: Readonly<Record<string, Gen>> = {
  principals: principalOf,
  requestPrincipals: requestPrincipalOf,
  namespaces: namespaceOf,
  ipBlocks: directIpOf,
  remoteIpBlocks: remoteIpOf,
};

const pathOf: Gen = (v) => {
  if (v.includes('{') || v.includes('}'))
    throw new Unsupported(`path templates are not supported by Weft: ${v}`);
  return { url_path: { path: stringMatch(v) } };
};

const OPERATION_FIELDS: Readonly<Record<string, (v: string) => JsonObject[]>> = {
  hosts: (v) => hostMatches(v).map((header) => ({ header })),
  ports: (v) => [{ destination_port: port(v) }],
  methods: (v) => [{ header: headerMatch(':method', v) }],
  paths: (v) => [pathOf(v)],
};

/** A `when` key → whether it is a permission (connection side) and its value generator. */
function whenGenerator(key: string): { permission: boolean; gen: (v: string) => JsonObject[] } {
  const one = (permission: boolean, gen: Gen): { permission: boolean; gen: (v: string) => JsonObject[] } => ({
    permission,
    gen: (v) => [gen(v)],
  });
  const header = /^request\.headers\[([^\]]+)\]$/.exec(key);
  if (header) return one(false, (v) => ({ header: requestHeaderMatch(header[1], v) }));
  if (key.startsWith('request.auth.claims[')) {
    const claims = [...key.slice('request.auth.claims'.length).matchAll(/\[([^\]]+)\]/g)].map((m) => m[1]);
    if (claims.join('') === '' || `[${claims.join('][')}]` !== key.slice('request.auth.claims'.length))
      throw new Unsupported(`malformed claim key ${key}`);
    const keys = ['request.auth.claims', ...claims];
    // The JWT filter keeps claims as they are in the token: a list claim matches when one element does,
    // a string claim when it matches itself (Istio's authn filter turned every claim into a list).
    return one(false, (v) => ({
      or_ids: {
        ids: [
          metadata(AUTHN_METADATA, keys, { list_match: { one_of: { string_match: stringMatch(v) } } }),
          metadata(AUTHN_METADATA, keys, { string_match: stringMatch(v) }),
        ],
      },
    }));
  }
  const experimental = /^experimental\.(envoy\.filters\.[^[\]]+)\[([^\]]+)\]$/.exec(key);
  if (experimental)
    return one(true, (v) => metadata(experimental[1], [experimental[2]], { string_match: stringMatch(v) }));
  switch (key) {
    case 'source.ip':
      return one(false, directIpOf);
    case 'remote.ip':
      return one(false, remoteIpOf);
    case 'source.namespace':
      return one(false, namespaceOf);
    case 'source.principal':
      return one(false, principalOf);
    case 'request.auth.principal':
      return one(false, requestPrincipalOf);
    case 'request.auth.audiences':
      return one(false, (v) => authnString('request.auth.audiences', v));
    case 'request.auth.presenter':
      return one(false, (v) => authnString('request.auth.presenter', v));
    case 'destination.ip':
      return one(true, (v) => ({ destination_ip: cidr(v) }));
    case 'destination.port':
      return one(true, (v) => ({ destination_port: port(v) }));
    case 'connection.sni':
      return one(true, (v) => ({ requested_server_name: stringMatch(v) }));
  }
  throw new Unsupported(`condition key ${key} is not supported by Weft`);
}

// ---- rules ----

interface Side {
  readonly or: 'or_rules' | 'or_ids';
  readonly and: 'and_rules' | 'and_ids';
  readonly not: 'not_rule' | 'not_id';
  readonly list: 'rules' | 'ids';
}
const PERMISSION: Side = { or: 'or_rules', and: 'and_rules', not: 'not_rule', list: 'rules' };
const PRINCIPAL: Side = { or: 'or_ids', and: 'and_ids', not: 'not_id', list: 'ids' };

/**
 * Generates the OR block of `values` (and the negated one of `notValues`) into `out`. An Unsupported
 * condition drops the rule in ALLOW (rethrown) and is left out otherwise.
 */
function addCondition(
  out: JsonObject[],
  side: Side,
  gen: (v: string) => JsonObject[],
  values: readonly string[] | undefined,
  notValues: readonly string[] | undefined,
  allow: boolean,
): void {
  const block = (list: readonly string[]): JsonObject => ({
    [side.or]: { [side.list]: list.flatMap(gen) },
  });
  try {
    const items: JsonObject[] = [];
    if (values !== undefined && values.length > 0) items.push(block(values));
    if (notValues !== undefined && notValues.length > 0) items.push({ [side.not]: block(notValues) });
    out.push(...items);
  } catch (e) {
    if (!(e instanceof Unsupported) || allow) throw e;
  }
}

function andOf(side: Side, items: JsonObject[]): JsonObject {
  return { [side.and]: { [side.list]: items.length > 0 ? items : [{ any: true }] } };
}

function notField(field: string): string | undefined {
  return /^not[A-Z]/.test(field) ? field[3].toLowerCase() + field.slice(4) : undefined;
}

/** The fields of one source/operation, each with its values and notValues. */
function fieldsOf(
  obj: Record<string, string[] | undefined>,
  known: Readonly<Record<string, unknown>>,
  allow: boolean,
): { field: string; values?: string[]; notValues?: string[] }[] {
  const out = new Map<string, { field: string; values?: string[]; notValues?: string[] }>();
  for (const [key, list] of Object.entries(obj)) {
    const positive = notField(key);
    const field = positive ?? key;
    if (!Object.hasOwn(known, field)) {
      if (allow) throw new Unsupported(`${key} is not supported by Weft`);
      continue;
    }
    const entry = out.get(field) ?? { field };
    if (positive === undefined) entry.values = list;
    else entry.notValues = list;
    out.set(field, entry);
  }
  return [...out.values()];
}

/** One Envoy policy for an Istio rule; throws Unsupported when an ALLOW rule cannot be expressed. */
function rulePolicy(rule: AuthorizationRule, allow: boolean): JsonObject {
  const permWhen: JsonObject[] = [];
  const princWhen: JsonObject[] = [];
  for (const cond of rule.when ?? []) {
    let g: ReturnType<typeof whenGenerator>;
    try {
      g = whenGenerator(cond.key);
    } catch (e) {
      if (!(e instanceof Unsupported) || allow) throw e;
      continue;
    }
    const out = g.permission ? permWhen : princWhen;
    addCondition(out, g.permission ? PERMISSION : PRINCIPAL, g.gen, cond.values, cond.notValues, allow);
  }
  const operations = (rule.to ?? []).map((t) => t.operation ?? {});
  const permissions = (operations.length > 0 ? operations : [undefined]).map((op) => {
    const items: JsonObject[] = [];
    for (const f of op === undefined ? [] : fieldsOf(op, OPERATION_FIELDS, allow))
      addCondition(items, PERMISSION, OPERATION_FIELDS[f.field], f.values, f.notValues, allow);
    return andOf(PERMISSION, [...items, ...permWhen]);
  });
  const sources = (rule.from ?? []).map((f) => f.source ?? {});
  const principals = (sources.length > 0 ? sources : [undefined]).map((src) => {
    const items: JsonObject[] = [];
    for (const f of src === undefined ? [] : fieldsOf(src, SOURCE_FIELDS, allow)) {
      const gen = SOURCE_FIELDS[f.field];
      addCondition(items, PRINCIPAL, (v) => [gen(v)], f.values, f.notValues, allow);
    }
    return andOf(PRINCIPAL, [...items, ...princWhen]);
  });
  return { permissions, principals };
}

const MATCH_NOTHING: JsonObject = {
  permissions: [{ not_rule: { any: true } }],
  principals: [{ not_id: { any: true } }],
};

/** The Envoy policies of one AuthorizationPolicy, by name. */
function policiesOf(policy: Policy, into: Record<string, JsonObject>): void {
  const { name, namespace } = policy.metadata;
  const action = policy.spec.action ?? 'ALLOW';
  const allow = action === 'ALLOW';
  const rules = policy.spec.rules ?? [];
  const prefix = `ns[${namespace}]-policy[${name}]-rule`;
  if (rules.length === 0) {
    // An ALLOW policy without rules allows nothing; DENY and AUDIT ones match nothing and add nothing.
    if (allow) into[`${prefix}[0]`] = MATCH_NOTHING;
    return;
  }
  rules.forEach((rule, i) => {
    try {
      into[`${prefix}[${i}]`] = rulePolicy(rule ?? {}, allow);
    } catch (e) {
      if (!(e instanceof Unsupported)) throw e;
    }
  });
}

const ENVOY_ACTION: Readonly<Record<Action, string>> = { ALLOW: 'ALLOW', DENY: 'DENY', AUDIT: 'LOG' };

function rbacFilter(action: Action, enforced: Policy[], dryRun: Policy[]): JsonObject | undefined {
  const rules: Record<string, JsonObject> = {};
  for (const p of enforced) policiesOf(p, rules);
  const shadow: Record<string, JsonObject> = {};
  for (const p of dryRun) policiesOf(p, shadow);
  // An ALLOW filter enforces even with no policy left (nothing is allowed); the others need a policy.
  const enforce = action === 'ALLOW' ? enforced.length > 0 : Object.keys(rules).length > 0;
  const hasShadow = action === 'ALLOW' ? dryRun.length > 0 : Object.keys(shadow).length > 0;
  if (!enforce && !hasShadow) return undefined;
  const config: JsonObject = { '@type': RBAC_TYPE };
  if (enforce) config.rules = { action: ENVOY_ACTION[action], policies: rules };
  if (hasShadow) config.shadow_rules = { action: ENVOY_ACTION[action], policies: shadow };
  config.shadow_rules_stat_prefix = action === 'DENY' && hasShadow ? SHADOW_DENY_PREFIX : SHADOW_ALLOW_PREFIX;
  return { name: RBAC_FILTER, typed_config: config };
}

/** The RBAC HTTP filters for a proxy, DENY then ALLOW then AUDIT; empty when no policy applies. */
export function authzFilters(proxy: ProxyNode, snap: MeshSnapshot): JsonObject[] {
  const policies = applicable(proxy, snap);
  if (policies.length === 0) return [];
  const out: JsonObject[] = [];
  for (const action of ['DENY', 'ALLOW', 'AUDIT'] as const) {
    const of = policies.filter((p) => (p.spec.action ?? 'ALLOW') === action);
    const filter = rbacFilter(
      action,
      of.filter((p) => !isDryRun(p)),
      of.filter(isDryRun),
    );
    if (filter !== undefined) out.push(filter);
  }
  return out;
}

const fingerprints = new WeakMap<Policy, string>();

function fingerprint(p: Policy): string {
  let f = fingerprints.get(p);
  if (f === undefined) {
    const content = JSON.stringify([p.spec, isDryRun(p)]);
    f = `${p.metadata.namespace}/${p.metadata.name}#${hashString(content).toString(36)}${hashString(content, 1).toString(36)}`;
    fingerprints.set(p, f);
  }
  return f;
}

/** Equal for two proxies that get the same authz filters (the applicable policies and their content). */
export function authzPolicyKey(proxy: ProxyNode, snap: MeshSnapshot): string {
  return applicable(proxy, snap).map(fingerprint).join(',');
}
