/**
 * Which mTLS mode PeerAuthentication gives a workload's inbound port, as Istio resolves it: a policy
 * selecting the workload beats its namespace's policy, which beats the mesh-wide one (root namespace, no
 * selector); UNSET inherits from the next level; port-level settings (only on a selecting policy) beat the
 * policy's own mode. With nothing set, PERMISSIVE. Among several policies of one level the oldest wins
 * (Istio); Weft has no creation times for files, so the first by name.
 */
import type { IstioResource } from '../../api/istio/resource.ts';
import type { MutualTlsMode, PeerAuthentication } from '../../api/istio/security.ts';
import { labelsMatch } from '../model/discovery.ts';
import type { MeshSnapshot } from '../model/snapshot.ts';
import type { ProxyNode } from '../xds/types.ts';

export type InboundMtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

function hasSelector(p: IstioResource<PeerAuthentication>): boolean {
  return Object.keys(p.spec.selector?.matchLabels ?? {}).length > 0;
}

function set(mode: MutualTlsMode | undefined): mode is 'STRICT' | 'PERMISSIVE' | 'DISABLE' {
  return mode !== undefined && mode !== 'UNSET';
}

/** `ports`: the numbers the port is known by (the listener port and the application's port). */
export function inboundMtlsMode(
  proxy: ProxyNode,
  snap: MeshSnapshot,
  ports: readonly number[],
): InboundMtlsMode {
  const all = snap.peerAuthentications ?? [];
  const root = snap.options.rootNamespace;
  const workload = all.find(
    (p) =>
      p.metadata.namespace === proxy.namespace &&
      hasSelector(p) &&
      labelsMatch(p.spec.selector?.matchLabels ?? {}, proxy.labels),
  );
  const namespace = all.find((p) => p.metadata.namespace === proxy.namespace && !hasSelector(p));
  const mesh = all.find((p) => p.metadata.namespace === root && !hasSelector(p));
  if (workload !== undefined) {
    for (const port of ports) {
      const m = workload.spec.portLevelMtls?.[String(port)]?.mode;
      if (set(m)) return m;
    }
  }
  for (const level of [workload, namespace, mesh]) {
    const m = level?.spec.mtls?.mode;
    if (set(m)) return m;
  }
  return 'PERMISSIVE';
}

/** For plan keys: the mode of every port. */
export function inboundMtlsKey(proxy: ProxyNode, snap: MeshSnapshot, portSets: readonly number[][]): string {
  if (snap.security === undefined) return '';
  return portSets.map((ports) => inboundMtlsMode(proxy, snap, ports)[0]).join('');
}
