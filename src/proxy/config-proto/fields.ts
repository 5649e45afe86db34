/**
 * Typed reads of normalized config objects, for compile functions. Normalization already checked the
 * JSON types against the proto; these re-check cheaply so a compile function also fails cleanly when
 * called on hand-written JSON (tests, callers that skipped normalize).
 */
import { ConfigError } from '../../core/errors.ts';
import { parseDurationMs } from '../../core/duration.ts';
import { isObject } from '../../core/json.ts';
import type { Json, JsonObject } from '../../core/json.ts';
import { fieldPath, indexPath } from './path.ts';

/** Field names with their own reason for being refused, e.g. `{ rds: 'not supported yet' }`. */
export type Refusals = Readonly<Record<string, string>>;

/**
 * Throws for the first field of `obj` outside `supported`: the message from `refusals` when it has
 * one, else "not supported by Weft". Keeps "unimplemented" from ever meaning "silently ignored".
 */
export function onlyFields(
  obj: JsonObject,
  path: string,
  supported: readonly string[],
  refusals: Refusals = {},
): void {
  for (const key of Object.keys(obj)) {
    if (Object.hasOwn(refusals, key)) throw new ConfigError(fieldPath(path, key), refusals[key]);
    if (!supported.includes(key)) throw new ConfigError(fieldPath(path, key), 'not supported by Weft');
  }
}

/** `value` as an object, or a ConfigError naming `path`. */
export function asObject(value: Json | undefined, path: string): JsonObject {
  if (!isObject(value))
    throw new ConfigError(
      path,
      `expected an object, got ${value === undefined ? 'nothing' : JSON.stringify(value)}`,
    );
  return value;
}

function typed<T>(
  obj: JsonObject,
  key: string,
  path: string,
  what: string,
  test: (v: Json) => boolean,
): T | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (!test(v)) throw new ConfigError(fieldPath(path, key), `expected ${what}, got ${JSON.stringify(v)}`);
  return v as T;
}

export function optString(obj: JsonObject, key: string, path: string): string | undefined {
  return typed<string>(obj, key, path, 'a string', (v) => typeof v === 'string');
}

export function optNumber(obj: JsonObject, key: string, path: string): number | undefined {
  return typed<number>(obj, key, path, 'a number', (v) => typeof v === 'number' && Number.isFinite(v));
}

export function optBool(obj: JsonObject, key: string, path: string): boolean | undefined {
  return typed<boolean>(obj, key, path, 'true or false', (v) => typeof v === 'boolean');
}

export function optObject(obj: JsonObject, key: string, path: string): JsonObject | undefined {
  return typed<JsonObject>(obj, key, path, 'an object', isObject);
}

export function optArray(obj: JsonObject, key: string, path: string): Json[] | undefined {
  return typed<Json[]>(obj, key, path, 'an array', Array.isArray);
}

/** A string field that must be set and non-empty. */
export function requiredString(obj: JsonObject, key: string, path: string): string {
  const v = optString(obj, key, path);
  if (!v) throw new ConfigError(fieldPath(path, key), 'required');
  return v;
}

/** An integer field within [min, max], or `fallback` when unset. */
export function intInRange<T extends number | undefined>(
  obj: JsonObject,
  key: string,
  path: string,
  min: number,
  max: number,
  fallback: T,
): number | T {
  const v = optNumber(obj, key, path);
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(fieldPath(path, key), `must be an integer from ${min} to ${max}, got ${v}`);
  }
  return v;
}

/** A google.protobuf.Duration field in milliseconds, or `fallbackMs` when unset. */
export function durationMs(obj: JsonObject, key: string, path: string, fallbackMs: number): number {
  const v = obj[key];
  if (v === undefined || v === null) return fallbackMs;
  return parseDurationMs(v, fieldPath(path, key));
}

/** The elements of an array field that must hold objects, each with its path. */
export function objectItems(
  obj: JsonObject,
  key: string,
  path: string,
): { item: JsonObject; path: string }[] {
  const items = optArray(obj, key, path) ?? [];
  return items.map((item, i) => {
    const itemPath = indexPath(fieldPath(path, key), i);
    return { item: asObject(item, itemPath), path: itemPath };
  });
}

/** The strings of a repeated string field. */
export function stringItems(obj: JsonObject, key: string, path: string): string[] {
  const items = optArray(obj, key, path) ?? [];
  return items.map((item, i) => {
    if (typeof item !== 'string')
      throw new ConfigError(
        indexPath(fieldPath(path, key), i),
        `expected a string, got ${JSON.stringify(item)}`,
      );
    return item;
  });
}
