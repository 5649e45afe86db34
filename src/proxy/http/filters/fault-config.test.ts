import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../core/errors.ts';
import type { Json, JsonObject } from '../../../core/json.ts';
import { compileListener } from '../../listener/compile.ts';
import { compileRouteConfiguration } from '../../router/compile.ts';
import { compileHttpFault } from './fault-config.ts';

const TYPE = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const P = 'f';

function fails(fn: () => unknown, message: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.message, message);
    return true;
  });
}

describe('compileHttpFault', () => {
  it('accepts the empty filter-level config Istio sends', () => {
    const c = compileHttpFault({ '@type': TYPE }, P);
    assert.equal(c.abort, undefined);
    assert.equal(c.delay, undefined);
    assert.equal(c.maxActiveFaults, undefined);
    assert.equal(c.upstreamCluster, '');
  });

  it('reads aborts, delays and percentages (absent percentage = 0/100, capped at 100%)', () => {
    const c = compileHttpFault(
      {
        abort: { http_status: 503, percentage: { numerator: 25, denominator: 'TEN_THOUSAND' } },
        delay: { fixed_delay: '1.5s' },
        max_active_faults: 3,
      },
      P,
    );
    assert.deepEqual(c.abort, {
      kind: 'http',
      httpStatus: 503,
      percentage: { numerator: 25, denominator: 10_000 },
    });
    assert.deepEqual(c.delay, {
      kind: 'fixed',
      delayMs: 1500,
      percentage: { numerator: 0, denominator: 100 },
    });
    assert.equal(c.maxActiveFaults, 3);
    const g = compileHttpFault(
      { abort: { grpc_status: 14, percentage: { numerator: 500 } }, delay: { header_delay: {} } },
      P,
    );
    assert.deepEqual(g.abort, {
      kind: 'grpc',
      grpcStatus: 14,
      percentage: { numerator: 100, denominator: 100 },
    });
    assert.equal(g.delay?.kind, 'header');
    const h = compileHttpFault(
      { abort: { header_abort: {}, percentage: { numerator: 7, denominator: 'MILLION' } } },
      P,
    );
    assert.deepEqual(h.abort, { kind: 'header', percentage: { numerator: 7, denominator: 1_000_000 } });
  });

  it('names the exact field of every error', () => {
    fails(
      () => compileHttpFault({ abort: { http_status: 600 } }, P),
      'f.abort.http_status: must be an integer from 200 to 599, got 600',
    );
    fails(
      () => compileHttpFault({ abort: { http_status: 199 } }, P),
      'f.abort.http_status: must be an integer from 200 to 599, got 199',
    );
    fails(
      () => compileHttpFault({ abort: { http_status: 503, grpc_status: 14 } }, P),
      'f.abort.grpc_status: conflicts with "http_status": only one may be set',
    );
    fails(
      () => compileHttpFault({ abort: { percentage: { numerator: 1 } } }, P),
      'f.abort: one of http_status, grpc_status, header_abort is required (the error type)',
    );
    fails(
      () =>
        compileHttpFault(
          { abort: { http_status: 503, percentage: { numerator: 1, denominator: 'THOUSAND' } } },
          P,
        ),
      'f.abort.percentage.denominator: unknown value "THOUSAND" (HUNDRED, TEN_THOUSAND or MILLION)',
    );
    fails(
      () => compileHttpFault({ delay: { fixed_delay: '0s' } }, P),
      'f.delay.fixed_delay: must be greater than 0',
    );
    fails(
      () => compileHttpFault({ response_rate_limit: { fixed_limit: { limit_kbps: 1 } } }, P),
      'f.response_rate_limit: not supported by Weft',
    );
    fails(
      () => compileHttpFault({ downstream_nodes: ['a'] }, P),
      'f.downstream_nodes: not supported by Weft',
    );
    fails(
      () => compileHttpFault({ delay_percent_runtime: 'k' }, P),
      'f.delay_percent_runtime: not supported by Weft',
    );
    fails(
      () => compileHttpFault({ abort_http_status_runtime: 'k' }, P),
      'f.abort_http_status_runtime: not supported by Weft',
    );
    fails(() => compileHttpFault({ headers: [{ name: '' }] }, P), 'f.headers[0].name: required');
    fails(
      () => compileHttpFault({ max_active_faults: -1 }, P),
      'f.max_active_faults: must be an integer from 0 to 4294967295, got -1',
    );
    fails(() => compileHttpFault({ bogus: 1 }, P), 'f.bogus: unknown field');
  });
});

function routeConfig(
  vhostExtra: JsonObject,
  routeExtra: JsonObject,
  configExtra: JsonObject = {},
): JsonObject {
  return {
    name: 'rc',
    virtual_hosts: [
      {
        name: 'vh',
        domains: ['*'],
        routes: [
          { match: { prefix: '/a' }, route: { cluster: 'c' }, ...routeExtra },
          { match: { prefix: '/' }, route: { cluster: 'c' } },
        ],
        ...vhostExtra,
      },
    ],
    ...configExtra,
  };
}

const fault = (status: number): JsonObject => ({
  'envoy.filters.http.fault': {
    '@type': TYPE,
    abort: { http_status: status, percentage: { numerator: 100 } },
  },
});

describe('typed_per_filter_config', () => {
  const req = (path: string) => ({
    authority: 'x',
    path,
    method: 'GET',
    headers: {},
    scheme: 'http',
    sourceIp: '',
  });

  it('the most specific level wins: route > virtual host > route configuration', () => {
    const t = compileRouteConfiguration(
      routeConfig(
        { typed_per_filter_config: fault(502) },
        { typed_per_filter_config: fault(501) },
        { typed_per_filter_config: fault(500) },
      ),
      'rc',
    );
    const status = (path: string) =>
      (
        t.match(req(path))?.perFilterConfig?.get('envoy.filters.http.fault') as ReturnType<
          typeof compileHttpFault
        >
      ).abort;
    assert.deepEqual(status('/a'), {
      kind: 'http',
      httpStatus: 501,
      percentage: { numerator: 100, denominator: 100 },
    });
    assert.equal((status('/b') as { httpStatus: number }).httpStatus, 502);
    const t2 = compileRouteConfiguration(routeConfig({}, {}, { typed_per_filter_config: fault(500) }), 'rc');
    assert.equal(
      (
        t2.match(req('/a'))?.perFilterConfig?.get('envoy.filters.http.fault') as {
          abort: { httpStatus: number };
        }
      ).abort.httpStatus,
      500,
    );
    assert.equal(
      compileRouteConfiguration(routeConfig({}, {}), 'rc').match(req('/a'))?.perFilterConfig,
      undefined,
    );
    assert.deepEqual(
      t.perFilterConfigUses?.map((u) => u.path),
      [
        'rc.typed_per_filter_config["envoy.filters.http.fault"]',
        'rc.virtual_hosts[0].typed_per_filter_config["envoy.filters.http.fault"]',
        'rc.virtual_hosts[0].routes[0].typed_per_filter_config["envoy.filters.http.fault"]',
      ],
    );
  });

  it('refuses filters without per-route config, wrappers, and bad fault configs with their paths', () => {
    const r = 'rc.virtual_hosts[0].routes[0].typed_per_filter_config';
    fails(
      () =>
        compileRouteConfiguration(
          routeConfig(
            {},
            {
              typed_per_filter_config: {
                r: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
              },
            },
          ),
          'rc',
        ),
      `${r}.r: envoy.filters.http.router takes no per-route configuration`,
    );
    fails(
      () =>
        compileRouteConfiguration(
          routeConfig(
            {},
            {
              typed_per_filter_config: {
                x: { '@type': 'type.googleapis.com/envoy.config.route.v3.FilterConfig' },
              },
            },
          ),
          'rc',
        ),
      `${r}.x.@type: the envoy.config.route.v3.FilterConfig wrapper is not supported by Weft: give the filter's own config`,
    );
    fails(
      () =>
        compileRouteConfiguration(
          routeConfig(
            {},
            {
              typed_per_filter_config: {
                'envoy.filters.http.fault': { '@type': TYPE, abort: { http_status: 99 } },
              },
            },
          ),
          'rc',
        ),
      `${r}["envoy.filters.http.fault"].abort.http_status: must be an integer from 200 to 599, got 99`,
    );
  });
});

describe('the listener checks fault filters and per-route names against http_filters', () => {
  const HCM =
    'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
  const ROUTER = {
    name: 'envoy.filters.http.router',
    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
  };
  const listener = (httpFilters: Json[], routeExtra: JsonObject): JsonObject => ({
    name: 'l',
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM,
              stat_prefix: 'in',
              http_filters: httpFilters,
              route_config: { ...routeConfig({}, routeExtra), validate_clusters: false },
            },
          },
        ],
      },
    ],
  });
  const hcmPath = 'l.filter_chains[0].filters[0].typed_config';

  it('accepts the Istio shape: an empty filter-level fault, the fault on the route', () => {
    const l = compileListener(
      listener([{ name: 'envoy.filters.http.fault', typed_config: { '@type': TYPE } }, ROUTER], {
        typed_per_filter_config: fault(503),
      }),
      'l',
    );
    const chain = l.filterChains[0].filters[0];
    assert.equal(chain.kind, 'http_connection_manager');
    assert.equal(chain.kind === 'http_connection_manager' && chain.hcm.httpFilters.length, 2);
  });

  it('refuses per-route config for a filter not in the chain, and bad filter-level config', () => {
    fails(
      () => compileListener(listener([ROUTER], { typed_per_filter_config: fault(503) }), 'l'),
      `${hcmPath}.route_config.virtual_hosts[0].routes[0].typed_per_filter_config["envoy.filters.http.fault"]: no HTTP filter named "envoy.filters.http.fault" in http_filters`,
    );
    fails(
      () =>
        compileListener(
          listener(
            [
              { name: 'envoy.filters.http.fault', typed_config: { '@type': TYPE, downstream_nodes: ['n'] } },
              ROUTER,
            ],
            {},
          ),
          'l',
        ),
      `${hcmPath}.http_filters[0].typed_config.downstream_nodes: not supported by Weft`,
    );
  });
});
