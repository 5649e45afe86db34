/**
 * Turns a parsed Envoy v3 bootstrap (any JSON value, as read from YAML or JSON) into a BootstrapConfig:
 * normalize against envoy.config.bootstrap.v3.Bootstrap, refuse what Weft does not do, compile the
 * static listeners and clusters, and check the names that tie them together.
 */
import { ConfigError } from '../../core/errors.ts';
import type { JsonObject } from '../../core/json.ts';
import { asObject, objectItems, onlyFields, optObject, optString } from '../config-proto/fields.ts';
import { normalize } from '../config-proto/normalize.ts';
import { fieldPath } from '../config-proto/path.ts';
import { compileAddress, compileListenerWithReferences, formatAddress } from '../listener/compile.ts';
import type { ClusterReference } from '../listener/compile.ts';
import type { ListenerConfig } from '../listener/types.ts';
import { compileCluster } from '../upstream/compile.ts';
import type { ClusterConfig, Locality } from '../upstream/types.ts';
import { compileDynamicResources } from './dynamic.ts';
import { compileSecret } from '../tls/secret-config.ts';
import { checkSecretReferences } from '../tls/secret-references.ts';
import type { BootstrapConfig, NodeInfo } from './types.ts';
import { compileStatsConfig } from './stats-config.ts';

const BOOTSTRAP_TYPE = 'envoy.config.bootstrap.v3.Bootstrap';
const NOT_YET = 'not supported by Weft (yet)';

export function compileBootstrap(json: unknown, source: string): BootstrapConfig {
  if (json === null || json === undefined) throw new ConfigError('', 'the bootstrap is empty');
  const normalized = asObject(normalize(BOOTSTRAP_TYPE, json, ''), '');
  onlyFields(normalized, '', ['node', 'static_resources', 'dynamic_resources', 'admin', 'stats_config'], {
    layered_runtime: NOT_YET,
  });
  const resources = optObject(normalized, 'static_resources', '') ?? {};
  onlyFields(resources, 'static_resources', ['listeners', 'clusters', 'secrets']);
  const secrets = compileStaticSecrets(resources);
  const clusters = compileClusters(resources);
  const { listeners, references } = compileListeners(resources);
  const dynamicJson = optObject(normalized, 'dynamic_resources', '');
  const dynamic = dynamicJson
    ? compileDynamicResources(dynamicJson, 'dynamic_resources', clusters)
    : undefined;
  checkReferences(references, clusters, dynamic?.cds !== undefined);
  if (!dynamic?.ads) checkNoAdsNeeded(clusters, listeners);
  checkSecretReferences(listeners, clusters, new Set(secrets.map((s) => s.name)), dynamic?.ads !== undefined);
  return {
    node: compileNode(optObject(normalized, 'node', ''), 'node'),
    admin: compileAdmin(optObject(normalized, 'admin', ''), 'admin'),
    ...statsConfigOf(normalized),
    listeners,
    clusters,
    ...(secrets.length > 0 ? { secrets } : {}),
    ...(dynamic ? { dynamic } : {}),
    normalized,
    source,
  };
}

function statsConfigOf(normalized: JsonObject): Pick<BootstrapConfig, 'stats'> {
  const stats = compileStatsConfig(optObject(normalized, 'stats_config', ''), 'stats_config');
  return stats === undefined ? {} : { stats };
}

/** EDS clusters and RDS route configurations arrive over ADS: without ads_config nothing would deliver them. */
function checkNoAdsNeeded(clusters: readonly ClusterConfig[], listeners: readonly ListenerConfig[]): void {
  clusters.forEach((c, i) => {
    if (c.type === 'EDS')
      throw new ConfigError(
        `static_resources.clusters[${i}].eds_cluster_config`,
        'EDS over ads needs dynamic_resources.ads_config',
      );
  });
  listeners.forEach((l, i) => {
    for (const chain of l.filterChains) {
      for (const f of chain.filters) {
        if (f.kind === 'http_connection_manager' && f.hcm.rds !== undefined)
          throw new ConfigError(
            `static_resources.listeners[${i}]`,
            `route configuration ${JSON.stringify(f.hcm.rds.routeConfigName)} comes from RDS over ads, which needs dynamic_resources.ads_config`,
          );
      }
    }
  });
}

function compileNode(obj: JsonObject | undefined, path: string): NodeInfo {
  if (!obj) return { id: '', cluster: '', metadata: {}, locality: undefined };
  onlyFields(obj, path, ['id', 'cluster', 'metadata', 'locality']);
  const locality = optObject(obj, 'locality', path);
  return {
    id: optString(obj, 'id', path) ?? '',
    cluster: optString(obj, 'cluster', path) ?? '',
    metadata: optObject(obj, 'metadata', path) ?? {},
    locality: locality ? compileLocality(locality, fieldPath(path, 'locality')) : undefined,
  };
}

function compileLocality(obj: JsonObject, path: string): Locality {
  onlyFields(obj, path, ['region', 'zone', 'sub_zone']);
  return {
    region: optString(obj, 'region', path) ?? '',
    zone: optString(obj, 'zone', path) ?? '',
    subZone: optString(obj, 'sub_zone', path) ?? '',
  };
}

function compileAdmin(obj: JsonObject | undefined, path: string): BootstrapConfig['admin'] {
  if (!obj) return undefined;
  onlyFields(obj, path, ['address']);
  return { address: compileAddress(obj.address, fieldPath(path, 'address')) };
}

function compileStaticSecrets(resources: JsonObject): NonNullable<BootstrapConfig['secrets']> {
  const byName = new Map<string, string>();
  return objectItems(resources, 'secrets', 'static_resources').map(({ item, path }) => {
    const secret = compileSecret(item, path);
    const first = byName.get(secret.name);
    if (first !== undefined)
      throw new ConfigError(
        fieldPath(path, 'name'),
        `duplicate secret name ${JSON.stringify(secret.name)} (also ${first})`,
      );
    byName.set(secret.name, path);
    return secret;
  });
}

function compileClusters(resources: JsonObject): ClusterConfig[] {
  const byName = new Map<string, string>();
  return objectItems(resources, 'clusters', 'static_resources').map(({ item, path }) => {
    const cluster = compileCluster(item, path);
    const first = byName.get(cluster.name);
    if (first !== undefined)
      throw new ConfigError(
        fieldPath(path, 'name'),
        `duplicate cluster name ${JSON.stringify(cluster.name)} (also ${first})`,
      );
    byName.set(cluster.name, path);
    return cluster;
  });
}

function compileListeners(resources: JsonObject): {
  listeners: ListenerConfig[];
  references: ClusterReference[];
} {
  const byName = new Map<string, string>();
  const byAddress = new Map<string, string>();
  const references: ClusterReference[] = [];
  const listeners = objectItems(resources, 'listeners', 'static_resources').map(({ item, path }) => {
    const compiled = compileListenerWithReferences(item, path);
    const { name, address } = compiled.listener;
    const sameAddress = byAddress.get(formatAddress(address));
    // Port 0 asks the kernel for a fresh port each time, so such listeners never collide.
    if (sameAddress !== undefined && address.port !== 0) {
      throw new ConfigError(
        fieldPath(path, 'address'),
        `${formatAddress(address)} is already the address of ${sameAddress}`,
      );
    }
    const sameName = byName.get(name);
    if (sameName !== undefined)
      throw new ConfigError(
        fieldPath(path, 'name'),
        `duplicate listener name ${JSON.stringify(name)} (also ${sameName})`,
      );
    byAddress.set(formatAddress(address), path);
    byName.set(name, path);
    references.push(...compiled.references);
    return compiled.listener;
  });
  return { listeners, references };
}

/**
 * Every cluster a static listener's routes name must be a static cluster, as in Envoy, whose static
 * listeners are checked before CDS delivers anything (validate_clusters: false lifts it). A tcp_proxy's
 * cluster may come from CDS later.
 */
function checkReferences(
  references: readonly ClusterReference[],
  clusters: readonly ClusterConfig[],
  hasCds: boolean,
): void {
  const names = new Set(clusters.map((c) => c.name));
  for (const ref of references) {
    if (hasCds && ref.tcpProxy) continue;
    if (!names.has(ref.cluster)) {
      throw new ConfigError(
        ref.path,
        `unknown cluster ${JSON.stringify(ref.cluster)} (not in static_resources.clusters)`,
      );
    }
  }
}
