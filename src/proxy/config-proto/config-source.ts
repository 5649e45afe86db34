/**
 * envoy.config.core.v3.ConfigSource, as far as Weft implements it: resources come over the aggregated
 * (ADS) stream named by the bootstrap's dynamic_resources.ads_config, nothing else. Used by lds_config and
 * cds_config, a cluster's eds_config and a connection manager's rds.config_source.
 */
import { ConfigError } from '../../core/errors.ts';
import type { Json } from '../../core/json.ts';
import { asObject, durationMs, onlyFields, optObject, optString } from './fields.ts';
import { fieldPath } from './path.ts';

/** Envoy's default initial_fetch_timeout. */
export const DEFAULT_INITIAL_FETCH_TIMEOUT_MS = 15_000;

export interface AdsConfigSource {
  /**
   * How long a subscription waits for its first response before the proxy goes on without it
   * (initial_fetch_timeout; Envoy's default 15 s). 0 means wait for ever, as in Envoy.
   */
  readonly initialFetchTimeoutMs: number;
}

const ONLY_ADS = 'not supported by Weft (only ads: {} is)';

export function compileAdsConfigSource(json: Json | undefined, path: string): AdsConfigSource {
  if (json === undefined || json === null) throw new ConfigError(path, 'required');
  const obj = asObject(json, path);
  onlyFields(obj, path, ['ads', 'resource_api_version', 'initial_fetch_timeout'], {
    path: ONLY_ADS,
    path_config_source: ONLY_ADS,
    api_config_source: ONLY_ADS,
    self: ONLY_ADS,
    authorities: 'not supported by Weft',
  });
  const ads = optObject(obj, 'ads', path);
  if (!ads) throw new ConfigError(fieldPath(path, 'ads'), 'required (Weft takes dynamic resources over ADS)');
  onlyFields(ads, fieldPath(path, 'ads'), []);
  // AUTO (unset) means the transport's version, which Weft requires to be V3.
  const version = optString(obj, 'resource_api_version', path) ?? 'V3';
  if (version !== 'V3' && version !== 'AUTO')
    throw new ConfigError(fieldPath(path, 'resource_api_version'), `${version} is not supported (only V3)`);
  return {
    initialFetchTimeoutMs: durationMs(obj, 'initial_fetch_timeout', path, DEFAULT_INITIAL_FETCH_TIMEOUT_MS),
  };
}
