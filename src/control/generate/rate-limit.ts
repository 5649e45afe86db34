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
import type { ClientKey, GlobalRateLimits, RateLimit, RateLimitPolicy } from '../../api/weft/rate-limit.ts';
import {
  DEFAULT_RLS_DOMAIN,
  GLOBAL_RATE_LIMIT_STAGE,
  POLICY_DESCRIPTOR_KEY,
} from '../../api/weft/rate-limit-descriptors.ts';
import { istioDurationToProto } from '../../config/duration.ts';
import { qualifyHost } from '../../config/hosts.ts';
import { labelsMatch } from '../model/discovery.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import type { ProxyNode } from '../xds/types.ts';
import { outboundClusterName, TYPES } from './names.ts';

export const LOCAL_RATELIMIT_FILTER = 'envoy.filters.http.local_ratelimit';
export const GLOBAL_RATELIMIT_FILTER = 'envoy.filters.http.ratelimit';
/** Longer than Envoy's 20 ms: the service is another Node process and Redis, on shared cores. */
const DEFAULT_GLOBAL_TIMEOUT = '0.1s';
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
    if (limitsSomething(p.spec) && selects(p, proxy, snap)) return p;
  return undefined;
}

function limitsSomething(spec: RateLimitPolicy): boolean {
  return (
    (spec.local?.default ?? spec.local?.perClient) !== undefined ||
    (spec.global?.default ?? spec.global?.perClient) !== undefined
  );
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
  /** HTTP filters, before the router: local first (it costs nothing to ask), then global. */
  readonly filters: JsonObject[];
  /** The inbound route's rate_limits. */
  readonly rateLimits: JsonObject[];
}

export function inboundRateLimit(
  policy: IstioResource<RateLimitPolicy>,
  snap: MeshSnapshot,
): InboundRateLimit {
  const filters: JsonObject[] = [];
  const rateLimits: JsonObject[] = [];
  if ((policy.spec.local?.default ?? policy.spec.local?.perClient) !== undefined) {
    const local = localRateLimit(policy);
    filters.push(local.filter);
    rateLimits.push(...local.rateLimits);
  }
  const global = policy.spec.global;
  if (global !== undefined && (global.default ?? global.perClient) !== undefined) {
    filters.push(globalRateLimitFilter(global, policy.metadata.namespace, snap));
    rateLimits.push(...globalRateLimits(global, `${policy.metadata.namespace}/${policy.metadata.name}`));
  }
  return { filters, rateLimits };
}

/** `host:port` of the rate limit service → its outbound cluster (the host qualified with the policy's namespace). */
export function rateLimitServiceCluster(
  service: string,
  namespace: string,
  snap: MeshSnapshot,
): string | undefined {
  const colon = service.lastIndexOf(':');
  const port = Number(service.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  const host = qualifyHost(service.slice(0, colon), namespace, snap.options.domainSuffix);
  return outboundClusterName(port, '', host);
}

function globalRateLimitFilter(global: GlobalRateLimits, namespace: string, snap: MeshSnapshot): JsonObject {
  // An unusable service address (analyze reports it) gives a cluster that cannot exist: the failure mode applies.
  const cluster = rateLimitServiceCluster(global.service, namespace, snap) ?? `invalid|${global.service}`;
  return {
    name: GLOBAL_RATELIMIT_FILTER,
    typed_config: {
      '@type': TYPES.rateLimit,
      domain: global.domain ?? DEFAULT_RLS_DOMAIN,
      stage: GLOBAL_RATE_LIMIT_STAGE,
      timeout: (global.timeout ? istioDurationToProto(global.timeout) : undefined) ?? DEFAULT_GLOBAL_TIMEOUT,
      failure_mode_deny: global.failureMode === 'Deny',
      // A rate-limited gRPC call is RESOURCE_EXHAUSTED, what gRPC clients expect for quota.
      rate_limited_as_resource_exhausted: true,
      enable_x_ratelimit_headers: 'DRAFT_VERSION_03',
      rate_limit_service: {
        grpc_service: { envoy_grpc: { cluster_name: cluster } },
        transport_api_version: 'V3',
      },
    },
  };
}

/** The descriptors of rate-limit-descriptors.ts: the policy alone, and the policy with the client's value. */
function globalRateLimits(global: GlobalRateLimits, policyName: string): JsonObject[] {
  const policy = { generic_key: { descriptor_key: POLICY_DESCRIPTOR_KEY, descriptor_value: policyName } };
  const out: JsonObject[] = [];
  if (global.default !== undefined) out.push({ stage: GLOBAL_RATE_LIMIT_STAGE, actions: [policy] });
  if (global.perClient !== undefined)
    out.push({
      stage: GLOBAL_RATE_LIMIT_STAGE,
      actions: [policy, clientAction(global.perClient.key).action],
    });
  return out;
}

function localRateLimit(policy: IstioResource<RateLimitPolicy>): {
  filter: JsonObject;
  rateLimits: JsonObject[];
} {
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
