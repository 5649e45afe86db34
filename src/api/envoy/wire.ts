/**
 * Envoy messages on the wire: canonical proto3 JSON (the form the proxy's normalizer produces: snake_case
 * field names, enums by name, Durations as "1.5s", wrappers as plain values, Any as `{"@type", ...fields}`,
 * Struct as plain JSON) to protobuf bytes and back. The control plane encodes the resources it generates
 * with it; the proxy decodes what arrives on its ADS stream. protobufjs does the wire format; this module
 * only maps proto3's JSON conventions for well-known types onto protobufjs' message objects.
 */
import protobuf from 'protobufjs';
import { findMessageType, typeNameOfUrl, typeUrlPrefix } from './descriptor.ts';

/** A JSON value as the wire codec reads and writes it (same shape as core's Json, which api may not import). */
export type WireJson = null | boolean | number | string | WireJson[] | { [key: string]: WireJson };
type WireObject = { [key: string]: WireJson };

/**
 * An Any whose payload is already encoded: the control plane encodes each resource once and reuses the bytes
 * in every response that carries it. Accepted wherever an Any is expected on the encoding side.
 */
export class EncodedAny {
  readonly typeUrl: string;
  readonly value: Uint8Array;
  constructor(typeUrl: string, value: Uint8Array) {
    this.typeUrl = typeUrl;
    this.value = value;
  }
}

/** A malformed message, a value of the wrong shape, or an Any naming a type Weft does not know. */
export class WireError extends Error {
  readonly path: string;
  constructor(path: string, message: string) {
    super(path ? `${path}: ${message}` : message);
    this.name = 'WireError';
    this.path = path;
  }
}

function messageType(fullName: string, path: string): protobuf.Type {
  const type = findMessageType(fullName);
  if (!type) throw new WireError(path, `unknown message type ${fullName}`);
  return type;
}

/** Encodes canonical JSON (or protobufjs-shaped objects with EncodedAny leaves) as the message `typeName`. */
export function encodeMessage(typeName: string, json: unknown): Uint8Array {
  const type = messageType(typeName, '');
  return type.encode(type.fromObject(toProto(type, json, '') as Record<string, unknown>)).finish();
}

/** Encodes one resource (canonical JSON with "@type") as an Any, once, for reuse in many responses. */
export function encodeAny(json: WireObject): EncodedAny {
  const typeUrl = json['@type'];
  if (typeof typeUrl !== 'string') throw new WireError('', 'resource without "@type"');
  const type = messageType(typeNameOfUrl(typeUrl), '');
  const rest = withoutType(json);
  return new EncodedAny(
    `${typeUrlPrefix}${type.fullName.slice(1)}`,
    encodeMessage(type.fullName.slice(1), rest),
  );
}

export interface DecodeOptions {
  /**
   * An Any naming a type outside the descriptor: `error` (the default; a proxy NACKs such a resource) or
   * `keep`, which keeps just `{"@type"}` — for what peers send us, e.g. the details of a NACK's status.
   */
  unknownAny?: 'error' | 'keep';
}

/** Decodes protobuf bytes of the message `typeName` into canonical JSON. */
export function decodeMessage(typeName: string, bytes: Uint8Array, options: DecodeOptions = {}): WireObject {
  const type = messageType(typeName, '');
  let message: protobuf.Message;
  try {
    message = type.decode(bytes);
  } catch (err) {
    throw new WireError('', `malformed ${typeName}: ${(err as Error).message}`);
  }
  return fromProto(type, message, '', 0, options.unknownAny === 'keep') as WireObject;
}

/** Decodes an Any's payload into canonical JSON with "@type". */
export function decodeAny(typeUrl: string, value: Uint8Array): WireObject {
  return anyFromProto({ type_url: typeUrl, value }, '', 0, false) as WireObject;
}

// ---- JSON → protobufjs objects ----

const WRAPPERS: ReadonlySet<string> = new Set(
  ['Bool', 'String', 'Bytes', 'Double', 'Float', 'Int32', 'UInt32', 'Int64', 'UInt64'].map(
    (t) => `google.protobuf.${t}Value`,
  ),
);

function isWellKnownJson(name: string): boolean {
  return (
    WRAPPERS.has(name) ||
    name === 'google.protobuf.Duration' ||
    name === 'google.protobuf.Timestamp' ||
    name === 'google.protobuf.FieldMask' ||
    name === 'google.protobuf.Struct' ||
    name === 'google.protobuf.ListValue' ||
    name === 'google.protobuf.Value'
  );
}

function withoutType(json: WireObject): WireObject {
  const rest: WireObject = {};
  for (const [key, v] of Object.entries(json)) if (key !== '@type') rest[key] = v;
  return rest;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function toProto(type: protobuf.Type, json: unknown, path: string): unknown {
  const name = type.fullName.slice(1);
  if (name === 'google.protobuf.Any') return anyToProto(json, path);
  if (isWellKnownJson(name)) return wellKnownToProto(name, json, path);
  if (!isObject(json)) throw new WireError(path, `expected an object for ${name}`);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json)) {
    const field = type.fields[key];
    if (!field) throw new WireError(path, `unknown field ${JSON.stringify(key)} in ${name}`);
    if (value === null && field.resolvedType?.fullName !== '.google.protobuf.Value') continue;
    out[key] = fieldToProto(field, value, path ? `${path}.${key}` : key);
  }
  return out;
}

function fieldToProto(field: protobuf.Field, value: unknown, path: string): unknown {
  const resolved = field.resolvedType;
  const one = (v: unknown, p: string): unknown => {
    if (resolved instanceof protobuf.Type) return toProto(resolved, v, p);
    // protobufjs would encode an unknown enum name as the default; say so instead.
    if (resolved instanceof protobuf.Enum && typeof v === 'string' && !(v in resolved.values))
      throw new WireError(p, `unknown value ${JSON.stringify(v)} for ${resolved.name}`);
    return v;
  };
  if (field.map) {
    if (!isObject(value)) throw new WireError(path, 'expected an object (map)');
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = one(v, `${path}.${k}`);
    return out;
  }
  if (field.repeated) {
    if (!Array.isArray(value)) throw new WireError(path, 'expected an array');
    return value.map((v, i) => one(v, `${path}[${i}]`));
  }
  return one(value, path);
}

function anyToProto(json: unknown, path: string): unknown {
  if (json instanceof EncodedAny) return { type_url: json.typeUrl, value: json.value };
  if (!isObject(json) || typeof json['@type'] !== 'string') throw new WireError(path, 'Any without "@type"');
  const typeUrl = json['@type'];
  const type = messageType(typeNameOfUrl(typeUrl), path);
  const name = type.fullName.slice(1);
  const payload = isWellKnownJson(name) ? json.value : withoutType(json as WireObject);
  return {
    type_url: `${typeUrlPrefix}${name}`,
    value: type.encode(type.fromObject(toProto(type, payload, path) as Record<string, unknown>)).finish(),
  };
}

const DURATION = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;

function durationToProto(value: unknown, path: string): { seconds: number; nanos: number } {
  const m = typeof value === 'string' ? DURATION.exec(value) : null;
  if (!m) throw new WireError(path, `invalid duration ${JSON.stringify(value)}`);
  const sign = m[1] ? -1 : 1;
  const nanos = m[3] ? Number(m[3].padEnd(9, '0')) : 0;
  return { seconds: sign * Number(m[2]), nanos: sign * nanos };
}

function timestampToProto(value: unknown, path: string): { seconds: number; nanos: number } {
  const ms = typeof value === 'string' ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) throw new WireError(path, `invalid timestamp ${JSON.stringify(value)}`);
  const fraction = /\.(\d{1,9})/.exec(value as string)?.[1];
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: fraction ? Number(fraction.padEnd(9, '0')) : 0 };
}

// protobufjs defines google.protobuf.Value with camelCase field names (its built-in struct.proto).
function valueToProto(value: unknown, path: string): unknown {
  if (value === null) return { nullValue: 0 };
  if (typeof value === 'number') return { numberValue: value };
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (Array.isArray(value))
    return { listValue: { values: value.map((v, i) => valueToProto(v, `${path}[${i}]`)) } };
  if (isObject(value)) return { structValue: structToProto(value, path) };
  throw new WireError(path, 'not a JSON value');
}

function structToProto(value: unknown, path: string): unknown {
  if (!isObject(value)) throw new WireError(path, 'expected an object (Struct)');
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) fields[k] = valueToProto(v, `${path}.${k}`);
  return { fields };
}

function snakeCase(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function wellKnownToProto(name: string, json: unknown, path: string): unknown {
  if (WRAPPERS.has(name)) return { value: json };
  switch (name) {
    case 'google.protobuf.Duration':
      return durationToProto(json, path);
    case 'google.protobuf.Timestamp':
      return timestampToProto(json, path);
    case 'google.protobuf.FieldMask':
      if (typeof json !== 'string') throw new WireError(path, 'expected a field mask string');
      return { paths: json === '' ? [] : json.split(',').map(snakeCase) };
    case 'google.protobuf.Struct':
      return structToProto(json, path);
    case 'google.protobuf.ListValue':
      if (!Array.isArray(json)) throw new WireError(path, 'expected an array (ListValue)');
      return { values: json.map((v, i) => valueToProto(v, `${path}[${i}]`)) };
    default:
      return valueToProto(json, path);
  }
}

// ---- protobufjs messages → JSON ----

/** Deeper than any real message; stops hostile nesting before the stack does. */
const MAX_DEPTH = 100;

interface LongLike {
  low: number;
  high: number;
  unsigned?: boolean;
}

function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'object' && v !== null && 'low' in v) {
    const long = v as LongLike;
    return new protobuf.util.LongBits(long.low >>> 0, long.high >>> 0).toNumber(long.unsigned ?? false);
  }
  return Number(v);
}

function scalarFromProto(field: protobuf.Field, v: unknown): WireJson {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Enum) return resolved.valuesById[v as number] ?? (v as number);
  switch (field.type) {
    case 'int64':
    case 'uint64':
    case 'sint64':
    case 'fixed64':
    case 'sfixed64':
      return toNumber(v);
    case 'bytes':
      return Buffer.from(v as Uint8Array).toString('base64');
    case 'double':
    case 'float':
      return Number.isFinite(v) ? (v as number) : String(v);
    default:
      return v as WireJson;
  }
}

function fromProto(
  type: protobuf.Type,
  message: unknown,
  path: string,
  depth: number,
  lenient: boolean,
): WireJson {
  if (depth > MAX_DEPTH) throw new WireError(path, 'message nested too deeply');
  const name = type.fullName.slice(1);
  if (name === 'google.protobuf.Any') return anyFromProto(message, path, depth, lenient);
  if (isWellKnownJson(name)) return wellKnownFromProto(name, message, path, depth);
  const m = message as Record<string, unknown>;
  const out: WireObject = {};
  for (const field of type.fieldsArray) {
    if (!Object.hasOwn(m, field.name)) continue;
    const v = m[field.name];
    if (v === undefined || v === null) continue;
    const resolved = field.resolvedType;
    const one = (item: unknown, p: string): WireJson =>
      resolved instanceof protobuf.Type
        ? fromProto(resolved, item, p, depth + 1, lenient)
        : scalarFromProto(field, item);
    const p = path ? `${path}.${field.name}` : field.name;
    if (field.map) {
      const entries = Object.entries(v as Record<string, unknown>);
      if (entries.length === 0) continue;
      const map: WireObject = {};
      for (const [k, item] of entries) map[k] = one(item, `${p}.${k}`);
      out[field.name] = map;
    } else if (field.repeated) {
      const items = v as unknown[];
      if (items.length === 0) continue;
      out[field.name] = items.map((item, i) => one(item, `${p}[${i}]`));
    } else {
      out[field.name] = one(v, p);
    }
  }
  return out;
}

function anyFromProto(message: unknown, path: string, depth: number, lenient: boolean): WireJson {
  const m = message as { type_url?: string; value?: Uint8Array };
  const typeUrl = m.type_url ?? '';
  const type = findMessageType(typeNameOfUrl(typeUrl));
  if (!type && lenient) return { '@type': typeUrl };
  if (!type) throw new WireError(path, `unsupported resource or extension type ${JSON.stringify(typeUrl)}`);
  const name = type.fullName.slice(1);
  let inner: protobuf.Message;
  try {
    inner = type.decode(m.value ?? new Uint8Array(0));
  } catch (err) {
    throw new WireError(path, `malformed ${name}: ${(err as Error).message}`);
  }
  const out: WireObject = { '@type': `${typeUrlPrefix}${name}` };
  if (isWellKnownJson(name)) out.value = wellKnownFromProto(name, inner, path, depth + 1);
  else Object.assign(out, fromProto(type, inner, path, depth + 1, lenient) as WireObject);
  return out;
}

function secondsNanos(message: unknown): { seconds: number; nanos: number } {
  const m = message as { seconds?: unknown; nanos?: unknown };
  return { seconds: toNumber(m.seconds ?? 0), nanos: toNumber(m.nanos ?? 0) };
}

function durationString(seconds: number, nanos: number): string {
  const negative = seconds < 0 || nanos < 0;
  const s = Math.abs(seconds);
  const n = Math.abs(nanos);
  const fraction = n === 0 ? '' : `.${String(n).padStart(9, '0').replace(/0+$/, '')}`;
  return `${negative ? '-' : ''}${s}${fraction}s`;
}

function valueFromProto(message: unknown, path: string, depth: number): WireJson {
  if (depth > MAX_DEPTH) throw new WireError(path, 'value nested too deeply');
  const m = message as Record<string, unknown>;
  if (Object.hasOwn(m, 'numberValue')) return m.numberValue as number;
  if (Object.hasOwn(m, 'stringValue')) return m.stringValue as string;
  if (Object.hasOwn(m, 'boolValue')) return m.boolValue as boolean;
  if (Object.hasOwn(m, 'structValue')) return structFromProto(m.structValue, path, depth + 1);
  if (Object.hasOwn(m, 'listValue')) {
    const values = (m.listValue as { values?: unknown[] }).values ?? [];
    return values.map((v, i) => valueFromProto(v, `${path}[${i}]`, depth + 1));
  }
  return null;
}

function structFromProto(message: unknown, path: string, depth: number): WireObject {
  const fields = (message as { fields?: Record<string, unknown> }).fields ?? {};
  const out: WireObject = {};
  for (const [k, v] of Object.entries(fields)) out[k] = valueFromProto(v, `${path}.${k}`, depth + 1);
  return out;
}

function camelCase(snake: string): string {
  return snake.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
}

function wellKnownFromProto(name: string, message: unknown, path: string, depth: number): WireJson {
  const m = message as Record<string, unknown>;
  if (WRAPPERS.has(name)) {
    const type = messageType(name, path);
    const v: unknown = Object.hasOwn(m, 'value') ? m.value : type.fields.value.typeDefault;
    return scalarFromProto(type.fields.value, v);
  }
  switch (name) {
    case 'google.protobuf.Duration': {
      const { seconds, nanos } = secondsNanos(message);
      return durationString(seconds, nanos);
    }
    case 'google.protobuf.Timestamp': {
      const { seconds, nanos } = secondsNanos(message);
      const iso = new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, '');
      const fraction = nanos === 0 ? '' : `.${String(nanos).padStart(9, '0').replace(/0+$/, '')}`;
      return `${iso}${fraction}Z`;
    }
    case 'google.protobuf.FieldMask':
      return ((m.paths ?? []) as string[]).map(camelCase).join(',');
    case 'google.protobuf.Struct':
      return structFromProto(message, path, depth);
    case 'google.protobuf.ListValue':
      return ((m.values ?? []) as unknown[]).map((v, i) => valueFromProto(v, `${path}[${i}]`, depth + 1));
    default:
      return valueFromProto(message, path, depth);
  }
}
