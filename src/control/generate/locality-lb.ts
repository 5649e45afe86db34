/**
 * Istio's locality load balancing, as a per-proxy view of a ClusterLoadAssignment: `failover` (the
 * default) gives each locality group an Envoy priority by how closely it matches the caller's locality
 * (and by `failoverPriority` labels), `distribute` gives each group a weight from the rule matching the
 * caller. Failover needs outlier detection (without it Envoy never sees a host go unhealthy), so
 * without `outlierDetection` only `distribute` applies; `enabled: false` turns both off.
 */
import type { IstioResource } from '../../api/istio/resource.ts';
import type {
  DestinationRule,
  LocalityLoadBalancerSetting,
  PortTrafficPolicy,
  TrafficPolicy,
} from '../../api/istio/networking.ts';
import type { Endpoint } from '../model/types.ts';
import type { Locality } from '../xds/types.ts';

export type LocalityPolicy =
  | {
      readonly kind: 'failover';
      readonly failover: readonly { readonly from: string; readonly to: string }[];
      readonly failoverPriority: readonly string[];
    }
  | { readonly kind: 'distribute'; readonly rules: readonly DistributeRule[] };

export interface DistributeRule {
  readonly from: string;
  /** Locality pattern → percent, in the order written. */
  readonly to: readonly (readonly [string, number])[];
}

/** What of the caller a locality view depends on. */
export interface LocalityCaller {
  readonly locality: Locality;
  readonly labels: Readonly<Record<string, string>>;
}

/** The locality policy of a merged traffic policy (subset over port over rule), or undefined when none applies. */
export function localityPolicy(policy: TrafficPolicy | undefined): LocalityPolicy | undefined {
  const setting: LocalityLoadBalancerSetting | undefined = policy?.loadBalancer?.localityLbSetting;
  if (setting?.enabled === false) return undefined;
  const distribute = setting?.distribute ?? [];
  if (distribute.length > 0) {
    return {
      kind: 'distribute',
      rules: distribute.map((d) => ({ from: d.from ?? '*', to: Object.entries(d.to ?? {}) })),
    };
  }
  if (!policy?.outlierDetection) return undefined;
  return {
    kind: 'failover',
    failover: (setting?.failover ?? []).map((f) => ({ from: f.from ?? '', to: f.to ?? '' })),
    failoverPriority: setting?.failoverPriority ?? [],
  };
}

/** Istio's locality pattern `region/zone/subzone`: `*` or a missing part matches anything (the region must be given). */
export function localityMatches(locality: Locality, pattern: string): boolean {
  const [region = '', zone = '', subZone = ''] = pattern.split('/');
  return (
    (region === '*' || region === locality.region) &&
    (zone === '*' || zone === '' || zone === locality.zone) &&
    (subZone === '*' || subZone === '' || subZone === locality.subZone)
  );
}

const TOPOLOGY: Record<string, (l: Locality) => string> = {
  'topology.kubernetes.io/region': (l) => l.region,
  'topology.kubernetes.io/zone': (l) => l.zone,
  'topology.istio.io/subzone': (l) => l.subZone,
};

function labelValue(
  key: string,
  labels: Readonly<Record<string, string>>,
  locality: Locality,
): string | undefined {
  const fromTopology = TOPOLOGY[key];
  if (fromTopology) return fromTopology(locality) || undefined;
  return labels[key];
}

/**
 * A caller's key for this policy: callers with equal keys get equal views, so one view is built and
 * encoded per key, not per proxy.
 */
export function callerKey(policy: LocalityPolicy, caller: LocalityCaller): string {
  const { region, zone, subZone } = caller.locality;
  if (policy.kind === 'distribute') {
    return String(policy.rules.findIndex((r) => localityMatches(caller.locality, r.from)));
  }
  const values = policy.failoverPriority.map((key) =>
    key.includes('=') ? '' : (labelValue(key, caller.labels, caller.locality) ?? '\u0001'),
  );
  return [region, zone, subZone, ...values].join('\u0000');
}

/** 0: region, zone and sub-zone match; 1: region and zone; 2: region; 3: none (4: outside the failover target). */
function localityRank(
  caller: Locality,
  endpoint: Locality,
  failover: LocalityPolicy & { kind: 'failover' },
): number {
  if (caller.region === endpoint.region) {
    if (caller.zone === endpoint.zone) return caller.subZone === endpoint.subZone ? 0 : 1;
    return 2;
  }
  const rule = failover.failover.find((f) => f.from === caller.region);
  return rule !== undefined && endpoint.region !== rule.to ? 4 : 3;
}

/** How many of the leading failoverPriority labels the endpoint does not share with the caller. */
function labelRank(keys: readonly string[], caller: LocalityCaller, endpoint: Endpoint): number {
  let matched = 0;
  for (const key of keys) {
    const eq = key.indexOf('=');
    const want = eq >= 0 ? key.slice(eq + 1) : labelValue(key, caller.labels, caller.locality);
    const name = eq >= 0 ? key.slice(0, eq) : key;
    if (want === undefined || labelValue(name, endpoint.labels, endpoint.locality) !== want) break;
    matched++;
  }
  return keys.length - matched;
}

/** One group of a caller's view: endpoints of one locality at one priority, with the group's weight. */
export interface LocalityGroup {
  readonly locality: Locality;
  readonly priority: number;
  readonly weight: number;
  readonly endpoints: readonly Endpoint[];
}

function localityKey(l: Locality): string {
  return `${l.region}/${l.zone}/${l.subZone}`;
}

function sumWeights(endpoints: readonly Endpoint[]): number {
  return endpoints.reduce((sum, e) => sum + e.weight, 0);
}

function failoverView(
  endpoints: readonly Endpoint[],
  policy: LocalityPolicy & { kind: 'failover' },
  caller: LocalityCaller,
): LocalityGroup[] {
  const keys = policy.failoverPriority;
  // failoverPriority alone orders by labels only; with failover too, locality ranks order within each label rank.
  const useLocality = keys.length === 0 || policy.failover.length > 0;
  const groups = new Map<string, { locality: Locality; rank: number; endpoints: Endpoint[] }>();
  for (const e of endpoints) {
    const rank =
      labelRank(keys, caller, e) * 5 + (useLocality ? localityRank(caller.locality, e.locality, policy) : 0);
    const key = `${rank}|${localityKey(e.locality)}`;
    const group = groups.get(key);
    if (group) group.endpoints.push(e);
    else groups.set(key, { locality: e.locality, rank, endpoints: [e] });
  }
  // Envoy wants priorities from 0 without gaps.
  const ranks = [...new Set([...groups.values()].map((g) => g.rank))].sort((a, b) => a - b);
  return [...groups.values()].map((g) => ({
    locality: g.locality,
    priority: ranks.indexOf(g.rank),
    weight: sumWeights(g.endpoints),
    endpoints: g.endpoints,
  }));
}

function distributeView(
  endpoints: readonly Endpoint[],
  policy: LocalityPolicy & { kind: 'distribute' },
  caller: LocalityCaller,
): LocalityGroup[] {
  const byLocality = new Map<string, { locality: Locality; endpoints: Endpoint[] }>();
  for (const e of endpoints) {
    const key = localityKey(e.locality);
    const group = byLocality.get(key);
    if (group) group.endpoints.push(e);
    else byLocality.set(key, { locality: e.locality, endpoints: [e] });
  }
  const plain = (): LocalityGroup[] =>
    [...byLocality.values()].map((g) => ({ ...g, priority: 0, weight: sumWeights(g.endpoints) }));
  const rule = policy.rules.find((r) => localityMatches(caller.locality, r.from));
  if (!rule) return plain();
  // Each group takes the first `to` pattern it matches; a pattern's percent is shared by its groups.
  const members = new Map<number, { locality: Locality; endpoints: Endpoint[] }[]>();
  for (const g of byLocality.values()) {
    const index = rule.to.findIndex(([pattern]) => localityMatches(g.locality, pattern));
    if (index < 0) continue; // a locality the rule does not name receives nothing
    const list = members.get(index);
    if (list) list.push(g);
    else members.set(index, [g]);
  }
  const out: LocalityGroup[] = [];
  for (const [index, groups] of members) {
    const percent = rule.to[index][1];
    if (percent <= 0) continue;
    // Scaled so that a percent split over several localities keeps integer weights in proportion.
    const weight = Math.max(1, Math.round((percent * 1000) / groups.length));
    for (const g of groups) out.push({ ...g, priority: 0, weight });
  }
  return out;
}

/** The caller's view of a service's endpoints under a locality policy. */
export function localityView(
  endpoints: readonly Endpoint[],
  policy: LocalityPolicy,
  caller: LocalityCaller,
): LocalityGroup[] {
  return policy.kind === 'failover'
    ? failoverView(endpoints, policy, caller)
    : distributeView(endpoints, policy, caller);
}

/** Whether any rule may give callers different views: 'labels' when one orders by failoverPriority labels. */
export type LocalityUse = 'none' | 'locality' | 'labels';

export function localityUse(rules: readonly IstioResource<DestinationRule>[]): LocalityUse {
  let use: LocalityUse = 'none';
  const visit = (p: TrafficPolicy | PortTrafficPolicy | undefined): void => {
    if (!p) return;
    const setting = p.loadBalancer?.localityLbSetting;
    if ((setting?.failoverPriority?.length ?? 0) > 0) use = 'labels';
    else if (use === 'none' && (p.outlierDetection || (setting?.distribute?.length ?? 0) > 0))
      use = 'locality';
  };
  for (const rule of rules) {
    const policies = [rule.spec.trafficPolicy, ...(rule.spec.subsets ?? []).map((s) => s.trafficPolicy)];
    for (const policy of policies) {
      visit(policy);
      for (const port of policy?.portLevelSettings ?? []) visit(port);
    }
  }
  return use;
}
