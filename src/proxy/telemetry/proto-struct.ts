/**
 * google.protobuf.Struct in its binary protobuf form, hand-coded: the peer metadata header carries one,
 * and a general protobuf runtime would be a lot of machinery for six field kinds. The decoder reads
 * untrusted bytes: every length is bounds-checked, nesting is limited, and any malformation throws
 * (callers treat the header as absent).
 *
 *   Struct    { map<string, Value> fields = 1; }   (entries: { string key = 1; Value value = 2; })
 *   Value     { oneof { NullValue null_value = 1; double number_value = 2; string string_value = 3;
 *               bool bool_value = 4; Struct struct_value = 5; ListValue list_value = 6; } }
 *   ListValue { repeated Value values = 1; }
 */

export type StructValue = null | number | string | boolean | StructValue[] | { [key: string]: StructValue };

const MAX_DEPTH = 16;

// ---- encoding ----

class Writer {
  private readonly parts: Buffer[] = [];
  length = 0;

  bytes(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }

  varint(n: number): void {
    const out: number[] = [];
    while (n > 0x7f) {
      out.push((n & 0x7f) | 0x80);
      n = Math.floor(n / 128);
    }
    out.push(n);
    this.bytes(Buffer.from(out));
  }

  tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  /** A length-delimited field. */
  lengthDelimited(field: number, body: Buffer): void {
    this.tag(field, 2);
    this.varint(body.length);
    this.bytes(body);
  }

  finish(): Buffer {
    return Buffer.concat(this.parts, this.length);
  }
}

export function encodeStruct(obj: Readonly<Record<string, StructValue>>): Buffer {
  const w = new Writer();
  for (const [key, value] of Object.entries(obj)) {
    const entry = new Writer();
    entry.lengthDelimited(1, Buffer.from(key, 'utf8'));
    entry.lengthDelimited(2, encodeValue(value));
    w.lengthDelimited(1, entry.finish());
  }
  return w.finish();
}

function encodeValue(v: StructValue): Buffer {
  const w = new Writer();
  if (v === null) {
    w.tag(1, 0);
    w.varint(0);
  } else if (typeof v === 'number') {
    w.tag(2, 1);
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    w.bytes(b);
  } else if (typeof v === 'string') {
    w.lengthDelimited(3, Buffer.from(v, 'utf8'));
  } else if (typeof v === 'boolean') {
    w.tag(4, 0);
    w.varint(v ? 1 : 0);
  } else if (Array.isArray(v)) {
    const list = new Writer();
    for (const item of v) list.lengthDelimited(1, encodeValue(item));
    w.lengthDelimited(6, list.finish());
  } else {
    w.lengthDelimited(5, encodeStruct(v));
  }
  return w.finish();
}

// ---- decoding ----

class Reader {
  private readonly buf: Buffer;
  pos: number;
  readonly end: number;

  constructor(buf: Buffer, pos: number, end: number) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new Error('varint too long');
  }

  /** The bounds of a length-delimited field's body; advances past it. */
  sub(): Reader {
    const len = this.varint();
    if (len > this.end - this.pos) throw new Error('length past the end');
    const r = new Reader(this.buf, this.pos, this.pos + len);
    this.pos += len;
    return r;
  }

  string(): string {
    const r = this.sub();
    return this.buf.toString('utf8', r.pos, r.end);
  }

  double(): number {
    if (this.end - this.pos < 8) throw new Error('truncated double');
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.advance(8);
    else if (wireType === 2) this.sub();
    else if (wireType === 5) this.advance(4);
    else throw new Error(`unsupported wire type ${wireType}`);
  }

  private advance(n: number): void {
    if (this.end - this.pos < n) throw new Error('truncated field');
    this.pos += n;
  }
}

/** Decodes a Struct; throws on anything malformed. */
export function decodeStruct(buf: Buffer): Record<string, StructValue> {
  return readStruct(new Reader(buf, 0, buf.length), 0);
}

function readStruct(r: Reader, depth: number): Record<string, StructValue> {
  if (depth > MAX_DEPTH) throw new Error('nested too deeply');
  // A null-prototype object: keys such as "__proto__" from the wire stay plain data.
  const out = Object.create(null) as Record<string, StructValue>;
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag >>> 3 !== 1 || (tag & 7) !== 2) {
      r.skip(tag & 7);
      continue;
    }
    const entry = r.sub();
    let key = '';
    let value: StructValue = null;
    while (entry.pos < entry.end) {
      const t = entry.varint();
      if (t === ((1 << 3) | 2)) key = entry.string();
      else if (t === ((2 << 3) | 2)) value = readValue(entry.sub(), depth + 1);
      else entry.skip(t & 7);
    }
    out[key] = value;
  }
  return out;
}

function readValue(r: Reader, depth: number): StructValue {
  if (depth > MAX_DEPTH) throw new Error('nested too deeply');
  let value: StructValue = null;
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === 0) {
      r.varint();
      value = null;
    } else if (field === 2 && wire === 1) value = r.double();
    else if (field === 3 && wire === 2) value = r.string();
    else if (field === 4 && wire === 0) value = r.varint() !== 0;
    else if (field === 5 && wire === 2) value = readStruct(r.sub(), depth + 1);
    else if (field === 6 && wire === 2) {
      const list = r.sub();
      const items: StructValue[] = [];
      while (list.pos < list.end) {
        const t = list.varint();
        if (t === ((1 << 3) | 2)) items.push(readValue(list.sub(), depth + 1));
        else list.skip(t & 7);
      }
      value = items;
    } else r.skip(wire);
  }
  return value;
}
