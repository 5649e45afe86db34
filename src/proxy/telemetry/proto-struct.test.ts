import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import protobuf from 'protobufjs';
import { decodeStruct, encodeStruct } from './proto-struct.ts';
import type { StructValue } from './proto-struct.ts';

const root = protobuf.Root.fromJSON(protobuf.common.get('google/protobuf/struct.proto')!);
const StructType = root.lookupType('google.protobuf.Struct');

/** A plain value as protobufjs' Value message object. */
function toValue(v: StructValue): Record<string, unknown> {
  if (v === null) return { nullValue: 0 };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  return { structValue: toStruct(v) };
}

function toStruct(o: Record<string, StructValue>): Record<string, unknown> {
  return { fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, toValue(v)])) };
}

function fromValue(v: Record<string, unknown>): StructValue {
  if ('stringValue' in v) return v.stringValue as string;
  if ('numberValue' in v) return v.numberValue as number;
  if ('boolValue' in v) return v.boolValue as boolean;
  if ('structValue' in v) return fromStruct(v.structValue as Record<string, unknown>);
  if ('listValue' in v)
    return ((v.listValue as { values?: Record<string, unknown>[] }).values ?? []).map(fromValue);
  return null;
}

function fromStruct(s: Record<string, unknown>): Record<string, StructValue> {
  const fields = (s.fields ?? {}) as Record<string, Record<string, unknown>>;
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, fromValue(v)]));
}

/** Decoded objects have null prototypes; compare them as plain JSON. */
function plain(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v));
}

const SAMPLE: Record<string, StructValue> = {
  NAME: 'echo-v1-7c9b',
  NAMESPACE: 'default',
  LABELS: { app: 'echo', 'service.istio.io/canonical-name': 'echo', ünïcode: 'ŵ' },
  APP_CONTAINERS: ['echo', 'sidecar'],
  INSTANCE_IPS: '10.0.0.1,fe80::1',
  PORT: 8080.5,
  NEG: -3,
  ON: true,
  OFF: false,
  NOTHING: null,
  DEEP: { a: { b: [1, { c: 'd' }] } },
};

describe('google.protobuf.Struct codec', () => {
  it('encodes what protobufjs decodes', () => {
    const bytes = encodeStruct(SAMPLE);
    const msg = StructType.toObject(StructType.decode(bytes), { oneofs: false }) as Record<string, unknown>;
    assert.deepEqual(fromStruct(msg), SAMPLE);
  });

  it('decodes what protobufjs encodes', () => {
    const bytes = Buffer.from(StructType.encode(StructType.fromObject(toStruct(SAMPLE))).finish());
    assert.deepEqual(plain(decodeStruct(bytes)), SAMPLE);
  });

  it('round-trips an empty struct', () => {
    assert.equal(encodeStruct({}).length, 0);
    assert.deepEqual(plain(decodeStruct(Buffer.alloc(0))), {});
  });

  it('throws on truncated or malformed input, never loops or over-reads', () => {
    const good = encodeStruct(SAMPLE);
    for (let n = 1; n < good.length; n++) {
      // Every prefix either decodes to something or throws; none may hang or read past the end.
      try {
        decodeStruct(good.subarray(0, n));
      } catch (e) {
        assert.ok(e instanceof Error);
      }
    }
    assert.throws(() => decodeStruct(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])), /past the end/);
    assert.throws(() => decodeStruct(Buffer.from([0x0b])), /wire type/);
    assert.throws(() => decodeStruct(Buffer.from([0x0a, 0x80])), /truncated/);
  });

  it('refuses nesting beyond the limit', () => {
    let v: StructValue = 'x';
    for (let i = 0; i < 40; i++) v = { a: v };
    assert.throws(() => decodeStruct(encodeStruct({ v })), /nested too deeply/);
  });

  it('keeps a "__proto__" key as plain data', () => {
    const decoded = decodeStruct(
      encodeStruct(JSON.parse('{"__proto__":{"polluted":"yes"}}') as Record<string, StructValue>),
    );
    assert.ok(Object.hasOwn(decoded, '__proto__'));
    assert.deepEqual(plain(decoded), JSON.parse('{"__proto__":{"polluted":"yes"}}'));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});
