/**
 * Istio's peer metadata filter configuration (io.istio.http.peer_metadata.Config, given as a TypedStruct's
 * `value`):
 *
 *   upstream_discovery:     [{istio_headers: {}} | {workload_discovery: {}}]   who served the request
 *   upstream_propagation:   [{istio_headers: {}}]                              our metadata to the upstream
 *   downstream_discovery:   [{istio_headers: {}} | {workload_discovery: {}}]   who sent the request
 *   downstream_propagation: [{istio_headers: {}}]                              our metadata to the client
 *   shared_with_upstream:   false (true is not supported by Weft)
 *
 * Discovery methods are tried in order; the first that finds the peer wins.
 */
import { ConfigError } from '../../core/errors.ts';
import type { Json, JsonObject } from '../../core/json.ts';
import { asObject, objectItems, onlyFields, optBool, optObject } from '../config-proto/fields.ts';
import { fieldPath } from '../config-proto/path.ts';

export type DiscoveryMethod = 'istio_headers' | 'workload_discovery';

export interface MetadataExchangeConfig {
  readonly upstreamDiscovery: readonly DiscoveryMethod[];
  readonly upstreamPropagation: boolean;
  readonly downstreamDiscovery: readonly DiscoveryMethod[];
  readonly downstreamPropagation: boolean;
}

export function compileMetadataExchange(json: Json | undefined, path: string): MetadataExchangeConfig {
  const obj = asObject(json ?? {}, path);
  onlyFields(obj, path, [
    'upstream_discovery',
    'upstream_propagation',
    'downstream_discovery',
    'downstream_propagation',
    'shared_with_upstream',
  ]);
  if (optBool(obj, 'shared_with_upstream', path) === true)
    throw new ConfigError(fieldPath(path, 'shared_with_upstream'), 'true is not supported by Weft');
  return {
    upstreamDiscovery: methods(obj, 'upstream_discovery', path, true),
    upstreamPropagation: methods(obj, 'upstream_propagation', path, false).length > 0,
    downstreamDiscovery: methods(obj, 'downstream_discovery', path, true),
    downstreamPropagation: methods(obj, 'downstream_propagation', path, false).length > 0,
  };
}

function methods(obj: JsonObject, key: string, path: string, discovery: boolean): DiscoveryMethod[] {
  return objectItems(obj, key, path).map(({ item, path: p }) => {
    const allowed = discovery ? ['istio_headers', 'workload_discovery'] : ['istio_headers'];
    onlyFields(item, p, allowed);
    const set = allowed.filter((k) => item[k] !== undefined && item[k] !== null);
    if (set.length !== 1) throw new ConfigError(p, `exactly one of ${allowed.join(', ')} is required`);
    const method = set[0] as DiscoveryMethod;
    const body = optObject(item, method, p) ?? {};
    // Their options (e.g. istio_headers.skip_external_clusters) are not implemented.
    onlyFields(asObject(body, fieldPath(p, method)), fieldPath(p, method), []);
    return method;
  });
}
