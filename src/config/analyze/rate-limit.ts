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
    const local = spec.local?.default ?? spec.local?.perClient;
    const global = spec.global?.default ?? spec.global?.perClient;
    if (local === undefined && global === undefined)
      out.push(
        fieldDiagnostic(
          Codes.UnsupportedField,
          r,
          ['spec'],
          'neither a local nor a global limit: the policy limits nothing',
        ),
      );
    const service = spec.global?.service;
    if (service !== undefined && !/^[^:\s]+:\d{1,5}$/.test(service))
      out.push(
        fieldDiagnostic(
          Codes.InvalidRateLimitService,
          r,
          ['spec', 'global', 'service'],
          `${JSON.stringify(service)} is not host:port (the rate limit service's gRPC port)`,
        ),
      );
  }
  return out;
}
