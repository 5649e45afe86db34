import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { JsonObject } from '../../core/json.ts';
import { compileRouteConfiguration } from './compile.ts';
import { compileRouteMatch } from './route-matcher.ts';
import { pathEnd } from './strings.ts';
import { request } from './test-helpers.ts';
import type { RouteRequest } from './types.ts';

function matches(match: JsonObject, req: Partial<RouteRequest>): boolean {
  const m = compileRouteMatch(match, 'match');
  const r = request(req);
  return m.matches(r, r.path, pathEnd(r.path));
}

describe('path specifiers', () => {
  it('prefix matches the path before the query string and fragment', () => {
    assert.equal(matches({ prefix: '/api' }, { path: '/api/v1' }), true);
    assert.equal(matches({ prefix: '/api' }, { path: '/apix' }), true);
    assert.equal(matches({ prefix: '/api' }, { path: '/ap?i' }), false);
    assert.equal(
      matches({ prefix: '/api?x' }, { path: '/api?x=1' }),
      false,
      'the query is not part of the matched path',
    );
    assert.equal(matches({ prefix: '' }, { path: '/anything' }), true);
  });

  it('path matches exactly, ignoring the query', () => {
    assert.equal(matches({ path: '/a' }, { path: '/a' }), true);
    assert.equal(matches({ path: '/a' }, { path: '/a?b=c' }), true);
    assert.equal(matches({ path: '/a' }, { path: '/a#frag' }), true);
    assert.equal(matches({ path: '/a' }, { path: '/a/' }), false);
    assert.equal(matches({ path: '/a' }, { path: '/ab' }), false);
  });

  it('path_separated_prefix matches the prefix itself or the prefix followed by /', () => {
    const m = { path_separated_prefix: '/api' };
    for (const p of ['/api', '/api/', '/api/x', '/api?x', '/api?x=/y', '/api#f'])
      assert.equal(matches(m, { path: p }), true, p);
    for (const p of ['/apix', '/ap', '/api-v2', '/API']) assert.equal(matches(m, { path: p }), false, p);
  });

  it('path_separated_prefix rejects values with ? or # or a trailing /', () => {
    for (const bad of ['/api/', '/a?b', '/a#b', '/']) {
      assert.throws(
        () => compileRouteMatch({ path_separated_prefix: bad }, 'r.match'),
        /^ConfigError: r\.match\.path_separated_prefix: must not contain/,
      );
    }
  });

  it('case_sensitive: false folds ASCII case for prefix, path and path_separated_prefix', () => {
    assert.equal(matches({ prefix: '/API', case_sensitive: false }, { path: '/api/x' }), true);
    assert.equal(matches({ path: '/Api', case_sensitive: false }, { path: '/aPI' }), true);
    assert.equal(matches({ path_separated_prefix: '/Api', case_sensitive: false }, { path: '/API/x' }), true);
    assert.equal(matches({ prefix: '/API' }, { path: '/api/x' }), false, 'case-sensitive by default');
  });

  it('safe_regex must match the whole path without the query; case_sensitive does not apply', () => {
    const m = { safe_regex: { regex: '/products/\\d+' } };
    assert.equal(matches(m, { path: '/products/123' }), true);
    assert.equal(matches(m, { path: '/products/123?x=1' }), true);
    assert.equal(matches(m, { path: '/products/123/x' }), false);
    assert.equal(matches({ safe_regex: { regex: '/A' }, case_sensitive: false }, { path: '/a' }), false);
  });

  it('requires exactly one path specifier', () => {
    assert.throws(
      () => compileRouteMatch({}, 'r.match'),
      /^ConfigError: r\.match: one of prefix, path, safe_regex, path_separated_prefix or connect_matcher is required$/,
    );
    assert.throws(
      () => compileRouteMatch({ prefix: '/', path: '/' }, 'r.match'),
      /^ConfigError: r\.match\.path: conflicts with "prefix"/,
    );
    assert.throws(
      () => compileRouteMatch({ prefix: '/', connect_matcher: {} }, 'r.match'),
      /^ConfigError: r\.match\.connect_matcher: conflicts with "prefix"/,
    );
    assert.throws(
      () => compileRouteMatch({ connect_matcher: { x: 1 } }, 'r.match'),
      /^ConfigError: r\.match\.connect_matcher\.x: unknown field$/,
    );
    assert.throws(
      () =>
        compileRouteMatch({ prefix: '/', runtime_fraction: { default_value: { numerator: 1 } } }, 'r.match'),
      /r\.match\.runtime_fraction: not supported by Weft/,
    );
  });
});

describe('header matchers', () => {
  const h = (matcher: JsonObject, headers: IncomingHttpHeaders, extra: Partial<RouteRequest> = {}): boolean =>
    matches({ prefix: '/', headers: [matcher] }, { headers, ...extra });

  it('supports every value specifier', () => {
    assert.equal(h({ name: 'x', exact_match: 'a' }, { x: 'a' }), true);
    assert.equal(h({ name: 'x', exact_match: 'a' }, { x: 'ab' }), false);
    assert.equal(
      h({ name: 'x', exact_match: '' }, { x: 'anything' }),
      true,
      'a deprecated empty exact_match matches any value',
    );
    assert.equal(h({ name: 'x', prefix_match: 'ab' }, { x: 'abc' }), true);
    assert.equal(h({ name: 'x', suffix_match: 'bc' }, { x: 'abc' }), true);
    assert.equal(h({ name: 'x', contains_match: 'b' }, { x: 'abc' }), true);
    assert.equal(h({ name: 'x', safe_regex_match: { regex: '\\d{3}' } }, { x: '123' }), true);
    assert.equal(h({ name: 'x', safe_regex_match: { regex: '\\d{3}' } }, { x: '1234' }), false);
    assert.equal(h({ name: 'x', string_match: { exact: 'ABC', ignore_case: true } }, { x: 'abc' }), true);
    assert.equal(h({ name: 'x', string_match: { prefix: 'AB', ignore_case: true } }, { x: 'abc' }), true);
    assert.equal(h({ name: 'x', string_match: { suffix: 'BC', ignore_case: true } }, { x: 'abc' }), true);
    assert.equal(h({ name: 'x', string_match: { contains: 'B', ignore_case: true } }, { x: 'abc' }), true);
    assert.equal(h({ name: 'x', string_match: { contains: 'B' } }, { x: 'abc' }), false);
    assert.equal(h({ name: 'x', string_match: { safe_regex: { regex: 'a.c' } } }, { x: 'abc' }), true);
  });

  it('range_match is [start, end) over base-10 integers, as absl::SimpleAtoi parses them', () => {
    const r = { name: 'v', range_match: { start: -10, end: 0 } };
    assert.equal(h(r, { v: '-1' }), true);
    assert.equal(h(r, { v: '-10' }), true);
    assert.equal(h(r, { v: '0' }), false);
    assert.equal(h(r, { v: ' -5 ' }), true);
    assert.equal(h(r, { v: '+1' }), false);
    for (const v of ['somestring', '10.9', '-1somestring', '', '-']) assert.equal(h(r, { v }), false, v);
    assert.equal(
      h({ name: 'v', range_match: { start: 0, end: 10 } }, { v: '99999999999999999999' }),
      false,
      'out of int64 range',
    );
  });

  it('treats no specifier as present_match: true; present_match: false matches absence', () => {
    assert.equal(h({ name: 'x' }, { x: '' }), true);
    assert.equal(h({ name: 'x' }, {}), false);
    assert.equal(h({ name: 'x', present_match: false }, {}), true);
    assert.equal(h({ name: 'x', present_match: false }, { x: 'v' }), false);
    assert.equal(h({ name: 'x', present_match: true, invert_match: true }, {}), true);
  });

  it('inverts value matches but never matches a missing header (unless treat_missing_header_as_empty)', () => {
    assert.equal(h({ name: 'x', exact_match: 'a', invert_match: true }, { x: 'b' }), true);
    assert.equal(h({ name: 'x', exact_match: 'a', invert_match: true }, { x: 'a' }), false);
    assert.equal(h({ name: 'x', exact_match: 'a', invert_match: true }, {}), false);
    assert.equal(
      h(
        {
          name: 'x',
          range_match: { start: 0, end: 10 },
          invert_match: true,
          treat_missing_header_as_empty: true,
        },
        {},
      ),
      true,
    );
    assert.equal(
      h({ name: 'x', safe_regex_match: { regex: '^$' }, treat_missing_header_as_empty: true }, {}),
      true,
    );
    assert.equal(h({ name: 'x', safe_regex_match: { regex: '^$' } }, {}), false);
  });

  it('joins repeated headers with "," before matching', () => {
    assert.equal(h({ name: 'x', exact_match: 'a,b' }, { x: ['a', 'b'] }), true);
    assert.equal(h({ name: 'x', exact_match: 'a' }, { x: ['a'] }), true);
  });

  it('reads pseudo-headers from the request line; host is not a header (Envoy uses :authority)', () => {
    assert.equal(h({ name: ':method', string_match: { exact: 'POST' } }, {}, { method: 'POST' }), true);
    assert.equal(h({ name: ':authority', exact_match: 'a.com:8080' }, {}, { authority: 'a.com:8080' }), true);
    assert.equal(h({ name: ':path', prefix_match: '/x?' }, {}, { path: '/x?y' }), true);
    assert.equal(h({ name: ':scheme', exact_match: 'https' }, {}, { scheme: 'https' }), true);
    assert.equal(h({ name: 'host' }, { host: 'a.com' }), false);
    assert.equal(
      h({ name: 'Content-Type', exact_match: 'text/plain' }, { 'content-type': 'text/plain' }),
      true,
      'names are case-insensitive',
    );
  });

  it('requires every header matcher to match', () => {
    const m = { prefix: '/', headers: [{ name: 'a' }, { name: 'b' }] };
    assert.equal(matches(m, { headers: { a: '1', b: '2' } }), true);
    assert.equal(matches(m, { headers: { a: '1' } }), false);
  });

  it('names the exact path of a bad header matcher', () => {
    assert.throws(
      () =>
        compileRouteMatch(
          { prefix: '/', headers: [{ name: 'a' }, { name: 'b', prefix_match: '' }] },
          'r.match',
        ),
      /^ConfigError: r\.match\.headers\[1\]\.prefix_match: must not be empty/,
    );
    assert.throws(
      () => compileRouteMatch({ prefix: '/', headers: [{ exact_match: 'x' }] }, 'r.match'),
      /^ConfigError: r\.match\.headers\[0\]\.name: required$/,
    );
    assert.throws(
      () =>
        compileRouteMatch(
          { prefix: '/', headers: [{ name: 'a', string_match: { custom: { name: 'x' } } }] },
          'r.match',
        ),
      /^ConfigError: r\.match\.headers\[0\]\.string_match\.custom: not supported by Weft$/,
    );
  });
});

describe('query parameter matchers', () => {
  const q = (matcher: JsonObject, path: string): boolean =>
    matches({ prefix: '/', query_parameters: [matcher] }, { path });

  it('matches a string_match against the first value, without percent-decoding', () => {
    assert.equal(q({ name: 'a', string_match: { exact: '1' } }, '/p?a=1'), true);
    assert.equal(q({ name: 'a', string_match: { exact: '1' } }, '/p?b=2&a=1'), true);
    assert.equal(
      q({ name: 'a', string_match: { exact: '1' } }, '/p?a=2&a=1'),
      false,
      'only the first value counts',
    );
    assert.equal(q({ name: 'a', string_match: { exact: 'x y' } }, '/p?a=x%20y'), false);
    assert.equal(q({ name: 'a', string_match: { exact: 'x%20y' } }, '/p?a=x%20y'), true);
    assert.equal(q({ name: 'a', string_match: { prefix: 'X', ignore_case: true } }, '/p?a=xyz&b=1'), true);
    assert.equal(
      q({ name: 'a', string_match: { exact: '' } }, '/p?a'),
      true,
      'a key without = has the empty value',
    );
    assert.equal(q({ name: 'a', string_match: { exact: '1' } }, '/p?ab=1'), false);
    assert.equal(q({ name: 'a', string_match: { exact: '1' } }, '/p'), false);
  });

  it('present_match checks presence or absence', () => {
    assert.equal(q({ name: 'debug', present_match: true }, '/p?debug'), true);
    assert.equal(q({ name: 'debug', present_match: true }, '/p?x=debug'), false);
    assert.equal(q({ name: 'debug', present_match: false }, '/p?x=1'), true);
    assert.equal(q({ name: 'debug', present_match: false }, '/p?debug=0'), false);
    assert.equal(q({ name: 'debug' }, '/p?debug=0'), true, 'no specifier is a presence check');
  });
});

describe('grpc match', () => {
  it('matches application/grpc and application/grpc+*, not grpc-web', () => {
    const m = { prefix: '/', grpc: {} };
    assert.equal(matches(m, { headers: { 'content-type': 'application/grpc' } }), true);
    assert.equal(matches(m, { headers: { 'content-type': 'application/grpc+proto' } }), true);
    assert.equal(matches(m, { headers: { 'content-type': 'application/grpc-web' } }), false);
    assert.equal(matches(m, { headers: {} }), false);
  });
});

// ---- property test: the compiled matcher agrees with an obviously-correct linear reference ----

interface RefHeader {
  name: string;
  kind: 'exact_match' | 'prefix_match' | 'suffix_match' | 'contains_match' | 'present';
  value: string;
  invert: boolean;
}

interface RefRoute {
  kind: 'prefix' | 'path' | 'path_separated_prefix';
  text: string;
  caseSensitive: boolean | undefined;
  headers: RefHeader[];
}

function refPath(route: RefRoute, fullPath: string): boolean {
  let path = fullPath;
  for (const sep of ['?', '#']) {
    const i = path.indexOf(sep);
    if (i >= 0) path = path.slice(0, i);
  }
  const fold = route.caseSensitive === false;
  const p = fold ? path.toLowerCase() : path;
  const t = fold ? route.text.toLowerCase() : route.text;
  if (route.kind === 'prefix') return p.startsWith(t);
  if (route.kind === 'path') return p === t;
  return p === t || p.startsWith(`${t}/`);
}

function refHeader(h: RefHeader, headers: IncomingHttpHeaders): boolean {
  const raw = headers[h.name];
  const value = raw === undefined ? undefined : Array.isArray(raw) ? raw.join(',') : raw;
  if (h.kind === 'present') return (value !== undefined) !== h.invert;
  if (value === undefined) return false;
  const ok =
    h.kind === 'exact_match'
      ? value === h.value
      : h.kind === 'prefix_match'
        ? value.startsWith(h.value)
        : h.kind === 'suffix_match'
          ? value.endsWith(h.value)
          : value.includes(h.value);
  return ok !== h.invert;
}

function refMatch(routes: RefRoute[], req: RouteRequest): number | null {
  for (let i = 0; i < routes.length; i++) {
    if (refPath(routes[i], req.path) && routes[i].headers.every((h) => refHeader(h, req.headers))) return i;
  }
  return null;
}

function toConfig(routes: RefRoute[]): JsonObject {
  return {
    name: 'prop',
    virtual_hosts: [
      {
        name: 'all',
        domains: ['*'],
        routes: routes.map((r, i) => ({
          match: {
            [r.kind]: r.text,
            ...(r.caseSensitive === undefined ? {} : { case_sensitive: r.caseSensitive }),
            headers: r.headers.map((h) =>
              h.kind === 'present'
                ? { name: h.name, invert_match: h.invert }
                : { name: h.name, [h.kind]: h.value, invert_match: h.invert },
            ),
          },
          route: { cluster: `c${i}` },
        })),
      },
    ],
  };
}

const segment = fc.string({ unit: fc.constantFrom('a', 'A', 'b', '/'), minLength: 0, maxLength: 4 });
const headerName = fc.constantFrom('x-a', 'x-b');
const headerValue = fc.string({ unit: fc.constantFrom('a', 'A', 'b', ','), minLength: 1, maxLength: 3 });

const refRoute: fc.Arbitrary<RefRoute> = fc
  .record({
    kind: fc.constantFrom('prefix' as const, 'path' as const, 'path_separated_prefix' as const),
    seg: segment,
    last: fc.constantFrom('a', 'A', 'b'),
    caseSensitive: fc.option(fc.boolean(), { nil: undefined }),
    headers: fc.array(
      fc.record({
        name: headerName,
        kind: fc.constantFrom(
          'exact_match' as const,
          'prefix_match' as const,
          'suffix_match' as const,
          'contains_match' as const,
          'present' as const,
        ),
        value: headerValue,
        invert: fc.boolean(),
      }),
      { maxLength: 2 },
    ),
  })
  .map(({ kind, seg, last, caseSensitive, headers }) => ({
    kind,
    // path_separated_prefix must not end with "/"; the others may be anything starting with "/".
    text: kind === 'path_separated_prefix' ? `/${seg}${last}` : `/${seg}`,
    caseSensitive,
    headers,
  }));

const requestArb: fc.Arbitrary<RouteRequest> = fc
  .record({
    path: fc.string({ unit: fc.constantFrom('a', 'A', 'b', '/', '?', '#', '='), minLength: 0, maxLength: 8 }),
    headers: fc.dictionary(
      headerName,
      fc.oneof(headerValue, fc.array(headerValue, { minLength: 1, maxLength: 2 })),
      { maxKeys: 2 },
    ),
  })
  .map(({ path, headers }) => request({ path: `/${path}`, headers }));

describe('property: compiled matcher = reference linear matcher', () => {
  it('picks the same first route for prefix/path/path_separated_prefix, case sensitivity and headers', () => {
    fc.assert(
      fc.property(
        fc.array(refRoute, { minLength: 1, maxLength: 6 }),
        fc.array(requestArb, { minLength: 1, maxLength: 10 }),
        (routes, requests) => {
          const table = compileRouteConfiguration(toConfig(routes), 'route_config');
          for (const req of requests) {
            const got = table.match(req);
            const want = refMatch(routes, req);
            const gotIndex =
              got === null
                ? null
                : Number(
                    (got.route.action as { pickCluster(r: number): { cluster: string } })
                      .pickCluster(0)
                      .cluster.slice(1),
                  );
            assert.equal(gotIndex, want, `${req.path} ${JSON.stringify(req.headers)}`);
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('connect_matcher', () => {
  it('matches only CONNECT requests, which match no path specifier', () => {
    const connect = { method: 'CONNECT', path: '', authority: 'reviews:9080' };
    assert.equal(matches({ connect_matcher: {} }, connect), true);
    assert.equal(matches({ connect_matcher: {} }, { method: 'GET', path: '/' }), false);
    assert.equal(matches({ prefix: '' }, connect), false, 'a pathless request matches no prefix');
    assert.equal(matches({ prefix: '/' }, connect), false);
    assert.equal(matches({ safe_regex: { regex: '.*' } }, connect), false);
  });

  it('still applies header matchers', () => {
    const match = { connect_matcher: {}, headers: [{ name: 'x-tenant', exact_match: 'a' }] };
    const connect = { method: 'CONNECT', path: '' };
    assert.equal(matches(match, { ...connect, headers: { 'x-tenant': 'a' } }), true);
    assert.equal(matches(match, { ...connect, headers: { 'x-tenant': 'b' } }), false);
  });
});
