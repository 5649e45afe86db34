/**
 * Just enough DER (X.690) for the CA's hot path: a strict reader for the untrusted CSRs workloads send, and
 * an encoder for the few certificate fields that change from one issued certificate to the next.
 *
 * The reader trusts nothing: every length is checked against the bytes that enclose it, and anything DER
 * forbids (indefinite or non-minimal lengths, multi-byte tags) is refused rather than guessed at.
 */

/** Input that is not well-formed DER, or not the structure the caller expected. */
export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** A context-specific tag: `[n]`, constructed or not. */
export function contextTag(n: number, constructed: boolean): number {
  return (constructed ? 0xa0 : 0x80) | n;
}

/** One TLV, as offsets into the buffer it was read from (no copies). */
export interface DerElement {
  readonly tag: number;
  /** Where the tag byte is. */
  readonly start: number;
  /** Where the content begins. */
  readonly contentStart: number;
  /** One past the last content byte. */
  readonly end: number;
}

/** Reads the TLV at `offset`, which must end at or before `limit`. */
export function readElement(buf: Uint8Array, offset: number, limit = buf.length): DerElement {
  if (offset + 2 > limit) throw new DerError(`truncated at byte ${offset}`);
  const tag = buf[offset];
  // Tag numbers above 30 take more bytes; nothing the CA reads uses them.
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte tag at byte ${offset}`);
  const first = buf[offset + 1];
  let length: number;
  let contentStart: number;
  if (first < 0x80) {
    length = first;
    contentStart = offset + 2;
  } else {
    const count = first & 0x7f;
    if (count === 0) throw new DerError(`indefinite length at byte ${offset}`);
    // Four length bytes already allow 4 GiB; more is hostile.
    if (count > 4) throw new DerError(`length of ${count} bytes at byte ${offset}`);
    contentStart = offset + 2 + count;
    if (contentStart > limit) throw new DerError(`truncated length at byte ${offset}`);
    length = 0;
    for (let i = offset + 2; i < contentStart; i++) length = length * 256 + buf[i];
    if (buf[offset + 2] === 0 || length < 0x80) throw new DerError(`non-minimal length at byte ${offset}`);
  }
  const end = contentStart + length;
  if (end > limit) throw new DerError(`element at byte ${offset} runs past its end`);
  return { tag, start: offset, contentStart, end };
}

/** Reads the TLV at `offset` and insists on its tag. */
export function expectElement(
  buf: Uint8Array,
  offset: number,
  tag: number,
  what: string,
  limit = buf.length,
): DerElement {
  const el = readElement(buf, offset, limit);
  if (el.tag !== tag)
    throw new DerError(`${what}: expected tag 0x${hex(tag)}, found 0x${hex(el.tag)} at byte ${offset}`);
  return el;
}

/** The elements inside a constructed element; they must fill it exactly. */
export function childrenOf(buf: Uint8Array, parent: DerElement): DerElement[] {
  if ((parent.tag & 0x20) === 0)
    throw new DerError(`primitive element at byte ${parent.start} has no children`);
  const out: DerElement[] = [];
  for (let at = parent.contentStart; at < parent.end;) {
    const el = readElement(buf, at, parent.end);
    out.push(el);
    at = el.end;
  }
  return out;
}

/** The whole buffer must be exactly one element (no trailing bytes). */
export function readTopElement(buf: Uint8Array, tag: number, what: string): DerElement {
  const el = expectElement(buf, 0, tag, what);
  if (el.end !== buf.length) throw new DerError(`${what}: ${buf.length - el.end} bytes after the end`);
  return el;
}

export function contentOf(buf: Uint8Array, el: DerElement): Uint8Array {
  return buf.subarray(el.contentStart, el.end);
}

export function elementBytes(buf: Uint8Array, el: DerElement): Uint8Array {
  return buf.subarray(el.start, el.end);
}

/** An OBJECT IDENTIFIER's content as dotted text. */
export function decodeOid(content: Uint8Array): string {
  if (content.length === 0) throw new DerError('empty object identifier');
  if (content[content.length - 1] & 0x80) throw new DerError('truncated object identifier');
  const arcs: number[] = [];
  let value = 0;
  let fresh = true;
  for (const byte of content) {
    if (fresh && byte === 0x80) throw new DerError('non-minimal object identifier arc');
    if (value > 2 ** 45) throw new DerError('object identifier arc too large');
    value = value * 128 + (byte & 0x7f);
    fresh = (byte & 0x80) === 0;
    if (fresh) {
      arcs.push(value);
      value = 0;
    }
  }
  const head = arcs[0];
  const first = head < 40 ? 0 : head < 80 ? 1 : 2;
  return [first, head - first * 40, ...arcs.slice(1)].join('.');
}

/** The content of a BIT STRING that has no unused bits (keys, signatures). */
export function bitStringBytes(buf: Uint8Array, el: DerElement): Uint8Array {
  if (el.tag !== TAG.BIT_STRING) throw new DerError(`expected a BIT STRING at byte ${el.start}`);
  if (el.end === el.contentStart || buf[el.contentStart] !== 0)
    throw new DerError(`BIT STRING at byte ${el.start} has unused bits`);
  return buf.subarray(el.contentStart + 1, el.end);
}

/** A small non-negative INTEGER (versions, salt lengths). */
export function decodeSmallInteger(content: Uint8Array): number {
  if (content.length === 0 || content.length > 4) throw new DerError('INTEGER out of range');
  if (content[0] & 0x80) throw new DerError('negative INTEGER');
  if (content.length > 1 && content[0] === 0 && (content[1] & 0x80) === 0)
    throw new DerError('non-minimal INTEGER');
  let n = 0;
  for (const byte of content) n = n * 256 + byte;
  return n;
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}

// --- encoding ---

function encodeLength(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  if (length < 0x100) return Uint8Array.of(0x81, length);
  if (length < 0x10000) return Uint8Array.of(0x82, length >> 8, length & 0xff);
  if (length < 0x1000000) return Uint8Array.of(0x83, length >> 16, (length >> 8) & 0xff, length & 0xff);
  throw new RangeError(`DER element of ${length} bytes`);
}

/** One TLV whose content is `parts`, concatenated. */
export function encodeElement(tag: number, ...parts: readonly Uint8Array[]): Buffer {
  let length = 0;
  for (const p of parts) length += p.length;
  return Buffer.concat([Uint8Array.of(tag), encodeLength(length), ...parts]);
}

/** A non-negative INTEGER from big-endian magnitude bytes, minimally encoded. */
export function encodeUnsignedInteger(magnitude: Uint8Array): Buffer {
  let first = 0;
  while (first < magnitude.length - 1 && magnitude[first] === 0) first++;
  const trimmed = magnitude.subarray(first);
  if (trimmed.length === 0) return encodeElement(TAG.INTEGER, Uint8Array.of(0));
  return trimmed[0] & 0x80
    ? encodeElement(TAG.INTEGER, Uint8Array.of(0), trimmed)
    : encodeElement(TAG.INTEGER, trimmed);
}

/** An OBJECT IDENTIFIER from dotted text. */
export function encodeOid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0) || arcs[0] > 2)
    throw new RangeError(`not an object identifier: ${dotted}`);
  const bytes: number[] = [];
  for (const arc of [arcs[0] * 40 + arcs[1], ...arcs.slice(2)]) {
    const group = [arc & 0x7f];
    for (let rest = Math.floor(arc / 128); rest > 0; rest = Math.floor(rest / 128))
      group.unshift((rest & 0x7f) | 0x80);
    bytes.push(...group);
  }
  return encodeElement(TAG.OID, Uint8Array.from(bytes));
}

/** A BIT STRING with no unused bits. */
export function encodeBitString(bytes: Uint8Array): Buffer {
  return encodeElement(TAG.BIT_STRING, Uint8Array.of(0), bytes);
}

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** An X.509 Time: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5); whole seconds. */
export function encodeTime(date: Date): Buffer {
  const year = date.getUTCFullYear();
  if (year < 1950 || year > 9999) throw new RangeError(`no X.509 time for ${date.toISOString()}`);
  const rest =
    two(date.getUTCMonth() + 1) +
    two(date.getUTCDate()) +
    two(date.getUTCHours()) +
    two(date.getUTCMinutes()) +
    two(date.getUTCSeconds()) +
    'Z';
  return year < 2050
    ? encodeElement(TAG.UTC_TIME, Buffer.from(two(year % 100) + rest, 'latin1'))
    : encodeElement(TAG.GENERALIZED_TIME, Buffer.from(String(year) + rest, 'latin1'));
}
