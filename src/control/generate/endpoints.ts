/**
 * ClusterLoadAssignments for EDS clusters: the service port's endpoints (filtered by the subset's labels),
 * grouped by locality, with weights and health. Under a locality policy
 * (locality-lb.ts) the assignment is a view for the caller's locality: priorities or weights differ between
 * callers, and one view is shared by every caller with the same locality key. A failover view may also depend
 * on how the caller's own service is spread over zones (the zone-aware spill, locality-lb.ts): then that
 * spread is part of the key.
 */
import { isHttp } from '../model/protocol.ts';
import type { JsonObject } from '../../core/json.ts';
import { labelsMatch } from '../model/discovery.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import type { Endpoint } from '../model/types.ts';
import type { Locality } from '../xds/types.ts';
import { effectivePolicy } from './clusters.ts';
import {
  callerKey,
  callerSpreadOf,
  localityPolicy,
  localityView,
  ruleMayBeZoneAware,
} from './locality-lb.ts';
import type { CallerSpread, LocalityCaller, LocalityGroup, LocalityPolicy } from './locality-lb.ts';
import { outboundClusterName, parseClusterName, TYPES } from './names.ts';
import { TRANSPORT_SOCKET_MATCH } from './mtls.ts';
import { TLS_MODE_LABEL } from '../../api/istio/mesh-names.ts';
import { destinationRuleFor, hostMatches } from './scope.ts';
import { canonicalRevision, canonicalService } from './telemetry.ts';

/** The proxy an assignment is for: its namespace picks the DestinationRule, its locality and labels the view. */
export interface AssignmentCaller extends LocalityCaller {
  readonly namespace: string;
  /** The proxy's type (ProxyNode.type): a gateway ('router') gets no zone-aware spill. */
  readonly type?: string;
}

function localityKey(l: Locality): string {
  return `${l.region}/${l.zone}/${l.subZone}`;
}

/**
 * What an assignment is made of apart from the endpoints themselves: the service port, and for a subset its
 * rule and labels; the locality policy. It depends on the configuration only, so it is computed once per
 * (cluster, namespace) and configuration.
 */
interface AssignmentShape {
  readonly host: string;
  readonly port: number;
  /** `cluster\0rule\0`: the cache key's prefix. */
  readonly key: string;
  readonly selector: Readonly<Record<string, string>> | undefined;
  readonly locality: LocalityPolicy | undefined;
  /**
   * Whether endpoints carry Istio's workload metadata: on a mesh-internal service's ports that are not HTTP. Over
   * HTTP and gRPC a caller learns the workload from the metadata header the callee's sidecar answers with; over
   * TCP nothing is exchanged in-band, so the endpoint metadata is the only source. Leaving it off HTTP ports
   * keeps EDS small: with it on every endpoint, the control-plane benchmark's endpoint pushes grew enough to
   * miss its starvation target.
   */
  readonly meshInternal: boolean;
}

/** A shape with the service port's current endpoint list (the same list while it does not change). */
interface AssignmentSource extends AssignmentShape {
  readonly endpoints: readonly Endpoint[];
}

function shapeOf(
  clusterName: string,
  proxyNamespace: string,
  snap: MeshSnapshot,
): AssignmentShape | undefined {
  const parsed = parseClusterName(clusterName);
  if (!parsed || parsed.direction !== 'outbound') return undefined;
  const service = snap.serviceByHost.get(parsed.host);
  const servicePort = service?.ports.find((p) => p.number === parsed.port);
  if (!service || !servicePort) return undefined;
  const rule = destinationRuleFor(parsed.host, proxyNamespace, snap);
  const ruleName = rule ? `${rule.metadata.namespace}/${rule.metadata.name}` : '';
  const base = {
    host: parsed.host,
    port: parsed.port,
    key: `${clusterName}\u0000${ruleName}\u0000`,
    meshInternal: service.location === 'MESH_INTERNAL' && !isHttp(servicePort.protocol),
  };
  if (!parsed.subset) {
    const locality = localityPolicy(effectivePolicy([rule?.spec.trafficPolicy], parsed.port));
    return { ...base, selector: undefined, locality };
  }
  const subset = rule?.spec.subsets?.find((s) => s.name === parsed.subset);
  if (!subset) return undefined;
  const policy = effectivePolicy([rule?.spec.trafficPolicy, subset.trafficPolicy], parsed.port);
  return { ...base, selector: subset.labels ?? {}, locality: localityPolicy(policy) };
}

function sourceOf(shape: AssignmentShape, snap: MeshSnapshot): AssignmentSource {
  return { ...shape, endpoints: snap.endpoints(shape.host, shape.port) };
}

function plainGroups(endpoints: readonly Endpoint[]): LocalityGroup[] {
  const byLocality = new Map<string, Endpoint[]>();
  for (const e of endpoints) {
    const key = localityKey(e.locality);
    const group = byLocality.get(key);
    if (group) group.push(e);
    else byLocality.set(key, [e]);
  }
  return [...byLocality.values()].map((members) => ({
    locality: members[0].locality,
    priority: 0,
    // The group's total, as Istio sends it.
    weight: members.reduce((sum, e) => sum + e.weight, 0),
    endpoints: members,
  }));
}

/** Istio's endpoint metadata for auto mTLS: a workload with a sidecar is matched by the tlsMode-istio socket. */
const TLS_MODE_METADATA: JsonObject = { [TRANSPORT_SOCKET_MATCH]: { tlsMode: 'istio' } };
const ISTIO_TLS_MODE: JsonObject = { filter_metadata: TLS_MODE_METADATA };

/** Istio's cluster id for workloads of a single-cluster mesh. */
const CLUSTER_ID = 'Kubernetes';

/**
 * Istio's `istio.workload` endpoint metadata, `WORKLOAD;NAMESPACE;CANONICAL_SERVICE;CANONICAL_REVISION;CLUSTER`:
 * what a caller's stats name the destination by. One short string and one object per endpoint (and per mTLS
 * setting), built once and shared by every assignment that lists the endpoint.
 */
const workloadMetadata = new WeakMap<Endpoint, { plain?: JsonObject; mtls?: JsonObject }>();

function endpointMetadata(e: Endpoint, mtls: boolean): JsonObject {
  let cached = workloadMetadata.get(e);
  if (!cached) {
    cached = {};
    workloadMetadata.set(e, cached);
  }
  const which = mtls ? 'mtls' : 'plain';
  let m = cached[which];
  if (!m) {
    const workload = [
      e.workloadName,
      e.namespace,
      canonicalService(e.labels, e.workloadName),
      canonicalRevision(e.labels),
      CLUSTER_ID,
    ].join(';');
    m = {
      filter_metadata: {
        ...(mtls ? TLS_MODE_METADATA : {}),
        istio: { workload },
      },
    };
    cached[which] = m;
  }
  return m;
}

function assignment(
  clusterName: string,
  groups: readonly LocalityGroup[],
  mtls: boolean,
  meshInternal: boolean,
): JsonObject {
  const sorted = [...groups].sort(
    (a, b) => a.priority - b.priority || localityKey(a.locality).localeCompare(localityKey(b.locality)),
  );
  return {
    '@type': TYPES.endpoint,
    cluster_name: clusterName,
    endpoints: sorted.map((g) => {
      const { region, zone, subZone } = g.locality;
      const locality: JsonObject = {};
      if (region) locality.region = region;
      if (zone) locality.zone = zone;
      if (subZone) locality.sub_zone = subZone;
      // The weight is always set: gRPC rejects a group without one.
      const group: JsonObject = {
        locality,
        load_balancing_weight: g.weight,
        lb_endpoints: [...g.endpoints]
          .sort((a, b) => `${a.address}:${a.port}`.localeCompare(`${b.address}:${b.port}`))
          .map((e) => {
            const lb: JsonObject = {
              endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
              health_status: e.healthy ? 'HEALTHY' : 'UNHEALTHY',
              load_balancing_weight: e.weight,
            };
            const tlsMode = mtls && e.labels[TLS_MODE_LABEL] === 'istio';
            if (meshInternal && e.workloadName) lb.metadata = endpointMetadata(e, tlsMode);
            else if (tlsMode) lb.metadata = ISTIO_TLS_MODE;
            return lb;
          }),
      };
      if (g.priority > 0) group.priority = g.priority;
      return group;
    }),
  };
}

function members(source: AssignmentSource): readonly Endpoint[] {
  const selector = source.selector;
  return selector ? source.endpoints.filter((e) => labelsMatch(selector, e.labels)) : source.endpoints;
}

function groupsFor(
  source: AssignmentSource,
  selected: readonly Endpoint[],
  caller: LocalityCaller,
  spread: CallerSpread | undefined,
): LocalityGroup[] {
  return source.locality ? localityView(selected, source.locality, caller, spread) : plainGroups(selected);
}

/** Whether a view under this policy may spill zone-aware (so depends on the caller's spread). */
function spills(policy: LocalityPolicy | undefined): boolean {
  return policy?.kind === 'failover' && policy.failoverPriority.length === 0;
}

/**
 * The replicas of the caller's own services (those in its namespace whose workload selector picks it): the
 * "local cluster" whose spread over zones the zone-aware spill weighs. A gateway has none by design: what
 * reaches it comes through a load balancer outside the mesh, whose spread over the gateway's zones nothing here
 * knows, so its views stay Istio's.
 */
function callerReplicas(caller: AssignmentCaller, snap: MeshSnapshot): Endpoint[] {
  if (caller.type === 'router') return [];
  const out: Endpoint[] = [];
  for (const s of snap.services) {
    if (s.namespace !== caller.namespace || !s.workloadSelector) continue;
    if (!labelsMatch(s.workloadSelector, caller.labels)) continue;
    // Every port lists the same workloads: one is enough (callerSpreadOf counts a workload once anyway).
    const port = s.ports[0];
    if (port) out.push(...snap.endpoints(s.hostname, port.number));
  }
  return out;
}

function spreadOf(caller: AssignmentCaller, snap: MeshSnapshot): CallerSpread | undefined {
  return callerSpreadOf(callerReplicas(caller, snap), caller.locality.region);
}

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The assignment for an `outbound|PORT|SUBSET|HOST` cluster, or undefined for a name Weft did not generate. */
export function loadAssignment(
  clusterName: string,
  caller: AssignmentCaller,
  snap: MeshSnapshot,
): JsonObject | undefined {
  const shape = shapeOf(clusterName, caller.namespace, snap);
  if (!shape) return undefined;
  const source = sourceOf(shape, snap);
  const spread = spills(shape.locality) ? spreadOf(caller, snap) : undefined;
  return assignment(
    clusterName,
    groupsFor(source, members(source), caller, spread),
    snap.security !== undefined,
    shape.meshInternal,
  );
}

interface CachedView {
  endpoints: readonly Endpoint[];
  members: readonly Endpoint[];
  assignment: JsonObject;
}

/**
 * loadAssignment, remembered: an assignment is rebuilt only when its endpoint list (compared by identity: the
 * aggregator keeps a list that did not change) or its subset's rule changed, and equal inputs give the very same
 * object, so its encoding is shared by every proxy (of one locality key, under a locality policy) and reused from
 * one push to the next. Valid for snapshots of one configuration (configVersion); a new configuration needs a
 * new cache.
 */
export class AssignmentCache {
  readonly #entries = new Map<string, CachedView>();
  /** Per `cluster\0namespace`: its shape, or null for a name Weft did not generate. */
  readonly #shapes = new Map<string, AssignmentShape | null>();
  /**
   * Each caller's spread for one snapshot version: asked for once per cluster, computed once per proxy and
   * version (and once per namespace and label set, shared by the proxies that have them).
   */
  readonly #spreads = new WeakMap<AssignmentCaller, { version: number; spread: CallerSpread | undefined }>();
  #spreadsByLabels = new Map<string, CallerSpread | undefined>();
  #spreadsVersion = -1;

  #spread(caller: AssignmentCaller, snap: MeshSnapshot): CallerSpread | undefined {
    const known = this.#spreads.get(caller);
    if (known && known.version === snap.version) return known.spread;
    if (this.#spreadsVersion !== snap.version) {
      this.#spreadsByLabels = new Map();
      this.#spreadsVersion = snap.version;
    }
    const labels = Object.entries(caller.labels).sort(([a], [b]) => a.localeCompare(b));
    const key = JSON.stringify([caller.type === 'router', caller.namespace, caller.locality.region, labels]);
    let spread: CallerSpread | undefined;
    if (this.#spreadsByLabels.has(key)) spread = this.#spreadsByLabels.get(key);
    else {
      spread = spreadOf(caller, snap);
      this.#spreadsByLabels.set(key, spread);
    }
    this.#spreads.set(caller, { version: snap.version, spread });
    return spread;
  }

  get(clusterName: string, caller: AssignmentCaller, snap: MeshSnapshot): JsonObject | undefined {
    const shapeKey = `${clusterName}\u0000${caller.namespace}`;
    let shape = this.#shapes.get(shapeKey);
    if (shape === undefined) {
      shape = shapeOf(clusterName, caller.namespace, snap) ?? null;
      this.#shapes.set(shapeKey, shape);
    }
    if (shape === null) return undefined;
    const endpoints = snap.endpoints(shape.host, shape.port);
    const spread = spills(shape.locality) ? this.#spread(caller, snap) : undefined;
    let key = shape.locality ? shape.key + callerKey(shape.locality, caller) : shape.key;
    if (spread) key += `\u0000${spread.key}`;
    const known = this.#entries.get(key);
    if (known && known.endpoints === endpoints) return known.assignment;
    const source: AssignmentSource = { ...shape, endpoints };
    const selected = members(source);
    // The service's endpoints changed, but maybe not this subset's: then it is the same assignment.
    if (known && sameItems(known.members, selected)) {
      known.endpoints = endpoints;
      return known.assignment;
    }
    const built = assignment(
      clusterName,
      groupsFor(source, selected, caller, spread),
      snap.security !== undefined,
      shape.meshInternal,
    );
    this.#entries.set(key, { endpoints, members: selected, assignment: built });
    return built;
  }
}

/**
 * The EDS clusters whose assignment may differ after the endpoints of these `hostname|port` keys changed: the
 * service port's cluster and one per subset of any DestinationRule for the host (whichever namespace a proxy
 * sees it from). The endpoint-only fast path regenerates just these.
 *
 * A service that selects workloads is also the caller spread of its own proxies' zone-aware views: when its
 * endpoints change, so may their view of every destination whose rule may spill zone-aware. Which proxies
 * those are is not known here, so all such clusters are named; proxies whose views did not change are sent
 * nothing (the fast path sends only assignments whose content changed).
 */
export function endpointClusterNames(changedKeys: Iterable<string>, snap: MeshSnapshot): Set<string> {
  const names = new Set<string>();
  const add = (host: string, port: number): void => {
    names.add(outboundClusterName(port, '', host));
    for (const dr of snap.destinationRules) {
      if (!hostMatches(dr.spec.host, host)) continue;
      for (const subset of dr.spec.subsets ?? []) names.add(outboundClusterName(port, subset.name, host));
    }
  };
  let callerChanged = false;
  for (const key of changedKeys) {
    const bar = key.lastIndexOf('|');
    const host = key.slice(0, bar);
    add(host, Number(key.slice(bar + 1)));
    if (snap.serviceByHost.get(host)?.workloadSelector) callerChanged = true;
  }
  if (!callerChanged) return names;
  const zoneAware = snap.destinationRules.filter(ruleMayBeZoneAware);
  if (zoneAware.length === 0) return names;
  for (const service of snap.services) {
    if (!zoneAware.some((dr) => hostMatches(dr.spec.host, service.hostname))) continue;
    for (const port of service.ports) add(service.hostname, port.number);
  }
  return names;
}
