/**
 * The limits `weft ratelimit` enforces, read once from the RateLimitPolicy resources' `spec.global` and
 * looked up per descriptor (the descriptor contract is in src/api/weft/rate-limit-descriptors.ts).
 */
import type { IstioResource } from '../api/istio/resource.ts';
import type { ClientKey, GlobalRateLimits, RateLimitPolicy, WindowLimit } from '../api/weft/rate-limit.ts';
import {
  CLIENT_DESCRIPTOR_KEY,
  DEFAULT_RLS_DOMAIN,
  POLICY_DESCRIPTOR_KEY,
  REMOTE_ADDRESS_DESCRIPTOR_KEY,
} from '../api/weft/rate-limit-descriptors.ts';

export type WindowAlgorithm = NonNullable<GlobalRateLimits['algorithm']>;
export type WindowUnit = WindowLimit['unit'];

export interface Limit {
  requestsPerUnit: number;
  unit: WindowUnit;
}

export interface PerClientLimits {
  limit: Limit;
  /** The descriptor key the proxies send the client value under (`client` or `remote_address`). */
  descriptorKey: string;
  /** Limits for particular client values (exact match). */
  overrides: ReadonlyMap<string, Limit>;
}

export interface PolicyLimits {
  /** `namespace/name` of the RateLimitPolicy: the value of the descriptor's first entry. */
  policy: string;
  algorithm: WindowAlgorithm;
  default?: Limit;
  perClient?: PerClientLimits;
}

/** domain → policy (`ns/name`) → its limits. */
export type LimitTable = ReadonlyMap<string, ReadonlyMap<string, PolicyLimits>>;

export interface DescriptorEntry {
  key: string;
  value: string;
}

/** What a descriptor is counted against: its limit, and the identity of its counter. */
export interface ResolvedLimit {
  limit: Limit;
  algorithm: WindowAlgorithm;
  /** Identifies the counter: domain, policy and (for per-client limits) the client value. */
  counter: readonly string[];
}

const UNIT_MS: Readonly<Record<WindowUnit, number>> = {
  SECOND: 1000,
  MINUTE: 60_000,
  HOUR: 3_600_000,
  DAY: 86_400_000,
};

export function unitMs(unit: WindowUnit): number {
  return UNIT_MS[unit];
}

function clientDescriptorKey(key: ClientKey): string {
  return key.remoteAddress !== undefined ? REMOTE_ADDRESS_DESCRIPTOR_KEY : CLIENT_DESCRIPTOR_KEY;
}

const limitOf = (l: WindowLimit): Limit => ({ requestsPerUnit: l.requestsPerUnit, unit: l.unit });

/** Builds the lookup from loaded resources; resources of other kinds and policies without `global` are skipped. */
export function buildLimitTable(resources: readonly IstioResource[]): LimitTable {
  const table = new Map<string, Map<string, PolicyLimits>>();
  for (const r of resources) {
    if (r.kind !== 'RateLimitPolicy') continue;
    const global = (r.spec as RateLimitPolicy).global;
    if (!global) continue;
    const policy = `${r.metadata.namespace}/${r.metadata.name}`;
    const limits: PolicyLimits = { policy, algorithm: global.algorithm ?? 'FixedWindow' };
    if (global.default) limits.default = limitOf(global.default);
    if (global.perClient) {
      const pc = global.perClient;
      limits.perClient = {
        limit: limitOf(pc),
        descriptorKey: clientDescriptorKey(pc.key),
        overrides: new Map((pc.overrides ?? []).map((o) => [o.value, limitOf(o)])),
      };
    }
    const domain = global.domain ?? DEFAULT_RLS_DOMAIN;
    let policies = table.get(domain);
    if (!policies) table.set(domain, (policies = new Map<string, PolicyLimits>()));
    policies.set(policy, limits);
  }
  return table;
}

/**
 * The limit a descriptor is counted against, or undefined when none applies (unknown domain or policy, a
 * shape the contract does not define, or a limit the policy does not have): the service answers OK then.
 * The second entry's key must be the one the policy's client key implies, so that a proxy still sending
 * header values after the policy switched to remote addresses does not spend the new counters.
 */
export function resolveLimit(
  table: LimitTable,
  domain: string,
  entries: readonly DescriptorEntry[],
): ResolvedLimit | undefined {
  const first = entries[0];
  if (!first || first.key !== POLICY_DESCRIPTOR_KEY) return undefined;
  const limits = table.get(domain)?.get(first.value);
  if (!limits) return undefined;
  if (entries.length === 1) {
    if (!limits.default) return undefined;
    return { limit: limits.default, algorithm: limits.algorithm, counter: [domain, limits.policy] };
  }
  const second = entries[1];
  const perClient = limits.perClient;
  if (entries.length !== 2 || !perClient || second.key !== perClient.descriptorKey) return undefined;
  return {
    limit: perClient.overrides.get(second.value) ?? perClient.limit,
    algorithm: limits.algorithm,
    counter: [domain, limits.policy, second.key, second.value],
  };
}
