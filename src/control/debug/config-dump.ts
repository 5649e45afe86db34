/**
 * A connected proxy's generated configuration in the shape of Envoy's /config_dump (envoy.admin.v3.*ConfigDump),
 * so tools and people who read Envoy dumps read this one the same way.
 */
import { isObject } from '../../core/json.ts';
import type { Json, JsonObject } from '../../core/json.ts';
import type { GeneratedConfig } from '../xds/ads-server.ts';
import { versionOfSet } from '../xds/resources.ts';
import { TYPE_URL } from '../xds/types.ts';

const ADMIN = 'type.googleapis.com/envoy.admin.v3';

export interface ConfigDump {
  [key: string]: unknown;
  node: JsonObject;
  configs: JsonObject[];
}

type Entry = { name: string; version: string; resource: JsonObject };

function setVersion(entries: readonly Entry[]): string {
  return versionOfSet(new Map(entries.map((e) => [e.name, e.version])));
}

/** Key material never leaves through a debug endpoint (Envoy's own dump redacts it the same way). */
const SECRET_FIELDS = new Set(['private_key', 'password']);

function redactSecrets(value: Json): Json {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = SECRET_FIELDS.has(key) ? { inline_string: '[redacted]' } : redactSecrets(v);
  }
  return out;
}

export function configDump(generated: GeneratedConfig): ConfigDump {
  const { node, types } = generated;
  const configs: JsonObject[] = [];
  const clusters = types.get(TYPE_URL.cluster);
  if (clusters) {
    configs.push({
      '@type': `${ADMIN}.ClustersConfigDump`,
      version_info: setVersion(clusters),
      dynamic_active_clusters: clusters.map((e) => ({ version_info: e.version, cluster: e.resource })),
    });
  }
  const endpoints = types.get(TYPE_URL.endpoint);
  if (endpoints) {
    configs.push({
      '@type': `${ADMIN}.EndpointsConfigDump`,
      dynamic_endpoint_configs: endpoints.map((e) => ({
        version_info: e.version,
        endpoint_config: e.resource,
      })),
    });
  }
  const listeners = types.get(TYPE_URL.listener);
  if (listeners) {
    configs.push({
      '@type': `${ADMIN}.ListenersConfigDump`,
      version_info: setVersion(listeners),
      dynamic_listeners: listeners.map((e) => ({
        name: e.name,
        active_state: { version_info: e.version, listener: e.resource },
      })),
    });
  }
  const routes = types.get(TYPE_URL.route);
  if (routes) {
    configs.push({
      '@type': `${ADMIN}.RoutesConfigDump`,
      dynamic_route_configs: routes.map((e) => ({ version_info: e.version, route_config: e.resource })),
    });
  }
  const secrets = types.get(TYPE_URL.secret);
  if (secrets) {
    configs.push({
      '@type': `${ADMIN}.SecretsConfigDump`,
      dynamic_active_secrets: secrets.map((e) => ({
        name: e.name,
        version_info: e.version,
        secret: redactSecrets(e.resource) as JsonObject,
      })),
    });
  }
  return {
    node: {
      id: node.id,
      type: node.type,
      name: node.name,
      namespace: node.namespace,
      cluster: node.cluster,
      locality: { region: node.locality.region, zone: node.locality.zone, sub_zone: node.locality.subZone },
      metadata: node.metadata,
    },
    configs,
  };
}
