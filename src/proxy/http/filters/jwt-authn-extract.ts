/**
 * Finds JWTs in a request (Envoy's jwt_authn extractor): in headers (after an optional value prefix), in
 * query parameters and in cookies. Only the characters a compact JWS can hold are taken, so a header such
 * as `Bearer <token>, other` still yields the token alone.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { queryValueEnd, queryValueStart } from '../../router/strings.ts';
import type { TokenLocation } from './jwt-authn-config.ts';

/** base64url characters, the two dots, and '=' padding some issuers leave in. */
function isTokenChar(c: number): boolean {
  return (
    (c >= 48 && c <= 57) || // 0-9
    (c >= 65 && c <= 90) || // A-Z
    (c >= 97 && c <= 122) || // a-z
    c === 45 || // -
    c === 95 || // _
    c === 46 || // .
    c === 61 || // =
    c === 43 || // + (base64 issuers)
    c === 47 // /
  );
}

function tokenAt(value: string, start: number): string | undefined {
  let end = start;
  while (end < value.length && isTokenChar(value.charCodeAt(end))) end++;
  return end > start ? value.slice(start, end) : undefined;
}

function fromHeader(value: string | string[] | undefined, prefix: string): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  if (prefix === '') return tokenAt(v, 0);
  // Authentication schemes are case-insensitive (RFC 9110 §11.1): "bearer x" matches the prefix "Bearer ".
  const at = v.toLowerCase().indexOf(prefix.toLowerCase());
  return at < 0 ? undefined : tokenAt(v, at + prefix.length);
}

function fromParam(path: string, name: string): string | undefined {
  const start = queryValueStart(path, name);
  if (start < 0) return undefined;
  const raw = path.slice(start, queryValueEnd(path, start));
  try {
    return decodeURIComponent(raw) || undefined;
  } catch {
    return raw || undefined;
  }
}

function fromCookie(header: string | string[] | undefined, name: string): string | undefined {
  const v = Array.isArray(header) ? header.join('; ') : header;
  if (v === undefined) return undefined;
  for (const part of v.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    return value || undefined;
  }
  return undefined;
}

/** The token at `loc`, or undefined when the request carries none there. */
export function extractToken(
  loc: TokenLocation,
  headers: IncomingHttpHeaders,
  path: string,
): string | undefined {
  switch (loc.kind) {
    case 'header':
      return fromHeader(headers[loc.name], loc.prefix);
    case 'param':
      return fromParam(path, loc.name);
    case 'cookie':
      return fromCookie(headers.cookie, loc.name);
  }
}

/** A key that identifies a location across providers (two providers may read the same header). */
export function locationKey(loc: TokenLocation): string {
  return loc.kind === 'header' ? `h:${loc.name}:${loc.prefix}` : `${loc.kind[0]}:${loc.name}`;
}
