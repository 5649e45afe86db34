/**
 * RouteAction.hash_policy, compiled (Envoy's HashPolicyImpl). Policies are evaluated in order; each one
 * that yields a hash is folded in as `rotl(previous, 1) ^ new` (so duplicate policies do not cancel out),
 * and a `terminal` policy stops evaluation once any hash exists. No policy yielding a hash means no hash.
 *
 * Generated cookies: Envoy derives the value from the connection's remote and local addresses; the router
 * only sees the downstream IP, so Weft derives it from that (same client IP → same cookie, as intended).
 */
import { ConfigError } from '../../core/errors.ts';
import { parseDurationMs } from '../../core/duration.ts';
import { hashString } from '../../core/hash.ts';
import type { Json } from '../../core/json.ts';
import { asObject, objectItems, optBool, optObject, optString } from '../config-proto/fields.ts';
import { fieldPath } from '../config-proto/path.ts';
import { checkFields } from './check-fields.ts';
import { compileRegexRewrite, replaceAll } from './regex.ts';
import type { Re2Regex, Substitution } from './regex.ts';
import { RequestHeader } from './request-header.ts';
import { queryValueEnd, queryValueStart, toWire } from './strings.ts';
import type { HashResult, RouteRequest } from './types.ts';

/** What one policy contributes: a hash, or undefined. A generated cookie is reported through `cookie`. */
interface HashMethod {
  readonly terminal: boolean;
  evaluate(req: RouteRequest, cookie: { setCookie?: string }): number | undefined;
}

class HeaderHash implements HashMethod {
  readonly terminal: boolean;
  private readonly header: RequestHeader;
  private readonly rewrite: { regex: Re2Regex; substitution: Substitution } | undefined;

  constructor(
    name: string,
    terminal: boolean,
    rewrite: { regex: Re2Regex; substitution: Substitution } | undefined,
  ) {
    this.header = new RequestHeader(name);
    this.terminal = terminal;
    this.rewrite = rewrite;
  }

  evaluate(req: RouteRequest): number | undefined {
    const values = this.header.getAll(req);
    if (values === undefined) return undefined;
    const rw = this.rewrite;
    if (values.length === 1)
      return hashString(rw ? replaceAll(rw.regex, values[0], rw.substitution) : values[0]);
    // Several values hash the same in any order (Envoy sorts them).
    const sorted = values.map((v) => (rw ? replaceAll(rw.regex, v, rw.substitution) : v)).sort();
    let h = 0;
    for (const v of sorted) h = hashString(v, h);
    return h;
  }
}

/** Envoy's cookie parsing: `;`-separated items, name from the first non-space to `=`, quotes stripped. */
export function cookieValue(header: string | string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const lines = typeof header === 'string' ? [header] : header;
  for (const line of lines) {
    for (const item of line.split(';')) {
      if (item === '') continue;
      const eq = item.indexOf('=');
      if (eq < 0) continue;
      let start = 0;
      while (start < eq && item.charCodeAt(start) === 32) start++;
      if (item.slice(start, eq) !== name) continue;
      const v = item.slice(eq + 1);
      return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
    }
  }
  return undefined;
}

class CookieHash implements HashMethod {
  readonly terminal: boolean;
  private readonly name: string;
  /** Seconds; undefined → never generate a cookie; 0 → a session cookie. */
  private readonly ttlSeconds: number | undefined;
  /** The Set-Cookie attributes after the value, precomputed. */
  private readonly attributes: string;

  constructor(
    name: string,
    terminal: boolean,
    ttlSeconds: number | undefined,
    path: string,
    extra: readonly { name: string; value: string }[],
  ) {
    this.name = name;
    this.terminal = terminal;
    this.ttlSeconds = ttlSeconds;
    let attrs = '';
    if (ttlSeconds !== undefined && ttlSeconds !== 0) attrs += `; Max-Age=${ttlSeconds}`;
    if (path) attrs += `; Path=${path}`;
    for (const a of extra) attrs += a.value ? `; ${a.name}=${a.value}` : `; ${a.name}`;
    this.attributes = `${attrs}; HttpOnly`;
  }

  evaluate(req: RouteRequest, cookie: { setCookie?: string }): number | undefined {
    const existing = cookieValue(req.headers.cookie, this.name);
    if (existing) return hashString(existing);
    if (this.ttlSeconds === undefined) return undefined;
    const value = generatedCookieValue(req.sourceIp);
    cookie.setCookie = `${this.name}="${value}"${this.attributes}`;
    return hashString(value);
  }
}

/** 16 hex digits derived from the client IP, so every request from one client gets the same cookie. */
export function generatedCookieValue(sourceIp: string): string {
  return (
    hashString(sourceIp, 1).toString(16).padStart(8, '0') +
    hashString(sourceIp, 2).toString(16).padStart(8, '0')
  );
}

class SourceIpHash implements HashMethod {
  readonly terminal: boolean;
  constructor(terminal: boolean) {
    this.terminal = terminal;
  }
  evaluate(req: RouteRequest): number | undefined {
    return req.sourceIp ? hashString(req.sourceIp) : undefined;
  }
}

class QueryParameterHash implements HashMethod {
  readonly terminal: boolean;
  private readonly name: string;
  /** A name containing "=" or "&" can never be a parameter name. */
  private readonly impossible: boolean;
  constructor(name: string, terminal: boolean) {
    this.name = name;
    this.terminal = terminal;
    this.impossible = name.includes('=') || name.includes('&');
  }
  evaluate(req: RouteRequest): number | undefined {
    if (this.impossible) return undefined;
    const start = queryValueStart(req.path, this.name);
    if (start < 0) return undefined;
    return hashString(req.path.slice(start, queryValueEnd(req.path, start)));
  }
}

export class HashPolicy {
  private readonly methods: readonly HashMethod[];

  constructor(methods: readonly HashMethod[]) {
    this.methods = methods;
  }

  compute(req: RouteRequest): HashResult | undefined {
    let hash: number | undefined;
    const cookie: { setCookie?: string } = {};
    for (const m of this.methods) {
      const h = m.evaluate(req, cookie);
      if (h !== undefined) {
        const previous = hash === undefined ? 0 : ((hash << 1) | (hash >>> 31)) >>> 0;
        hash = (previous ^ h) >>> 0;
      }
      if (m.terminal && hash !== undefined) break;
    }
    if (hash === undefined) return undefined;
    return cookie.setCookie === undefined ? { hash } : { hash, setCookie: cookie.setCookie };
  }
}

const POLICY_KINDS = [
  'header',
  'cookie',
  'connection_properties',
  'query_parameter',
  'filter_state',
] as const;

function compileMethod(json: Json, path: string): HashMethod | undefined {
  const obj = asObject(json, path);
  checkFields(obj, path, { supported: [...POLICY_KINDS, 'terminal'], refused: {} });
  const set = POLICY_KINDS.filter((k) => obj[k] !== undefined && obj[k] !== null);
  if (set.length === 0)
    throw new ConfigError(
      path,
      'one of header, cookie, connection_properties or query_parameter is required',
    );
  if (set.length > 1)
    throw new ConfigError(fieldPath(path, set[1]), `conflicts with "${set[0]}": only one policy may be set`);
  const terminal = optBool(obj, 'terminal', path) ?? false;
  const kind = set[0];
  const p = fieldPath(path, kind);
  const spec = optObject(obj, kind, path)!;
  switch (kind) {
    case 'header': {
      checkFields(spec, p, { supported: ['header_name', 'regex_rewrite'], refused: {} });
      const name = optString(spec, 'header_name', p);
      if (!name) throw new ConfigError(fieldPath(p, 'header_name'), 'required');
      const rewrite = spec.regex_rewrite
        ? compileRegexRewrite(spec.regex_rewrite, fieldPath(p, 'regex_rewrite'))
        : undefined;
      return new HeaderHash(name, terminal, rewrite);
    }
    case 'cookie': {
      checkFields(spec, p, { supported: ['name', 'ttl', 'path', 'attributes'], refused: {} });
      const name = optString(spec, 'name', p);
      if (!name) throw new ConfigError(fieldPath(p, 'name'), 'required');
      // Envoy uses the Duration's whole seconds.
      const ttl =
        spec.ttl === undefined || spec.ttl === null
          ? undefined
          : Math.floor(parseDurationMs(spec.ttl, fieldPath(p, 'ttl')) / 1000);
      const attributes = objectItems(spec, 'attributes', p).map(({ item, path: ap }) => {
        checkFields(item, ap, { supported: ['name', 'value'], refused: {} });
        const attrName = optString(item, 'name', ap);
        if (!attrName) throw new ConfigError(fieldPath(ap, 'name'), 'required');
        return { name: toWire(attrName), value: toWire(optString(item, 'value', ap) ?? '') };
      });
      const cookiePath = optString(spec, 'path', p) ?? '';
      for (const [text, at] of [
        [name, fieldPath(p, 'name')],
        [cookiePath, fieldPath(p, 'path')],
        ...attributes.map((a, i) => [`${a.name}=${a.value}`, `${p}.attributes[${i}]`]),
      ]) {
        if (/[\0\r\n;]/.test(text)) throw new ConfigError(at, 'must not contain NUL, CR, LF or ";"');
      }
      return new CookieHash(toWire(name), terminal, ttl, toWire(cookiePath), attributes);
    }
    case 'connection_properties': {
      checkFields(spec, p, { supported: ['source_ip'], refused: {} });
      // Envoy adds no policy at all when source_ip is false.
      return optBool(spec, 'source_ip', p) ? new SourceIpHash(terminal) : undefined;
    }
    case 'query_parameter': {
      checkFields(spec, p, { supported: ['name'], refused: {} });
      const name = optString(spec, 'name', p);
      if (!name) throw new ConfigError(fieldPath(p, 'name'), 'required');
      return new QueryParameterHash(toWire(name), terminal);
    }
    case 'filter_state':
      throw new ConfigError(p, 'not supported by Weft');
  }
}

/** The route's hash policy, or undefined when none is configured. */
export function compileHashPolicy(items: readonly { item: Json; path: string }[]): HashPolicy | undefined {
  const methods = items
    .map(({ item, path }) => compileMethod(item, path))
    .filter((m): m is HashMethod => m !== undefined);
  return methods.length === 0 ? undefined : new HashPolicy(methods);
}
