/**
 * Where a transport socket's named secret comes from (SdsSecretConfig): no sds_config means the bootstrap's
 * static_resources.secrets; `ads: {}` means SDS over the ADS stream; a gRPC api_config_source to the
 * `sds-grpc` cluster means the local certificate agent (Istio's convention). Nothing else is supported.
 */
import { ConfigError } from '../../core/errors.ts';
import type { Json } from '../../core/json.ts';
import {
  asObject,
  objectItems,
  onlyFields,
  optObject,
  optString,
  requiredString,
} from '../config-proto/fields.ts';
import { fieldPath } from '../config-proto/path.ts';
import type { SecretSource } from './secrets.ts';
import { AGENT_SDS_CLUSTER } from '../../api/istio/mesh-names.ts';

export interface SecretRef {
  readonly name: string;
  readonly source: SecretSource;
}

/** envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig. */
export function compileSdsSecretConfig(json: Json | undefined, path: string): SecretRef {
  const obj = asObject(json, path);
  onlyFields(obj, path, ['name', 'sds_config']);
  const name = requiredString(obj, 'name', path);
  const sds = optObject(obj, 'sds_config', path);
  return {
    name,
    source: sds === undefined ? 'static' : compileSdsConfigSource(sds, fieldPath(path, 'sds_config')),
  };
}

const UNSUPPORTED_SOURCE =
  'not supported by Weft (secrets come from ads: {}, or from a GRPC api_config_source to the "sds-grpc" cluster)';

export function compileSdsConfigSource(json: Json, path: string): 'ads' | 'agent' {
  const obj = asObject(json, path);
  onlyFields(obj, path, ['ads', 'api_config_source', 'resource_api_version', 'initial_fetch_timeout'], {
    path: UNSUPPORTED_SOURCE,
    path_config_source: UNSUPPORTED_SOURCE,
    self: UNSUPPORTED_SOURCE,
    authorities: UNSUPPORTED_SOURCE,
  });
  const version = optString(obj, 'resource_api_version', path) ?? 'V3';
  if (version !== 'V3' && version !== 'AUTO')
    throw new ConfigError(fieldPath(path, 'resource_api_version'), `${version} is not supported (only V3)`);
  const ads = optObject(obj, 'ads', path);
  const api = optObject(obj, 'api_config_source', path);
  if (ads !== undefined && api !== undefined)
    throw new ConfigError(path, 'set either ads or api_config_source');
  if (ads !== undefined) {
    onlyFields(ads, fieldPath(path, 'ads'), []);
    return 'ads';
  }
  if (api === undefined) throw new ConfigError(path, 'ads or api_config_source is required');
  const apiPath = fieldPath(path, 'api_config_source');
  onlyFields(api, apiPath, [
    'api_type',
    'transport_api_version',
    'grpc_services',
    'set_node_on_first_message_only',
  ]);
  const apiType = optString(api, 'api_type', apiPath) ?? 'LEGACY';
  if (apiType !== 'GRPC')
    throw new ConfigError(fieldPath(apiPath, 'api_type'), `${apiType} is ${UNSUPPORTED_SOURCE}`);
  const transport = optString(api, 'transport_api_version', apiPath) ?? 'V3';
  if (transport !== 'V3' && transport !== 'AUTO')
    throw new ConfigError(
      fieldPath(apiPath, 'transport_api_version'),
      `${transport} is not supported (only V3)`,
    );
  const services = objectItems(api, 'grpc_services', apiPath);
  if (services.length !== 1)
    throw new ConfigError(fieldPath(apiPath, 'grpc_services'), 'exactly one gRPC service is required');
  const { item, path: servicePath } = services[0];
  onlyFields(item, servicePath, ['envoy_grpc', 'timeout', 'initial_metadata'], {
    google_grpc: UNSUPPORTED_SOURCE,
  });
  const envoyGrpc = optObject(item, 'envoy_grpc', servicePath);
  if (envoyGrpc === undefined) throw new ConfigError(fieldPath(servicePath, 'envoy_grpc'), 'required');
  const grpcPath = fieldPath(servicePath, 'envoy_grpc');
  onlyFields(envoyGrpc, grpcPath, ['cluster_name', 'authority']);
  const cluster = requiredString(envoyGrpc, 'cluster_name', grpcPath);
  if (cluster !== AGENT_SDS_CLUSTER)
    throw new ConfigError(
      fieldPath(grpcPath, 'cluster_name'),
      `${JSON.stringify(cluster)}: ${UNSUPPORTED_SOURCE}`,
    );
  return 'agent';
}
