/**
 * envoy.type.matcher.v3.MetadataMatcher over a stream's dynamic metadata (filter namespace → object).
 * Values follow google.protobuf.Value as JavaScript holds it: null, number, string, boolean, array (list)
 * and plain object (struct); `undefined` is Envoy's unset value, which the path yields when any step is
 * missing or is not a struct. As in Envoy: null_match needs an explicit null, present_match needs any set
 * value, list_match needs a list with one matching element, and `invert` flips the whole result.
 */
import { ConfigError } from '../../../core/errors.ts';
import type { Json, JsonObject } from '../../../core/json.ts';
import {
  asObject,
  objectItems,
  optBool,
  optNumber,
  optObject,
  optString,
} from '../../config-proto/fields.ts';
import { fieldPath } from '../../config-proto/path.ts';
import { checkFields } from '../../router/check-fields.ts';
import { compileStringMatcher } from '../../router/string-matcher.ts';

export type DynamicMetadata = ReadonlyMap<string, Readonly<Record<string, unknown>>>;

type ValueTest = (value: unknown) => boolean;

const VALUE_KINDS = [
  'null_match',
  'double_match',
  'string_match',
  'bool_match',
  'present_match',
  'list_match',
  'or_match',
] as const;

function compileDoubleMatcher(obj: JsonObject, path: string): ValueTest {
  checkFields(obj, path, { supported: ['range', 'exact'], refused: {} });
  const exact = optNumber(obj, 'exact', path);
  const range = optObject(obj, 'range', path);
  if (exact !== undefined && range !== undefined)
    throw new ConfigError(fieldPath(path, 'exact'), 'conflicts with "range": only one may be set');
  if (exact !== undefined) return (v) => typeof v === 'number' && v === exact;
  if (range === undefined) throw new ConfigError(path, 'one of range or exact is required');
  const rp = fieldPath(path, 'range');
  checkFields(range, rp, { supported: ['start', 'end'], refused: {} });
  const start = optNumber(range, 'start', rp) ?? 0;
  const end = optNumber(range, 'end', rp) ?? 0;
  // type.v3.DoubleRange is [start, end).
  return (v) => typeof v === 'number' && v >= start && v < end;
}

export function compileValueMatcher(json: Json | undefined, path: string): ValueTest {
  const obj = asObject(json, path);
  checkFields(obj, path, { supported: [...VALUE_KINDS], refused: {} });
  const set = VALUE_KINDS.filter((k) => obj[k] !== undefined && obj[k] !== null);
  if (set.length === 0)
    throw new ConfigError(path, `one of ${VALUE_KINDS.slice(0, -1).join(', ')} is required`);
  if (set.length > 1)
    throw new ConfigError(fieldPath(path, set[1]), `conflicts with "${set[0]}": only one match may be set`);
  const kind = set[0];
  const p = fieldPath(path, kind);
  switch (kind) {
    case 'null_match':
      asObject(obj.null_match, p);
      return (v) => v === null;
    case 'double_match':
      return compileDoubleMatcher(asObject(obj.double_match, p), p);
    case 'string_match': {
      const m = compileStringMatcher(obj.string_match, p);
      return (v) => typeof v === 'string' && m.matches(v);
    }
    case 'bool_match': {
      const want = optBool(obj, 'bool_match', path)!;
      return (v) => v === want;
    }
    case 'present_match': {
      const want = optBool(obj, 'present_match', path)!;
      // Envoy: true matches any set value; false matches nothing.
      return (v) => want && v !== undefined;
    }
    case 'list_match': {
      const list = asObject(obj.list_match, p);
      checkFields(list, p, { supported: ['one_of'], refused: {} });
      if (list.one_of === undefined || list.one_of === null)
        throw new ConfigError(fieldPath(p, 'one_of'), 'required');
      const element = compileValueMatcher(list.one_of, fieldPath(p, 'one_of'));
      return (v) => {
        if (!Array.isArray(v)) return false;
        for (const e of v) if (element(e)) return true;
        return false;
      };
    }
    case 'or_match':
      throw new ConfigError(p, 'or_match is not supported by Weft');
  }
}

export interface MetadataMatcher {
  matches(metadata: DynamicMetadata): boolean;
}

/** The value at `keys` inside `root`, or undefined (Envoy's unset Value) when a step is missing or not a struct. */
function valueAt(root: unknown, keys: readonly string[]): unknown {
  let v = root;
  for (const k of keys) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = Object.hasOwn(v, k) ? (v as Record<string, unknown>)[k] : undefined;
  }
  return v;
}

export function compileMetadataMatcher(json: Json | undefined, path: string): MetadataMatcher {
  const obj = asObject(json, path);
  checkFields(obj, path, { supported: ['filter', 'path', 'value', 'invert'], refused: {} });
  const filter = optString(obj, 'filter', path);
  if (!filter) throw new ConfigError(fieldPath(path, 'filter'), 'required');
  const keys = objectItems(obj, 'path', path).map(({ item, path: p }) => {
    checkFields(item, p, { supported: ['key'], refused: {} });
    const key = optString(item, 'key', p);
    if (!key) throw new ConfigError(fieldPath(p, 'key'), 'required');
    return key;
  });
  if (keys.length === 0)
    throw new ConfigError(fieldPath(path, 'path'), 'at least one path segment is required');
  if (obj.value === undefined || obj.value === null)
    throw new ConfigError(fieldPath(path, 'value'), 'required');
  const test = compileValueMatcher(obj.value, fieldPath(path, 'value'));
  const invert = optBool(obj, 'invert', path) ?? false;
  return {
    matches: (metadata) => test(valueAt(metadata.get(filter), keys)) !== invert,
  };
}
