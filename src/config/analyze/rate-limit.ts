/** RateLimitPolicy checks the schema cannot express. */
import type { IstioResource } from '../../api/istio/resource.ts';
import type { RateLimitPolicy } from '../../api/weft/rate-limit.ts';
import { Codes } from '../codes.ts';
import type { Diagnostic } from '../diagnostic.ts';
import { fieldDiagnostic } from './context.ts';

export function checkRateLimitPolicies(resources: readonly IstioResource[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const r of resources) {
    if (r.kind !== 'RateLimitPolicy') continue;
    const spec = r.spec as RateLimitPolicy;
    if (spec.global !== undefined && spec.global !== null)
      out.push(
        fieldDiagnostic(
          Codes.UnsupportedField,
          r,
          ['spec', 'global'],
          'global rate limiting is not implemented yet',
        ),
      );
    if (spec.local === undefined || (spec.local.default === undefined && spec.local.perClient === undefined))
      out.push(
        fieldDiagnostic(
          Codes.UnsupportedField,
          r,
          ['spec', 'local'],
          'no local limit: the policy limits nothing',
        ),
      );
  }
  return out;
}
