/**
 * `weft analyze`'s semantic checks over loaded resources. Each diagnostic names the file, line,
 * resource and field; codes and severities are in ../codes.ts and docs/analyze-codes.md.
 */
import type { IstioResource } from '../../api/istio/resource.ts';
import { Codes } from '../codes.ts';
import type { Diagnostic } from '../diagnostic.ts';
import { notEnforcedKinds, unsupportedFieldPaths } from '../support.ts';
import { AnalysisContext, fieldDiagnostic } from './context.ts';
import { checkWeftAnnotations } from './annotations.ts';
import { checkPeerAuthentications, checkSidecars } from './policies.ts';
import { checkRateLimitPolicies } from './rate-limit.ts';
import { checkVirtualServices } from './virtual-service.ts';
import { checkGatewaySelectors, checkSubsetSelectors } from './workloads.ts';

export interface AnalyzeOptions {
  /** Resources that exist but are not under analysis: used to resolve references only. */
  context?: readonly IstioResource[];
}

/** Fields and kinds Weft does not implement: reported, never silently ignored. */
export function checkSupport(resources: readonly IstioResource[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const r of resources) {
    if (notEnforcedKinds.has(r.kind)) {
      out.push(
        fieldDiagnostic(
          Codes.NotEnforcedKind,
          r,
          [],
          `${r.kind} is stored and served, but Weft does not enforce it yet`,
        ),
      );
      continue;
    }
    if (r.kind === 'RateLimitPolicy') out.push(...checkRateLimitPolicies([r]));
    for (const path of unsupportedFieldPaths(r.kind, r.spec))
      out.push(
        fieldDiagnostic(Codes.UnsupportedField, r, ['spec', ...path], 'not supported by Weft, ignored'),
      );
  }
  return out;
}

export function analyze(resources: readonly IstioResource[], options: AnalyzeOptions = {}): Diagnostic[] {
  const ctx = new AnalysisContext(resources, options.context);
  return [
    ...checkVirtualServices(ctx),
    ...checkGatewaySelectors(ctx),
    ...checkSubsetSelectors(ctx),
    ...checkPeerAuthentications(ctx),
    ...checkSidecars(ctx),
    ...checkWeftAnnotations(ctx),
    ...checkSupport(resources),
  ];
}
