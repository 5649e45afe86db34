import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileRouterConfig, DEFAULT_ROUTER_CONFIG } from './router-config.ts';

const TYPE = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

describe('router filter config', () => {
  it('defaults', () => {
    assert.equal(compileRouterConfig(undefined, 'r'), DEFAULT_ROUTER_CONFIG);
    assert.deepEqual(
      compileRouterConfig({ '@type': TYPE, dynamic_stats: true, start_child_span: false }, 'r'),
      {
        respectExpectedRqTimeout: false,
        suppressEnvoyHeaders: false,
      },
    );
  });

  it('reads respect_expected_rq_timeout and suppress_envoy_headers', () => {
    assert.deepEqual(
      compileRouterConfig(
        { '@type': TYPE, respect_expected_rq_timeout: true, suppress_envoy_headers: true },
        'r',
      ),
      { respectExpectedRqTimeout: true, suppressEnvoyHeaders: true },
    );
  });

  it('refuses what Weft does not implement', () => {
    assert.throws(
      () => compileRouterConfig({ start_child_span: true }, 'r'),
      /r\.start_child_span: not supported by Weft/,
    );
    assert.throws(
      () => compileRouterConfig({ dynamic_stats: false }, 'r'),
      /r\.dynamic_stats: false is not supported/,
    );
    assert.throws(() => compileRouterConfig({ bogus: 1 }, 'r'), /r\.bogus: unknown field/);
    assert.throws(
      () => compileRouterConfig({ suppress_envoy_headers: 'yes' }, 'r'),
      /r\.suppress_envoy_headers/,
    );
  });
});
