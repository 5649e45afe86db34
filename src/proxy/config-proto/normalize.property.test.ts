/**
 * Property tests for normalize: values generated from the descriptor itself (random fields, proto or
 * JSON names, numbers as strings, enums as numbers) always normalize, normalizing is idempotent, and
 * junk anywhere in a config only ever produces a ConfigError.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { ConfigError } from '../../core/errors.ts';
import { findMessageType } from '../../api/envoy/descriptor.ts';
import { normalize } from './normalize.ts';

const ROOT_TYPES = [
  'envoy.config.bootstrap.v3.Bootstrap',
  'envoy.config.cluster.v3.Cluster',
  'envoy.config.listener.v3.Listener',
  'envoy.config.route.v3.RouteConfiguration',
  'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
];
const ANY_TYPES = [
  'envoy.extensions.filters.http.router.v3.Router',
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
];
const MAX_DEPTH = 4;
/** Fixed seed and run count: failures reproduce, and the suite's time stays bounded. */
const PARAMS = { seed: 20240611, numRuns: 500 };

const INT_BOUNDS: Record<string, [number, number]> = {
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

function scalarArb(type: string): fc.Arbitrary<unknown> {
  switch (type) {
    case 'string':
      return fc.string({ maxLength: 8 });
    case 'bool':
      return fc.boolean();
    case 'bytes':
      return fc.uint8Array({ maxLength: 6 }).map((b) => Buffer.from(b).toString('base64'));
    case 'double':
    case 'float':
      return fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer().map(String));
    default: {
      const [min, max] = INT_BOUNDS[type];
      const n = fc.integer({ min: Math.max(min, -(2 ** 31)), max: Math.min(max, 2 ** 31 - 1) });
      return fc.oneof(n, n.map(String), fc.constantFrom(min, max));
    }
  }
}

function enumArb(e: protobuf.Enum): fc.Arbitrary<unknown> {
  return fc.constantFrom(...Object.keys(e.values), ...Object.values(e.values));
}

function wellKnownArb(name: string, depth: number): fc.Arbitrary<unknown> | undefined {
  switch (name) {
    case 'google.protobuf.Duration':
      return fc
        .tuple(fc.nat({ max: 10 ** 6 }), fc.option(fc.nat({ max: 999 })))
        .map(([s, ms]) => (ms === null ? `${s}s` : `${s}.${String(ms).padStart(3, '0')}s`));
    case 'google.protobuf.Timestamp':
      return fc.integer({ min: 0, max: 4e12 }).map((ms) => new Date(ms).toISOString());
    case 'google.protobuf.Struct':
      return fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 });
    case 'google.protobuf.Value':
      return fc.jsonValue({ maxDepth: 2 });
    case 'google.protobuf.ListValue':
      return fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 });
    case 'google.protobuf.FieldMask':
      return fc.constantFrom('a', 'a.b,c');
    case 'google.protobuf.Empty':
      return fc.constant({});
    case 'google.protobuf.Any':
      if (depth >= MAX_DEPTH) return fc.constant({ '@type': `type.googleapis.com/${ANY_TYPES[0]}` });
      return fc.constantFrom(...ANY_TYPES).chain((t) =>
        messageArb(findMessageType(t)!, depth + 1).map((fields) => ({
          '@type': `type.googleapis.com/${t}`,
          ...(fields as object),
        })),
      );
    default:
      if (/^google\.protobuf\.\w+Value$/.test(name))
        return scalarArb(findMessageType(name)!.fields.value.type);
      return undefined;
  }
}

function singleArb(field: protobuf.Field, depth: number): fc.Arbitrary<unknown> {
  const t = field.resolvedType;
  if (t instanceof protobuf.Enum) return enumArb(t);
  if (t instanceof protobuf.Type) return messageArb(t, depth + 1);
  return scalarArb(field.type);
}

function mapKeyArb(keyType: string): fc.Arbitrary<string> {
  if (keyType === 'string') return fc.string({ maxLength: 6 });
  if (keyType === 'bool') return fc.constantFrom('true', 'false');
  return fc.nat({ max: 1000 }).map(String);
}

function fieldArb(field: protobuf.Field, depth: number): fc.Arbitrary<unknown> {
  if (field.map) {
    return fc.dictionary(
      mapKeyArb((field as unknown as protobuf.MapField).keyType),
      singleArb(field, depth),
      { maxKeys: 2 },
    );
  }
  if (field.repeated) return fc.array(singleArb(field, depth), { maxLength: 2 });
  return singleArb(field, depth);
}

function messageArb(type: protobuf.Type, depth: number): fc.Arbitrary<unknown> {
  const special = wellKnownArb(type.fullName.slice(1), depth);
  if (special) return special;
  // Deep down, only scalar fields, so generation terminates.
  const fields = type.fieldsArray.filter(
    (f) => depth < MAX_DEPTH || !(f.resolvedType instanceof protobuf.Type),
  );
  if (fields.length === 0) return fc.constant({});
  // At least one field near the root, so most samples reach nested messages.
  return fc
    .subarray(fields, { minLength: depth < 2 ? 1 : 0, maxLength: Math.min(5, fields.length) })
    .chain((chosen) => {
      const used = new Set<protobuf.OneOf>();
      const kept = chosen.filter((f) => {
        if (!f.partOf) return true;
        if (used.has(f.partOf)) return false;
        used.add(f.partOf);
        return true;
      });
      return fc
        .tuple(...kept.map((f) => fc.tuple(fc.constantFrom(f.name, f.jsonName), fieldArb(f, depth))))
        .map((entries) => Object.fromEntries(entries));
    });
}

/** Asserts the output form: proto field names only, enums as names, integers as numbers. */
function assertCanonical(type: protobuf.Type, value: unknown, path: string): void {
  const name = type.fullName.slice(1);
  if (name === 'google.protobuf.Any') {
    const { '@type': url, ...rest } = value as Record<string, unknown>;
    assert.match(String(url), /^type\.googleapis\.com\//, path);
    const inner = findMessageType(String(url).slice('type.googleapis.com/'.length))!;
    if (wellKnownArb(inner.fullName.slice(1), MAX_DEPTH)) return;
    assertCanonical(inner, rest, path);
    return;
  }
  if (wellKnownArb(name, MAX_DEPTH)) {
    if (/Int(32|64)Value$/.test(name)) assert.equal(typeof value, 'number', path);
    return;
  }
  for (const [key, v] of Object.entries(value as object)) {
    const field = type.fields[key];
    assert.ok(field, `${path}.${key} is not a proto field name`);
    const items: unknown[] = field.map ? Object.values(v as object) : field.repeated ? (v as unknown[]) : [v];
    for (const item of items) {
      const t = field.resolvedType;
      if (t instanceof protobuf.Type) assertCanonical(t, item, `${path}.${key}`);
      else if (t instanceof protobuf.Enum) assert.equal(typeof item, 'string', `${path}.${key}`);
      else if (field.type in INT_BOUNDS) assert.equal(typeof item, 'number', `${path}.${key}`);
    }
  }
}

const valid = fc
  .constantFrom(...ROOT_TYPES)
  .chain((typeName) => fc.tuple(fc.constant(typeName), messageArb(findMessageType(typeName)!, 0)));

/** Every path (list of keys) to a node inside a JSON-like value, the root included. */
function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...prefix, i])));
  else if (typeof value === 'object' && value !== null)
    for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...prefix, k]));
  return out;
}

function replaceAt(value: unknown, path: (string | number)[], junk: unknown): unknown {
  if (path.length === 0) return junk;
  const copy = (Array.isArray(value) ? [...value] : { ...(value as object) }) as Record<
    string | number,
    unknown
  >;
  copy[path[0]] = replaceAt(copy[path[0]], path.slice(1), junk);
  return copy;
}

const junk = fc.anything({
  maxDepth: 3,
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withSparseArray: true,
  withTypedArray: true,
});

function onlyConfigErrors(f: () => unknown): void {
  try {
    f();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
  }
}

describe('normalize properties', () => {
  it('accepts every value generated from the descriptor, and is idempotent', () => {
    fc.assert(
      fc.property(valid, ([typeName, value]) => {
        const once = normalize(typeName, value, '');
        assertCanonical(findMessageType(typeName)!, once, typeName);
        assert.deepEqual(normalize(typeName, once, ''), once);
        // Plain JSON: survives a JSON round trip unchanged.
        assert.deepEqual(JSON.parse(JSON.stringify(once)), once);
      }),
      PARAMS,
    );
  });

  it('never throws anything but ConfigError on junk', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ROOT_TYPES), junk, (typeName, value) =>
        onlyConfigErrors(() => normalize(typeName, value, '')),
      ),
      PARAMS,
    );
  });

  it('never throws anything but ConfigError when junk replaces part of a valid config', () => {
    fc.assert(
      fc.property(valid, fc.nat(), junk, ([typeName, value], pick, replacement) => {
        const all = paths(value);
        const corrupted = replaceAt(value, all[pick % all.length], replacement);
        onlyConfigErrors(() => normalize(typeName, corrupted, ''));
      }),
      PARAMS,
    );
  });

  it('is idempotent on whatever junk it accepts', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ROOT_TYPES), junk, (typeName, value) => {
        let once;
        try {
          once = normalize(typeName, value, '');
        } catch {
          return;
        }
        assert.deepEqual(normalize(typeName, once, ''), once);
      }),
      PARAMS,
    );
  });
});
