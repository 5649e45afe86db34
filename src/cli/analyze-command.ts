/**
 * `weft analyze FILES|DIR...`: loads Istio configuration, validates it against Istio's CRD schemas and
 * runs the semantic checks; prints one line per diagnostic (or JSON with --output json).
 * Exit code 1 when there is any error, 0 otherwise (warnings and infos do not fail).
 */
import { analyze } from '../config/analyze/index.ts';
import { compareDiagnostics, formatDiagnostic, hasErrors } from '../config/diagnostic.ts';
import type { Diagnostic } from '../config/diagnostic.ts';
import { loadConfig } from '../config/load.ts';

export interface AnalyzeCommandOptions {
  output: 'text' | 'json';
  /** Configuration that exists but is not under analysis: resolves references only. */
  context?: string[];
}

interface Writer {
  write(text: string): unknown;
}

export function summarize(diagnostics: readonly Diagnostic[]): {
  errors: number;
  warnings: number;
  infos: number;
} {
  const count = (s: Diagnostic['severity']): number => diagnostics.filter((d) => d.severity === s).length;
  return { errors: count('error'), warnings: count('warning'), infos: count('info') };
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

export function runAnalyze(
  paths: readonly string[],
  options: AnalyzeCommandOptions,
  out: Writer = process.stdout,
): number {
  const loaded = loadConfig(paths);
  const context =
    options.context && options.context.length > 0
      ? loadConfig(options.context, { fieldLines: false }).resources
      : [];
  const diagnostics = [...loaded.diagnostics, ...analyze(loaded.resources, { context })].sort(
    compareDiagnostics,
  );
  const summary = { resources: loaded.resources.length, ...summarize(diagnostics) };
  if (options.output === 'json') out.write(`${JSON.stringify({ diagnostics, summary }, null, 2)}\n`);
  else {
    for (const d of diagnostics) out.write(`${formatDiagnostic(d)}\n`);
    out.write(
      `${plural(summary.resources, 'resource')} analyzed: ${plural(summary.errors, 'error')}, ${plural(summary.warnings, 'warning')}, ${plural(summary.infos, 'info')}\n`,
    );
  }
  return hasErrors(diagnostics) ? 1 : 0;
}
