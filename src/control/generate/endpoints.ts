/**
 * ClusterLoadAssignments for EDS clusters: the service port's endpoints (filtered by the subset's labels),
 * grouped by locality, with weights and health.
 */
import type { JsonObject } from '../../core/json.ts';
import { labelsMatch } from '../model/discovery.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import type { Endpoint } from '../model/types.ts';
import { parseClusterName, TYPES } from './names.ts';
import { destinationRuleFor } from './scope.ts';

function localityKey(e: Endpoint): string {
  return `${e.locality.region}/${e.locality.zone}/${e.locality.subZone}`;
}

/** The assignment for an `outbound|PORT|SUBSET|HOST` cluster, or undefined for a name Weft did not generate. */
export function loadAssignment(
  clusterName: string,
  proxyNamespace: string,
  snap: MeshSnapshot,
): JsonObject | undefined {
  const parsed = parseClusterName(clusterName);
  if (!parsed || parsed.direction !== 'outbound') return undefined;
  const service = snap.serviceByHost.get(parsed.host);
  if (!service?.ports.some((p) => p.number === parsed.port)) return undefined;
  let endpoints = snap.endpoints(parsed.host, parsed.port);
  if (parsed.subset) {
    const subset = destinationRuleFor(parsed.host, proxyNamespace, snap)?.spec.subsets?.find(
      (s) => s.name === parsed.subset,
    );
    if (!subset) return undefined;
    const selector = subset.labels ?? {};
    endpoints = endpoints.filter((e) => labelsMatch(selector, e.labels));
  }
  const byLocality = new Map<string, Endpoint[]>();
  for (const e of endpoints) {
    const key = localityKey(e);
    byLocality.set(key, [...(byLocality.get(key) ?? []), e]);
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
