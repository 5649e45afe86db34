import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../core/errors.ts';
import type { JsonObject } from '../../../core/json.ts';
import { compileRouteConfiguration } from '../../router/compile.ts';
import { compileLocalRateLimit } from './local-ratelimit-config.ts';

const TYPE = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';
const P = 'f';
const ALL = { default_value: { numerator: 100, denominator: 'HUNDRED' } };
const BUCKET = { max_tokens: 5, tokens_per_fill: 5, fill_interval: '1s' };

function fails(json: JsonObject, message: string): void {
  assert.throws(
    () => compileLocalRateLimit({ '@type': TYPE, stat_prefix: 'rl', ...json }, P),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(err.message, message);
      return true;
    },
  );
}

describe('compileLocalRateLimit', () => {
  it('reads the full config with Envoy defaults', () => {
    const c = compileLocalRateLimit(
      {
        '@type': TYPE,
        stat_prefix: 'rl',
        token_bucket: BUCKET,
        filter_enabled: ALL,
        filter_enforced: ALL,
        response_headers_to_add: [{ header: { key: 'x-rl', value: 'yes' } }],
        descriptors: [
          { entries: [{ key: 'client', value: '' }], token_bucket: { max_tokens: 2, fill_interval: '60s' } },
          {
            entries: [{ key: 'client', value: 'vip' }],
            token_bucket: { max_tokens: 9, fill_interval: '60s' },
          },
        ],
        enable_x_ratelimit_headers: 'DRAFT_VERSION_03',
      },
      P,
    );
    assert.equal(c.status, 429);
    assert.equal(c.enabled, true);
    assert.equal(c.enforced, true);
    assert.deepEqual(c.tokenBucket, { maxTokens: 5, tokensPerFill: 5, fillIntervalMs: 1000 });
    assert.equal(c.descriptors[0].wildcard, true);
    assert.equal(c.descriptors[1].wildcard, false);
    assert.deepEqual(c.descriptors[0].tokenBucket, {
      maxTokens: 2,
      tokensPerFill: 1,
      fillIntervalMs: 60_000,
    });
    assert.equal(c.xRateLimitHeaders, true);
    assert.equal(c.alwaysConsumeDefault, true);
    assert.equal(c.perConnection, false);
  });

  it('treats unset filter_enabled/filter_enforced as 0% (disabled), as Envoy', () => {
    const c = compileLocalRateLimit({ stat_prefix: 'rl', token_bucket: BUCKET }, P);
    assert.equal(c.enabled, false);
    assert.equal(c.enforced, false);
  });

  it('reads status codes by name or number', () => {
    assert.equal(
      compileLocalRateLimit({ stat_prefix: 'rl', status: { code: 'ServiceUnavailable' } }, P).status,
      503,
    );
    assert.equal(compileLocalRateLimit({ stat_prefix: 'rl', status: { code: 418 } }, P).status, 418);
  });

  it('names the field of each error', () => {
    fails({ stat_prefix: '' }, 'f.stat_prefix: required');
    fails({ token_bucket: { fill_interval: '1s' } }, 'f.token_bucket.max_tokens: required');
    fails(
      { token_bucket: { max_tokens: 0, fill_interval: '1s' } },
      'f.token_bucket.max_tokens: must be an integer from 1 to 4294967295, got 0',
    );
    fails({ token_bucket: { max_tokens: 1 } }, 'f.token_bucket.fill_interval: required');
    fails(
      { filter_enabled: { runtime_key: 'k', default_value: { numerator: 100 } } },
      'f.filter_enabled.runtime_key: runtime keys are not supported by Weft (there is no runtime layer)',
    );
    fails(
      { filter_enforced: { default_value: { numerator: 50 } } },
      'f.filter_enforced.default_value: only 0% or 100% is supported by Weft (no partial enablement)',
    );
    fails(
      { descriptors: [{ entries: [], token_bucket: BUCKET }] },
      'f.descriptors[0].entries: at least one entry is required',
    );
    fails({ descriptors: [{ entries: [{ key: 'a' }] }] }, 'f.descriptors[0].token_bucket: required');
    fails(
      {
        descriptors: [
          { entries: [{ key: 'a', value: 'x' }], token_bucket: BUCKET },
          { entries: [{ key: 'a', value: 'x' }], token_bucket: BUCKET },
        ],
      },
      'f.descriptors[1]: duplicate of descriptors[0] (same entries)',
    );
    fails(
      { enable_x_ratelimit_headers: 'RFC' },
      'f.enable_x_ratelimit_headers: unknown value "RFC" (OFF or DRAFT_VERSION_03)',
    );
    fails({ local_cluster_rate_limit: {} }, 'f.local_cluster_rate_limit: not supported by Weft');
    fails({ status: { code: 200 } }, 'f.status.code: must be an HTTP status from 400 to 599, got 200');
  });

  it('is accepted per route, and rate_limits actions compile with field paths', () => {
    const table = compileRouteConfiguration(
      {
        name: 'r',
        virtual_hosts: [
          {
            name: 'v',
            domains: ['*'],
            routes: [
              {
                match: { prefix: '/' },
                route: {
                  cluster: 'c',
                  rate_limits: [
                    { actions: [{ request_headers: { header_name: 'x-user', descriptor_key: 'user' } }] },
                  ],
                },
                typed_per_filter_config: {
                  'envoy.filters.http.local_ratelimit': {
                    '@type': TYPE,
                    stat_prefix: 'per_route',
                    token_bucket: BUCKET,
                  },
                },
              },
            ],
          },
        ],
      },
      'rc',
    );
    assert.equal(table.perFilterConfigUses?.[0].filterName, 'envoy.filters.http.local_ratelimit');
    assert.throws(
      () =>
        compileRouteConfiguration(
          {
            name: 'r',
            virtual_hosts: [
              {
                name: 'v',
                domains: ['*'],
                routes: [
                  {
                    match: { prefix: '/' },
                    route: {
                      cluster: 'c',
                      rate_limits: [{ actions: [{ request_headers: { header_name: 'x-user' } }] }],
                    },
                  },
                ],
              },
            ],
          },
          'rc',
        ),
      /rc\.virtual_hosts\[0\]\.routes\[0\]\.route\.rate_limits\[0\]\.actions\[0\]\.request_headers\.descriptor_key: required/,
    );
  });
});
