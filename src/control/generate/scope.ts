/**
 * What one proxy sees of the mesh: the Sidecar resource that applies to it, the services its egress allows,
 * and which DestinationRule and VirtualService govern a host (Istio's lookup rules, simplified where noted).
 */
import type { IstioResource } from '../../api/istio/resource.ts';
import type { DestinationRule, Sidecar, VirtualService } from '../../api/istio/networking.ts';
import { labelsMatch } from '../model/discovery.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import type { Service } from '../model/types.ts';
import type { ProxyNode } from '../xds/types.ts';

/** Istio host matching: exact, `*`, or `*.suffix` against a concrete host. */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*' || pattern === host) return true;
  return pattern.startsWith('*.') && host.endsWith(pattern.slice(1));
}

/**
 * Istio's exportTo: absent or empty, everywhere; `*` everywhere, `.` the resource's own namespace, `~` nowhere,
 * otherwise a namespace's name.
 */
export function exportedTo(
  exportTo: readonly string[] | undefined,
  ownNamespace: string,
  proxyNamespace: string,
): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  return exportTo.some(
    (e) => e === '*' || (e === '.' ? ownNamespace === proxyNamespace : e === proxyNamespace),
  );
}

type Dr = IstioResource<DestinationRule>;
type Vs = IstioResource<VirtualService>;

/**
 * Lookup tables over one snapshot's configuration, built once and shared by every proxy's generation (and by
 * endpoint-only snapshots, which share the configuration objects). Each answer is the one the plain scan over
 * the sorted lists would give, in the same order of preference.
 */
interface ScopeIndex {
  readonly destinationRules: readonly Dr[];
  readonly virtualServices: readonly Vs[];
  readonly sidecars: readonly IstioResource<Sidecar>[];
  readonly serviceByHost: ReadonlyMap<string, Service>;
  readonly drPosition: Map<Dr, number>;
  readonly drExact: Map<string, Dr[]>;
  readonly drWildcard: Dr[];
  readonly drMemo: Map<string, Dr | undefined>;
  readonly vsByGateway: Map<string, { exact: Map<string, Vs>; wildcard: Vs[] }>;
  readonly vsMemo: Map<string, Vs | undefined>;
  readonly sidecarsByNamespace: Map<string, IstioResource<Sidecar>[]>;
  readonly visibleMemo: Map<string, Service[]>;
  /** Whether any service, VirtualService or DestinationRule limits its exportTo (else visibility is global). */
  readonly servicesExported: boolean;
  readonly vsExported: boolean;
  readonly drExported: boolean;
}

const indexes = new WeakMap<ReadonlyMap<string, Service>, ScopeIndex>();

function isWildcardHost(host: string): boolean {
  return host === '*' || host.startsWith('*.');
}

function indexOf(snap: MeshSnapshot): ScopeIndex {
  const known = indexes.get(snap.serviceByHost);
  if (
    known &&
    known.destinationRules === snap.destinationRules &&
    known.virtualServices === snap.virtualServices &&
    known.sidecars === snap.sidecars
  )
    return known;
  const index: ScopeIndex = {
    destinationRules: snap.destinationRules,
    virtualServices: snap.virtualServices,
    sidecars: snap.sidecars,
    serviceByHost: snap.serviceByHost,
    drPosition: new Map(),
    drExact: new Map(),
    drWildcard: [],
    drMemo: new Map(),
    vsByGateway: new Map(),
    vsMemo: new Map(),
    sidecarsByNamespace: new Map(),
    visibleMemo: new Map(),
    servicesExported: [...snap.serviceByHost.values()].some((s) => (s.exportTo?.length ?? 0) > 0),
    vsExported: snap.virtualServices.some((vs) => (vs.spec.exportTo?.length ?? 0) > 0),
    drExported: snap.destinationRules.some((dr) => (dr.spec.exportTo?.length ?? 0) > 0),
  };
  snap.destinationRules.forEach((dr, i) => {
    index.drPosition.set(dr, i);
    if (isWildcardHost(dr.spec.host)) index.drWildcard.push(dr);
    else index.drExact.set(dr.spec.host, [...(index.drExact.get(dr.spec.host) ?? []), dr]);
  });
  for (const sc of snap.sidecars) {
    const list = index.sidecarsByNamespace.get(sc.metadata.namespace);
    if (list) list.push(sc);
    else index.sidecarsByNamespace.set(sc.metadata.namespace, [sc]);
  }
  indexes.set(snap.serviceByHost, index);
  return index;
}

/** The Sidecar for this proxy: one selecting its labels in its namespace, else its namespace's default, else the root's. */
export function sidecarFor(proxy: ProxyNode, snap: MeshSnapshot): IstioResource<Sidecar> | undefined {
  const index = indexOf(snap);
  const inNs = index.sidecarsByNamespace.get(proxy.namespace) ?? [];
  return (
    inNs.find(
      (s) => s.spec.workloadSelector?.labels && labelsMatch(s.spec.workloadSelector.labels, proxy.labels),
    ) ??
    inNs.find((s) => !s.spec.workloadSelector?.labels) ??
    (index.sidecarsByNamespace.get(snap.options.rootNamespace) ?? []).find(
      (s) => !s.spec.workloadSelector?.labels,
    )
  );
}

/** Whether an egress `hosts` entry (`ns/host`, `./host`, `*\/host`, `~/...`) admits this service. */
function egressAdmits(entry: string, service: Service, proxyNamespace: string): boolean {
  const slash = entry.indexOf('/');
  const ns = slash < 0 ? '*' : entry.slice(0, slash);
  const host = slash < 0 ? entry : entry.slice(slash + 1);
  if (ns === '~') return false;
  const nsOk = ns === '*' || (ns === '.' ? service.namespace === proxyNamespace : service.namespace === ns);
  return nsOk && hostMatches(host, service.hostname);
}

/**
 * Services this proxy may call: those exported to its namespace, and of those, all or the ones its Sidecar's
 * egress hosts admit. The same list (same array) for every proxy with the same Sidecar and namespace; callers
 * must not change it.
 */
export function visibleServices(proxy: ProxyNode, snap: MeshSnapshot): readonly Service[] {
  const sidecar = sidecarFor(proxy, snap);
  const egress = sidecar?.spec.egress;
  const index = indexOf(snap);
  const limited = egress !== undefined && egress.length > 0;
  if (!limited && !index.servicesExported) return snap.services;
  const key = `${limited ? `${sidecar!.metadata.namespace}/${sidecar!.metadata.name}` : ''}\u0000${proxy.namespace}`;
  let visible = index.visibleMemo.get(key);
  if (!visible) {
    const entries = limited ? egress.flatMap((e) => e.hosts ?? []) : [];
    visible = snap.services.filter(
      (s) =>
        exportedTo(s.exportTo, s.namespace, proxy.namespace) &&
        (!limited || entries.some((e) => egressAdmits(e, s, proxy.namespace))),
    );
    index.visibleMemo.set(key, visible);
  }
  return visible;
}

/**
 * The DestinationRule for a host, as seen from a proxy's namespace: the proxy's namespace first, then the
 * service's, then the root namespace; an exact host beats a wildcard.
 */
export function destinationRuleFor(
  host: string,
  proxyNamespace: string,
  snap: MeshSnapshot,
): IstioResource<DestinationRule> | undefined {
  const index = indexOf(snap);
  const memoKey = `${proxyNamespace}\u0000${host}`;
  if (index.drMemo.has(memoKey)) return index.drMemo.get(memoKey);
  const service = snap.serviceByHost.get(host);
  const order = [proxyNamespace, service?.namespace, snap.options.rootNamespace];
  // The rules whose host matches, in snapshot order (as a scan of every rule would find them).
  const candidates = [
    ...(index.drExact.get(host) ?? []),
    ...index.drWildcard.filter((dr) => hostMatches(dr.spec.host, host)),
  ]
    .filter((dr) => !index.drExported || exportedTo(dr.spec.exportTo, dr.metadata.namespace, proxyNamespace))
    .sort((a, b) => index.drPosition.get(a)! - index.drPosition.get(b)!);
  let found: Dr | undefined;
  search: for (const exact of [true, false]) {
    for (const ns of order) {
      found = candidates.find((dr) => dr.metadata.namespace === ns && (dr.spec.host === host) === exact);
      if (found) break search;
    }
  }
  found ??= candidates[0];
  index.drMemo.set(memoKey, found);
  return found;
}

/**
 * VirtualServices bound to `gateway` (`mesh` for sidecars) and exported to the proxy's namespace that name this
 * host; an exact host beats a wildcard.
 */
export function virtualServiceFor(
  host: string,
  gateway: string,
  snap: MeshSnapshot,
  proxyNamespace: string,
): IstioResource<VirtualService> | undefined {
  const index = indexOf(snap);
  // Without any exportTo, every namespace sees the same VirtualServices: one table per gateway.
  const scope = index.vsExported ? `${gateway}\u0000${proxyNamespace}` : gateway;
  const memoKey = `${scope}\u0000${host}`;
  if (index.vsMemo.has(memoKey)) return index.vsMemo.get(memoKey);
  let byGateway = index.vsByGateway.get(scope);
  if (!byGateway) {
    byGateway = { exact: new Map(), wildcard: [] };
    for (const vs of snap.virtualServices) {
      if (!boundTo(vs, gateway)) continue;
      if (index.vsExported && !exportedTo(vs.spec.exportTo, vs.metadata.namespace, proxyNamespace)) continue;
      const hosts = vs.spec.hosts ?? [];
      for (const h of hosts) if (!byGateway.exact.has(h)) byGateway.exact.set(h, vs);
      if (hosts.some(isWildcardHost)) byGateway.wildcard.push(vs);
    }
    index.vsByGateway.set(scope, byGateway);
  }
  // An exact name first; otherwise the first (in order) whose patterns match — only a wildcard can, then.
  const found =
    byGateway.exact.get(host) ??
    byGateway.wildcard.find((vs) => (vs.spec.hosts ?? []).some((h) => hostMatches(h, host)));
  index.vsMemo.set(memoKey, found);
  return found;
}

/** Whether a VirtualService applies to `gateway` (`mesh` = sidecars; otherwise `namespace/name`). */
export function boundTo(vs: IstioResource<VirtualService>, gateway: string): boolean {
  const gateways = vs.spec.gateways ?? [];
  return gateways.length === 0 ? gateway === 'mesh' : gateways.includes(gateway);
}
