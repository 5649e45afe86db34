/** The HTTP connection manager's `tracing` (HttpConnectionManager.Tracing). */
import { ConfigError } from '../../core/errors.ts';

export interface HttpTracingConfig {
  readonly provider: string;
}

/** Compiles `tracing`; undefined when the connection manager does not trace. */
export function compileHttpTracing(json: unknown, path: string): HttpTracingConfig | undefined {
  if (json === undefined || json === null) return undefined;
  throw new ConfigError(path, 'not supported by Weft (yet)');
}
