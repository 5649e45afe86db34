/**
 * envoy.config.core.v3.CidrRange for the RBAC filter: compiled once into a family, a masked prefix and a
 * length, then matched against socket and x-forwarded-for addresses without building objects per request.
 * An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, as Node reports IPv4 peers on dual-stack sockets) is
 * matched as the IPv4 address it carries; otherwise an address never matches a range of the other family.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { ConfigError } from '../../../core/errors.ts';
import type { Json } from '../../../core/json.ts';
import { asObject, intInRange, optString } from '../../config-proto/fields.ts';
import { fieldPath } from '../../config-proto/path.ts';
import { checkFields } from '../../router/check-fields.ts';

export interface CidrMatcher {
  matches(address: string | undefined): boolean;
}

/** Parses a dotted-quad IPv4 address to an unsigned 32-bit number; -1 when it is not one. */
export function parseIpv4(s: string, start = 0): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else return -1;
  }
  if (digits === 0 || dots !== 3) return -1;
  return value * 256 + octet;
}

/** The IPv4 address inside `::ffff:a.b.c.d`, or -1. */
function mappedIpv4(s: string): number {
  if (s.length < 14 || !s.startsWith('::ffff:')) return -1;
  return parseIpv4(s, 7);
}

/** The eight 16-bit groups of an IPv6 address, or undefined when `s` is not one. */
export function parseIpv6(s: string): Uint16Array | undefined {
  if (!isIPv6(s)) return undefined;
  const out = new Uint16Array(8);
  const zone = s.indexOf('%');
  const text = zone >= 0 ? s.slice(0, zone) : s;
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (part: string): number[] => {
    if (part === '') return [];
    const result: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const v4 = parseIpv4(g);
        result.push(v4 >>> 16, v4 & 0xffff);
      } else result.push(parseInt(g, 16));
    }
    return result;
  };
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  h.forEach((v, i) => (out[i] = v));
  t.forEach((v, i) => (out[8 - t.length + i] = v));
  return out;
}

class Ipv4Range implements CidrMatcher {
  private readonly prefix: number;
  private readonly mask: number;

  constructor(address: number, len: number) {
    this.mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    this.prefix = (address & this.mask) >>> 0;
  }

  matches(address: string | undefined): boolean {
    if (address === undefined || address === '') return false;
    let v = parseIpv4(address);
    if (v < 0) v = mappedIpv4(address);
    if (v < 0) return false;
    return (v & this.mask) >>> 0 === this.prefix;
  }
}

class Ipv6Range implements CidrMatcher {
  private readonly prefix: Uint16Array;
  private readonly len: number;

  constructor(address: Uint16Array, len: number) {
    this.prefix = address;
    this.len = len;
  }

  matches(address: string | undefined): boolean {
    if (address === undefined || !address.includes(':') || mappedIpv4(address) >= 0) return false;
    const groups = parseIpv6(address);
    if (groups === undefined) return false;
    let bits = this.len;
    for (let i = 0; i < 8 && bits > 0; i++, bits -= 16) {
      const mask = bits >= 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff;
      if ((groups[i] & mask) !== (this.prefix[i] & mask)) return false;
    }
    return true;
  }
}

/** Compiles a CidrRange {address_prefix, prefix_len}; prefix_len unset means 0 (the whole family), as in the proto. */
export function compileCidrRange(json: Json | undefined, path: string): CidrMatcher {
  const obj = asObject(json, path);
  checkFields(obj, path, { supported: ['address_prefix', 'prefix_len'], refused: {} });
  const address = optString(obj, 'address_prefix', path) ?? '';
  if (isIPv4(address)) {
    const len = intInRange(obj, 'prefix_len', path, 0, 32, 0);
    return new Ipv4Range(parseIpv4(address), len);
  }
  const groups = parseIpv6(address);
  if (groups !== undefined) {
    const len = intInRange(obj, 'prefix_len', path, 0, 128, 0);
    return new Ipv6Range(groups, len);
  }
  throw new ConfigError(
    fieldPath(path, 'address_prefix'),
    `not an IPv4 or IPv6 address: ${JSON.stringify(address)}`,
  );
}
