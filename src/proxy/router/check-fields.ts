/**
 * Field-set checks for route configuration messages: every field is either implemented, refused with
 * "not supported by Weft", or unknown. A refused field is tolerated only when it holds its proto3 default
 * (normalized JSON may spell defaults out, e.g. `include_request_attempt_count: false`), because a default
 * asks for no behaviour.
 */
import { ConfigError } from '../../core/errors.ts';
import type { Json, JsonObject } from '../../core/json.ts';
import { fieldPath } from '../config-proto/path.ts';

export interface MessageFields {
  /** Fields this compiler implements. */
  readonly supported: readonly string[];
  /**
   * Fields Weft does not implement. The value is the default that is still accepted for an enum field
   * (e.g. `"NONE"`), or null for other fields (accepted only as false, 0, "", [] or an empty map).
   */
  readonly refused: Readonly<Record<string, string | null>>;
  /** Map-typed fields among `refused` (for which `{}` is the default rather than a set message). */
  readonly maps?: readonly string[];
}

function isDefault(value: Json, enumDefault: string | null, isMap: boolean): boolean {
  if (value === null || value === false || value === 0 || value === '') return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === 'string') return value === enumDefault;
  if (isMap && typeof value === 'object') return Object.keys(value).length === 0;
  return false;
}

/** Throws for the first field of `obj` that is unknown or refused (and not at its default). */
export function checkFields(obj: JsonObject, path: string, fields: MessageFields): void {
  for (const key of Object.keys(obj)) {
    if (fields.supported.includes(key)) continue;
    if (Object.hasOwn(fields.refused, key)) {
      if (isDefault(obj[key], fields.refused[key], fields.maps?.includes(key) ?? false)) continue;
      throw new ConfigError(fieldPath(path, key), 'not supported by Weft');
    }
    throw new ConfigError(fieldPath(path, key), 'unknown field');
  }
}
