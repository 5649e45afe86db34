/** Weft's own annotations: a value Weft does not know is reported (the generator ignores it). */
import { LOAD_BALANCER_ANNOTATION, LOAD_BALANCER_VALUES } from '../../api/weft/annotations.ts';
import { Codes } from '../codes.ts';
import type { Diagnostic } from '../diagnostic.ts';
import { fieldDiagnostic } from './context.ts';
import type { AnalysisContext } from './context.ts';

export function checkWeftAnnotations(ctx: AnalysisContext): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const dr of ctx.list('DestinationRule')) {
    const value = dr.metadata.annotations[LOAD_BALANCER_ANNOTATION];
    if (value === undefined || LOAD_BALANCER_VALUES.includes(value)) continue;
    out.push(
      fieldDiagnostic(
        Codes.UnknownAnnotationValue,
        dr,
        ['metadata', 'annotations', LOAD_BALANCER_ANNOTATION],
        `unknown value ${JSON.stringify(value)} for ${LOAD_BALANCER_ANNOTATION} (known: ${LOAD_BALANCER_VALUES.join(', ')}); ignored, trafficPolicy.loadBalancer applies`,
      ),
    );
  }
  return out;
}
