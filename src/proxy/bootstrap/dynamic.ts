/**
 * The bootstrap's dynamic_resources: an ADS stream (ads_config) to a static HTTP/2 cluster, and listeners
 * and clusters (lds_config, cds_config) delivered over it. Weft implements ADS only: every config source
 * must be `ads: {}`.
 */
import { ConfigError } from '../../core/errors.ts';
import type { JsonObject } from '../../core/json.ts';
import { compileAdsConfigSource } from '../config-proto/config-source.ts';
import { asObject, objectItems, onlyFields, optBool, optObject, optString } from '../config-proto/fields.ts';
import { fieldPath } from '../config-proto/path.ts';
import type { ClusterConfig } from '../upstream/types.ts';
import type { AdsConfig, DynamicResourcesConfig } from './types.ts';

export function compileDynamicResources(
  obj: JsonObject,
  path: string,
  clusters: readonly ClusterConfig[],
): DynamicResourcesConfig {
  onlyFields(obj, path, ['ads_config', 'lds_config', 'cds_config'], {
    lds_resources_locator: 'not supported by Weft (xdstp:// names)',
    cds_resources_locator: 'not supported by Weft (xdstp:// names)',
  });
  const adsJson = optObject(obj, 'ads_config', path);
  const ads = adsJson ? compileAdsConfig(adsJson, fieldPath(path, 'ads_config'), clusters) : undefined;
  const source = (key: 'lds_config' | 'cds_config'): DynamicResourcesConfig['lds'] => {
    const json = optObject(obj, key, path);
    if (!json) return undefined;
    const compiled = compileAdsConfigSource(json, fieldPath(path, key));
    if (!ads) throw new ConfigError(fieldPath(path, key), 'ads needs dynamic_resources.ads_config');
    return compiled;
  };
  return { ads, lds: source('lds_config'), cds: source('cds_config') };
}

function compileAdsConfig(obj: JsonObject, path: string, clusters: readonly ClusterConfig[]): AdsConfig {
  onlyFields(obj, path, [
    'api_type',
    'transport_api_version',
    'grpc_services',
    'set_node_on_first_message_only',
  ]);
  const apiType = optString(obj, 'api_type', path) ?? '';
  if (apiType !== 'GRPC' && apiType !== 'DELTA_GRPC') {
    throw new ConfigError(
      fieldPath(path, 'api_type'),
      apiType === ''
        ? 'required (GRPC or DELTA_GRPC)'
        : `${apiType} is not supported by Weft (GRPC or DELTA_GRPC)`,
    );
  }
  // Envoy no longer speaks v2 and treats an unset (AUTO) transport version as v2.
  const transport = optString(obj, 'transport_api_version', path) ?? 'AUTO';
  if (transport !== 'V3')
    throw new ConfigError(fieldPath(path, 'transport_api_version'), `must be V3, got ${transport}`);
  const services = objectItems(obj, 'grpc_services', path);
  if (services.length !== 1)
    throw new ConfigError(
      fieldPath(path, 'grpc_services'),
      `exactly one gRPC service is required, got ${services.length}`,
    );
  const { item: service, path: servicePath } = services[0];
  onlyFields(service, servicePath, ['envoy_grpc'], {
    google_grpc: 'not supported by Weft (use envoy_grpc)',
  });
  const envoyPath = fieldPath(servicePath, 'envoy_grpc');
  const envoyGrpc = asObject(service.envoy_grpc, envoyPath);
  onlyFields(envoyGrpc, envoyPath, ['cluster_name', 'authority']);
  const clusterName = optString(envoyGrpc, 'cluster_name', envoyPath) ?? '';
  const clusterPath = fieldPath(envoyPath, 'cluster_name');
  if (!clusterName) throw new ConfigError(clusterPath, 'required');
  const cluster = clusters.find((c) => c.name === clusterName);
  if (!cluster)
    throw new ConfigError(
      clusterPath,
      `unknown cluster ${JSON.stringify(clusterName)} (not in static_resources.clusters)`,
    );
  if (cluster.type === 'EDS')
    throw new ConfigError(
      clusterPath,
      `cluster ${JSON.stringify(clusterName)} is an EDS cluster; the ADS cluster needs its endpoints in the bootstrap`,
    );
  if (!cluster.http2) {
    throw new ConfigError(
      clusterPath,
      `cluster ${JSON.stringify(clusterName)} must use HTTP/2 (gRPC): set its typed_extension_protocol_options explicit_http_config.http2_protocol_options`,
    );
  }
  return {
    apiType,
    clusterName,
    authority: optString(envoyGrpc, 'authority', envoyPath) || clusterName,
    nodeOnFirstMessageOnly: optBool(obj, 'set_node_on_first_message_only', path) ?? false,
  };
}
