/**
 * Route.redirect (RedirectAction), compiled. The Location is built as Envoy's newUri does:
 * - scheme: scheme_redirect, else "https" for https_redirect, else the request's scheme;
 * - host: host_redirect, else the request's authority, dropping its port when port_redirect is set or
 *   when the scheme changes away from a default port (http + :80, https + :443);
 * - port: ":" + port_redirect when set;
 * - path: path_redirect (a query in it wins and is never stripped; otherwise the request's query is
 *   kept), else the request path after prefix_rewrite / regex_rewrite; strip_query drops the query.
 */
import { ConfigError } from '../../core/errors.ts';
import type { Json } from '../../core/json.ts';
import { asObject, optBool, optNumber, optString } from '../config-proto/fields.ts';
import { fieldPath } from '../config-proto/path.ts';
import { checkFields } from './check-fields.ts';
import { PathRewriter } from './path-rewrite.ts';
import { compileRegexRewrite } from './regex.ts';
import { hasControlChar, toWire } from './strings.ts';
import type { RedirectAction, RouteRequest } from './types.ts';

const RESPONSE_CODES: Readonly<Record<string, number>> = {
  MOVED_PERMANENTLY: 301,
  FOUND: 302,
  SEE_OTHER: 303,
  TEMPORARY_REDIRECT: 307,
  PERMANENT_REDIRECT: 308,
};

function isScheme(value: string, scheme: string): boolean {
  return value.toLowerCase() === scheme;
}

/** The request authority for the Location, with its port removed where Envoy's processRequestHost removes it. */
export function redirectHost(
  authority: string,
  requestScheme: string,
  newScheme: string,
  newPort: string,
): string {
  if (authority === '') return authority;
  let portStart: number;
  if (authority.charCodeAt(0) === 91 /* [ */) {
    portStart = authority.lastIndexOf(']:');
    if (portStart >= 0) portStart += 1;
  } else {
    portStart = authority.lastIndexOf(':');
  }
  if (portStart < 0) return authority;
  const port = authority.slice(portStart);
  let remove = newPort !== '';
  if (newScheme !== requestScheme) {
    remove ||= isScheme(requestScheme, 'https') && port === ':443';
    remove ||= isScheme(requestScheme, 'http') && port === ':80';
  }
  return remove ? authority.slice(0, portStart) : authority;
}

export class Redirect implements RedirectAction {
  readonly kind = 'redirect';
  private readonly scheme: string | undefined;
  private readonly host: string | undefined;
  private readonly port: string;
  private readonly pathRedirect: string | undefined;
  private readonly pathRedirectHasQuery: boolean;
  private readonly rewriter: PathRewriter;
  private readonly stripQuery: boolean;
  private readonly status: number;

  constructor(init: {
    scheme: string | undefined;
    host: string | undefined;
    port: number;
    pathRedirect: string | undefined;
    rewriter: PathRewriter;
    stripQuery: boolean;
    status: number;
  }) {
    this.scheme = init.scheme;
    this.host = init.host;
    this.port = init.port ? `:${init.port}` : '';
    this.pathRedirect = init.pathRedirect;
    this.pathRedirectHasQuery = init.pathRedirect !== undefined && init.pathRedirect.includes('?');
    this.rewriter = init.rewriter;
    this.stripQuery = init.stripQuery;
    this.status = init.status;
  }

  redirect(req: RouteRequest): { status: number; location: string } {
    const scheme = this.scheme ?? req.scheme;
    const host = this.host ?? redirectHost(req.authority, req.scheme, scheme, this.port);
    let path: string;
    if (this.pathRedirect !== undefined) {
      path = this.pathRedirect;
      if (!this.pathRedirectHasQuery) {
        const q = req.path.indexOf('?');
        if (q >= 0) path += req.path.slice(q);
      }
    } else {
      path = this.rewriter.rewrite(req.path);
    }
    if (!path.startsWith('/')) path = `/${path}`;
    if (this.stripQuery && !this.pathRedirectHasQuery) {
      const q = path.indexOf('?');
      if (q >= 0) path = path.slice(0, q);
    }
    return { status: this.status, location: `${scheme}://${host}${this.port}${path}` };
  }
}

const PATH_REWRITES = ['path_redirect', 'prefix_rewrite', 'regex_rewrite'] as const;

/** Compiles a RedirectAction; `matchedLength` is the route match's (see PathRewriter). */
export function compileRedirect(json: Json, path: string, matchedLength: number): Redirect {
  const obj = asObject(json, path);
  checkFields(obj, path, {
    supported: [
      'https_redirect',
      'scheme_redirect',
      'host_redirect',
      'port_redirect',
      ...PATH_REWRITES,
      'response_code',
      'strip_query',
    ],
    refused: {},
  });
  const https = optBool(obj, 'https_redirect', path) ?? false;
  const schemeRedirect = optString(obj, 'scheme_redirect', path) || undefined;
  if (https && schemeRedirect !== undefined) {
    throw new ConfigError(
      fieldPath(path, 'scheme_redirect'),
      'conflicts with "https_redirect": only one may be set',
    );
  }
  const rewrites = PATH_REWRITES.filter((k) => obj[k] !== undefined && obj[k] !== null);
  if (rewrites.length > 1)
    throw new ConfigError(
      fieldPath(path, rewrites[1]),
      `conflicts with "${rewrites[0]}": only one may be set`,
    );
  const port = optNumber(obj, 'port_redirect', path) ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new ConfigError(fieldPath(path, 'port_redirect'), `must be a port number, got ${port}`);
  const codeName = optString(obj, 'response_code', path) ?? 'MOVED_PERMANENTLY';
  const status = RESPONSE_CODES[codeName];
  if (status === undefined)
    throw new ConfigError(fieldPath(path, 'response_code'), `unknown value ${JSON.stringify(codeName)}`);
  for (const key of ['host_redirect', 'path_redirect', 'prefix_rewrite', 'scheme_redirect']) {
    const v = optString(obj, key, path);
    if (v !== undefined && hasControlChar(v, true))
      throw new ConfigError(fieldPath(path, key), 'must not contain spaces or control characters');
  }
  const prefix = optString(obj, 'prefix_rewrite', path) || undefined;
  const regex = obj.regex_rewrite
    ? compileRegexRewrite(obj.regex_rewrite, fieldPath(path, 'regex_rewrite'))
    : undefined;
  const hostRedirect = optString(obj, 'host_redirect', path) || undefined;
  const pathRedirect = optString(obj, 'path_redirect', path) || undefined;
  return new Redirect({
    scheme: https ? 'https' : schemeRedirect,
    host: hostRedirect === undefined ? undefined : toWire(hostRedirect),
    port,
    pathRedirect: pathRedirect === undefined ? undefined : toWire(pathRedirect),
    rewriter: new PathRewriter(matchedLength, prefix === undefined ? undefined : toWire(prefix), regex),
    stripQuery: optBool(obj, 'strip_query', path) ?? false,
    status,
  });
}
