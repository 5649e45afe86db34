/** Small readers for normalized (proto3 JSON, snake_case) configuration, each naming the field path on error. */
import { ConfigError } from '../../core/errors.ts';
import { parseDurationMs } from '../../core/duration.ts';
import { isObject } from '../../core/json.ts';
import type { Json, JsonObject } from '../../core/json.ts';

/**
 * Whether a field carries a value. proto3 JSON may spell an unset scalar as its default (false, 0,
 * "") or an unset repeated field as []; a message, even empty, is set.
 */
export function isSet(value: Json | undefined): boolean {
  if (value === undefined || value === null || value === false || value === 0 || value === '') return false;
  if (Array.isArray(value)) return value.length > 0;
  return true;
}

export function asObject(value: Json | undefined, path: string): JsonObject {
  if (!isObject(value)) throw new ConfigError(path, `expected an object, got ${JSON.stringify(value)}`);
  return value;
}

/** Rejects every set field of `obj` outside `supported`: Weft never ignores configuration silently. */
export function rejectUnsupported(obj: JsonObject, path: string, supported: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    if (key === '@type' || supported.includes(key) || !isSet(obj[key])) continue;
    throw new ConfigError(`${path}.${key}`, 'field is not supported by Weft');
  }
}

export function optionalObject(obj: JsonObject, key: string, path: string): JsonObject | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  return asObject(value, `${path}.${key}`);
}

export function optionalArray(obj: JsonObject, key: string, path: string): Json[] {
  const value = obj[key];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value))
    throw new ConfigError(`${path}.${key}`, `expected a list, got ${JSON.stringify(value)}`);
  return value;
}

export function optionalString(obj: JsonObject, key: string, path: string): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string')
    throw new ConfigError(`${path}.${key}`, `expected a string, got ${JSON.stringify(value)}`);
  return value;
}

export function optionalBool(obj: JsonObject, key: string, path: string): boolean | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean')
    throw new ConfigError(`${path}.${key}`, `expected true or false, got ${JSON.stringify(value)}`);
  return value;
}

/** An integer field (uint32/uint64 or their wrappers), checked against inclusive bounds. */
export function optionalInteger(
  obj: JsonObject,
  key: string,
  path: string,
  bounds: { readonly min?: number; readonly max?: number } = {},
): number | undefined {
  let value = obj[key];
  if (value === undefined || value === null) return undefined;
  // proto3 JSON writes 64-bit integers as strings.
  if (typeof value === 'string' && /^-?\d+$/.test(value)) value = Number(value);
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new ConfigError(`${path}.${key}`, `expected an integer, got ${JSON.stringify(value)}`);
  }
  const min = bounds.min ?? 0;
  if (value < min) throw new ConfigError(`${path}.${key}`, `must be at least ${min}, got ${value}`);
  if (bounds.max !== undefined && value > bounds.max) {
    throw new ConfigError(`${path}.${key}`, `must be at most ${bounds.max}, got ${value}`);
  }
  return value;
}

export function optionalNumber(obj: JsonObject, key: string, path: string): number | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new ConfigError(`${path}.${key}`, `expected a number, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function optionalDurationMs(obj: JsonObject, key: string, path: string): number | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  return parseDurationMs(value, `${path}.${key}`);
}

/**
 * An enum given by name. `supported` values are returned; `known` values that Weft does not
 * implement are rejected as such; anything else is an unknown value.
 */
export function optionalEnum<T extends string>(
  obj: JsonObject,
  key: string,
  path: string,
  supported: readonly T[],
  known: readonly string[] = [],
): T | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string' && (supported as readonly string[]).includes(value)) return value as T;
  if (typeof value === 'string' && known.includes(value)) {
    throw new ConfigError(`${path}.${key}`, `${JSON.stringify(value)} is not supported by Weft`);
  }
  throw new ConfigError(`${path}.${key}`, `unknown value ${JSON.stringify(value)}`);
}
