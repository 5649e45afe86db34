/**
 * Validates a JSON value (parsed YAML or JSON, Envoy field names in snake_case or camelCase) against an
 * Envoy protobuf message type by reflection, and returns its normalized proto3 JSON form: proto (snake_case)
 * field names in declaration order, enums as names, 64-bit integers as numbers, wrappers as plain values,
 * google.protobuf.Any as `{"@type": "type.googleapis.com/<name>", ...fields}`. The first bad field throws a
 * ConfigError naming its path. Normalizing a normalized value returns an equal value.
 */
import protobuf from 'protobufjs';
import { ConfigError } from '../../core/errors.ts';
import type { Json, JsonObject } from '../../core/json.ts';
import { findMessageType, typeNameOfUrl, typeUrlPrefix } from '../../api/envoy/descriptor.ts';
import { fieldPath, indexPath } from './path.ts';

/** Deeper than any real configuration; stops cyclic or hostile input before the stack does. */
const MAX_DEPTH = 100;

/** Normalizes `value` as the message type `typeName` (full name, e.g. `envoy.config.bootstrap.v3.Bootstrap`). */
export function normalize(typeName: string, value: unknown, path: string): Json {
  const type = findMessageType(typeName);
  if (!type) throw new Error(`unknown message type ${typeName}`);
  return normalizeMessage(type, value, path, 0);
}

/** The range of each integer type; 64-bit ones are capped where a JavaScript number stays exact. */
const INTEGER_RANGES: Readonly<Record<string, readonly [number, number]>> = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  sint32: [-(2 ** 31), 2 ** 31 - 1],
  sfixed32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
  fixed32: [0, 2 ** 32 - 1],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  sint64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  sfixed64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64: [0, Number.MAX_SAFE_INTEGER],
  fixed64: [0, Number.MAX_SAFE_INTEGER],
};

const WRAPPERS: ReadonlySet<string> = new Set(
  ['Bool', 'String', 'Bytes', 'Double', 'Float', 'Int32', 'UInt32', 'Int64', 'UInt64'].map(
    (t) => `google.protobuf.${t}Value`,
  ),
);

/** Seconds ± up to 10,000 years, as google/protobuf/duration.proto allows. */
const DURATION = /^-?(\d{1,12})(\.\d{1,9})?s$/;
const MAX_DURATION_SECONDS = 315_576_000_000;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const BASE64 = /^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$/;
const INTEGER_STRING = /^-?\d+$/;
const NUMBER_STRING = /^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A short description of a value for "expected X, got Y" messages. */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'object':
      return 'an object';
    case 'string':
      return value.length > 40 ? `${JSON.stringify(value.slice(0, 40))}…` : JSON.stringify(value);
    case 'number':
    case 'boolean':
      return String(value);
    case 'undefined':
      return 'undefined';
    default:
      return `a ${typeof value}`;
  }
}

function expected(path: string, what: string, value: unknown): ConfigError {
  return new ConfigError(path, `expected ${what}, got ${describe(value)}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Sets a key as an own data property, so keys like "__proto__" from user input stay ordinary keys. */
function setOwn(target: JsonObject, key: string, value: Json): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function tooDeep(path: string, depth: number): void {
  if (depth > MAX_DEPTH) throw new ConfigError(path, `nested more than ${MAX_DEPTH} levels deep`);
}

/** Field lookup by proto name and by JSON name, per message type. */
const fieldIndex = new WeakMap<protobuf.Type, Map<string, protobuf.Field>>();

function fieldsByName(type: protobuf.Type): Map<string, protobuf.Field> {
  let index = fieldIndex.get(type);
  if (!index) {
    index = new Map();
    for (const field of type.fieldsArray) {
      index.set(field.name, field);
      if (field.jsonName && !index.has(field.jsonName)) index.set(field.jsonName, field);
    }
    fieldIndex.set(type, index);
  }
  return index;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length];
}

/** The known field name closest to a misspelt one, if one is close enough to be a plausible typo. */
function closestField(type: protobuf.Type, key: string): string | undefined {
  const wanted = key.toLowerCase().replace(/_/g, '');
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(wanted.length / 3)) + 1;
  for (const field of type.fieldsArray) {
    const distance = editDistance(wanted, field.name.toLowerCase().replace(/_/g, ''));
    if (distance < bestDistance) {
      best = field.name;
      bestDistance = distance;
    }
  }
  return best;
}

function unknownField(type: protobuf.Type, key: string, path: string): ConfigError {
  const suggestion = closestField(type, key);
  const hint = suggestion ? ` (did you mean "${suggestion}"?)` : '';
  return new ConfigError(fieldPath(path, key), `unknown field ${JSON.stringify(key)}${hint}`);
}

/** A oneof the user wrote, as opposed to the synthetic one protobuf makes for a proto3 `optional` field. */
function realOneof(field: protobuf.Field): protobuf.OneOf | undefined {
  const oneof = field.partOf;
  if (!oneof || field.options?.proto3_optional) return undefined;
  return oneof;
}

function normalizeMessage(type: protobuf.Type, value: unknown, path: string, depth: number): Json {
  tooDeep(path, depth);
  const special = normalizeWellKnown(type, value, path, depth);
  if (special !== undefined) return special;
  if (!isPlainObject(value)) throw expected(path, 'an object', value);
  const index = fieldsByName(type);
  const values = new Map<protobuf.Field, Json>();
  const keyOf = new Map<protobuf.Field, string>();
  const oneofMembers = new Map<protobuf.OneOf, string>();
  for (const [key, raw] of Object.entries(value)) {
    const field = index.get(key);
    if (!field) throw unknownField(type, key, path);
    const previousKey = keyOf.get(field);
    if (previousKey !== undefined) {
      throw new ConfigError(fieldPath(path, key), `field set twice (as "${previousKey}" and "${key}")`);
    }
    keyOf.set(field, key);
    // proto3 JSON: null means "not set" (except where the field's type is google.protobuf.Value).
    if (raw === null && field.resolvedType?.fullName !== '.google.protobuf.Value') continue;
    const oneof = realOneof(field);
    if (oneof) {
      const other = oneofMembers.get(oneof);
      if (other !== undefined) {
        throw new ConfigError(
          fieldPath(path, field.name),
          `conflicts with "${other}": only one field of oneof "${oneof.name}" may be set`,
        );
      }
      oneofMembers.set(oneof, field.name);
    }
    values.set(field, normalizeField(field, raw, fieldPath(path, field.name), depth + 1));
  }
  const out: JsonObject = {};
  for (const field of type.fieldsArray) {
    const v = values.get(field);
    if (v !== undefined && !isImplicitDefault(field, v)) out[field.name] = v;
  }
  return out;
}

/**
 * Whether a value is the default of a field without presence, which proto3 cannot tell from "not set"
 * (scalars and enums outside oneofs, empty repeated fields and maps). Dropping these makes
 * `false`, `0`, `""` and `[]` mean exactly what omitting the field means, as in Envoy.
 */
function isImplicitDefault(field: protobuf.Field, value: Json): boolean {
  if (field.map) return Object.keys(value as JsonObject).length === 0;
  if (field.repeated) return (value as Json[]).length === 0;
  if (field.partOf || field.resolvedType instanceof protobuf.Type) return false;
  if (field.resolvedType instanceof protobuf.Enum) return field.resolvedType.values[value as string] === 0;
  return value === 0 || value === false || value === '';
}

function normalizeField(field: protobuf.Field, value: unknown, path: string, depth: number): Json {
  if (field.map) {
    if (!isPlainObject(value)) throw expected(path, 'an object (map)', value);
    const keyType = (field as unknown as protobuf.MapField).keyType;
    const out: JsonObject = {};
    for (const [key, entry] of Object.entries(value)) {
      const entryPath = fieldPath(path, key);
      checkMapKey(keyType, key, entryPath);
      setOwn(out, key, normalizeSingle(field, entry, entryPath, depth + 1));
    }
    return out;
  }
  if (field.repeated) {
    if (!Array.isArray(value)) throw expected(path, 'an array', value);
    // Array.from visits holes of sparse arrays too (as undefined), so none survive into the output.
    return Array.from(value, (item: unknown, i) =>
      normalizeSingle(field, item, indexPath(path, i), depth + 1),
    );
  }
  return normalizeSingle(field, value, path, depth);
}

function checkMapKey(keyType: string, key: string, path: string): void {
  if (keyType === 'string') return;
  if (keyType === 'bool') {
    if (key !== 'true' && key !== 'false') throw new ConfigError(path, `map key must be "true" or "false"`);
    return;
  }
  if (!INTEGER_STRING.test(key)) throw new ConfigError(path, `map key must be an integer (${keyType})`);
  checkIntegerRange(keyType, Number(key), path);
}

function normalizeSingle(field: protobuf.Field, value: unknown, path: string, depth: number): Json {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return normalizeMessage(resolved, value, path, depth);
  if (resolved instanceof protobuf.Enum) return normalizeEnum(resolved, value, path);
  return normalizeScalar(field.type, value, path);
}

function normalizeEnum(enumType: protobuf.Enum, value: unknown, path: string): Json {
  if (enumType.fullName === '.google.protobuf.NullValue' && value === null) return null;
  if (typeof value === 'string') {
    if (Object.hasOwn(enumType.values, value)) return value;
    throw new ConfigError(path, `unknown value ${JSON.stringify(value)}`);
  }
  if (typeof value === 'number') {
    const name = Number.isInteger(value) ? enumType.valuesById[value] : undefined;
    if (name !== undefined) return name;
    throw new ConfigError(path, `unknown value ${value}`);
  }
  throw expected(path, 'an enum value name', value);
}

function checkIntegerRange(type: string, n: number, path: string): void {
  const [min, max] = INTEGER_RANGES[type];
  if (n < min || n > max) throw new ConfigError(path, `${n} is out of range for ${type} (${min}..${max})`);
}

function normalizeScalar(type: string, value: unknown, path: string): Json {
  switch (type) {
    case 'string':
      if (typeof value !== 'string') throw expected(path, 'a string', value);
      return value;
    case 'bool':
      if (typeof value !== 'boolean') throw expected(path, 'true or false', value);
      return value;
    case 'bytes':
      if (typeof value !== 'string' || !BASE64.test(value))
        throw expected(path, 'base64-encoded bytes', value);
      return value;
    case 'double':
    case 'float': {
      const n = typeof value === 'string' && NUMBER_STRING.test(value) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isFinite(n)) throw expected(path, 'a number', value);
      return n;
    }
    default: {
      if (!(type in INTEGER_RANGES)) throw new Error(`unhandled protobuf scalar type ${type}`);
      const n = typeof value === 'string' && INTEGER_STRING.test(value) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isInteger(n)) throw expected(path, `an integer (${type})`, value);
      checkIntegerRange(type, n, path);
      return n;
    }
  }
}

/** The proto3 JSON forms of well-known types; undefined when `type` is an ordinary message. */
function normalizeWellKnown(
  type: protobuf.Type,
  value: unknown,
  path: string,
  depth: number,
): Json | undefined {
  const name = type.fullName.slice(1);
  if (WRAPPERS.has(name)) {
    if (value === null) throw expected(path, 'a value', value);
    return normalizeScalar(type.fields.value.type, value, path);
  }
  switch (name) {
    case 'google.protobuf.Any':
      return normalizeAny(value, path, depth);
    case 'google.protobuf.Duration':
      return normalizeDuration(value, path);
    case 'google.protobuf.Timestamp':
      if (typeof value !== 'string' || !TIMESTAMP.test(value) || Number.isNaN(Date.parse(value))) {
        throw expected(path, 'an RFC 3339 timestamp like "2024-01-31T12:00:00Z"', value);
      }
      return value;
    case 'google.protobuf.FieldMask':
      if (typeof value !== 'string') throw expected(path, 'a comma-separated field mask string', value);
      return value;
    case 'google.protobuf.Struct':
      if (!isPlainObject(value)) throw expected(path, 'an object', value);
      return copyJson(value, path, depth);
    case 'google.protobuf.ListValue':
      if (!Array.isArray(value)) throw expected(path, 'an array', value);
      return copyJson(value, path, depth);
    case 'google.protobuf.Value':
      return copyJson(value, path, depth);
    case 'google.protobuf.Empty':
      if (!isPlainObject(value)) throw expected(path, 'an object', value);
      for (const key of Object.keys(value))
        throw new ConfigError(fieldPath(path, key), `unknown field ${JSON.stringify(key)}`);
      return {};
    default:
      return undefined;
  }
}

function normalizeDuration(value: unknown, path: string): Json {
  if (typeof value !== 'string') throw expected(path, 'a duration string like "1.5s"', value);
  const m = DURATION.exec(value);
  if (!m) throw new ConfigError(path, `invalid duration ${describe(value)} (expected e.g. "1.5s")`);
  if (Number(m[1]) > MAX_DURATION_SECONDS) throw new ConfigError(path, `duration ${value} is out of range`);
  return value;
}

function normalizeAny(value: unknown, path: string, depth: number): Json {
  if (!isPlainObject(value)) throw expected(path, 'an object with "@type"', value);
  const typeUrl = value['@type'];
  if (typeUrl !== undefined && typeof typeUrl !== 'string')
    throw expected(fieldPath(path, '@type'), 'a type URL string', typeUrl);
  if (typeof typeUrl !== 'string')
    throw new ConfigError(path, 'missing "@type" (e.g. "type.googleapis.com/<message name>")');
  const inner = findMessageType(typeNameOfUrl(typeUrl));
  if (!inner) throw new ConfigError(path, `unsupported extension type ${JSON.stringify(typeUrl)}`);
  const innerName = inner.fullName.slice(1);
  const out: JsonObject = { '@type': `${typeUrlPrefix}${innerName}` };
  const rest = Object.fromEntries(Object.entries(value).filter(([key]) => key !== '@type'));
  // Well-known types with a special JSON form carry it under "value" inside Any.
  if (normalizeWellKnownProbe(inner)) {
    for (const key of Object.keys(rest)) {
      if (key !== 'value')
        throw new ConfigError(fieldPath(path, key), `unknown field ${JSON.stringify(key)}`);
    }
    if (!('value' in rest)) throw new ConfigError(path, `missing "value" for ${innerName}`);
    out.value = normalizeMessage(inner, rest.value, fieldPath(path, 'value'), depth + 1);
    return out;
  }
  const fields = normalizeMessage(inner, rest, path, depth + 1) as JsonObject;
  for (const [key, v] of Object.entries(fields)) out[key] = v;
  return out;
}

/** Whether a message type has a special (non-object) proto3 JSON form. */
function normalizeWellKnownProbe(type: protobuf.Type): boolean {
  const name = type.fullName.slice(1);
  return (
    WRAPPERS.has(name) ||
    [
      'google.protobuf.Any',
      'google.protobuf.Duration',
      'google.protobuf.Timestamp',
      'google.protobuf.FieldMask',
      'google.protobuf.Struct',
      'google.protobuf.ListValue',
      'google.protobuf.Value',
    ].includes(name)
  );
}

/** A deep copy of an arbitrary JSON value (Struct, Value, ListValue), rejecting anything JSON cannot hold. */
function copyJson(value: unknown, path: string, depth: number): Json {
  tooDeep(path, depth);
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw expected(path, 'a finite number', value);
    return value;
  }
  if (Array.isArray(value))
    return Array.from(value, (item: unknown, i) => copyJson(item, indexPath(path, i), depth + 1));
  if (isPlainObject(value)) {
    const out: JsonObject = {};
    for (const [key, item] of Object.entries(value))
      setOwn(out, key, copyJson(item, fieldPath(path, key), depth + 1));
    return out;
  }
  throw expected(path, 'a JSON value', value);
}
