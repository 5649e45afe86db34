/**
 * ClusterLoadAssignments for EDS clusters: the service port's endpoints (filtered by the subset's labels),
 * grouped by locality, with weights and health.
 */
import type { JsonObject } from '../../core/json.ts';
import type { IstioResource } from '../../api/istio/resource.ts';
import type { DestinationRule } from '../../api/istio/networking.ts';
import { labelsMatch } from '../model/discovery.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import type { Endpoint } from '../model/types.ts';
import { outboundClusterName, parseClusterName, TYPES } from './names.ts';
import { destinationRuleFor, hostMatches } from './scope.ts';

function localityKey(e: Endpoint): string {
  return `${e.locality.region}/${e.locality.zone}/${e.locality.subZone}`;
}

/** What an assignment is made of: the service port's endpoints and, for a subset, its rule and labels. */
interface AssignmentSource {
  /** The service port's endpoint list (the same list while it does not change). */
  endpoints: readonly Endpoint[];
  rule: IstioResource<DestinationRule> | undefined;
  selector: Readonly<Record<string, string>> | undefined;
}

function sourceOf(
  clusterName: string,
  proxyNamespace: string,
  snap: MeshSnapshot,
): AssignmentSource | undefined {
  const parsed = parseClusterName(clusterName);
  if (!parsed || parsed.direction !== 'outbound') return undefined;
  const service = snap.serviceByHost.get(parsed.host);
  if (!service?.ports.some((p) => p.number === parsed.port)) return undefined;
  const endpoints = snap.endpoints(parsed.host, parsed.port);
  if (!parsed.subset) return { endpoints, rule: undefined, selector: undefined };
  const rule = destinationRuleFor(parsed.host, proxyNamespace, snap);
  const subset = rule?.spec.subsets?.find((s) => s.name === parsed.subset);
  if (!subset) return undefined;
  return { endpoints, rule, selector: subset.labels ?? {} };
}

function assignment(clusterName: string, endpoints: readonly Endpoint[]): JsonObject {
  const byLocality = new Map<string, Endpoint[]>();
  for (const e of endpoints) {
    const key = localityKey(e);
    const group = byLocality.get(key);
    if (group) group.push(e);
    else byLocality.set(key, [e]);
  }
  const groups = [...byLocality.entries()].sort(([a], [b]) => a.localeCompare(b));
  return {
    '@type': TYPES.endpoint,
    cluster_name: clusterName,
    endpoints: groups.map(([, members]) => {
      const { region, zone, subZone } = members[0].locality;
      const locality: JsonObject = {};
      if (region) locality.region = region;
      if (zone) locality.zone = zone;
      if (subZone) locality.sub_zone = subZone;
      // Always set (gRPC rejects a locality-less group); the weight is the group's total, as Istio sends it.
      return {
        locality,
        load_balancing_weight: members.reduce((sum, e) => sum + e.weight, 0),
        lb_endpoints: [...members]
          .sort((a, b) => `${a.address}:${a.port}`.localeCompare(`${b.address}:${b.port}`))
          .map((e) => ({
            endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
            health_status: e.healthy ? 'HEALTHY' : 'UNHEALTHY',
            load_balancing_weight: e.weight,
          })),
      };
    }),
  };
}

function members(source: AssignmentSource): readonly Endpoint[] {
  const selector = source.selector;
  return selector ? source.endpoints.filter((e) => labelsMatch(selector, e.labels)) : source.endpoints;
}

function build(clusterName: string, source: AssignmentSource): JsonObject {
  return assignment(clusterName, members(source));
}

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The assignment for an `outbound|PORT|SUBSET|HOST` cluster, or undefined for a name Weft did not generate. */
export function loadAssignment(
  clusterName: string,
  proxyNamespace: string,
  snap: MeshSnapshot,
): JsonObject | undefined {
  const source = sourceOf(clusterName, proxyNamespace, snap);
  return source && build(clusterName, source);
}

/**
 * loadAssignment, remembered: an assignment is rebuilt only when its endpoint list (compared by identity: the
 * aggregator keeps a list that did not change) or its subset's rule changed, and equal inputs give the very same
 * object, so its encoding is shared by every proxy and reused from one push to the next. Valid for snapshots of
 * one configuration (configVersion); a new configuration needs a new cache.
 */
export class AssignmentCache {
  readonly #entries = new Map<
    string,
    { endpoints: readonly Endpoint[]; members: readonly Endpoint[]; assignment: JsonObject }
  >();

  get(clusterName: string, proxyNamespace: string, snap: MeshSnapshot): JsonObject | undefined {
    const source = sourceOf(clusterName, proxyNamespace, snap);
    if (!source) return undefined;
    const rule = source.rule ? `${source.rule.metadata.namespace}/${source.rule.metadata.name}` : '';
    const key = `${clusterName}\u0000${rule}`;
    const known = this.#entries.get(key);
    if (known && known.endpoints === source.endpoints) return known.assignment;
    const selected = members(source);
    // The service's endpoints changed, but maybe not this subset's: then it is the same assignment.
    if (known && sameItems(known.members, selected)) {
      known.endpoints = source.endpoints;
      return known.assignment;
    }
    const built = assignment(clusterName, selected);
    this.#entries.set(key, { endpoints: source.endpoints, members: selected, assignment: built });
    return built;
  }
}

/**
 * The EDS clusters whose assignment may differ after the endpoints of these `hostname|port` keys changed: the
 * service port's cluster and one per subset of any DestinationRule for the host (whichever namespace a proxy
 * sees it from). The endpoint-only fast path regenerates just these.
 */
export function endpointClusterNames(changedKeys: Iterable<string>, snap: MeshSnapshot): Set<string> {
  const names = new Set<string>();
  for (const key of changedKeys) {
    const bar = key.lastIndexOf('|');
    const host = key.slice(0, bar);
    const port = Number(key.slice(bar + 1));
    names.add(outboundClusterName(port, '', host));
    for (const dr of snap.destinationRules) {
      if (!hostMatches(dr.spec.host, host)) continue;
      for (const subset of dr.spec.subsets ?? []) names.add(outboundClusterName(port, subset.name, host));
    }
  }
  return names;
}
