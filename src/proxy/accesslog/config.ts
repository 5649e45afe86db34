/** Envoy's `access_log` (config.accesslog.v3.AccessLog), on an HTTP connection manager or a tcp_proxy. */
import { ConfigError } from '../../core/errors.ts';

export interface AccessLogConfig {
  readonly name: string;
}

/** Compiles an `access_log` list; `path` names the field, e.g. `...typed_config.access_log`. */
export function compileAccessLogs(json: unknown, path: string): readonly AccessLogConfig[] {
  if (json === undefined || json === null || (Array.isArray(json) && json.length === 0)) return [];
  throw new ConfigError(path, 'not supported by Weft (yet)');
}
