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

/** The Sidecar for this proxy: one selecting its labels in its namespace, else its namespace's default, else the root's. */
export function sidecarFor(proxy: ProxyNode, snap: MeshSnapshot): IstioResource<Sidecar> | undefined {
  const inNs = snap.sidecars.filter((s) => s.metadata.namespace === proxy.namespace);
  return (
    inNs.find(
      (s) => s.spec.workloadSelector?.labels && labelsMatch(s.spec.workloadSelector.labels, proxy.labels),
    ) ??
    inNs.find((s) => !s.spec.workloadSelector?.labels) ??
    snap.sidecars.find(
      (s) => s.metadata.namespace === snap.options.rootNamespace && !s.spec.workloadSelector?.labels,
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

/** Services this proxy may call: all, or those its Sidecar's egress hosts admit. */
export function visibleServices(proxy: ProxyNode, snap: MeshSnapshot): Service[] {
  const sidecar = sidecarFor(proxy, snap);
  const egress = sidecar?.spec.egress;
  if (!egress || egress.length === 0) return [...snap.services];
  const entries = egress.flatMap((e) => e.hosts ?? []);
  return snap.services.filter((s) => entries.some((e) => egressAdmits(e, s, proxy.namespace)));
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
  const service = snap.serviceByHost.get(host);
  const order = [proxyNamespace, service?.namespace, snap.options.rootNamespace];
  const candidates = snap.destinationRules.filter((dr) => hostMatches(dr.spec.host, host));
  for (const exact of [true, false]) {
    for (const ns of order) {
      const found = candidates.find(
        (dr) => dr.metadata.namespace === ns && (dr.spec.host === host) === exact,
      );
      if (found) return found;
    }
  }
  return candidates[0];
}

/** VirtualServices bound to `gateway` (`mesh` for sidecars) that name this host; an exact host beats a wildcard. */
export function virtualServiceFor(
  host: string,
  gateway: string,
  snap: MeshSnapshot,
): IstioResource<VirtualService> | undefined {
  const bound = snap.virtualServices.filter((vs) => boundTo(vs, gateway));
  return (
    bound.find((vs) => (vs.spec.hosts ?? []).includes(host)) ??
    bound.find((vs) => (vs.spec.hosts ?? []).some((h) => hostMatches(h, host)))
  );
}

/** Whether a VirtualService applies to `gateway` (`mesh` = sidecars; otherwise `namespace/name`). */
export function boundTo(vs: IstioResource<VirtualService>, gateway: string): boolean {
  const gateways = vs.spec.gateways ?? [];
  return gateways.length === 0 ? gateway === 'mesh' : gateways.includes(gateway);
}
