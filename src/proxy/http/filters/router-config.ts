/** The router filter's own configuration: envoy.extensions.filters.http.router.v3.Router. */
import { ConfigError } from '../../../core/errors.ts';
import type { Json } from '../../../core/json.ts';
import { asObject, optBool } from '../../config-proto/fields.ts';
import { fieldPath } from '../../config-proto/path.ts';
import { checkFields } from '../../router/check-fields.ts';

export const ROUTER_TYPE_NAME = 'envoy.extensions.filters.http.router.v3.Router';

export interface RouterConfig {
  /** Cap the route's timeout by the caller's x-envoy-expected-rq-timeout-ms. */
  readonly respectExpectedRqTimeout: boolean;
  /** Add no x-envoy-* request headers of the router's own (x-envoy-expected-rq-timeout-ms). */
  readonly suppressEnvoyHeaders: boolean;
}

export const DEFAULT_ROUTER_CONFIG: RouterConfig = Object.freeze({
  respectExpectedRqTimeout: false,
  suppressEnvoyHeaders: false,
});

export function compileRouterConfig(json: Json | undefined, path: string): RouterConfig {
  if (json === undefined || json === null) return DEFAULT_ROUTER_CONFIG;
  const obj = asObject(json, path);
  checkFields(obj, path, {
    supported: ['@type', 'respect_expected_rq_timeout', 'suppress_envoy_headers', 'dynamic_stats'],
    refused: {
      start_child_span: null,
      upstream_log: null,
      upstream_log_options: null,
      strict_check_headers: null,
      suppress_grpc_request_failure_code_stats: null,
      upstream_http_filters: null,
    },
  });
  // dynamic_stats defaults to true (a BoolValue): Weft always keeps its per-cluster stats.
  if (optBool(obj, 'dynamic_stats', path) === false)
    throw new ConfigError(fieldPath(path, 'dynamic_stats'), 'false is not supported by Weft');
  const respect = optBool(obj, 'respect_expected_rq_timeout', path) ?? false;
  const suppress = optBool(obj, 'suppress_envoy_headers', path) ?? false;
  if (!respect && !suppress) return DEFAULT_ROUTER_CONFIG;
  return Object.freeze({ respectExpectedRqTimeout: respect, suppressEnvoyHeaders: suppress });
}
