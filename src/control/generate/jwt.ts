/**
 * RequestAuthentication → the envoy.filters.http.jwt_authn filter of a workload's inbound side, as istiod
 * translates it:
 * - applicable policies: those of the workload's namespace, then those of the root namespace, each with no
 *   selector or a selector its labels satisfy; policies with targetRef(s) attach to gateways/waypoints by
 *   reference, not to sidecars, and are skipped; all their jwtRules are combined;
 * - one provider per rule, `origins-<i>`, with the issuer, audiences, token locations, forwarding and
 *   claim headers of the rule, the payload in metadata under the issuer's name, and the keys inline (the
 *   rule's jwks, else what the resolver has for its jwksUri, else for its issuer by OpenID discovery);
 * - one rule for every path: any provider's token must verify, or there must be no token at all
 *   (allow_missing). So a bad token is refused with 401 while a request without one passes with no
 *   request principal; requiring a token is AuthorizationPolicy's job.
 */
import type { JsonObject } from '../../core/json.ts';
import { hashString } from '../../core/hash.ts';
import type { IstioResource } from '../../api/istio/resource.ts';
import type { JWTRule, RequestAuthentication } from '../../api/istio/security.ts';
import { labelsMatch } from '../model/discovery.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import type { ProxyNode } from '../xds/types.ts';
import { FAIL_CLOSED_JWKS } from '../security/jwks-resolver.ts';

export const JWT_AUTHN_FILTER = 'envoy.filters.http.jwt_authn';
export const JWT_AUTHN_TYPE =
  'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';

type Policy = IstioResource<RequestAuthentication>;

/** How the generator finds keys named by URI, and (optionally) by issuer through OpenID discovery. */
export type JwksLookup = (uri: string) => string;

function hasTargetRef(spec: RequestAuthentication): boolean {
  return spec.targetRef !== undefined || (spec.targetRefs !== undefined && spec.targetRefs.length > 0);
}

function appliesTo(policy: Policy, proxy: ProxyNode, namespace: string): boolean {
  if (policy.metadata.namespace !== namespace || hasTargetRef(policy.spec)) return false;
  const labels = policy.spec.selector?.matchLabels;
  return labels === undefined || Object.keys(labels).length === 0 || labelsMatch(labels, proxy.labels);
}

/** The policies that apply to the proxy's workload: its namespace's first, then the root namespace's. */
export function requestAuthenticationsFor(proxy: ProxyNode, snap: MeshSnapshot): Policy[] {
  if (proxy.type === 'grpc') return [];
  const all = snap.requestAuthentications ?? [];
  const root = snap.options.rootNamespace;
  const own = all.filter((p) => appliesTo(p, proxy, proxy.namespace));
  return proxy.namespace === root ? own : [...own, ...all.filter((p) => appliesTo(p, proxy, root))];
}

/** A JWKS string the proxy will accept, or the fail-closed one (istiod substitutes a fake key set too). */
function usableJwks(text: string): string {
  try {
    const keys = (JSON.parse(text) as { keys?: unknown } | null)?.keys;
    if (Array.isArray(keys) && keys.length > 0 && keys.every((k) => typeof k === 'object' && k !== null))
      return text;
  } catch {
    // Falls through to the fail-closed set.
  }
  return FAIL_CLOSED_JWKS;
}

function jwksOf(rule: JWTRule, jwks: JwksLookup, jwksForIssuer: JwksLookup | undefined): string {
  if (rule.jwks) return usableJwks(rule.jwks);
  if (rule.jwksUri) return usableJwks(jwks(rule.jwksUri));
  if (jwksForIssuer !== undefined && rule.issuer) return usableJwks(jwksForIssuer(rule.issuer));
  return FAIL_CLOSED_JWKS;
}

function provider(rule: JWTRule, jwks: JwksLookup, jwksForIssuer: JwksLookup | undefined): JsonObject {
  const out: JsonObject = {
    issuer: rule.issuer,
    local_jwks: { inline_string: jwksOf(rule, jwks, jwksForIssuer) },
    payload_in_metadata: rule.issuer,
  };
  if (rule.audiences?.length) out.audiences = [...rule.audiences];
  // With no location given Envoy's default applies (Authorization: Bearer, and access_token), as in Istio.
  if (rule.fromHeaders?.length)
    out.from_headers = rule.fromHeaders.map((h) => ({
      name: h.name,
      ...(h.prefix ? { value_prefix: h.prefix } : {}),
    }));
  if (rule.fromParams?.length) out.from_params = [...rule.fromParams];
  if (rule.fromCookies?.length) out.from_cookies = [...rule.fromCookies];
  if (rule.forwardOriginalToken) out.forward = true;
  if (rule.outputPayloadToHeader) out.forward_payload_header = rule.outputPayloadToHeader;
  const claims = (rule.outputClaimToHeaders ?? []).filter((c) => c.header && c.claim);
  if (claims.length > 0)
    out.claim_to_headers = claims.map((c) => ({ header_name: c.header!, claim_name: c.claim! }));
  return out;
}

/**
 * The jwt_authn HTTP filter for the proxy's inbound side, or undefined when no RequestAuthentication
 * applies (or the applicable ones have no jwtRules). `jwks` answers for jwksUri; `jwksForIssuer`, when
 * given, for rules that name neither jwks nor jwksUri (OpenID discovery); without it such rules fail closed.
 */
export function jwtFilter(
  proxy: ProxyNode,
  snap: MeshSnapshot,
  jwks: JwksLookup,
  jwksForIssuer?: JwksLookup,
): JsonObject | undefined {
  const rules = requestAuthenticationsFor(proxy, snap).flatMap((p) => p.spec.jwtRules ?? []);
  if (rules.length === 0) return undefined;
  const providers: JsonObject = {};
  const requirements: JsonObject[] = [];
  rules.forEach((rule, i) => {
    const name = `origins-${i}`;
    providers[name] = provider(rule, jwks, jwksForIssuer);
    requirements.push({ provider_name: name });
  });
  requirements.push({ allow_missing: {} });
  return {
    name: JWT_AUTHN_FILTER,
    typed_config: {
      '@type': JWT_AUTHN_TYPE,
      providers,
      rules: [{ match: { prefix: '/' }, requires: { requires_any: { requirements } } }],
      bypass_cors_preflight: true,
    },
  };
}

const fingerprints = new WeakMap<Policy, string>();

function fingerprint(p: Policy): string {
  let f = fingerprints.get(p);
  if (f === undefined) {
    const content = JSON.stringify(p.spec);
    f = `${p.metadata.namespace}/${p.metadata.name}#${hashString(content).toString(36)}${hashString(content, 1).toString(36)}`;
    fingerprints.set(p, f);
  }
  return f;
}

/**
 * Equal for two proxies that get the same jwt_authn filter from the same keys: the applicable policies and
 * their content. Keys fetched by URI change without the snapshot changing, so a cache keyed on this must
 * also be dropped when the JWKS resolver reports a change (its `version`).
 */
export function jwtPolicyKey(proxy: ProxyNode, snap: MeshSnapshot): string {
  return requestAuthenticationsFor(proxy, snap).map(fingerprint).join(',');
}
