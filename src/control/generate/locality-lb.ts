/**
 * Istio's locality load balancing, as a per-proxy view of a ClusterLoadAssignment: `failover` (the
 * default) gives each locality group an Envoy priority by how closely it matches the caller's locality
 * (and by `failoverPriority` labels), `distribute` gives each group a weight from the rule matching the
 * caller. Failover needs outlier detection (without it Envoy never sees a host go unhealthy), so
 * without `outlierDetection` only `distribute` applies; `enabled: false` turns both off.
 *
 * Zone-aware spill (issue #8): Istio's failover puts only the caller's own locality in priority 0, so when a
 * zone holds a larger share of the caller's replicas than of the destination's capacity, that zone's
 * destination replicas take more than their share of the load. Envoy's zone-aware routing fixes that in each
 * proxy from its local cluster; here the control plane knows both spreads (the caller's service endpoints and
 * the destination's), so it computes the same split centrally and states it as priority-0 locality weights.
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
  spread: CallerSpread | undefined,
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
  const list = [...groups.values()].map((g) => ({ ...g, weight: sumWeights(g.endpoints) }));
  const spill = spread && keys.length === 0 ? zoneAwareSpill(endpoints, caller.locality, spread) : undefined;
  if (spill) {
    // The zones that take part in the split move ahead of every rank (-1); the caller region's zones left out
    // (no residual capacity) keep their rank, so they are still the first failover target after them.
    for (const g of list) {
      if (g.locality.region !== caller.locality.region) continue;
      const weight = spill.get(localityKey(g.locality));
      if (weight === undefined) continue;
      g.rank = -1;
      g.weight = weight;
    }
  }
  // Envoy wants priorities from 0 without gaps.
  const ranks = [...new Set(list.map((g) => g.rank))].sort((a, b) => a - b);
  return list.map((g) => ({
    locality: g.locality,
    priority: ranks.indexOf(g.rank),
    weight: g.weight,
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

/**
 * The caller's view of a service's endpoints under a locality policy. `spread` (the caller's own service
 * replicas per zone, see callerSpreadOf) turns on the zone-aware spill of failover views.
 */
export function localityView(
  endpoints: readonly Endpoint[],
  policy: LocalityPolicy,
  caller: LocalityCaller,
  spread?: CallerSpread,
): LocalityGroup[] {
  return policy.kind === 'failover'
    ? failoverView(endpoints, policy, caller, spread)
    : distributeView(endpoints, policy, caller);
}

/**
 * Whether any rule may give callers different views: 'labels' when a view may depend on the caller's labels,
 * either through failoverPriority or through the zone-aware spill of a failover view (the labels pick the
 * caller's own service, whose spread over zones shapes the view).
 */
export type LocalityUse = 'none' | 'locality' | 'labels';

export function localityUse(rules: readonly IstioResource<DestinationRule>[]): LocalityUse {
  let use: LocalityUse = 'none';
  const visit = (p: TrafficPolicy | PortTrafficPolicy | undefined): void => {
    if (!p) return;
    const setting = p.loadBalancer?.localityLbSetting;
    if ((setting?.failoverPriority?.length ?? 0) > 0 || mayBeZoneAware(p)) use = 'labels';
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

/**
 * Whether a policy written in a rule may yield a zone-aware failover view once merged (subset over port over
 * rule): outlier detection without `distribute`, `failoverPriority` or `enabled: false`. Errs towards yes, as
 * its users (cache keys, endpoint push fan-out) only lose sharing by it, never correctness.
 */
function mayBeZoneAware(p: TrafficPolicy | PortTrafficPolicy): boolean {
  const setting = p.loadBalancer?.localityLbSetting;
  return (
    p.outlierDetection !== undefined &&
    setting?.enabled !== false &&
    (setting?.distribute?.length ?? 0) === 0 &&
    (setting?.failoverPriority?.length ?? 0) === 0
  );
}

/** Whether some policy of the rule (top level, port level or subset) may yield a zone-aware view. */
export function ruleMayBeZoneAware(rule: IstioResource<DestinationRule>): boolean {
  const policies = [rule.spec.trafficPolicy, ...(rule.spec.subsets ?? []).map((s) => s.trafficPolicy)];
  return policies.some(
    (p) => p !== undefined && (mayBeZoneAware(p) || (p.portLevelSettings ?? []).some(mayBeZoneAware)),
  );
}

/**
 * The caller's own service replicas that send traffic, per zone of the caller's region (Envoy's "local
 * cluster"). `key` is equal for equal spreads: views are cached by it.
 */
export interface CallerSpread {
  readonly byZone: ReadonlyMap<string, number>;
  readonly key: string;
}

/**
 * The spread of the caller's replicas (the endpoints of the services that select the caller, one per
 * workload) over the zones of `region`. Only healthy replicas count: one out of service takes no requests, so
 * sends none on. Undefined when fewer than two zones have any, where the spill does not apply: a lone client,
 * a caller without a service, or a service kept in one zone on purpose (Envoy too once required the local
 * cluster to span the upstream's zones), whose traffic Istio's failover keeps local as before.
 */
export function callerSpreadOf(replicas: readonly Endpoint[], region: string): CallerSpread | undefined {
  const seen = new Set<string>();
  const byZone = new Map<string, number>();
  for (const e of replicas) {
    if (!e.healthy || e.locality.region !== region) continue;
    const id = `${e.namespace}\u0000${e.workloadName}\u0000${e.address}`;
    if (seen.has(id)) continue;
    seen.add(id);
    byZone.set(e.locality.zone, (byZone.get(e.locality.zone) ?? 0) + 1);
  }
  if (byZone.size < 2) return undefined;
  const sorted = [...byZone].sort(([a], [b]) => a.localeCompare(b));
  return { byZone: new Map(sorted), key: sorted.map(([z, n]) => `${z}=${n}`).join(',') };
}

/** Locality weights are uint32 and Envoy rejects a priority whose weights sum past that: stay far below. */
const MAX_TOTAL_WEIGHT = 1_000_000;

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/**
 * Envoy's zone-aware split for a caller in `local`: with caller shares c(z) (its replicas) and destination
 * shares u(z) (endpoint weight, i.e. capacity), the local zone keeps min(1, u(local) / c(local)) of the
 * traffic, and the rest goes to the zones with residual capacity u(z) - c(z) > 0, in proportion to it. Every
 * zone then serves about its capacity share of the callers' total traffic. Returns integer weights for the
 * zones that receive traffic (at most MAX_TOTAL_WEIGHT in sum, exact ratios when they fit), or undefined when
 * the local zone has the capacity for all its callers' traffic (ratio ≥ 1) or nothing says it is overloaded.
 *
 * Exact arithmetic: with U and C the totals, the shares scaled by U·C are integers (u(z)·U·C = U(z)·C), and
 * local : zone z = u(local)·R : (c(local) - u(local))·r(z) with R the sum of the positive r(z). BigInt keeps
 * these exact whatever the replica counts and endpoint weights.
 */
export function zoneAwareWeights(
  capacity: ReadonlyMap<string, number>,
  callers: ReadonlyMap<string, number>,
  local: string,
): Map<string, number> | undefined {
  const zones = [...new Set([...capacity.keys(), ...callers.keys()])].sort();
  const cap = (z: string): bigint => BigInt(capacity.get(z) ?? 0);
  const cal = (z: string): bigint => BigInt(callers.get(z) ?? 0);
  const U = zones.reduce((sum, z) => sum + cap(z), 0n);
  const C = zones.reduce((sum, z) => sum + cal(z), 0n);
  if (U === 0n || cal(local) === 0n) return undefined;
  const keep = cap(local) * C; // u(local)·U·C
  const load = cal(local) * U; // c(local)·U·C
  if (keep >= load) return undefined;
  const residual = new Map<string, bigint>();
  let total = 0n;
  for (const z of zones) {
    if (z === local) continue;
    const r = cap(z) * C - cal(z) * U;
    if (r <= 0n) continue;
    residual.set(z, r);
    total += r;
  }
  // The residuals of the other zones sum to at least load - keep > 0, so some zone has room.
  const exact = new Map<string, bigint>();
  if (keep > 0n) exact.set(local, keep * total);
  for (const [z, r] of residual) exact.set(z, (load - keep) * r);
  return integerWeights(exact);
}

/**
 * The zone-aware weights of the caller region's localities (by localityKey), or undefined when the caller's
 * zone keeps all its traffic. The split is by zone, the unit cross-zone cost and capacity planning work in; a
 * zone's weight is shared by its sub-zones in proportion to their capacity, exactly: a zone that has to spill
 * needs all of its capacity anyway, so its sub-zones do not fail over in turn. With no spill the view is
 * Istio's, sub-zone priorities included.
 */
function zoneAwareSpill(
  endpoints: readonly Endpoint[],
  caller: Locality,
  spread: CallerSpread,
): Map<string, number> | undefined {
  const byZone = new Map<string, number>();
  const byLocality = new Map<string, { zone: string; weight: number }>();
  for (const e of endpoints) {
    if (e.locality.region !== caller.region) continue;
    byZone.set(e.locality.zone, (byZone.get(e.locality.zone) ?? 0) + e.weight);
    const key = localityKey(e.locality);
    const known = byLocality.get(key);
    if (known) known.weight += e.weight;
    else byLocality.set(key, { zone: e.locality.zone, weight: e.weight });
  }
  const zones = zoneAwareWeights(byZone, spread.byZone, caller.zone);
  if (!zones) return undefined;
  // weight(locality) = Z(zone) · W(locality) / W(zone), scaled by the lcm of the W(zone) to stay whole.
  let lcm = 1n;
  for (const z of zones.keys()) {
    const w = BigInt(byZone.get(z) ?? 0);
    lcm = (lcm * w) / gcd(lcm, w);
  }
  const exact = new Map<string, bigint>();
  for (const [key, l] of byLocality) {
    const zoneWeight = zones.get(l.zone);
    if (zoneWeight === undefined || l.weight <= 0) continue;
    exact.set(key, (BigInt(zoneWeight) * BigInt(l.weight) * lcm) / BigInt(byZone.get(l.zone) ?? 1));
  }
  return exact.size > 0 ? integerWeights(exact) : undefined;
}

/** Exact weights reduced by their gcd; rounded to parts of MAX_TOTAL_WEIGHT (each at least 1) when too fine. */
function integerWeights(exact: ReadonlyMap<string, bigint>): Map<string, number> {
  let divisor = 0n;
  for (const w of exact.values()) divisor = gcd(divisor, w);
  if (divisor === 0n) return new Map();
  let sum = 0n;
  for (const w of exact.values()) sum += w / divisor;
  const out = new Map<string, number>();
  for (const [key, w] of exact) {
    const reduced = w / divisor;
    out.set(
      key,
      sum <= BigInt(MAX_TOTAL_WEIGHT)
        ? Number(reduced)
        : Math.max(1, Number((reduced * BigInt(MAX_TOTAL_WEIGHT) + sum / 2n) / sum)),
    );
  }
  return out;
}
