/**
 * envoy.config.route.v3.RouteMatch, compiled. Path specifiers match the path without its query string
 * and fragment (Envoy's PathMatcher); `case_sensitive: false` folds ASCII case and does not apply to
 * `safe_regex`; headers and query parameters must all match. `connect_matcher` matches only CONNECT
 * requests, which have no path (authority form): they match no other path specifier, as in Envoy.
 */
import { ConfigError } from '../../core/errors.ts';
import type { Json } from '../../core/json.ts';
import { asObject, objectItems, optBool, optObject, optString } from '../config-proto/fields.ts';
import { fieldPath } from '../config-proto/path.ts';
import { checkFields } from './check-fields.ts';
import { compileHeaderMatcher } from './header-matcher.ts';
import type { HeaderMatcher } from './header-matcher.ts';
import { compileRegexMatcher } from './regex.ts';
import type { Re2Regex } from './regex.ts';
import { compileStringMatcher } from './string-matcher.ts';
import type { StringMatcher } from './string-matcher.ts';
import { asciiLower, queryValueEnd, queryValueStart, regionEqualsIgnoreCase, toWire } from './strings.ts';
import type { RouteRequest } from './types.ts';

export type PathKind = 'prefix' | 'path' | 'path_separated_prefix' | 'safe_regex' | 'connect_matcher';

const PATH_SPECIFIERS = ['prefix', 'path', 'safe_regex', 'path_separated_prefix', 'connect_matcher'] as const;

const ROUTE_MATCH_FIELDS = {
  supported: [...PATH_SPECIFIERS, 'case_sensitive', 'headers', 'query_parameters', 'grpc'],
  refused: {
    path_match_policy: null,
    runtime_fraction: null,
    tls_context: null,
    dynamic_metadata: null,
  },
};

/** QueryParameterMatcher: `present_match` checks presence (or absence); otherwise the first value must match. */
export class QueryParameterMatcher {
  private readonly name: string;
  private readonly present: boolean | undefined;
  private readonly matcher: StringMatcher | undefined;
  /** A name containing "=" or "&" can never be a parameter name. */
  private readonly impossible: boolean;

  constructor(name: string, present: boolean | undefined, matcher: StringMatcher | undefined) {
    this.name = name;
    this.present = present;
    this.matcher = matcher;
    this.impossible = name.includes('=') || name.includes('&');
  }

  matches(path: string): boolean {
    const start = this.impossible ? -1 : queryValueStart(path, this.name);
    if (this.present !== undefined) return start >= 0 === this.present;
    if (start < 0) return false;
    return this.matcher === undefined || this.matcher.matchesRange(path, start, queryValueEnd(path, start));
  }
}

function compileQueryParameterMatcher(json: Json, path: string): QueryParameterMatcher {
  const obj = asObject(json, path);
  checkFields(obj, path, { supported: ['name', 'string_match', 'present_match'], refused: {} });
  const name = optString(obj, 'name', path);
  if (!name) throw new ConfigError(fieldPath(path, 'name'), 'required');
  const hasString = obj.string_match !== undefined && obj.string_match !== null;
  const present = optBool(obj, 'present_match', path);
  if (hasString && present !== undefined) {
    throw new ConfigError(
      fieldPath(path, 'present_match'),
      'conflicts with "string_match": only one may be set',
    );
  }
  const matcher = hasString
    ? compileStringMatcher(obj.string_match, fieldPath(path, 'string_match'))
    : undefined;
  // Neither set: a presence check (Envoy's legacy behaviour).
  return new QueryParameterMatcher(toWire(name), present, matcher);
}

export class RouteMatcher {
  readonly kind: PathKind;
  /** The configured prefix or path (wire form), lower-cased when matching is case-insensitive. */
  private readonly text: string;
  private readonly caseSensitive: boolean;
  private readonly regex: Re2Regex | undefined;
  private readonly headers: readonly HeaderMatcher[];
  private readonly queries: readonly QueryParameterMatcher[];
  private readonly grpc: boolean;
  /** Length of the path portion that prefix_rewrite replaces; -1 for regex routes (the whole path). */
  readonly matchedLength: number;

  constructor(init: {
    kind: PathKind;
    text: string;
    caseSensitive: boolean;
    regex?: Re2Regex;
    headers: readonly HeaderMatcher[];
    queries: readonly QueryParameterMatcher[];
    grpc: boolean;
  }) {
    this.kind = init.kind;
    this.caseSensitive = init.caseSensitive || init.kind === 'safe_regex';
    this.text = this.caseSensitive ? init.text : asciiLower(init.text);
    this.regex = init.regex;
    this.headers = init.headers;
    this.queries = init.queries;
    this.grpc = init.grpc;
    this.matchedLength = init.kind === 'safe_regex' ? -1 : init.text.length;
  }

  /** Whether the request matches; `end` is where the path ends (before `?`, `#`, or `;` when path parameters are ignored). */
  matches(req: RouteRequest, path: string, end: number): boolean {
    // Every request but CONNECT (authority form) has a path: a pathless one matches only connect_matcher.
    if (this.kind === 'connect_matcher') {
      if (req.method !== 'CONNECT') return false;
    } else if (path.length === 0 || !this.matchesPath(path, end)) return false;
    if (this.grpc && !isGrpc(req)) return false;
    const headers = this.headers;
    for (let i = 0; i < headers.length; i++) if (!headers[i].matches(req)) return false;
    const queries = this.queries;
    for (let i = 0; i < queries.length; i++) if (!queries[i].matches(path)) return false;
    return true;
  }

  private matchesPath(path: string, end: number): boolean {
    const t = this.text;
    switch (this.kind) {
      case 'prefix':
        return end >= t.length && this.startsWith(path, t);
      case 'path':
        return end === t.length && this.startsWith(path, t);
      case 'path_separated_prefix':
        return (
          end >= t.length &&
          this.startsWith(path, t) &&
          (end === t.length || path.charCodeAt(t.length) === 47) /* / */
        );
      case 'safe_regex':
        return this.regex!.full.test(end === path.length ? path : path.slice(0, end));
      case 'connect_matcher':
        return false;
    }
  }

  private startsWith(path: string, t: string): boolean {
    if (!this.caseSensitive) return regionEqualsIgnoreCase(path, 0, t);
    // Comparing the last character inline first rejects most non-matching routes without a builtin call.
    const last = t.length - 1;
    return last < 0 || (path.charCodeAt(last) === t.charCodeAt(last) && path.startsWith(t));
  }
}

/** Envoy's gRPC request check: content-type is exactly application/grpc or starts with application/grpc+. */
function isGrpc(req: RouteRequest): boolean {
  const ct = req.headers['content-type'];
  if (typeof ct !== 'string' || !ct.startsWith('application/grpc')) return false;
  return ct.length === 16 || ct.charCodeAt(16) === 43; /* + */
}

const SEPARATED_PREFIX = /^[^?#]+[^?#/]$/;

export function compileRouteMatch(json: Json | undefined, path: string): RouteMatcher {
  if (json === undefined || json === null) throw new ConfigError(path, 'required');
  const obj = asObject(json, path);
  checkFields(obj, path, ROUTE_MATCH_FIELDS);
  const set = PATH_SPECIFIERS.filter((k) => obj[k] !== undefined && obj[k] !== null);
  if (set.length === 0)
    throw new ConfigError(
      path,
      'one of prefix, path, safe_regex, path_separated_prefix or connect_matcher is required',
    );
  if (set.length > 1)
    throw new ConfigError(
      fieldPath(path, set[1]),
      `conflicts with "${set[0]}": only one path specifier may be set`,
    );
  const kind = set[0];
  let text = '';
  let regex: Re2Regex | undefined;
  if (kind === 'safe_regex') {
    regex = compileRegexMatcher(obj.safe_regex, fieldPath(path, 'safe_regex'));
  } else if (kind === 'connect_matcher') {
    // ConnectMatcher has no fields; an object with any is refused as unknown.
    checkFields(asObject(obj.connect_matcher, fieldPath(path, 'connect_matcher')), fieldPath(path, kind), {
      supported: [],
      refused: {},
    });
  } else {
    text = optString(obj, kind, path) ?? '';
    if (kind === 'path_separated_prefix' && !SEPARATED_PREFIX.test(text)) {
      throw new ConfigError(
        fieldPath(path, kind),
        `must not contain "?" or "#" nor end with "/", got ${JSON.stringify(text)}`,
      );
    }
    text = toWire(text);
  }
  if (optObject(obj, 'grpc', path))
    checkFields(obj.grpc as Record<string, Json>, fieldPath(path, 'grpc'), { supported: [], refused: {} });
  return new RouteMatcher({
    kind,
    text,
    caseSensitive: optBool(obj, 'case_sensitive', path) ?? true,
    regex,
    headers: objectItems(obj, 'headers', path).map(({ item, path: p }) => compileHeaderMatcher(item, p)),
    queries: objectItems(obj, 'query_parameters', path).map(({ item, path: p }) =>
      compileQueryParameterMatcher(item, p),
    ),
    grpc: obj.grpc !== undefined && obj.grpc !== null,
  });
}
