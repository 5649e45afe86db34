/**
 * Checks of label selectors against the workloads Weft knows (WorkloadEntries, WorkloadGroups and
 * ServiceEntry endpoints). Without any, a selector cannot be judged: workloads may register when
 * their proxies connect, so these checks stay silent.
 */
import { Codes } from '../codes.ts';
import type { Diagnostic } from '../diagnostic.ts';
import { fieldDiagnostic, hostMatches, labelsMatch } from './context.ts';
import type { AnalysisContext, Workload } from './context.ts';

function formatLabels(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** A Gateway's selector picks the gateway workloads (in any namespace) that serve it. */
export function checkGatewaySelectors(ctx: AnalysisContext): Diagnostic[] {
  const workloads = ctx.workloads();
  if (workloads.length === 0) return [];
  const out: Diagnostic[] = [];
  for (const gw of ctx.list('Gateway')) {
    const selector = gw.spec.selector ?? {};
    if (Object.keys(selector).length === 0) continue;
    if (!workloads.some((w) => labelsMatch(selector, w.labels)))
      out.push(
        fieldDiagnostic(
          Codes.NoMatchingWorkloads,
          gw,
          ['spec', 'selector'],
          `No matching workloads for this resource with the following labels: ${formatLabels(selector)}`,
        ),
      );
  }
  return out;
}

/** The workloads behind a host: ServiceEntry endpoints, or the workloads its workloadSelector picks in its namespace. */
function workloadsOfHost(ctx: AnalysisContext, host: string, all: Workload[]): Workload[] | undefined {
  const entries = ctx
    .list('ServiceEntry', 'known')
    .filter((se) => (se.spec.hosts ?? []).some((h) => hostMatches(host, h)));
  if (entries.length === 0) return undefined;
  const found: Workload[] = [];
  for (const se of entries) {
    for (const e of se.spec.endpoints ?? [])
      found.push({ namespace: se.metadata.namespace, labels: e.labels ?? {} });
    const selector = se.spec.workloadSelector?.labels;
    if (selector)
      found.push(
        ...all.filter((w) => w.namespace === se.metadata.namespace && labelsMatch(selector, w.labels)),
      );
  }
  return found;
}

/** A subset whose labels select none of its host's workloads receives no traffic. */
export function checkSubsetSelectors(ctx: AnalysisContext): Diagnostic[] {
  const all = ctx.workloads();
  const out: Diagnostic[] = [];
  for (const dr of ctx.list('DestinationRule')) {
    const workloads = workloadsOfHost(ctx, dr.spec.host, all);
    if (!workloads || workloads.length === 0) continue;
    (dr.spec.subsets ?? []).forEach((subset, i) => {
      const labels = subset.labels ?? {};
      if (Object.keys(labels).length === 0) return;
      if (!workloads.some((w) => labelsMatch(labels, w.labels)))
        out.push(
          fieldDiagnostic(
            Codes.SubsetSelectsNoWorkload,
            dr,
            ['spec', 'subsets', i, 'labels'],
            `subset "${subset.name}" selects none of the ${workloads.length} known workload(s) of ${dr.spec.host} (labels ${formatLabels(labels)})`,
          ),
        );
    });
  }
  return out;
}
