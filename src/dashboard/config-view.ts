/**
 * /api/config: the Istio resources of the control plane's configuration paths, each with the `analyze`
 * diagnostics that name it. Loaded again at most every few seconds, on demand: the dashboard costs nothing
 * while nobody looks at this page.
 */
import { resourceName } from '../api/istio/resource.ts';
import { analyze } from '../config/analyze/index.ts';
import { compareDiagnostics } from '../config/diagnostic.ts';
import type { Diagnostic } from '../config/diagnostic.ts';
import { loadConfig } from '../config/load.ts';
import type { ConfigDiagnostic, ConfigResource, ConfigResponse } from './types.ts';

function plain(d: Diagnostic): ConfigDiagnostic {
  return {
    code: d.code,
    severity: d.severity,
    message: d.message,
    ...(d.field ? { field: d.field } : {}),
    ...(d.file !== undefined ? { file: d.file } : {}),
    ...(d.line !== undefined ? { line: d.line } : {}),
  };
}

export function configView(paths: readonly string[]): ConfigResponse {
  const loaded = loadConfig(paths);
  const diagnostics = [...loaded.diagnostics, ...analyze(loaded.resources)].sort(compareDiagnostics);
  const byName = new Map<string, ConfigResource>();
  const resources = loaded.resources.map((r) => {
    const out: ConfigResource = {
      kind: r.kind,
      apiVersion: r.apiVersion,
      namespace: r.metadata.namespace,
      name: r.metadata.name,
      file: r.source.file,
      line: r.source.line,
      spec: r.spec,
      diagnostics: [],
    };
    byName.set(resourceName(r), out);
    return out;
  });
  const other: ConfigDiagnostic[] = [];
  for (const d of diagnostics) {
    const r = d.resource === undefined ? undefined : byName.get(d.resource);
    if (r) r.diagnostics.push(plain(d));
    else other.push(plain(d));
  }
  const count = (s: Diagnostic['severity']): number => diagnostics.filter((d) => d.severity === s).length;
  return {
    resources,
    other,
    summary: {
      resources: resources.length,
      errors: count('error'),
      warnings: count('warning'),
      infos: count('info'),
    },
  };
}

/** configView, reused while younger than `maxAgeMs`. */
export function cachedConfigView(
  paths: readonly string[],
  maxAgeMs = 3000,
  now: () => number = Date.now,
): () => ConfigResponse {
  let last: { at: number; view: ConfigResponse } | undefined;
  return () => {
    const t = now();
    if (!last || t - last.at > maxAgeMs) last = { at: t, view: configView(paths) };
    return last.view;
  };
}
