import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JsonObject } from '../../core/json.ts';
import { compileRedirect, redirectHost } from './redirect.ts';
import { request } from './test-helpers.ts';
import type { RouteRequest } from './types.ts';

/** Redirect for a route matched by `prefix: "/old"` (matched length 4). */
function location(
  config: JsonObject,
  req: Partial<RouteRequest>,
  matchedLength = 4,
): { status: number; location: string } {
  return compileRedirect(config, 'route.redirect', matchedLength).redirect(request(req));
}

describe('redirect Location', () => {
  it('keeps scheme, host and path by default with 301', () => {
    assert.deepEqual(location({}, { authority: 'a.com', path: '/old/x?q=1' }), {
      status: 301,
      location: 'http://a.com/old/x?q=1',
    });
  });

  it('https_redirect switches the scheme and drops the http default port', () => {
    assert.equal(
      location({ https_redirect: true }, { authority: 'a.com:80', path: '/p' }).location,
      'https://a.com/p',
    );
    assert.equal(
      location({ https_redirect: true }, { authority: 'a.com:8080', path: '/p' }).location,
      'https://a.com:8080/p',
    );
    assert.equal(
      location({ scheme_redirect: 'http' }, { scheme: 'https', authority: 'a.com:443', path: '/p' }).location,
      'http://a.com/p',
    );
    assert.equal(
      location({ https_redirect: true }, { scheme: 'https', authority: 'a.com:443', path: '/p' }).location,
      'https://a.com:443/p',
      'same scheme keeps the port',
    );
  });

  it('host_redirect replaces the authority; port_redirect replaces the port', () => {
    assert.equal(
      location({ host_redirect: 'b.com' }, { authority: 'a.com:81', path: '/p' }).location,
      'http://b.com/p',
    );
    assert.equal(
      location({ port_redirect: 8443 }, { authority: 'a.com:81', path: '/p' }).location,
      'http://a.com:8443/p',
    );
    assert.equal(
      location({ port_redirect: 8443 }, { authority: '[::1]:81', path: '/p' }).location,
      'http://[::1]:8443/p',
    );
    assert.equal(
      location({ host_redirect: 'b.com', port_redirect: 9 }, { path: '/p' }).location,
      'http://b.com:9/p',
    );
  });

  it('path_redirect keeps the request query unless it has its own, which strip_query never removes', () => {
    assert.equal(
      location({ path_redirect: '/new-path-1' }, { path: '/old-path-1?bar=1' }).location,
      'http://example.com/new-path-1?bar=1',
    );
    assert.equal(
      location({ path_redirect: '/new-path-2', strip_query: true }, { path: '/old-path-2?bar=1' }).location,
      'http://example.com/new-path-2',
    );
    assert.equal(
      location({ path_redirect: '/new-path-3?foo=1', strip_query: true }, { path: '/old-path-3?bar=1' })
        .location,
      'http://example.com/new-path-3?foo=1',
    );
  });

  it('prefix_rewrite replaces the matched prefix; regex_rewrite rewrites the path and keeps the query', () => {
    assert.equal(
      location({ prefix_rewrite: '/new' }, { path: '/old/x?q=1' }).location,
      'http://example.com/new/x?q=1',
    );
    assert.equal(
      location({ prefix_rewrite: '/new', strip_query: true }, { path: '/old/x?q=1' }).location,
      'http://example.com/new/x',
    );
    const regex = { regex_rewrite: { pattern: { regex: '^/old/(\\w+)$' }, substitution: '/v2/\\1' } };
    assert.equal(location(regex, { path: '/old/abc?q=1' }).location, 'http://example.com/v2/abc?q=1');
    assert.equal(
      location({ prefix_rewrite: 'rel' }, { path: '/old' }).location,
      'http://example.com/rel',
      'a leading / is added',
    );
  });

  it('maps every response_code', () => {
    const codes: Record<string, number> = {
      MOVED_PERMANENTLY: 301,
      FOUND: 302,
      SEE_OTHER: 303,
      TEMPORARY_REDIRECT: 307,
      PERMANENT_REDIRECT: 308,
    };
    for (const [name, status] of Object.entries(codes))
      assert.equal(location({ response_code: name }, {}).status, status);
  });

  it('rejects conflicting or invalid settings with exact paths', () => {
    assert.throws(
      () => compileRedirect({ https_redirect: true, scheme_redirect: 'ftp' }, 'r.redirect', 0),
      /^ConfigError: r\.redirect\.scheme_redirect: conflicts/,
    );
    assert.throws(
      () => compileRedirect({ path_redirect: '/a', prefix_rewrite: '/b' }, 'r.redirect', 0),
      /^ConfigError: r\.redirect\.prefix_rewrite: conflicts with "path_redirect"/,
    );
    assert.throws(
      () => compileRedirect({ response_code: 'GONE' }, 'r.redirect', 0),
      /^ConfigError: r\.redirect\.response_code: unknown value "GONE"$/,
    );
    assert.throws(
      () => compileRedirect({ host_redirect: 'a b' }, 'r.redirect', 0),
      /r\.redirect\.host_redirect: must not contain/,
    );
    assert.throws(
      () => compileRedirect({ bogus: 1 }, 'r.redirect', 0),
      /^ConfigError: r\.redirect\.bogus: unknown field$/,
    );
  });
});

describe('redirectHost (Envoy processRequestHost)', () => {
  it('strips only when the port is replaced or the old scheme default port is left behind', () => {
    assert.equal(redirectHost('a.com:80', 'http', 'https', ''), 'a.com');
    assert.equal(redirectHost('a.com:443', 'http', 'https', ''), 'a.com:443');
    assert.equal(redirectHost('a.com:80', 'http', 'http', ''), 'a.com:80');
    assert.equal(redirectHost('a.com:1', 'http', 'http', ':2'), 'a.com');
    assert.equal(redirectHost('[::1]', 'http', 'https', ':2'), '[::1]');
    assert.equal(redirectHost('', 'http', 'https', ''), '');
  });
});
