/**
 * HTTP/1.1 request targets other than the origin form (RFC 9112 §3.2): the absolute form a client sends to
 * a forward proxy (`GET http://reviews:9080/x`) and the authority form of CONNECT (`reviews:9080`).
 */

/** An absolute-form target split for routing: the URI's authority replaces Host (RFC 9112 §3.2.2). */
export interface AbsoluteTarget {
  readonly authority: string;
  /** Path and query; "/" when the URI has no path. */
  readonly path: string;
}

const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)([^#]*)/i;

/**
 * `http://host[:port][/path][?query]` (or https) → authority and path; null when `target` is not an
 * absolute http(s) URI, has an empty host, or carries userinfo (deprecated for http URIs, RFC 9110 §4.2.4).
 */
export function parseAbsoluteForm(target: string): AbsoluteTarget | null {
  const m = ABSOLUTE_FORM.exec(target);
  if (m === null) return null;
  const authority = m[1];
  if (authority.length === 0 || authority.includes('@') || authority.startsWith(':')) return null;
  const rest = m[2];
  const path = rest.length === 0 ? '/' : rest.charCodeAt(0) === 63 /* ? */ ? `/${rest}` : rest;
  return { authority, path };
}

/** A host name, an IPv4 address, or a bracketed IPv6 address, then a port: the only CONNECT target (RFC 9110 §9.3.6). */
const AUTHORITY_FORM = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+):([0-9]{1,5})$/;

/** `host:port` → its parts; null when the port is missing or out of range, or the host is not one. */
export function parseAuthorityForm(target: string): { host: string; port: number } | null {
  const m = AUTHORITY_FORM.exec(target);
  if (m === null) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1], port };
}
