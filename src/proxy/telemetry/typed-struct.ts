/**
 * Istio's own filters have no Envoy proto, so their configuration arrives as an xds.type.v3.TypedStruct
 * (or the older udpa.type.v1.TypedStruct): `{ "@type": ".../TypedStruct", type_url, value }`, `value`
 * being the filter's fields as a plain (normalized Struct) object.
 */
import { ConfigError } from '../../core/errors.ts';
import type { Json, JsonObject } from '../../core/json.ts';
import { asObject, onlyFields, optString } from '../config-proto/fields.ts';
import { fieldPath } from '../config-proto/path.ts';

export const TYPED_STRUCT_TYPE_NAMES: ReadonlySet<string> = new Set([
  'xds.type.v3.TypedStruct',
  'udpa.type.v1.TypedStruct',
]);

export const ISTIO_STATS_TYPE_URL = 'type.googleapis.com/stats.PluginConfig';
export const PEER_METADATA_TYPE_URL = 'type.googleapis.com/io.istio.http.peer_metadata.Config';
export const ISTIO_STATS_FILTER_NAME = 'istio.stats';
export const METADATA_EXCHANGE_FILTER_NAME = 'istio.metadata_exchange';

/** The `type_url` and `value` of a TypedStruct (value {} when unset). */
export function unwrapTypedStruct(json: Json, path: string): { typeUrl: string; value: JsonObject } {
  const obj = asObject(json, path);
  onlyFields(obj, path, ['@type', 'type_url', 'value']);
  const typeUrl = optString(obj, 'type_url', path) ?? '';
  if (typeUrl === '') throw new ConfigError(fieldPath(path, 'type_url'), 'required');
  const value =
    obj.value === undefined || obj.value === null ? {} : asObject(obj.value, fieldPath(path, 'value'));
  return { typeUrl, value };
}

/**
 * An http_filters entry that is one of Istio's filters (a TypedStruct typed_config, or the bare name
 * istio.stats / istio.metadata_exchange): its HttpFilterConfig, with `typeUrl` the inner type and `config`
 * the checked value. Undefined for every other filter.
 */
export function identifyIstioHttpFilter(
  item: JsonObject,
  path: string,
  check: Readonly<Record<string, (value: JsonObject, path: string) => unknown>>,
): { name: string; typeUrl: string; config: JsonObject } | undefined {
  const name = optString(item, 'name', path) ?? '';
  const typedPath = fieldPath(path, 'typed_config');
  const typed = item.typed_config;
  if (typed === undefined || typed === null) {
    const typeUrl =
      name === ISTIO_STATS_FILTER_NAME
        ? ISTIO_STATS_TYPE_URL
        : name === METADATA_EXCHANGE_FILTER_NAME
          ? PEER_METADATA_TYPE_URL
          : undefined;
    if (typeUrl === undefined) return undefined;
    check[typeUrl]({}, typedPath);
    return { name, typeUrl, config: {} };
  }
  const typeName = optString(asObject(typed, typedPath), '@type', typedPath)?.replace(/^.*\//, '') ?? '';
  if (!TYPED_STRUCT_TYPE_NAMES.has(typeName)) return undefined;
  const { typeUrl, value } = unwrapTypedStruct(typed, typedPath);
  const compile = Object.hasOwn(check, typeUrl) ? check[typeUrl] : undefined;
  if (compile === undefined)
    throw new ConfigError(
      fieldPath(typedPath, 'type_url'),
      `unsupported HTTP filter type ${JSON.stringify(typeUrl)} (Weft knows ${Object.keys(check).join(', ')})`,
    );
  compile(value, fieldPath(typedPath, 'value'));
  const fallbackName =
    typeUrl === ISTIO_STATS_TYPE_URL ? ISTIO_STATS_FILTER_NAME : METADATA_EXCHANGE_FILTER_NAME;
  return { name: name || fallbackName, typeUrl, config: value };
}
