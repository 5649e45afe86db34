/**
 * RateLimitPolicy → the inbound side of the workloads it selects (rate limits protect the server, as
 * Istio's EnvoyFilter recipes apply them): an envoy.filters.http.local_ratelimit filter in the inbound
 * connection manager, with its default bucket and per-client descriptors, plus rate_limits actions on the
 * inbound route that produce the client descriptor.
 *
 * Client keys become descriptor entries keyed "client" (remote addresses use Envoy's fixed
 * "remote_address" key); an empty value in the configured descriptor gives every client its own bucket,
 * and each override is an exact-value descriptor. The principal is read from x-forwarded-client-cert
 * until mTLS exists (the proxy takes its URI element).
 */
import type { JsonObject } from '../../core/json.ts';
import type { IstioResource } from '../../api/istio/resource.ts';
import type { ClientKey, RateLimit, RateLimitPolicy } from '../../api/weft/rate-limit.ts';
import { qualifyHost } from '../../config/hosts.ts';
import { labelsMatch } from '../model/discovery.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import type { ProxyNode } from '../xds/types.ts';
import { TYPES } from './names.ts';

export const LOCAL_RATELIMIT_FILTER = 'envoy.filters.http.local_ratelimit';
const UNIT_SECONDS = { SECOND: 1, MINUTE: 60, HOUR: 3600 } as const;
const ALL = { default_value: { numerator: 100, denominator: 'HUNDRED' } };

/** Whether a policy selects the proxy's workload: by labels in its namespace, or by a service host it serves. */
function selects(policy: IstioResource<RateLimitPolicy>, proxy: ProxyNode, snap: MeshSnapshot): boolean {
  const spec = policy.spec;
  const labels = spec.selector?.matchLabels;
  if (labels !== undefined && Object.keys(labels).length > 0)
    return policy.metadata.namespace === proxy.namespace && labelsMatch(labels, proxy.labels);
  const target = spec.targetRef?.name;
  if (target === undefined) return false;
  const service = snap.serviceByHost.get(
    qualifyHost(target, policy.metadata.namespace, snap.options.domainSuffix),
  );
  if (service === undefined) return false;
  return service.ports.some((p) =>
    snap
      .endpoints(service.hostname, p.number)
      .some(
        (e) =>
          (e.workloadName !== '' &&
            e.workloadName === proxy.workloadName &&
            e.namespace === proxy.namespace) ||
          proxy.ipAddresses.includes(e.address),
      ),
  );
}

/**
 * The policy for a proxy's inbound side: the first (by namespace/name) that selects it and sets a local
 * limit. Several policies on one workload are not merged.
 */
export function rateLimitPolicyFor(
  proxy: ProxyNode,
  snap: MeshSnapshot,
): IstioResource<RateLimitPolicy> | undefined {
  for (const p of snap.rateLimitPolicies ?? [])
    if ((p.spec.local?.default ?? p.spec.local?.perClient) !== undefined && selects(p, proxy, snap)) return p;
  return undefined;
}

function tokenBucket(limit: RateLimit): JsonObject {
  if (limit.requestsPerUnit !== undefined) {
    const n = limit.requestsPerUnit;
    return { max_tokens: n, tokens_per_fill: n, fill_interval: `${UNIT_SECONDS[limit.unit ?? 'SECOND']}s` };
  }
  return {
    max_tokens: limit.maxTokens ?? 1,
    tokens_per_fill: limit.tokensPerFill ?? limit.maxTokens ?? 1,
    fill_interval: limit.fillInterval ?? '1s',
  };
}

function clientAction(key: ClientKey): { action: JsonObject; descriptorKey: string } {
  const header = (name: string): { action: JsonObject; descriptorKey: string } => ({
    action: { request_headers: { header_name: name, descriptor_key: 'client' } },
    descriptorKey: 'client',
  });
  if (key.remoteAddress !== undefined)
    return { action: { remote_address: {} }, descriptorKey: 'remote_address' };
  if (key.header !== undefined) return header(key.header.toLowerCase());
  if (key.path !== undefined) return header(':path');
  if (key.method !== undefined) return header(':method');
  return header('x-forwarded-client-cert');
}

export interface InboundRateLimit {
  readonly filter: JsonObject;
  /** The inbound route's rate_limits (empty without per-client limits). */
  readonly rateLimits: JsonObject[];
}

export function inboundRateLimit(policy: IstioResource<RateLimitPolicy>): InboundRateLimit {
  const local = policy.spec.local ?? {};
  const config: JsonObject = {
    '@type': TYPES.localRateLimit,
    stat_prefix: 'http_local_rate_limiter',
    filter_enabled: ALL,
    filter_enforced: ALL,
    enable_x_ratelimit_headers: 'DRAFT_VERSION_03',
  };
  if (local.default !== undefined) config.token_bucket = tokenBucket(local.default);
  const rateLimits: JsonObject[] = [];
  const perClient = local.perClient;
  if (perClient !== undefined) {
    const { action, descriptorKey } = clientAction(perClient.key);
    rateLimits.push({ actions: [action] });
    config.descriptors = [
      ...(perClient.overrides ?? []).map((o) => ({
        entries: [{ key: descriptorKey, value: o.value }],
        token_bucket: tokenBucket(o),
      })),
      { entries: [{ key: descriptorKey, value: '' }], token_bucket: tokenBucket(perClient) },
    ];
  }
  return { filter: { name: LOCAL_RATELIMIT_FILTER, typed_config: config }, rateLimits };
}
