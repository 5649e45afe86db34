/** Checks of resources that apply per namespace or per workload selector: PeerAuthentication, Sidecar. */
import type { IstioResource } from '../../api/istio/resource.ts';
import { Codes } from '../codes.ts';
import type { Diagnostic } from '../diagnostic.ts';
import { fieldDiagnostic } from './context.ts';
import type { AnalysisContext } from './context.ts';

const nameOf = (r: IstioResource): string => `${r.metadata.namespace}/${r.metadata.name}`;

function selectorKey(labels: Record<string, string> | undefined): string {
  return JSON.stringify(Object.entries(labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = groups.get(k) ?? [];
    list.push(item);
    groups.set(k, list);
  }
  return groups;
}

/**
 * PeerAuthentication: at most one namespace-wide policy (no selector) per namespace, and policies with
 * the same selector must agree on their modes — otherwise which one applies is undefined.
 */
export function checkPeerAuthentications(ctx: AnalysisContext): Diagnostic[] {
  const out: Diagnostic[] = [];
  const policies = ctx.list('PeerAuthentication');
  const groups = groupBy(
    policies,
    (p) => `${p.metadata.namespace}\n${selectorKey(p.spec.selector?.matchLabels)}`,
  );
  for (const group of groups.values()) {
    if (group.length < 2) continue;
    const namespaceWide = Object.keys(group[0].spec.selector?.matchLabels ?? {}).length === 0;
    const modes = new Set(
      group.map((p) => JSON.stringify([p.spec.mtls?.mode ?? 'UNSET', p.spec.portLevelMtls ?? {}])),
    );
    if (!namespaceWide && modes.size < 2) continue;
    for (const p of group) {
      const others = group
        .filter((o) => o !== p)
        .map(nameOf)
        .join(', ');
      out.push(
        namespaceWide
          ? fieldDiagnostic(
              Codes.MultipleNamespaceWidePeerAuthentications,
              p,
              [],
              `namespace ${p.metadata.namespace} has more than one PeerAuthentication without a selector (also ${others}); only one can apply`,
            )
          : fieldDiagnostic(
              Codes.ConflictingPeerAuthentications,
              p,
              ['spec', 'selector'],
              `PeerAuthentication ${others} selects the same workloads with a different mTLS mode`,
            ),
      );
    }
  }
  return out;
}

/** Sidecar: at most one without a workloadSelector per namespace. */
export function checkSidecars(ctx: AnalysisContext): Diagnostic[] {
  const out: Diagnostic[] = [];
  const unselected = ctx
    .list('Sidecar')
    .filter((s) => Object.keys(s.spec.workloadSelector?.labels ?? {}).length === 0);
  for (const group of groupBy(unselected, (s) => s.metadata.namespace).values()) {
    if (group.length < 2) continue;
    const names = group.map((s) => s.metadata.name).join(', ');
    for (const s of group)
      out.push(
        fieldDiagnostic(
          Codes.MultipleSidecarsWithoutSelector,
          s,
          [],
          `The Sidecars ${names} in namespace "${s.metadata.namespace}" have no workload selector, which can lead to undefined behavior.`,
        ),
      );
  }
  return out;
}
