/**
 * Diagnostics: what loading, watching and `weft analyze` say about configuration. Each has a stable
 * code (Istio's IST0xxx where Istio has the same check, else WE0xxx; see codes.ts and
 * docs/analyze-codes.md), a severity, and says where: file and line, resource, field.
 */

export type Severity = 'error' | 'warning' | 'info';

export interface Diagnostic {
  code: string;
  severity: Severity;
  message: string;
  file?: string;
  line?: number;
  /** "VirtualService default/reviews" */
  resource?: string;
  /** "spec.http[0].route[1].weight" */
  field?: string;
}

/** A field path segment: an object key or an array index. */
export type PathSegment = string | number;

const PLAIN_KEY = /^[A-Za-z_][\w-]*$/;

/** `['spec', 'http', 0, 'route', 1, 'weight']` → `spec.http[0].route[1].weight`; odd keys are quoted: `labels["app.kubernetes.io/name"]`. */
export function formatFieldPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (PLAIN_KEY.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

/** One line: `samples/x.yaml:12: error WE0002 VirtualService default/reviews: spec.http[0].route[0].weight: must be <= 100`. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.file === undefined ? '' : d.line === undefined ? `${d.file}: ` : `${d.file}:${d.line}: `;
  const resource = d.resource === undefined ? '' : ` ${d.resource}:`;
  const field = d.field === undefined || d.field === '' ? '' : ` ${d.field}:`;
  return `${where}${d.severity} ${d.code}${resource}${field} ${d.message}`;
}

const SEVERITY_ORDER: Readonly<Record<Severity, number>> = { error: 0, warning: 1, info: 2 };

/** Orders diagnostics by file, line, then severity and code, for stable output. */
export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  return (
    (a.file ?? '').localeCompare(b.file ?? '') ||
    (a.line ?? 0) - (b.line ?? 0) ||
    SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] ||
    a.code.localeCompare(b.code) ||
    (a.resource ?? '').localeCompare(b.resource ?? '') ||
    (a.field ?? '').localeCompare(b.field ?? '') ||
    a.message.localeCompare(b.message)
  );
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}
