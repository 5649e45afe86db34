/**
 * What the semantic checks look things up in: the resources being analyzed plus, optionally, context
 * resources (configuration that exists but is not under analysis, e.g. the rest of a directory), which
 * only answer references. A context resource with the same kind, namespace and name as an analyzed one
 * is replaced by it.
 */
import { resourceName } from '../../api/istio/resource.ts';
import type { IstioKind, IstioResource, IstioResourceOf } from '../../api/istio/resource.ts';
import { formatFieldPath } from '../diagnostic.ts';
import type { Diagnostic, PathSegment } from '../diagnostic.ts';
import { codeOf } from '../codes.ts';
import type { DiagnosticCode } from '../codes.ts';
import { resourceKey } from '../document.ts';
import { lineOfField } from '../locations.ts';

/** Istio host matching: `*` matches all, `*.example.com` any name under example.com, else equality. */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*' || pattern === host) return true;
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1));
  return false;
}

/** Labels select a workload when every selector label is among the workload's labels. */
export function labelsMatch(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

export interface Workload {
  namespace: string;
  labels: Record<string, string>;
}

export class AnalysisContext {
  /** The resources under analysis. */
  readonly analyzed: readonly IstioResource[];
  /** Analyzed plus context resources. */
  readonly known: readonly IstioResource[];

  constructor(analyzed: readonly IstioResource[], context: readonly IstioResource[] = []) {
    this.analyzed = analyzed;
    const keyOf = (r: IstioResource): string => resourceKey(r.kind, r.metadata.namespace, r.metadata.name);
    const analyzedKeys = new Set(analyzed.map(keyOf));
    this.known = [...analyzed, ...context.filter((r) => !analyzedKeys.has(keyOf(r)))];
  }

  list<K extends IstioKind>(kind: K, from: 'analyzed' | 'known' = 'analyzed'): IstioResourceOf<K>[] {
    return (from === 'analyzed' ? this.analyzed : this.known).filter(
      (r): r is IstioResourceOf<K> => r.kind === kind,
    );
  }

  hasGateway(ref: string): boolean {
    return this.list('Gateway', 'known').some((g) => `${g.metadata.namespace}/${g.metadata.name}` === ref);
  }

  /** DestinationRules for a host: the exact ones, or else the most specific wildcard ones, as Istio picks them. */
  destinationRulesFor(host: string): IstioResourceOf<'DestinationRule'>[] {
    const rules = this.list('DestinationRule', 'known');
    const exact = rules.filter((r) => r.spec.host === host);
    if (exact.length > 0) return exact;
    const wildcard = rules.filter((r) => hostMatches(r.spec.host, host));
    const longest = Math.max(0, ...wildcard.map((r) => r.spec.host.length));
    return wildcard.filter((r) => r.spec.host.length === longest);
  }

  serviceEntriesFor(host: string): IstioResourceOf<'ServiceEntry'>[] {
    return this.list('ServiceEntry', 'known').filter((se) =>
      (se.spec.hosts ?? []).some((h) => hostMatches(h, host)),
    );
  }

  /** Workloads described by WorkloadEntries and WorkloadGroups (which register theirs as they connect). */
  workloads(): Workload[] {
    return [
      ...this.list('WorkloadEntry', 'known').map((w) => ({
        namespace: w.metadata.namespace,
        labels: w.spec.labels ?? {},
      })),
      ...this.list('WorkloadGroup', 'known').map((g) => ({
        namespace: g.metadata.namespace,
        labels: { ...(g.spec.template?.labels ?? {}), ...(g.spec.metadata?.labels ?? {}) },
      })),
    ];
  }
}

/** A diagnostic about a field of a resource, located at the field's line when known. */
export function fieldDiagnostic(
  code: DiagnosticCode,
  resource: IstioResource,
  path: readonly PathSegment[],
  message: string,
): Diagnostic {
  return {
    ...codeOf(code),
    message,
    file: resource.source.file,
    line: lineOfField(resource, path),
    resource: resourceName(resource),
    ...(path.length > 0 ? { field: formatFieldPath(path) } : {}),
  };
}
