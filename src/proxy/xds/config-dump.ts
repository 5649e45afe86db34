/**
 * /config_dump in Envoy's shape (envoy.admin.v3.ConfigDump): the bootstrap, then listeners, clusters,
 * route configurations and endpoints, static and dynamic, each dynamic resource with the version_info it
 * was accepted at and when, and the error of its last refused update.
 */
import type { Json, JsonObject } from '../../core/json.ts';
import { isObject } from '../../core/json.ts';
import type { DynamicSnapshot, Held, UpdateFailure } from './dynamic-config.ts';
import { TYPE_URL } from './type-urls.ts';

const ADMIN = 'type.googleapis.com/envoy.admin.v3.';

function typed(typeUrl: string, json: JsonObject): JsonObject {
  return { '@type': typeUrl, ...json };
}

function staticItems(bootstrap: Json, key: 'listeners' | 'clusters'): JsonObject[] {
  if (!isObject(bootstrap) || !isObject(bootstrap.static_resources)) return [];
  const items = bootstrap.static_resources[key];
  return Array.isArray(items) ? items.filter(isObject) : [];
}

function failureState(f: UpdateFailure | undefined, typeUrl: string): JsonObject {
  if (f === undefined) return {};
  return {
    error_state: {
      ...(f.json ? { failed_configuration: typed(typeUrl, withoutType(f.json)) } : {}),
      last_update_attempt: f.at.toISOString(),
      details: f.details,
      version_info: f.version,
    },
  };
}

function withoutType(json: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(json)) if (k !== '@type') out[k] = v;
  return out;
}

function dynamic<T>(h: Held<T>, field: string, typeUrl: string): JsonObject {
  return {
    version_info: h.version,
    [field]: typed(typeUrl, h.json),
    last_updated: h.lastUpdated.toISOString(),
  };
}

export function renderConfigDump(
  bootstrap: Json,
  startedAt: Date,
  snapshot: DynamicSnapshot | null,
): unknown {
  const loaded = startedAt.toISOString();
  const failure = (typeUrl: string, name: string): UpdateFailure | undefined =>
    snapshot?.failures.get(`${typeUrl} ${name}`);
  const version = (typeUrl: string): JsonObject => {
    const v = snapshot?.versions.get(typeUrl);
    return v === undefined ? {} : { version_info: v };
  };

  const dynamicListeners = new Map<string, JsonObject>();
  const entry = (name: string): JsonObject => {
    let e = dynamicListeners.get(name);
    if (e === undefined) dynamicListeners.set(name, (e = { name }));
    return e;
  };
  for (const l of snapshot?.listeners ?? [])
    entry(l.name).active_state = dynamic(l, 'listener', TYPE_URL.listener);
  for (const l of snapshot?.warmingListeners ?? [])
    entry(l.name).warming_state = dynamic(l, 'listener', TYPE_URL.listener);
  for (const [key, f] of snapshot?.failures ?? []) {
    if (!key.startsWith(`${TYPE_URL.listener} `)) continue;
    Object.assign(entry(key.slice(TYPE_URL.listener.length + 1)), failureState(f, TYPE_URL.listener));
  }

  const clusterFailures: JsonObject[] = [];
  for (const [key, f] of snapshot?.failures ?? []) {
    if (!key.startsWith(`${TYPE_URL.cluster} `)) continue;
    const name = key.slice(TYPE_URL.cluster.length + 1);
    if (snapshot?.clusters.some((c) => c.name === name)) continue;
    clusterFailures.push({ name, ...failureState(f, TYPE_URL.cluster) });
  }

  return {
    configs: [
      { '@type': `${ADMIN}BootstrapConfigDump`, bootstrap, last_updated: loaded },
      {
        '@type': `${ADMIN}ClustersConfigDump`,
        ...version(TYPE_URL.cluster),
        static_clusters: staticItems(bootstrap, 'clusters').map((c) => ({
          cluster: typed(TYPE_URL.cluster, c),
          last_updated: loaded,
        })),
        dynamic_active_clusters: (snapshot?.clusters ?? []).map((c) => ({
          ...dynamic(c, 'cluster', TYPE_URL.cluster),
          ...failureState(failure(TYPE_URL.cluster, c.name), TYPE_URL.cluster),
        })),
        dynamic_warming_clusters: (snapshot?.warmingClusters ?? []).map((c) =>
          dynamic(c, 'cluster', TYPE_URL.cluster),
        ),
        ...(clusterFailures.length > 0 ? { dynamic_failed_clusters: clusterFailures } : {}),
      },
      {
        '@type': `${ADMIN}ListenersConfigDump`,
        ...version(TYPE_URL.listener),
        static_listeners: staticItems(bootstrap, 'listeners').map((l) => ({
          listener: typed(TYPE_URL.listener, l),
          last_updated: loaded,
        })),
        dynamic_listeners: [...dynamicListeners.values()],
      },
      {
        '@type': `${ADMIN}RoutesConfigDump`,
        static_route_configs: [],
        dynamic_route_configs: (snapshot?.routes ?? []).map((r) => ({
          ...dynamic(r, 'route_config', TYPE_URL.route),
          ...failureState(failure(TYPE_URL.route, r.name), TYPE_URL.route),
        })),
      },
      {
        '@type': `${ADMIN}EndpointsConfigDump`,
        static_endpoint_configs: [],
        dynamic_endpoint_configs: (snapshot?.endpoints ?? []).map((e) => ({
          ...dynamic(e, 'endpoint_config', TYPE_URL.endpoint),
          ...failureState(failure(TYPE_URL.endpoint, e.name), TYPE_URL.endpoint),
        })),
      },
    ],
  };
}
