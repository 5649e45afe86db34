import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../../core/errors.ts';
import type { Json, JsonObject } from '../../core/json.ts';
import { compileRouteConfiguration } from './compile.ts';
import { request } from './test-helpers.ts';
import type {
  DirectResponseAction,
  ForwardAction,
  HeaderMap,
  MatchedRoute,
  RouteRequest,
  RouteTable,
} from './types.ts';

function table(config: JsonObject): RouteTable {
  return compileRouteConfiguration(config, 'route_config');
}

/** One catch-all virtual host with the given routes. */
function single(routes: Json[], extra: JsonObject = {}, vhostExtra: JsonObject = {}): RouteTable {
  return table({
    name: 'rc',
    virtual_hosts: [{ name: 'vh', domains: ['*'], routes, ...vhostExtra }],
    ...extra,
  });
}

function forward(m: MatchedRoute | null): ForwardAction {
  assert.ok(m, 'expected a route');
  assert.equal(m.route.action.kind, 'route');
  return m.route.action;
}

function fails(config: JsonObject, message: string): void {
  assert.throws(
    () => table(config),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.message, message);
      return true;
    },
  );
}

describe('compileRouteConfiguration: selection', () => {
  const rt = table({
    name: 'main',
    virtual_hosts: [
      {
        name: 'api',
        domains: ['api.example.com', 'api.example.com:8080'],
        routes: [
          { name: 'users', match: { prefix: '/users' }, route: { cluster: 'users' } },
          { name: 'rest', match: { prefix: '/' }, route: { cluster: 'api' } },
        ],
      },
      {
        name: 'fallback',
        domains: ['*'],
        routes: [{ match: { path: '/health' }, direct_response: { status: 200 } }],
      },
    ],
  });

  it('selects the virtual host by authority, then the first matching route', () => {
    const m = rt.match(request({ authority: 'API.example.com', path: '/users/1' }));
    assert.equal(m?.virtualHostName, 'api');
    assert.equal(m?.route.name, 'users');
    assert.equal(forward(m).pickCluster(0.5).cluster, 'users');
    assert.equal(rt.match(request({ authority: 'api.example.com:8080', path: '/x' }))?.route.name, 'rest');
    assert.equal(rt.match(request({ authority: 'other', path: '/health' }))?.virtualHostName, 'fallback');
    assert.equal(rt.name, 'main');
  });

  it('returns null when no route of the selected virtual host matches (404 NR)', () => {
    assert.equal(rt.match(request({ authority: 'other', path: '/nope' })), null);
    assert.equal(
      table({
        virtual_hosts: [
          { name: 'a', domains: ['a.com'], routes: [{ match: { prefix: '/' }, route: { cluster: 'a' } }] },
        ],
      }).match(request()),
      null,
    );
  });

  it('returns the same immutable MatchedRoute object for every match of a route', () => {
    const a = rt.match(request({ authority: 'api.example.com', path: '/users/1' }));
    const b = rt.match(request({ authority: 'api.example.com', path: '/users/2' }));
    assert.equal(a, b);
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a!.requestHeaders) && Object.isFrozen(a!.route));
  });

  it('ignores path parameters when asked to', () => {
    const routes = [{ match: { path: '/a' }, route: { cluster: 'a' } }];
    assert.equal(single(routes).match(request({ path: '/a;v=1' })), null);
    assert.notEqual(
      single(routes, { ignore_path_parameters_in_path_matching: true }).match(request({ path: '/a;v=1?x' })),
      null,
    );
  });

  it('strips the authority port only with ignore_port_in_host_matching', () => {
    const cfg = (ignore: boolean): JsonObject => ({
      ignore_port_in_host_matching: ignore,
      virtual_hosts: [
        { name: 'a', domains: ['a.com'], routes: [{ match: { prefix: '/' }, route: { cluster: 'a' } }] },
      ],
    });
    assert.equal(table(cfg(false)).match(request({ authority: 'a.com:8080' })), null);
    assert.equal(table(cfg(true)).match(request({ authority: 'a.com:8080' }))?.virtualHostName, 'a');
  });
});

describe('route action', () => {
  it('defaults: 15 s timeout, no idle timeout, no rewrites, no hash, no upgrade overrides', () => {
    const a = forward(single([{ match: { prefix: '/' }, route: { cluster: 'c' } }]).match(request()));
    assert.equal(a.timeoutMs, 15_000);
    assert.equal(a.idleTimeoutMs, undefined);
    assert.equal(a.rewritePath('/x?y'), '/x?y');
    assert.equal(a.hostRewriteLiteral, undefined);
    assert.equal(a.autoHostRewrite, false);
    assert.equal(a.computeHash(request()), undefined);
    assert.equal(a.upgradeOverrides.size, 0);
  });

  it('reads timeouts (0 disables), host rewrites and upgrade overrides', () => {
    const a = forward(
      single([
        {
          match: { prefix: '/' },
          route: {
            cluster: 'c',
            timeout: '0s',
            idle_timeout: '2.5s',
            host_rewrite_literal: 'internal.svc',
            upgrade_configs: [{ upgrade_type: 'WebSocket' }, { upgrade_type: 'h2c', enabled: false }],
          },
        },
      ]).match(request()),
    );
    assert.equal(a.timeoutMs, 0);
    assert.equal(a.idleTimeoutMs, 2500);
    assert.equal(a.hostRewriteLiteral, 'internal.svc');
    assert.deepEqual(
      [...a.upgradeOverrides],
      [
        ['websocket', true],
        ['h2c', false],
      ],
    );
    assert.equal(
      forward(
        single([{ match: { prefix: '/' }, route: { cluster: 'c', auto_host_rewrite: true } }]).match(
          request(),
        ),
      ).autoHostRewrite,
      true,
    );
  });

  it('prefix_rewrite replaces what the route matched', () => {
    const rt = single([
      { match: { prefix: '/api/' }, route: { cluster: 'c', prefix_rewrite: '/' } },
      { match: { path: '/exact' }, route: { cluster: 'c', prefix_rewrite: '/other' } },
      { match: { path_separated_prefix: '/sep' }, route: { cluster: 'c', prefix_rewrite: '/s' } },
      { match: { safe_regex: { regex: '/re/\\d+' } }, route: { cluster: 'c', prefix_rewrite: '/whole' } },
      { match: { prefix: '/CI', case_sensitive: false }, route: { cluster: 'c', prefix_rewrite: '/ci' } },
    ]);
    const rw = (path: string): string => forward(rt.match(request({ path }))).rewritePath(path);
    assert.equal(rw('/api/v1/x?q=1'), '/v1/x?q=1');
    assert.equal(rw('/exact?q'), '/other?q');
    assert.equal(rw('/sep/a'), '/s/a');
    assert.equal(rw('/re/42?q=1'), '/whole?q=1');
    assert.equal(rw('/ci/x'), '/ci/x');
    assert.equal(rw('/Ci/x'), '/ci/x');
  });

  it('regex_rewrite rewrites the path before the query and leaves it alone when the result is empty', () => {
    const rt = single([
      {
        match: { prefix: '/service/' },
        route: {
          cluster: 'c',
          regex_rewrite: { pattern: { regex: '^/service/([^/]+)(/.*)$' }, substitution: '\\2/instance/\\1' },
        },
      },
      {
        match: { prefix: '/' },
        route: { cluster: 'c', regex_rewrite: { pattern: { regex: '.*' }, substitution: '' } },
      },
    ]);
    assert.equal(
      forward(rt.match(request({ path: '/service/foo/v1/api?x=1' }))).rewritePath('/service/foo/v1/api?x=1'),
      '/v1/api/instance/foo?x=1',
    );
    assert.equal(forward(rt.match(request({ path: '/keep?me' }))).rewritePath('/keep?me'), '/keep?me');
  });

  it('hash_policy is evaluated through computeHash', () => {
    const a = forward(
      single([
        {
          match: { prefix: '/' },
          route: { cluster: 'c', hash_policy: [{ header: { header_name: 'x-user' } }] },
        },
      ]).match(request()),
    );
    const one = a.computeHash(request({ headers: { 'x-user': 'u1' } }));
    assert.ok(one);
    assert.deepEqual(a.computeHash(request({ headers: { 'x-user': 'u1' } })), one);
  });
});

describe('weighted clusters', () => {
  const weighted = (clusters: Json[], extra: JsonObject = {}): ForwardAction =>
    forward(
      single([{ match: { prefix: '/' }, route: { weighted_clusters: { clusters, ...extra } } }]).match(
        request(),
      ),
    );

  it('picks exactly in proportion to the weights for evenly spaced randoms', () => {
    const a = weighted([
      { name: 'a', weight: 1 },
      { name: 'zero', weight: 0 },
      { name: 'b', weight: 3 },
      { name: 'c', weight: 6 },
    ]);
    const n = 10_000;
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const c = a.pickCluster((i + 0.5) / n).cluster;
      counts[c] = (counts[c] ?? 0) + 1;
    }
    assert.deepEqual(counts, { a: 1000, b: 3000, c: 6000 });
  });

  it('maps the interval edges exactly and tolerates random = 1 - ε', () => {
    const a = weighted([
      { name: 'a', weight: 1 },
      { name: 'b', weight: 1 },
    ]);
    assert.equal(a.pickCluster(0).cluster, 'a');
    assert.equal(a.pickCluster(0.4999999).cluster, 'a');
    assert.equal(a.pickCluster(0.5).cluster, 'b');
    assert.equal(a.pickCluster(0.9999999999999999).cluster, 'b');
  });

  it('returns cached picks carrying the cluster-level header mutations', () => {
    const a = weighted([
      {
        name: 'a',
        weight: 1,
        request_headers_to_add: [{ header: { key: 'x-canary', value: 'no' } }],
        response_headers_to_remove: ['x-internal'],
      },
      { name: 'b', weight: 1 },
    ]);
    const pick = a.pickCluster(0.1);
    assert.equal(pick, a.pickCluster(0.2));
    const headers: HeaderMap = {};
    pick.requestHeaders!.apply(headers, request());
    assert.deepEqual(headers, { 'x-canary': 'no' });
    assert.ok(pick.responseHeaders);
    assert.equal(a.pickCluster(0.9).requestHeaders, undefined);
  });

  it('validates weights and total_weight', () => {
    assert.equal(
      weighted(
        [
          { name: 'a', weight: 2 },
          { name: 'b', weight: 3 },
        ],
        { total_weight: 5 },
      ).pickCluster(0.5).cluster,
      'b',
    );
    const base = (wc: JsonObject): JsonObject => ({
      virtual_hosts: [
        {
          name: 'vh',
          domains: ['*'],
          routes: [{ match: { prefix: '/' }, route: { weighted_clusters: wc } }],
        },
      ],
    });
    const p = 'route_config.virtual_hosts[0].routes[0].route.weighted_clusters';
    fails(
      base({ clusters: [{ name: 'a', weight: 2 }], total_weight: 3 }),
      `${p}.total_weight: is 3 but the weights add up to 2`,
    );
    fails(
      base({ clusters: [{ name: 'a', weight: 0 }] }),
      `${p}.clusters: the sum of the weights must be greater than 0`,
    );
    fails(base({ clusters: [] }), `${p}.clusters: at least one cluster is required`);
    fails(base({ clusters: [{ weight: 1 }] }), `${p}.clusters[0].name: required`);
    fails(
      base({ clusters: [{ name: 'a', weight: 1, cluster_header: 'x' }] }),
      `${p}.clusters[0].cluster_header: not supported by Weft`,
    );
    fails(
      base({ clusters: [{ name: 'a', weight: 1 }], runtime_key_prefix: 'rt' }),
      `${p}.runtime_key_prefix: not supported by Weft`,
    );
  });
});

describe('direct responses', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-router-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const direct = (body: Json | undefined, extra: JsonObject = {}): DirectResponseAction => {
    const m = single(
      [{ match: { prefix: '/' }, direct_response: { status: 503, ...(body === undefined ? {} : { body }) } }],
      extra,
    ).match(request());
    assert.equal(m?.route.action.kind, 'direct_response');
    return m.route.action;
  };

  it('serves inline strings, inline bytes, files read at compile time, or no body', () => {
    assert.equal(direct({ inline_string: 'héllo' }).body?.toString('utf8'), 'héllo');
    assert.deepEqual(
      direct({ inline_bytes: Buffer.from([0, 1, 2]).toString('base64') }).body,
      Buffer.from([0, 1, 2]),
    );
    const file = join(dir, 'body.txt');
    writeFileSync(file, 'from file');
    const action = direct({ filename: file });
    writeFileSync(file, 'changed later');
    assert.equal(action.body?.toString(), 'from file');
    assert.equal(direct(undefined).body, undefined);
    assert.equal(direct(undefined).status, 503);
  });

  it('enforces max_direct_response_body_size_bytes (4096 by default) and reports unreadable files', () => {
    const p = 'route_config.virtual_hosts[0].routes[0].direct_response';
    const cfg = (body: JsonObject, extra: JsonObject = {}): JsonObject => ({
      virtual_hosts: [
        {
          name: 'vh',
          domains: ['*'],
          routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body } }],
        },
      ],
      ...extra,
    });
    fails(
      cfg({ inline_string: 'x'.repeat(4097) }),
      `${p}.body: is 4097 bytes, above max_direct_response_body_size_bytes (4096)`,
    );
    assert.equal(
      direct({ inline_string: 'x'.repeat(5000) }, { max_direct_response_body_size_bytes: 5000 }).body?.length,
      5000,
    );
    assert.throws(
      () => table(cfg({ filename: join(dir, 'missing') })),
      (err: unknown) => err instanceof ConfigError && err.path === `${p}.body.filename`,
    );
    fails(cfg({ environment_variable: 'HOME' }), `${p}.body.environment_variable: not supported by Weft`);
  });

  it('requires a valid status', () => {
    fails(
      {
        virtual_hosts: [
          {
            name: 'vh',
            domains: ['*'],
            routes: [{ match: { prefix: '/' }, direct_response: { status: 99 } }],
          },
        ],
      },
      'route_config.virtual_hosts[0].routes[0].direct_response.status: must be an HTTP status from 200 to 599, got 99',
    );
  });
});

describe('header mutation levels', () => {
  const cfg = (mostSpecificWins: boolean): JsonObject => ({
    most_specific_header_mutations_wins: mostSpecificWins,
    request_headers_to_add: [
      { header: { key: 'x-level', value: 'config' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    ],
    response_headers_to_add: [
      { header: { key: 'x-level', value: 'config' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    ],
    virtual_hosts: [
      {
        name: 'vh',
        domains: ['*'],
        request_headers_to_add: [
          { header: { key: 'x-level', value: 'vhost' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
        ],
        routes: [
          {
            match: { prefix: '/' },
            request_headers_to_add: [
              { header: { key: 'x-level', value: 'route' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
            ],
            route: { cluster: 'c' },
          },
        ],
      },
    ],
  });

  const applyAll = (
    m: MatchedRoute,
    which: 'requestHeaders' | 'responseHeaders',
    req: RouteRequest,
  ): HeaderMap => {
    const headers: HeaderMap = {};
    for (const mutation of m[which]) mutation.apply(headers, req);
    return headers;
  };

  it('lists mutations route → virtual host → route configuration, so the route configuration wins by default', () => {
    const m = table(cfg(false)).match(request())!;
    assert.equal(m.requestHeaders.length, 3);
    assert.equal(m.responseHeaders.length, 1, 'levels without mutations are left out');
    assert.deepEqual(applyAll(m, 'requestHeaders', request()), { 'x-level': 'config' });
  });

  it('reverses the order with most_specific_header_mutations_wins, so the route wins', () => {
    const m = table(cfg(true)).match(request())!;
    assert.deepEqual(applyAll(m, 'requestHeaders', request()), { 'x-level': 'route' });
  });
});

describe('config errors name exact paths', () => {
  const route = (r: JsonObject): JsonObject => ({
    virtual_hosts: [
      {
        name: 'vh',
        domains: ['*'],
        routes: [
          { match: { prefix: '/a' }, route: { cluster: 'a' } },
          { match: { prefix: '/b' }, route: { cluster: 'b' } },
          r,
        ],
      },
    ],
  });
  const r2 = 'route_config.virtual_hosts[0].routes[2]';

  it('refuses unimplemented route action, route, virtual host and configuration fields', () => {
    fails(
      route({ match: { prefix: '/' }, route: { cluster: 'c', hedge_policy: { initial_requests: 2 } } }),
      `${r2}.route.hedge_policy: not supported by Weft`,
    );
    fails(
      route({ match: { prefix: '/' }, route: { cluster: 'c', cors: {} } }),
      `${r2}.route.cors: not supported by Weft`,
    );
    fails(
      route({ match: { prefix: '/' }, route: { cluster: 'c', include_vh_rate_limits: true } }),
      `${r2}.route.include_vh_rate_limits: not supported by Weft`,
    );
    fails(
      route({
        match: { prefix: '/' },
        route: { cluster: 'c', request_mirror_policies: [{ cluster: 'm' }, { cluster_header: 'x-m' }] },
      }),
      `${r2}.route.request_mirror_policies[1].cluster_header: not supported by Weft`,
    );
    fails(
      route({ match: { prefix: '/' }, route: { cluster_header: 'x-cluster' } }),
      `${r2}.route.cluster_header: not supported by Weft`,
    );
    fails(
      route({ match: { prefix: '/' }, route: { cluster: 'c', internal_redirect_policy: {} } }),
      `${r2}.route.internal_redirect_policy: not supported by Weft`,
    );
    fails(
      route({
        match: { prefix: '/' },
        route: { cluster: 'c', max_stream_duration: { max_stream_duration: '1s' } },
      }),
      `${r2}.route.max_stream_duration.max_stream_duration: not supported by Weft`,
    );
    fails(
      route({ match: { prefix: '/' }, route: { cluster: 'c' }, decorator: { operation: 'op' } }),
      `${r2}.decorator: not supported by Weft`,
    );
    fails(
      route({
        match: { prefix: '/' },
        route: { cluster: 'c' },
        typed_per_filter_config: { f: { '@type': 'type.googleapis.com/x.y.Z' } },
      }),
      `${r2}.typed_per_filter_config.f.@type: per-route configuration of type "type.googleapis.com/x.y.Z" is not supported by Weft`,
    );
    fails(
      { virtual_hosts: [{ name: 'vh', domains: ['*'], require_tls: 'ALL' }] },
      'route_config.virtual_hosts[0].require_tls: not supported by Weft',
    );
    fails(
      { virtual_hosts: [{ name: 'vh', domains: ['*'], retry_policy: {} }] },
      'route_config.virtual_hosts[0].retry_policy: not supported by Weft',
    );
    fails({ vhds: { config_source: {} } }, 'route_config.vhds: not supported by Weft');
    fails(
      { internal_only_headers: ['x-internal'] },
      'route_config.internal_only_headers: not supported by Weft',
    );
  });

  it('tolerates unimplemented fields spelt at their default', () => {
    const t = table({
      typed_per_filter_config: {},
      internal_only_headers: [],
      virtual_hosts: [
        {
          name: 'vh',
          domains: ['*'],
          require_tls: 'NONE',
          include_request_attempt_count: false,
          routes: [
            {
              match: { prefix: '/' },
              route: {
                cluster: 'c',
                priority: 'DEFAULT',
                cluster_not_found_response_code: 'SERVICE_UNAVAILABLE',
              },
            },
          ],
        },
      ],
    });
    assert.ok(t.match(request()));
  });

  it('reports unknown fields, missing required fields and missing actions', () => {
    fails(
      route({ match: { prefix: '/' }, route: { cluster: 'c', clustr: 'x' } }),
      `${r2}.route.clustr: unknown field`,
    );
    fails(route({ route: { cluster: 'c' } }), `${r2}.match: required`);
    fails(route({ match: { prefix: '/' } }), `${r2}: one of route, redirect or direct_response is required`);
    fails(
      route({ match: { prefix: '/' }, route: {} }),
      `${r2}.route: one of cluster or weighted_clusters is required`,
    );
    fails(
      route({ match: { prefix: '/' }, route: { cluster: 'c' }, redirect: {} }),
      `${r2}.redirect: conflicts with "route": only one action may be set`,
    );
    fails(
      route({ match: { prefix: '/' }, route: { cluster: 'c', timeout: '1m' } }),
      `${r2}.route.timeout: invalid duration "1m" (expected e.g. "1.5s")`,
    );
    fails(
      route({
        match: { prefix: '/' },
        route: {
          cluster: 'c',
          prefix_rewrite: '/x',
          regex_rewrite: { pattern: { regex: 'a' }, substitution: 'b' },
        },
      }),
      `${r2}.route.regex_rewrite: conflicts with "prefix_rewrite": only one may be set`,
    );
    fails(
      route({ match: { safe_regex: { regex: '(a+)+' } }, route: { cluster: 'c' } }),
      `${r2}.match.safe_regex.regex: RE2 pattern "(a+)+": nested repetition (exponential backtracking risk); separate iterations with a character the inner repetition cannot match, e.g. (/[^/]+)*`,
    );
    fails(
      route({
        match: { prefix: '/' },
        route: {
          cluster: 'c',
          upgrade_configs: [{ upgrade_type: 'websocket' }, { upgrade_type: 'WebSocket' }],
        },
      }),
      `${r2}.route.upgrade_configs[1].upgrade_type: duplicate upgrade type "websocket"`,
    );
    fails(
      route({
        match: { connect_matcher: {} },
        route: { cluster: 'c', upgrade_configs: [{ upgrade_type: 'CONNECT' }] },
      }),
      `${r2}.route.upgrade_configs[0]: CONNECT without connect_config (forwarding the CONNECT request upstream) is not supported by Weft: set connect_config to terminate it`,
    );
    fails(
      route({
        match: { prefix: '/' },
        route: { cluster: 'c', upgrade_configs: [{ upgrade_type: 'websocket', connect_config: {} }] },
      }),
      `${r2}.route.upgrade_configs[0].connect_config: only applies to upgrade_type CONNECT`,
    );
    fails(
      route({
        match: { connect_matcher: {} },
        route: {
          cluster: 'c',
          upgrade_configs: [{ upgrade_type: 'CONNECT', connect_config: { allow_post: true } }],
        },
      }),
      `${r2}.route.upgrade_configs[0].connect_config.allow_post: not supported by Weft`,
    );
    fails({ virtual_hosts: [{ domains: ['*'] }] }, 'route_config.virtual_hosts[0].name: required');
    fails(
      { virtual_hosts: [{ name: 'vh', domains: [] }] },
      'route_config.virtual_hosts[0].domains: at least one domain is required',
    );
  });

  it('reports duplicate domains across virtual hosts', () => {
    fails(
      {
        virtual_hosts: [
          { name: 'a', domains: ['x.com'] },
          { name: 'b', domains: ['y.com', 'X.COM'] },
        ],
      },
      'route_config.virtual_hosts[1].domains[1]: duplicate domain "X.COM": already used by virtual host "a" (domains must be unique across virtual hosts)',
    );
  });
});

describe('CONNECT routes', () => {
  it('route CONNECT by its authority to the connect route, other requests past it', () => {
    const t = single(
      [
        {
          match: { connect_matcher: {} },
          route: { cluster: 'tunnel', upgrade_configs: [{ upgrade_type: 'CONNECT', connect_config: {} }] },
        },
        { match: { prefix: '/' }, route: { cluster: 'http' } },
      ],
      {},
      { domains: ['reviews:9080'] },
    );
    const connect = forward(t.match(request({ method: 'CONNECT', path: '', authority: 'reviews:9080' })));
    assert.equal(connect.pickCluster(0).cluster, 'tunnel');
    assert.deepEqual(connect.connectConfig, {});
    assert.equal(connect.upgradeOverrides.get('connect'), true);
    const get = forward(t.match(request({ authority: 'reviews:9080' })));
    assert.equal(get.pickCluster(0).cluster, 'http');
    assert.equal(get.connectConfig, undefined);
    assert.equal(t.match(request({ method: 'CONNECT', path: '', authority: 'ratings:9080' })), null);
  });

  it('a disabled CONNECT override needs no connect_config', () => {
    const t = single([
      {
        match: { connect_matcher: {} },
        route: { cluster: 'c', upgrade_configs: [{ upgrade_type: 'CONNECT', enabled: false }] },
      },
    ]);
    const a = forward(t.match(request({ method: 'CONNECT', path: '' })));
    assert.equal(a.upgradeOverrides.get('connect'), false);
    assert.equal(a.connectConfig, undefined);
  });
});
